"""Reading nbgrader notebooks and running them the way stock nbgrader would judge them.

Used by `python -m autograder check` (solutions must pass, stubs must fail) and by the tests that
feed a wrong solution into a source notebook and expect a hidden test to catch it. This runs the
test cells in the notebook's own kernel, like `nbgrader validate`; the trusted grader does not.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.course import ignore_pattern, skip_tag

KERNEL_NAME = "python3"


@dataclass
class TestOutcome:
    """How one grade cell fared in an executed notebook (nbgrader's rules)."""

    grade_id: str
    passed: bool
    points: float  # awarded
    max_points: float
    error: str | None  # "Ename: evalue" plus what the cell printed, when it failed


def nbgrader_meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell: NotebookNode) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell: NotebookNode) -> bool:
    """A graded code cell that is not an answer: the cells that hold visible and hidden tests."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_solution_cell(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_grade_cell(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def load(path: str | Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def replace_cells(nb: NotebookNode, replace: dict[str, str]) -> NotebookNode:
    """A copy of ``nb`` with the cells named by grade_id given new sources."""
    new = copy.deepcopy(nb)
    missing = set(replace)
    for cell in new.cells:
        gid = grade_id(cell)
        if gid in replace:
            cell.source = replace[gid]
            missing.discard(gid)
    if missing:
        raise KeyError(f"no cell with grade_id {sorted(missing)} in the notebook")
    return new


def truncate_after(nb: NotebookNode, last_grade_id: str) -> NotebookNode:
    """A copy of ``nb`` that ends with the cell whose grade_id is ``last_grade_id``."""
    for index, cell in enumerate(nb.cells):
        if grade_id(cell) == last_grade_id:
            new = copy.deepcopy(nb)
            new.cells = new.cells[: index + 1]
            return new
    raise KeyError(f"no cell with grade_id {last_grade_id!r} in the notebook")


def execute(nb: NotebookNode, cwd: str | Path, timeout: int = 120) -> NotebookNode:
    """Run every cell of a copy of ``nb`` in a fresh kernel, continuing past errors."""
    from nbclient import NotebookClient

    executed = copy.deepcopy(nb)
    client = NotebookClient(
        executed,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        allow_errors=True,
        skip_cells_with_tag=skip_tag(),
        # The kernel's own notices (e.g. about its TCP transport) are noise in a check's output.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute()
    return executed


def _drop_ignored_stderr(cell: NotebookNode, pattern: str) -> None:
    # The same rule as nbgrader's IgnorePattern preprocessor with our configured pattern.
    cell.outputs = [
        out
        for out in cell.get("outputs", [])
        if not (
            out.output_type == "stream"
            and out.name == "stderr"
            and pattern
            and re.search(pattern, out.text)
        )
    ]


def _cell_text(cell: NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts).strip()


def outcomes(executed: NotebookNode) -> dict[str, TestOutcome]:
    """Per test cell of an executed notebook: passed or not, judged as nbgrader judges it."""
    from nbgrader.utils import determine_grade

    pattern = ignore_pattern()
    result: dict[str, TestOutcome] = {}
    for cell in executed.cells:
        if not is_test_cell(cell):
            continue
        cell = copy.deepcopy(cell)
        _drop_ignored_stderr(cell, pattern)
        points, max_points = determine_grade(cell)
        points = float(points or 0.0)
        passed = points == max_points
        result[grade_id(cell)] = TestOutcome(
            grade_id=grade_id(cell),
            passed=passed,
            points=points,
            max_points=float(max_points),
            error=None if passed else (_cell_text(cell) or "cell wrote to stderr"),
        )
    return result


def run_notebook_file(
    path: str | Path,
    replace: dict[str, str] | None = None,
    stop_after: str | None = None,
    timeout: int = 120,
) -> dict[str, TestOutcome]:
    """Execute the notebook at ``path`` (cwd = its folder) and return each test cell's outcome.

    replace: grade_id -> new source, e.g. a wrong solution a hidden test must catch.
    stop_after: grade_id of the last cell to run, to keep a targeted run short.
    """
    path = Path(path)
    nb = load(path)
    if replace:
        nb = replace_cells(nb, replace)
    if stop_after:
        nb = truncate_after(nb, stop_after)
    return outcomes(execute(nb, path.parent, timeout=timeout))


def solution_source(path: str | Path, gid: str) -> str:
    """The source of the cell named ``gid`` in the notebook at ``path``."""
    for cell in load(path).cells:
        if grade_id(cell) == gid:
            return cell.source
    raise KeyError(f"no cell with grade_id {gid!r} in {path}")


def edited_solution(path: str | Path, gid: str, old: str, new: str) -> dict[str, str]:
    """``{gid: source}`` with ``old`` replaced by ``new``: a wrong solution for a replace= run.

    ``old`` must occur, so a reworded reference solution fails loudly instead of silently
    testing the reference itself.
    """
    source = solution_source(path, gid)
    if old not in source:
        raise AssertionError(f"the reference solution of {gid} no longer contains {old!r}")
    return {gid: source.replace(old, new)}


def stub_source(source: str) -> str:
    """What nbgrader's ClearSolutions makes of a solution cell's source (our code stub)."""
    return re.sub(
        r"( *)### BEGIN SOLUTION.*?### END SOLUTION",
        lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()",
        source,
        flags=re.S,
    )


def failing(results: dict[str, TestOutcome]) -> set[str]:
    """The grade_ids of the test cells that did not pass."""
    return {gid for gid, outcome in results.items() if not outcome.passed}


def numpy_only_namespace(path: str | Path) -> dict:
    """Execute the notebook's ``numpy-only`` solution cells, in order, in a fresh namespace.

    The caller decides what is importable (e.g. blocks torch) to prove the solutions need none.
    """
    namespace: dict = {}
    for cell in load(path).cells:
        if "numpy-only" in cell.metadata.get("tags", []):
            exec(compile(cell.source, grade_id(cell) or "<cell>", "exec"), namespace)  # noqa: S102
    return namespace
