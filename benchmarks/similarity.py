"""Wall time of `python -m autograder similarity` on generated LMS zips of 100 and 500 students.

The class does 03_multichannel (corr2d, corr2d_multi_in, corr2d_multi_in_out, conv2d_batch).
Each student's answer to each exercise is generated from one of several ways to solve it
(nested loops over output positions, sliding windows with einsum or tensordot, sums of shifted
slices, comprehensions, as_strided, pure Python; loops, comprehensions, reduce, preallocation
for the others), with many independent choices inside each way (conversions, shapes,
allocation, the inner product, loop order, intermediate variables), the student's own names,
comments and blank lines. 75% answer everything, 15% part of it (the rest left as the stub),
5% hand in the blank release. 5% copy another student's answers to some or all exercises, with
other names, comments and blank lines. Submissions are Canvas-style files in one zip.

Prints, per class size, the wall and CPU time of the whole command (fresh processes: start-up,
intake of the zip, reading notebooks, fingerprints, comparison, report; the CPU time is what a
loaded shared machine does not inflate) and its stage times, and how the planted copies fared.
Target: 500 students in under 60 s on this machine.

    .venv/bin/python benchmarks/similarity.py               # 100 and 500 students
    .venv/bin/python benchmarks/similarity.py --sizes 200
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ASSIGNMENT = "03_multichannel"
NAMES = {
    "x": ["x", "img", "image", "a", "inp", "data", "arr"],
    "k": ["k", "ker", "kernel", "w", "filt", "kk"],
    "out": ["out", "res", "result", "y", "output", "acc", "z"],
    "i": ["i", "r", "row", "p", "ii", "y0"],
    "j": ["j", "c", "col", "q", "jj", "x0"],
    "u": ["u", "a", "di", "m", "s"],
    "v": ["v", "b", "dj", "n", "t"],
    "kh": ["kh", "kH", "rows", "kr", "hk", "fh"],
    "kw": ["kw", "kW", "cols", "kc", "wk", "fw"],
    "ho": ["h_out", "oh", "out_h", "H", "n_rows", "height"],
    "wo": ["w_out", "ow", "out_w", "W", "n_cols", "width"],
    "win": ["window", "patch", "piece", "region", "sub", "block"],
    "c": ["c", "ch", "channel", "ci", "idx"],
    "o": ["o", "oc", "kernel", "f", "kern"],
    "n": ["n", "sample", "b", "item", "xi"],
    "acc": ["acc", "total", "s", "summed", "result"],
    "lst": ["maps", "outs", "results", "parts", "chans", "stack"],
}
COMMENTS = [
    "# loop over every output position",
    "# convert to float first",
    "# output size",
    "# sum over channels",
    "# one kernel per output channel",
    "# add the bias",
    "# TODO: vectorize",
    "# elementwise product then sum",
    "# this was tricky",
    "# shapes: see the docstring",
    "# broadcast over H, W",
    "# accumulate",
]


class Student:
    """Draws one student's choices: structure from `structure`, style from `style`."""

    def __init__(self, structure: random.Random, style: random.Random):
        self.pick = structure.choice
        self.coin = structure.random
        self.style = style
        self.names = {role: style.choice(pool) for role, pool in NAMES.items()}

    def n(self, role: str) -> str:
        return self.names[role]

    def render(self, lines: list[str]) -> str:
        """Lines (with indentation) plus the student's comments and blank lines."""
        out = []
        for line in lines:
            if self.style.random() < 0.12:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(indent + self.style.choice(COMMENTS))
            if self.style.random() < 0.08:
                out.append("")
            if self.style.random() < 0.1 and not line.rstrip().endswith(":"):
                line += "  " + self.style.choice(COMMENTS)
            out.append(line)
        return "\n".join(out)


