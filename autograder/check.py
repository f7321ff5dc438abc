"""Prove the course works: every solution passes every test, every stub fails its tests.

For each assignment, each source notebook is run top to bottom (its test cells, visible and
hidden, must all pass) and its release notebook is run too (each test cell must fail: a test the
blank notebook passes gives free points). Judged with nbgrader's own grading rule.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder import notebooks as nbs
from autograder.course import course_root, notebooks, resolve_assignments


@dataclass
class NotebookCheck:
    assignment: str
    notebook: str
    graded_cells: int
    points: float
    seconds: float
    problems: list[str] = field(default_factory=list)


def _grade_cell_totals(path: Path) -> tuple[int, float]:
    cells = [c for c in nbs.load(path).cells if nbs.is_grade_cell(c)]
    return len(cells), sum(float(nbs.nbgrader_meta(c).get("points", 0)) for c in cells)


def check_notebook(assignment: str, source: Path, release: Path) -> NotebookCheck:
    """Run the solution and the stub version of one notebook and list what is wrong."""
    started = time.perf_counter()
    graded, points = _grade_cell_totals(source)
    result = NotebookCheck(assignment, source.stem, graded, points, 0.0)
    for gid, outcome in nbs.run_notebook_file(source).items():
        if not outcome.passed:
            result.problems.append(f"solution fails {gid}: {outcome.error}")
    if not release.exists():
        result.problems.append(f"no release notebook {release} (run make release)")
    else:
        for gid, outcome in nbs.run_notebook_file(release).items():
            if outcome.passed:
                result.problems.append(f"stub passes {gid}: the blank notebook earns its points")
    result.seconds = time.perf_counter() - started
    return result


def check(names: list[str] | None = None, workers: int = 2) -> list[NotebookCheck]:
    """Check the given assignments (all by default), ``workers`` notebooks at a time."""
    root = course_root()
    jobs = [
        (assignment, source, root / "release" / assignment / source.name)
        for assignment in resolve_assignments(names, root)
        for source in notebooks(assignment, root)
    ]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(check_notebook, *zip(*jobs, strict=True))) if jobs else []


def table(results: list[NotebookCheck]) -> str:
    """The summary `make demo` prints: one row per assignment."""
    rows = [("assignment", "notebooks", "graded cells", "points", "time (s)", "status")]
    by_assignment: dict[str, list[NotebookCheck]] = {}
    for r in results:
        by_assignment.setdefault(r.assignment, []).append(r)
    for assignment, checks in by_assignment.items():
        problems = sum(len(c.problems) for c in checks)
        rows.append(
            (
                assignment,
                str(len(checks)),
                str(sum(c.graded_cells for c in checks)),
                f"{sum(c.points for c in checks):g}",
                f"{sum(c.seconds for c in checks):.1f}",
                "ok" if not problems else f"{problems} problem(s)",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(names: list[str] | None = None, workers: int = 2) -> int:
    results = check(names, workers)
    print(table(results))
    failures = [(r, p) for r in results for p in r.problems]
    for r, problem in failures:
        print(f"{r.assignment}/{r.notebook}: {problem}")
    if not results:
        print("no assignments found under source/")
        return 1
    return 1 if failures else 0
