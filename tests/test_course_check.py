"""Every solution passes every visible and hidden test; every stub fails its tests.

This is what `make demo` prints as a table; here each notebook is its own test case.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, notebook_id, source_notebooks

from autograder.check import check_notebook


@pytest.mark.parametrize("source", source_notebooks(), ids=notebook_id)
def test_solution_passes_and_stub_fails(source):
    assignment = source.parent.name
    result = check_notebook(assignment, source, ROOT / "release" / assignment / source.name)
    print(f"{assignment}/{source.name}: {result.graded_cells} graded cells, {result.seconds:.1f}s")
    assert not result.problems, "\n".join(result.problems)