def corr2d(s: Student) -> list[str]:
    x, k, out, i, j = s.n("x"), s.n("k"), s.n("out"), s.n("i"), s.n("j")
    kh, kw, ho, wo, win = s.n("kh"), s.n("kw"), s.n("ho"), s.n("wo"), s.n("win")
    conv = s.pick(
        [
            [f"{x} = np.asarray(x, dtype=float)", f"{k} = np.asarray(k, dtype=float)"],
            [f"{x}, {k} = np.array(x, dtype=np.float64), np.array(k, dtype=np.float64)"],
            [f"{x} = np.asarray(x).astype(float)", f"{k} = np.asarray(k).astype(float)"],
            [f"{x} = np.array(x, float)", f"{k} = np.array(k, float)"],
        ]
    )
    shape = s.pick(
        [
            [f"{kh}, {kw} = {k}.shape"],
            [f"{kh} = {k}.shape[0]", f"{kw} = {k}.shape[1]"],
            [f"{kh}, {kw} = len({k}), len({k}[0])"],
        ]
    )
    sizes = s.pick(
        [
            [f"{ho} = {x}.shape[0] - {kh} + 1", f"{wo} = {x}.shape[1] - {kw} + 1"],
            [f"{ho}, {wo} = {x}.shape[0] - {kh} + 1, {x}.shape[1] - {kw} + 1"],
            [f"H_in, W_in = {x}.shape", f"{ho}, {wo} = H_in - {kh} + 1, W_in - {kw} + 1"],
        ]
    )
    way = s.pick(["loops", "loops", "loops", "windows", "shifts", "rows", "strided", "python"])
    lines = conv + s.pick([[], [], check_2d(s, x, k)]) + shape + sizes
    if way in ("loops", "python"):
        alloc = s.pick(
            [
                f"{out} = np.zeros(({ho}, {wo}))",
                f"{out} = np.empty(({ho}, {wo}))",
                f"{out} = np.full(({ho}, {wo}), 0.0)",
                f"{out} = np.zeros(({ho}, {wo}), dtype=float)",
            ]
        )
        lines.append(alloc)
        outer, inner = (i, ho), (j, wo)
        if s.coin() < 0.2:
            outer, inner = inner, outer
        lines += [
            f"for {outer[0]} in range({outer[1]}):",
            f"    for {inner[0]} in range({inner[1]}):",
        ]
        sl = f"{x}[{i}:{i} + {kh}, {j}:{j} + {kw}]"
        if way == "python":
            u, v, acc = s.n("u"), s.n("v"), s.n("acc")
            lines += [
                f"        {acc} = 0.0",
                f"        for {u} in range({kh}):",
                f"            for {v} in range({kw}):",
                f"                {acc} += {x}[{i} + {u}, {j} + {v}] * {k}[{u}, {v}]",
                f"        {out}[{i}, {j}] = {acc}",
            ]
        else:
            if s.coin() < 0.5:
                lines.append(f"        {win} = {sl}")
                sl = win
            prod = s.pick(
                [
                    f"np.sum({sl} * {k})",
                    f"({sl} * {k}).sum()",
                    f"np.vdot({sl}, {k})",
                    f"float(np.sum({sl} * {k}))",
                    f"np.tensordot({sl}, {k})",
                    f"np.multiply({sl}, {k}).sum()",
                ]
            )
            lines.append(f"        {out}[{i}, {j}] = {prod}")
        lines.append(f"return {out}")
    elif way == "windows":
        lines = [
            "from numpy.lib.stride_tricks import sliding_window_view",
            "",
            *conv,
            f"{win} = sliding_window_view({x}, {k}.shape)",
        ]
        lines.append(
            s.pick(
                [
                    f'return np.einsum("ijkl,kl->ij", {win}, {k})',
                    f"return np.tensordot({win}, {k}, axes=2)",
                    f"return ({win} * {k}).sum(axis=(-2, -1))",
                    f"return np.sum({win} * {k}[None, None], axis=(2, 3))",
                ]
            )
        )
    elif way == "shifts":
        u, v = s.n("u"), s.n("v")
        lines += [
            f"{out} = np.zeros(({ho}, {wo}))",
            f"for {u} in range({kh}):",
            f"    for {v} in range({kw}):",
            s.pick(
                [
                    f"        {out} += {k}[{u}, {v}] * {x}[{u}:{u} + {ho}, {v}:{v} + {wo}]",
                    f"        {out} = {out} + {x}[{u}:{u} + {ho}, {v}:{v} + {wo}] * {k}[{u}][{v}]",
                ]
            ),
            f"return {out}",
        ]
    elif way == "rows":
        lst = s.n("lst")
        lines += [
            f"{lst} = []",
            f"for {i} in range({ho}):",
            s.pick(
                [
                    f"    {lst}.append([np.sum({x}[{i}:{i} + {kh}, {j}:{j} + {kw}] * {k}) "
                    f"for {j} in range({wo})])",
                    f"    row = [({x}[{i}:{i} + {kh}, {j}:{j} + {kw}] * {k}).sum() "
                    f"for {j} in range({wo})]",
                ]
            ),
        ]
        if "row = " in lines[-1]:
            lines.append(f"    {lst}.append(row)")
        lines.append(s.pick([f"return np.array({lst})", f"return np.asarray({lst}, dtype=float)"]))
    else:  # strided
        lines = [
            "from numpy.lib.stride_tricks import as_strided",
            "",
            *conv,
            *shape,
            *sizes,
            f"{win} = as_strided({x}, shape=({ho}, {wo}, {kh}, {kw}), strides={x}.strides * 2)",
            s.pick(
                [
                    f"return np.tensordot({win}, {k}, axes=([2, 3], [0, 1]))",
                    f'return np.einsum("abij,ij->ab", {win}, {k})',
                ]
            ),
        ]
    return lines


