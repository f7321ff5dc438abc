"""The committed release/ is exactly what nbgrader generates from source/ today."""

from __future__ import annotations

import pytest
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.course import assignments
from autograder.release import release


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    release(None, out)
    return out


def _cells(path):
    return [(c.cell_type, c.source, nbs.nbgrader_meta(c)) for c in nbs.load(path).cells]


def test_release_holds_exactly_the_source_assignments():
    released = sorted(p.name for p in (ROOT / "release").iterdir() if p.is_dir())
    assert released == assignments(), "release/ is stale: run `make release` and commit it"


@pytest.mark.parametrize("assignment", assignments())
def test_committed_release_matches_regenerated(regenerated, assignment):
    fresh = sorted(p.name for p in (regenerated / assignment).glob("*.ipynb"))
    committed = sorted(p.name for p in (ROOT / "release" / assignment).glob("*.ipynb"))
    assert committed == fresh, f"release/{assignment}: notebooks differ; run `make release`"
    for name in fresh:
        for index, (got, want) in enumerate(
            zip(
                _cells(ROOT / "release" / assignment / name),
                _cells(regenerated / assignment / name),
                strict=True,
            )
        ):
            assert got == want, (
                f"release/{assignment}/{name} cell {index} differs from a fresh "
                "`nbgrader generate_assignment`; run `make release` and commit release/"
            )


@pytest.mark.parametrize("assignment", assignments())
def test_release_reveals_no_solution_or_hidden_test(assignment):
    for path in (ROOT / "release" / assignment).glob("*.ipynb"):
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in text, f"{path} contains {marker!r}"
