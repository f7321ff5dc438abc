"""The Gradescope bundle: built by `python -m autograder gradescope`, run as Gradescope runs it.

The bundle is unpacked into a temporary root laid out like Gradescope's container
(``source/`` = the unzipped bundle, ``submission/`` = the student's upload, ``results/``), and its
``run_autograder`` grades a reference submission, a wrong one and an empty one. results.json is
checked against Gradescope's format and against the points the source notebook gives. The test
uses this venv's Python (AUTOGRADER_PYTHON) instead of running setup.sh's installs, but checks
that setup.sh parses and honours AUTOGRADER_SKIP_SETUP.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from student_notebooks import answer_stub, filled, release_copy
from student_notebooks import source_notebook as _source_notebook

from autograder.notebooks import grade_id, is_test_cell

ROOT = Path(__file__).resolve().parent.parent
# module fixtures (a bundle, a server) are built once: keep the module on one xdist worker
pytestmark = pytest.mark.xdist_group("gradescope")
ASSIGNMENT = "01_anatomy"
NOTEBOOK = "anatomy"
# Wrong on purpose, typed into the stub: ignores groups. Fails the visible and the hidden
# parameter-count tests.
WRONG_GRADE_ID = "conv2d_param_count"
WRONG_BODY = """
if isinstance(kernel_size, (tuple, list)):
    kh, kw = kernel_size
else:
    kh = kw = kernel_size
return out_channels * in_channels * kh * kw + (out_channels if bias else 0)
"""
WRONG_FAILS = {"test_param_count_seeds", "test_param_count_sweep"}
GRADE_TIMEOUT = 600


def source_notebook():
    return _source_notebook(ASSIGNMENT, NOTEBOOK)


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    """The student's notebook as released (stubs, no hidden tests)."""
    folder = release_copy(ASSIGNMENT, tmp_path_factory.mktemp("release"))
    return nbformat.read(folder / f"{NOTEBOOK}.ipynb", as_version=4)


def expected_tests() -> dict[str, tuple[float, bool]]:
    """grade_id -> (points, hidden) of every test cell in the source notebook."""
    return {
        grade_id(c): (float(c.metadata.nbgrader["points"]), "### BEGIN HIDDEN TESTS" in c.source)
        for c in source_notebook().cells
        if is_test_cell(c)
    }


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / f"{ASSIGNMENT}.zip"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "gradescope", ASSIGNMENT, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    return out


def unpack(bundle: Path, root: Path) -> Path:
    """Unzip into root/source keeping the executable bits, as Gradescope does."""
    src = root / "source"
    with zipfile.ZipFile(bundle) as zf:
        for info in zf.infolist():
            path = zf.extract(info, src)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(path, mode)
    return src


def gradescope_root(bundle: Path, root: Path, files: dict[str, str]) -> Path:
    """/autograder as Gradescope lays it out: source/, submission/, results/, metadata."""
    unpack(bundle, root)
    (root / "submission").mkdir()
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    (root / "results").mkdir()
    meta = {"id": 1, "users": [{"email": "student@example.org", "name": "A Student", "sid": "1"}]}
    (root / "submission_metadata.json").write_text(json.dumps(meta))
    return root