def check_2d(s: Student, x: str, k: str) -> list[str]:
    return s.pick(
        [
            [f"assert {x}.ndim == 2 and {k}.ndim == 2"],
            [f"if {x}.ndim != 2 or {k}.ndim != 2:", '    raise ValueError("expected 2-d arrays")'],
            [
                f"if {k}.shape[0] > {x}.shape[0] or {k}.shape[1] > {x}.shape[1]:",
                '    raise ValueError("kernel larger than input")',
            ],
            [
                f'assert {k}.shape[0] <= {x}.shape[0], "kernel too tall"',
                f'assert {k}.shape[1] <= {x}.shape[1], "kernel too wide"',
            ],
        ]
    )


def channels_check(s: Student) -> list[str]:
    return s.pick(
        [
            [],
            [],
            ["assert len(x) == len(k), 'channel mismatch'"],
            [
                "if x.shape[0] != k.shape[0]:",
                "    raise ValueError('x and k need the same channels')",
            ],
            ["x, k = np.asarray(x), np.asarray(k)"],
        ]
    )


def multi_in(s: Student) -> list[str]:
    c, acc = s.n("c"), s.n("acc")
    return channels_check(s) + s.pick(
        [
            [
                f"{acc} = 0",
                f"for {c} in range(len(x)):",
                f"    {acc} = {acc} + corr2d(x[{c}], k[{c}])",
                f"return {acc}",
            ],
            [
                f"{acc} = corr2d(x[0], k[0])",
                f"for {c} in range(1, len(x)):",
                f"    {acc} += corr2d(x[{c}], k[{c}])",
                f"return {acc}",
            ],
            ["return sum(corr2d(xc, kc) for xc, kc in zip(x, k))"],
            [f"return np.sum([corr2d(x[{c}], k[{c}]) for {c} in range(x.shape[0])], axis=0)"],
            ["return np.add.reduce([corr2d(a, b) for a, b in zip(x, k)])"],
            [
                "from functools import reduce",
                "",
                "return reduce(np.add, map(corr2d, x, k))",
            ],
            [
                f"{acc} = None",
                "for xc, kc in zip(x, k):",
                "    part = corr2d(xc, kc)",
                f"    {acc} = part if {acc} is None else {acc} + part",
                f"return {acc}",
            ],
        ]
    )


