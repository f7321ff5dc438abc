"""Wall time: stock `nbgrader autograde` vs our `python -m autograder grade`, same submissions.

Builds a temporary course (a copy of source/ for the chosen assignments and the course's
nbgrader_config.py), releases it with nbgrader, and makes N submissions per assignment (whole
notebooks: alternately the reference solution, the blank release and a release with some
solutions filled in). Then, timed:

- stock: ``nbgrader autograde ASSIGNMENT --force`` (one submission at a time, in each student's
  own kernel), gradebook ``gradebook.db``;
- ours:  ``python -m autograder grade ASSIGNMENT submitted/ --workers W --force`` (sandbox on:
  isolation whenever run as root), its own gradebook.

Prints per-submission scores from both (they should agree for honest submissions) and the ratio.

    .venv/bin/python benchmarks/grading.py                      # 01_anatomy, 20 submissions
    .venv/bin/python benchmarks/grading.py --assignments 01_anatomy 02_all_ones --per-assignment 10
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-5000:], file=sys.stderr)
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return took


def build(course: Path, assignments: list[str], per: int, env: dict) -> dict[str, list[str]]:
    import nbformat

    from autograder.validate import grade_id, load_notebook

    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    students: dict[str, list[str]] = {}
    for a in assignments:
        shutil.copytree(ROOT / "source" / a, course / "source" / a)
        run(
            [str(Path(sys.executable).parent / "nbgrader"), "generate_assignment", a, "--force"],
            course,
            env,
        )
        students[a] = []
        for i in range(per):
            sid = f"{a}_s{i:02d}"
            students[a].append(sid)
            dest = course / "submitted" / sid / a
            dest.mkdir(parents=True)
            for rel in (course / "release" / a).glob("*.ipynb"):
                src = load_notebook(course / "source" / a / rel.name)
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


def stock_scores(course: Path, env: dict, students: dict[str, list[str]]) -> dict[str, float]:
    """Scores from `nbgrader export` (it lists every student for every assignment)."""
    out = course / "stock_export.csv"
    run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", str(out)], course, env)
    return {
        r["student_id"]: float(r["score"])
        for r in csv.DictReader(out.open())
        if r["student_id"] in students.get(r["assignment"], [])
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assignments", nargs="+", default=["01_anatomy"])
    parser.add_argument("--per-assignment", type=int, default=20, help="submissions each")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary course")
    args = parser.parse_args()

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("COURSE_OFFLINE", "1")
    course = Path(tempfile.mkdtemp(prefix="grading-bench-"))
    try:
        students = build(course, args.assignments, args.per_assignment, env)
        n = sum(len(v) for v in students.values())
        print(
            f"{n} submissions ({', '.join(args.assignments)}), {os.cpu_count()} cores, "
            f"ours with --workers {args.workers}"
        )

        stock = 0.0
        for a in args.assignments:
            t = run(
                [str(Path(sys.executable).parent / "nbgrader"), "autograde", a, "--force"],
                course,
                env,
            )
            print(f"stock nbgrader autograde {a}: {t:.1f} s")
            stock += t

        ours = 0.0
        ours_scores: dict[str, float] = {}
        for a in args.assignments:
            out = course / "ours" / a
            t = run(
                [
                    sys.executable,
                    "-m",
                    "autograder",
                    "grade",
                    a,
                    str(course / "submitted"),
                    "--course",
                    str(course),
                    "--out",
                    str(out),
                    "--db",
                    str(course / "ours.db"),
                    "--workers",
                    str(args.workers),
                    "--force",
                    "--no-progress",
                ],
                course,
                env,
            )
            print(f"ours (python -m autograder grade) {a}: {t:.1f} s")
            ours += t
            for r in csv.DictReader((out / "grades.csv").open()):
                if r["student"] in students[a]:
                    ours_scores[r["student"]] = float(r["score"] or "nan")

        theirs = stock_scores(course, env, students)
        agree = sum(theirs.get(s) == ours_scores.get(s) for s in ours_scores)
        print(f"\nscores agree on {agree}/{len(ours_scores)} submissions")
        for s in sorted(ours_scores):
            if theirs.get(s) != ours_scores.get(s):
                print(f"  {s}: stock {theirs.get(s)} vs ours {ours_scores.get(s)}")
        print(
            f"\nstock nbgrader: {stock:.1f} s   ours: {ours:.1f} s   "
            f"ratio stock/ours = {stock / ours:.2f}x  ({n} submissions)"
        )
    finally:
        if args.keep:
            print(f"kept {course}")
        else:
            shutil.rmtree(course, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