def run_autograder(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    proc = subprocess.run(
        [str(root / "source" / "run_autograder")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=GRADE_TIMEOUT,
    )
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def check_format(results: dict) -> None:
    """Gradescope's results.json: score, max_score, tests with name/score/max_score/output/..."""
    assert isinstance(results["score"], (int, float))
    assert isinstance(results["max_score"], (int, float))
    assert results.get("stdout_visibility") == "hidden"
    assert isinstance(results.get("execution_time"), (int, float))
    for t in results["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(t), t
        assert isinstance(t["name"], str) and isinstance(t["output"], str)
        assert 0 <= t["score"] <= t["max_score"]
        assert t["visibility"] in ("visible", "hidden", "after_due_date", "after_published")


def by_grade_id(results: dict) -> dict[str, dict]:
    # names are "<notebook>: <grade_id>"
    out = {}
    for t in results["tests"]:
        notebook, _, gid = t["name"].partition(": ")
        assert notebook == NOTEBOOK, t["name"]
        out[gid] = t
    return out


# ------------------------------------------------------------------ the bundle itself


def test_bundle_holds_what_gradescope_and_the_grader_need(bundle):
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        manifest = json.loads(zf.read("gradescope.json"))
    for required in (
        "setup.sh",
        "run_autograder",
        "pyproject.toml",
        "README.md",
        "nbgrader_config.py",
        "course/__init__.py",
        "course/checks/core.py",
        "autograder/grade.py",
        "autograder/gradescope.py",
        f"source/{ASSIGNMENT}/{NOTEBOOK}.ipynb",
    ):
        assert required in names, f"{required} missing from the bundle"
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111, "scripts not executable"
    assert manifest == {"assignment": ASSIGNMENT, "notebooks": [NOTEBOOK]}
    other = {n.split("/")[1] for n in names if n.startswith("source/")} - {ASSIGNMENT}
    assert not other, f"other assignments leaked into the bundle: {other}"
    junk = [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "gradebook" in n]
    assert not junk, junk
    assert not any(n.startswith(("release/", "submitted/", "autograded/")) for n in names)


def test_setup_sh_parses_and_can_be_skipped(bundle, tmp_path):
    src = unpack(bundle, tmp_path)
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(src / script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"
    proc = subprocess.run(
        [str(src / "setup.sh")],
        env=dict(os.environ, AUTOGRADER_ROOT=str(tmp_path), AUTOGRADER_SKIP_SETUP="1"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0 and "nothing installed" in proc.stdout, proc.stderr


# ------------------------------------------------------------------ round trips


def test_reference_submission_gets_full_marks(bundle, blank, tmp_path):
    reference = nbformat.writes(filled(blank, source_notebook()))
    root = gradescope_root(bundle, tmp_path / "autograder", {f"{NOTEBOOK}.ipynb": reference})
    proc = run_autograder(root)
    assert proc.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    check_format(results)
    expected = expected_tests()
    total = sum(points for points, _ in expected.values())
    assert results["max_score"] == total
    assert results["score"] == total, [t for t in results["tests"] if t["score"] < t["max_score"]]
    tests = by_grade_id(results)
    assert set(tests) == set(expected)
    for gid, (points, hidden) in expected.items():
        assert tests[gid]["max_score"] == points
        assert tests[gid]["visibility"] == ("after_published" if hidden else "visible"), gid
    assert any(hidden for _, hidden in expected.values()), "the notebook has no hidden test"
    assert "output" not in results, results.get("output")  # no validation notes for a clean one


def test_wrong_submission_loses_exactly_the_failing_tests(bundle, blank, tmp_path):
    answer = answer_stub(blank, WRONG_GRADE_ID, WRONG_BODY)
    wrong = filled(blank, source_notebook(), {WRONG_GRADE_ID: answer})
    files = {f"{NOTEBOOK}.ipynb": nbformat.writes(wrong)}
    root = gradescope_root(bundle, tmp_path / "autograder", files)
    proc = run_autograder(root)
    assert proc.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    check_format(results)
    expected = expected_tests()
    tests = by_grade_id(results)
    failed = {gid for gid, t in tests.items() if t["score"] < t["max_score"]}
    assert failed == WRONG_FAILS
    lost = sum(expected[gid][0] for gid in WRONG_FAILS)
    assert results["score"] == sum(p for p, _ in expected.values()) - lost
    message = tests["test_param_count_seeds"]["output"]
    assert "conv2d_param_count fails for" in message, message
    print("the student reads:", message)


def test_empty_submission_is_ungradable_not_an_error(bundle, tmp_path):
    root = gradescope_root(bundle, tmp_path / "autograder", {"notes.txt": "forgot the notebook"})
    proc = run_autograder(root)
    assert proc.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    check_format(results)
    assert results["score"] == 0
    assert results["max_score"] == sum(p for p, _ in expected_tests().values())
    assert "ungradable" in results.get("output", "").lower() or all(
        t["score"] == 0 and t["output"] for t in results["tests"]
    ), results


def test_results_json_is_not_written_when_the_grader_itself_fails(bundle, tmp_path):
    # Our failure (here: the bundle lost its source notebook) must not become a zero.
    root = gradescope_root(bundle, tmp_path / "autograder", {f"{NOTEBOOK}.ipynb": "{}"})
    (root / "source" / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").unlink()
    proc = run_autograder(root)
    assert proc.returncode != 0
    assert not (root / "results" / "results.json").exists()


def test_unpacked_scripts_are_executable(bundle, tmp_path):
    src = unpack(bundle, tmp_path)
    for script in ("setup.sh", "run_autograder"):
        assert os.stat(src / script).st_mode & stat.S_IXUSR
        assert (src / script).read_text().startswith("#!/usr/bin/env bash\n")