def multi_in_out(s: Student) -> list[str]:
    o, lst, out = s.n("o"), s.n("lst"), s.n("out")
    first = s.pick(
        [
            [],
            [],
            ["x = np.asarray(x)"],
            ["k = np.asarray(k)"],
            ["assert k.ndim == 4, 'k must be (O, C, kH, kW)'"],
        ]
    )
    return first + s.pick(
        [
            [
                f"{lst} = []",
                f"for {o} in k:",
                f"    {lst}.append(corr2d_multi_in(x, {o}))",
                s.pick([f"return np.stack({lst})", f"return np.array({lst})"]),
            ],
            [f"return np.stack([corr2d_multi_in(x, {o}) for {o} in k])"],
            [f"return np.array([corr2d_multi_in(x, k[{o}]) for {o} in range(len(k))])"],
            [
                "first = corr2d_multi_in(x, k[0])",
                f"{out} = np.zeros((len(k),) + first.shape)",
                f"{out}[0] = first",
                f"for {o} in range(1, len(k)):",
                f"    {out}[{o}] = corr2d_multi_in(x, k[{o}])",
                f"return {out}",
            ],
            [f"return np.concatenate([corr2d_multi_in(x, {o})[None] for {o} in k], axis=0)"],
        ]
    )


def batch(s: Student) -> list[str]:
    n, lst, out = s.n("n"), s.n("lst"), s.n("out")
    add_bias = s.pick(
        [
            f"{out} = {out} + np.asarray(bias)[None, :, None, None]",
            f"{out} = {out} + np.reshape(bias, (1, -1, 1, 1))",
            f"{out} += np.asarray(bias).reshape(1, -1, 1, 1)",
            f"{out} = {out} + np.array(bias)[np.newaxis, :, np.newaxis, np.newaxis]",
        ]
    )
    make = s.pick(
        [
            [f"{out} = np.stack([corr2d_multi_in_out({n}, weight) for {n} in x])"],
            [f"{out} = np.array([corr2d_multi_in_out(x[i], weight) for i in range(len(x))])"],
            [
                f"{lst} = []",
                f"for {n} in x:",
                f"    {lst}.append(corr2d_multi_in_out({n}, weight))",
                f"{out} = np.stack({lst})",
            ],
            [
                f"{out} = None",
                f"for i, {n} in enumerate(x):",
                f"    y = corr2d_multi_in_out({n}, weight)",
                f"    if {out} is None:",
                f"        {out} = np.zeros((len(x),) + y.shape)",
                f"    {out}[i] = y",
            ],
        ]
    )
    tail = s.pick(
        [
            ["if bias is not None:", f"    {add_bias}", f"return {out}"],
            ["if bias is None:", f"    return {out}", add_bias, f"return {out}"],
            [
                "if bias is not None:",
                f"    for ch in range({out}.shape[1]):",
                f"        {out}[:, ch] += bias[ch]",
                f"return {out}",
            ],
        ]
    )
    first = s.pick(
        [
            [],
            ["x = np.asarray(x)"],
            ["x = np.asarray(x, dtype=float)", "weight = np.asarray(weight, dtype=float)"],
            ["if x.ndim != 4:", "    raise ValueError(f'x must be (N, C, H, W), got {x.shape}')"],
            ["assert x.shape[1] == weight.shape[1]"],
        ]
    )
    return first + make + tail


EXERCISES = {
    "corr2d": corr2d,
    "corr2d_multi_in": multi_in,
    "corr2d_multi_in_out": multi_in_out,
    "conv2d_batch": batch,
}


def answers(structure_seed: int, style_seed: int, which: list[str]) -> dict[str, str]:
    student = Student(random.Random(structure_seed), random.Random(style_seed))
    out = {}
    for gid, make in EXERCISES.items():
        lines = make(student)  # drawn for every exercise, so a seed means the same structure
        if gid in which:
            out[gid] = student.render(lines)
    return out


