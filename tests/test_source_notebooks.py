"""Every instructor notebook is a well-formed nbgrader notebook that keeps the grader's contract.

Static checks only (fast): the course check (`test_course_check.py`) runs the notebooks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from conftest import notebook_id, source_notebooks

from autograder import notebooks as nbs
from autograder.cellnames import defined_names, free_names

NOTEBOOKS = source_notebooks()


def test_the_course_has_assignments():
    assert NOTEBOOKS, "source/ holds no notebooks"


@pytest.fixture(params=NOTEBOOKS, ids=notebook_id)
def notebook(request) -> tuple[Path, nbformat.NotebookNode]:
    return request.param, nbs.load(request.param)


def test_notebook_is_valid_nbformat(notebook):
    path, nb = notebook
    nbformat.validate(nb)


def test_nbgrader_metadata_is_schema_v3_valid(notebook):
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    path, nb = notebook
    MetadataValidatorV3().validate_nb(nb)
    for cell in nb.cells:
        meta = nbs.nbgrader_meta(cell)
        if meta:
            assert meta.get("schema_version") == 3, f"{path}: {meta.get('grade_id')} not schema v3"


def test_grade_ids_are_unique(notebook):
    path, nb = notebook
    ids = [nbs.grade_id(c) for c in nb.cells if nbs.grade_id(c)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"{path}: duplicate grade_ids {duplicates}"


def test_every_grade_cell_has_positive_points(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if nbs.is_grade_cell(cell):
            points = nbs.nbgrader_meta(cell).get("points")
            assert points and float(points) > 0, f"{path}: {nbs.grade_id(cell)} has no points"


def test_notebook_has_graded_tests_and_solutions(notebook):
    path, nb = notebook
    assert any(nbs.is_test_cell(c) for c in nb.cells), f"{path}: no test cells"
    assert any(nbs.is_solution_cell(c) for c in nb.cells), f"{path}: no solution cells"


def _ends_in_valued_expression(source: str) -> bool:
    body = ast.parse(source).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    # A call may return None (print, a check); anything else always has a value that nbgrader
    # would read as partial credit. Calls are caught at run time by the course check.
    return not isinstance(body[-1].value, ast.Call)


def test_no_test_cell_ends_in_a_bare_expression(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if nbs.is_test_cell(cell):
            assert not _ends_in_valued_expression(cell.source), (
                f"{path}: test cell {nbs.grade_id(cell)} ends in an expression; nbgrader would "
                "read its value as partial credit"
            )


def test_outputs_are_stripped(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path}: a code cell has outputs; commit notebooks without outputs"
            )


def test_kernelspec_is_present(notebook):
    path, nb = notebook
    spec = nb.metadata.get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", path


def test_test_cells_use_only_their_imports_and_solution_names(notebook):
    """The trusted grader resolves a test cell's free names from the student's sandbox."""
    path, nb = notebook
    solution_names: set[str] = set()
    for cell in nb.cells:
        if nbs.is_solution_cell(cell) and cell.cell_type == "code":
            solution_names |= defined_names(cell.source)
    for cell in nb.cells:
        if nbs.is_test_cell(cell):
            stray = free_names(cell.source) - solution_names
            assert not stray, (
                f"{path}: test cell {nbs.grade_id(cell)} uses {sorted(stray)}, which neither it "
                "imports/defines nor a solution cell defines"
            )


def test_numpy_only_cells_are_solution_cells(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if "numpy-only" in cell.metadata.get("tags", []):
            assert nbs.is_solution_cell(cell), f"{path}: a numpy-only cell is not a solution cell"


def _functions(source: str, renames: dict[str, str] | None = None) -> dict[str, str]:
    """Top-level function definitions of a cell, by name, as normalized source (ast.unparse)."""
    functions = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            node.name = (renames or {}).get(node.name, node.name)
            functions[node.name] = ast.unparse(node)
    return functions


def test_pasted_cells_hold_the_earlier_solutions_and_are_checked(notebook):
    """Where a notebook builds on an earlier assignment, its paste cell (metadata
    ``course.pasted_from``) holds exactly the earlier solution cells, and the next cell is a
    read-only check that runs the earlier assignment's tests on them."""
    path, nb = notebook
    root = path.parent.parent
    for index, cell in enumerate(nb.cells):
        origin = cell.metadata.get("course", {}).get("pasted_from")
        if not origin:
            continue
        assert nbs.is_solution_cell(cell) and "numpy-only" in cell.metadata.get("tags", [])
        assert "Paste here" in cell.source.split("### BEGIN SOLUTION")[0], "no instructions"
        renames = cell.metadata["course"].get("renamed", {})
        want: dict[str, str] = {}
        for item in origin:
            (earlier,) = (root / item["assignment"]).glob("*.ipynb")
            source = nbs.solution_source(earlier, item["grade_id"])
            source = source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
            want.update(_functions(source, renames))
        got = _functions(
            cell.source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
        )
        assert got == want, f"{path}: {nbs.grade_id(cell)} differs from the earlier solutions"
        check = nb.cells[index + 1]
        meta = nbs.nbgrader_meta(check)
        assert meta.get("locked") and not meta.get("grade"), "the check after a paste is read-only"
        assert "check_" in check.source
