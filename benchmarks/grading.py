"""Wall time: stock `nbgrader autograde` vs our `python -m autograder grade`, same submissions.

For each class size (default 20 and 60 submissions of 01_anatomy) it builds a temporary course
(a copy of source/, the course's nbgrader_config.py, a release made by nbgrader) with that many
whole-notebook submissions: alternately the reference solution, the blank release and a
release with every other solution filled in. Then, timed, in one run:

- stock: ``nbgrader autograde ASSIGNMENT --force`` (one submission at a time, a kernel each);
- ours:  ``python -m autograder grade ASSIGNMENT submitted/ --force`` on a local Dask cluster of
  ``--workers`` processes, or on ``--scheduler ADDRESS`` (sandbox on: isolation when root);
- with ``--compare CHECKOUT``, also the grader of another checkout (e.g. ``git archive`` of an
  older commit), run the same way (without ``--scheduler``), alternating with ours.

Printed: total seconds per size, the marginal cost (seconds per submission beyond the smallest
class: (T_large - T_small) / (N_large - N_small), start-up cancels out; and, within each run,
the time between completions once the first batch is done), the ratio to stock,
ours against the compared checkout, the mean time per submission of each grading stage (from
the ``stages:`` lines of every ``grading.log``), whether the scores agree with stock, and the
machine's load while it ran (timings on a shared machine are noisy: compare within one run).

    .venv/bin/python benchmarks/grading.py                        # 20 and 60, stock and ours
    .venv/bin/python benchmarks/grading.py --quick                # 6 and 12, ours only
    .venv/bin/python benchmarks/grading.py --scheduler tcp://10.0.0.5:8786 --no-stock
    .venv/bin/python benchmarks/grading.py --compare /tmp/old --repeat 2
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
STAGES_RE = re.compile(r"^stages: (.*)$", re.M)


def run(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return took


def build(course: Path, assignment: str, count: int, env: dict) -> list[str]:
    """A course with ``count`` submissions of ``assignment``; returns the student ids."""
    import nbformat

    from autograder.validate import grade_id, load_notebook

    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(ROOT / "source" / assignment, course / "source" / assignment)
    run([str(BIN / "nbgrader"), "generate_assignment", assignment, "--force"], course, env)
    students = []
    for i in range(count):
        sid = f"s{i:03d}"
        students.append(sid)
        dest = course / "submitted" / sid / assignment
        dest.mkdir(parents=True)
        for rel in (course / "release" / assignment).glob("*.ipynb"):
            src = load_notebook(course / "source" / assignment / rel.name)
            if i % 3 == 0:  # the reference solution
                nb = src
            elif i % 3 == 1:  # the blank release
                nb = load_notebook(rel)
            else:  # a partly done release: every other solution cell filled in
                nb = load_notebook(rel)
                sols = {grade_id(c): c.source for c in src.cells if grade_id(c)}
                filled = 0
                for cell in nb.cells:
                    meta = cell.metadata.get("nbgrader", {})
                    if meta.get("solution") and grade_id(cell) in sols:
                        if filled % 2 == 0:
                            cell.source = sols[grade_id(cell)]
                        filled += 1
            nbformat.write(nb, str(dest / rel.name))
    return students


def stock_scores(course: Path, env: dict) -> dict[str, float]:
    out = course / "stock_export.csv"
    run([str(BIN / "nbgrader"), "export", "--to", str(out)], course, env)
    return {r["student_id"]: float(r["score"]) for r in csv.DictReader(out.open())}


def grade_ours(course: Path, assignment: str, label: str, args, env: dict, checkout=None):
    """Seconds for one run of a grader on the course; (seconds, scores, stage means)."""
    out = course / f"ours-{label}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "autograder", "grade", assignment, str(course / "submitted")]
    cmd += ["--course", str(course), "--out", str(out), "--db", str(course / f"{label}.db")]
    cmd += ["--force", "--no-progress"]
    if checkout is None and args.scheduler:
        cmd += ["--scheduler", args.scheduler]
    else:
        cmd += ["--workers", str(args.workers)]
    if checkout is not None:  # the other checkout's packages first on the path
        env = dict(env, PYTHONPATH=str(checkout) + os.pathsep + env.get("PYTHONPATH", ""))
    seconds = run(cmd, course, env)
    slope = in_run_marginal(out, args.workers)
    scores = {
        r["student"]: float(r["score"] or "nan")
        for r in csv.DictReader((out / "grades.csv").open())
    }
    return seconds, scores, stage_means(out), slope


def in_run_marginal(out: Path, workers: int) -> float | None:
    """Seconds between completions once the first batch is done (result.json mtimes)."""
    done = sorted(p.stat().st_mtime for p in out.glob("**/result.json"))
    first = max(1, workers)
    if len(done) <= first + 1:
        return None
    return (done[-1] - done[first - 1]) / (len(done) - first)


def stage_means(out: Path) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for log in out.glob("**/grading.log"):
        found = STAGES_RE.findall(log.read_text(errors="replace"))
        if not found:
            continue
        for part in found[-1].split(", "):
            name, _, value = part.rpartition(" ")[0].rpartition(" ")
            if name:
                sums.setdefault(name, []).append(float(value))
    return {k: statistics.fmean(v) for k, v in sums.items()}


def marginal(times: dict[int, float]) -> float | None:
    sizes = sorted(times)
    if len(sizes) < 2:
        return None
    small, large = sizes[0], sizes[-1]
    return (times[large] - times[small]) / (large - small)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignment", default="01_anatomy")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 60], help="class sizes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--scheduler", help="grade ours on this Dask cluster")
    parser.add_argument("--compare", type=Path, help="also time the grader of this checkout")
    parser.add_argument("--repeat", type=int, default=1, help="runs of ours per size (median)")
    parser.add_argument("--no-stock", action="store_true", help="skip stock nbgrader (slow)")
    parser.add_argument("--quick", action="store_true", help="sizes 6 and 12, no stock")
    parser.add_argument("--keep", action="store_true", help="keep the temporary courses")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.no_stock = [6, 12], True
    return args


def main() -> int:
    args = parse_args()
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env.setdefault("COURSE_OFFLINE", "1")
    engines = ["ours"] + (["compared"] if args.compare else [])
    where = f"--scheduler {args.scheduler}" if args.scheduler else f"--workers {args.workers}"
    print(f"{args.assignment}, sizes {args.sizes}, {os.cpu_count()} cores, ours with {where}")
    print(f"load average at start: {load()}")
    base = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    times: dict[str, dict[int, float]] = {e: {} for e in ["stock", *engines]}
    stages: dict[str, dict[str, float]] = {}
    slopes: dict[str, list[float]] = {}
    disagree = []
    try:
        for index, size in enumerate(args.sizes):
            course = base / f"class-{size}"
            build(course, args.assignment, size, env)
            if not args.no_stock:
                cmd = [str(BIN / "nbgrader"), "autograde", args.assignment, "--force"]
                times["stock"][size] = run(cmd, course, env)
                print(f"  {size:4d} stock nbgrader autograde: {times['stock'][size]:7.1f} s")
            runs: dict[str, list[float]] = {e: [] for e in engines}
            for rep in range(args.repeat):
                # alternate the order, so that a drift in the machine's load favours neither
                for engine in engines if (rep + index) % 2 == 0 else engines[::-1]:
                    checkout = args.compare if engine == "compared" else None
                    seconds, scores, means, slope = grade_ours(
                        course, args.assignment, engine, args, env, checkout
                    )
                    runs[engine].append(seconds)
                    if slope is not None:
                        slopes.setdefault(engine, []).append(slope)
                    if means:
                        stages[f"{engine} at {size}"] = means
                    within = (
                        f" ({slope:.2f} s per submission after the first batch)" if slope else ""
                    )
                    print(f"  {size:4d} {engine:8s} run {rep + 1}: {seconds:7.1f} s{within}")
                    if not args.no_stock and rep == 0:
                        theirs = stock_scores(course, env)
                        disagree += [
                            f"{engine} {s}: stock {theirs.get(s)} vs {scores.get(s)}"
                            for s in scores
                            if theirs.get(s) != scores.get(s)
                        ]
            for engine in engines:
                times[engine][size] = statistics.median(runs[engine])
            print(f"  load average: {load()}")
        report(args, times, stages, disagree, slopes)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def report(args, times, stages, disagree, slopes) -> None:
    columns = [e for e in times if times[e]]
    print("\nsubmissions  " + "  ".join(f"{c:>9s}" for c in columns) + "   stock/ours")
    for size in args.sizes:
        cells = "  ".join(f"{times[c][size]:8.1f}s" for c in columns)
        ratio = f"{times['stock'][size] / times['ours'][size]:8.2f}x" if times["stock"] else ""
        print(f"{size:11d}  {cells}   {ratio}")
    line = []
    for c in columns:
        m = marginal(times[c])
        if m is not None:
            line.append(f"{c} {m:.3f} s")
    if line:
        print(f"marginal per submission beyond {min(args.sizes)}: " + ", ".join(line))
        if "compared" in times and marginal(times["compared"]):
            ratio = marginal(times["ours"]) / marginal(times["compared"])
            print(f"ours / compared, marginal: {ratio:.2f}")
    if "compared" in times:
        big = max(args.sizes)
        print(f"ours / compared at {big}: {times['ours'][big] / times['compared'][big]:.2f}")
    for engine, values in slopes.items():
        print(
            f"{engine}: seconds between completions after the first batch, median over runs: "
            f"{statistics.median(values):.3f}"
        )
    for label, means in stages.items():
        print(
            f"stages, mean per submission, {label}: "
            + ", ".join(
                f"{k} {v:.0f}" if k == "round trips" else f"{k} {v:.2f} s" for k, v in means.items()
            )
        )
    if not args.no_stock:
        print(
            "scores agree with stock" if not disagree else "DISAGREE:\n  " + "\n  ".join(disagree)
        )
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    sys.exit(main())