def make_class(n: int, seed: int = 0) -> tuple[dict[str, dict[str, str]], set]:
    """student -> {grade id: body}; and the planted copies (copier, source, exercises)."""
    rng = random.Random(seed)
    everything = list(EXERCISES)
    plan: dict[str, tuple[int, list[str]]] = {}
    students: dict[str, dict[str, str]] = {}
    copies = set()
    ids = [f"student{i:03d}" for i in range(n)]
    ids[1], ids[2] = "Zoë Ünal", "Łukasz Nowak"
    for sid in ids:
        roll = rng.random()
        structure = rng.randrange(1 << 30)
        if roll < 0.05:
            which = []
        elif roll < 0.20:
            which = sorted(rng.sample(everything, rng.randint(1, 3)))
        else:
            which = everything
        if roll >= 0.95 and plan:
            source = rng.choice([s for s, (_, w) in plan.items() if w])
            src_seed, src_which = plan[source]
            copied = sorted(rng.sample(src_which, rng.randint(1, len(src_which))))
            own = answers(structure, rng.randrange(1 << 30), everything)
            theirs = answers(src_seed, rng.randrange(1 << 30), copied)
            students[sid] = {**own, **theirs}
            copies.add((sid, source, tuple(copied)))
            plan[sid] = (structure, [])
            continue
        plan[sid] = (structure, which)
        students[sid] = answers(structure, rng.randrange(1 << 30), which)
    return students, copies


def write_zip(students: dict, path: Path) -> None:
    import nbformat

    sys.path.insert(0, str(ROOT / "tests"))
    from student_notebooks import answer_stub

    release = ROOT / "release" / ASSIGNMENT / "multichannel.ipynb"
    blank = nbformat.read(release, as_version=4)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for number, (sid, bodies) in enumerate(students.items()):
            nb = nbformat.from_dict(json.loads(json.dumps(blank)))
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid in bodies:
                    cell.source = answer_stub(blank, gid, bodies[gid])
            zf.writestr(
                f"{sid}_{1000 + number}_{2000 + number}_multichannel.ipynb", nbformat.writes(nb)
            )


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(n: int, work: Path) -> dict:
    from autograder.intake import safe_student_id

    students, copies = make_class(n)
    z = work / f"class{n}.zip"
    write_zip(students, z)
    out = work / f"out{n}"
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    cpu, start = cpu_of_children(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "similarity", ASSIGNMENT, str(z), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    took, cpu = time.perf_counter() - start, cpu_of_children() - cpu
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit(f"similarity failed with status {proc.returncode}")
    stages = next((line for line in proc.stdout.splitlines() if line.startswith("(intake")), "")
    with open(out / "similarity.csv", encoding="utf-8") as fh:
        rows = {frozenset((r["student_a"], r["student_b"])): r for r in csv.DictReader(fh)}
    whole, partial = [], []
    for copier, source, exercises in copies:
        row = rows.get(frozenset((safe_student_id(copier), safe_student_id(source))), {})
        if len(exercises) == len(EXERCISES):
            whole.append(float(row.get("score", 0)))
        else:  # judged on what was copied: the best of the copied exercises
            partial.append(max(float(row.get(gid, 0)) for gid in exercises))
    planted = {frozenset((safe_student_id(a), safe_student_id(b))) for a, b, _ in copies}
    others = [float(r["score"]) for pair, r in rows.items() if pair not in planted]
    return {
        "students": n,
        "pairs": n * (n - 1) // 2,
        "seconds": took,
        "cpu": cpu,
        "stages": stages,
        "zip_mb": z.stat().st_size / 1e6,
        "whole": sorted(whole),
        "partial": sorted(partial),
        "others_above": sum(x >= 0.5 for x in others),
        "sharing_pairs": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            r = measure(n, Path(tmp))
            print(
                f"{r['students']} students ({r['pairs']} pairs, zip {r['zip_mb']:.1f} MB): "
                f"{r['seconds']:.1f} s wall, {r['cpu']:.1f} s CPU  {r['stages']}"
            )
            whole = ", ".join(f"{x:.2f}" for x in r["whole"])
            part = ", ".join(f"{x:.2f}" for x in r["partial"])
            print(
                f"   planted copies of every exercise, overall score: [{whole}]\n"
                f"   planted copies of some exercises, best copied exercise: [{part}]\n"
                f"   {r['sharing_pairs']} pairs share some code; {r['others_above']} pairs that "
                "are no planted copy score 50% or more (independent answers generated alike)"
            )
        print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print("target: 500 students in under 60 s")


if __name__ == "__main__":
    main()
