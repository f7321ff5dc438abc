"""The instructor path: `make formgrader` serves the course with nbgrader's formgrader working.

The server is started the way `make formgrader` starts it (JupyterLab from the course root,
``--notebook-dir=.``), on a temporary copy of the course (source/, release/,
nbgrader_config.py), with the test's additions from tests/lab_server.py (no token, free port).
The checks: the server answers, nbgrader's server extensions are loaded with our
nbgrader_config.py (not "No nbgrader_config.py file found"), formgrader's pages render, and its
JSON API lists exactly the course's assignments with their source notebooks. Before the server
starts, a class (a Canvas-style zip) is graded with `python -m autograder grade`; formgrader must
show the scores our grader wrote into nbgrader's gradebook.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from lab_server import running_lab

from autograder.course import assignments as course_assignments

ROOT = Path(__file__).resolve().parent.parent
# module fixtures (a bundle, a server) are built once: keep the module on one xdist worker
pytestmark = pytest.mark.xdist_group("formgrader")


ASSIGNMENT, NOTEBOOK = "01_anatomy", "anatomy"
# The class: one reference answer and one answer that gets conv2d_param_count wrong (it loses
# that function's visible and hidden tests).
STUDENTS = {"alice": "reference", "bob": "wrong"}
WRONG_ID = "conv2d_param_count"
WRONG_LOSES = ("test_param_count_seeds", "test_param_count_sweep")


def lms_zip(path: Path, tmp: Path) -> Path:
    """A Canvas-style zip of the class's notebooks: <student>_<id>_<id>_<file>."""
    import nbformat
    from student_notebooks import answer_stub, filled, release_copy, source_notebook

    blank = nbformat.read(release_copy(ASSIGNMENT, tmp) / f"{NOTEBOOK}.ipynb", as_version=4)
    src = source_notebook(ASSIGNMENT, NOTEBOOK)
    answers = {
        "reference": filled(blank, src),
        "wrong": filled(blank, src, {WRONG_ID: answer_stub(blank, WRONG_ID, "return 0\n")}),
    }
    with zipfile.ZipFile(path, "w") as zf:
        for i, (student, kind) in enumerate(sorted(STUDENTS.items())):
            name = f"{student}_{100 + i}_{200 + i}_{NOTEBOOK}.ipynb"
            zf.writestr(name, nbformat.writes(answers[kind]))
    return path


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A copy of the course root as an instructor has it (source/, release/, nbgrader_config.py)
    after grading a class's LMS zip with `python -m autograder grade`."""
    root = tmp_path_factory.mktemp("course")
    ignore = shutil.ignore_patterns(".hypothesis", ".ipynb_checkpoints", "__pycache__")
    shutil.copytree(ROOT / "source", root / "source", ignore=ignore)
    if (ROOT / "release").is_dir():
        shutil.copytree(ROOT / "release", root / "release", ignore=ignore)
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    zipped = lms_zip(
        tmp_path_factory.mktemp("lms") / "submissions.zip", tmp_path_factory.mktemp("r")
    )
    cmd = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(zipped)]
    proc = subprocess.run(
        [*cmd, "--course", str(root), "--workers", "1", "--no-progress"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(proc.stdout, proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def formgrader(course, tmp_path_factory):
    # `make formgrader`: jupyter lab --notebook-dir=. from the course root.
    with running_lab(course, tmp_path_factory.mktemp("fg_state"), cwd=course) as server:
        yield server


def test_makefile_formgrader_target_is_what_the_test_starts():
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^formgrader:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert target, "the Makefile has no formgrader target"
    recipe = target.group(1)
    assert "jupyter lab" in recipe and "--notebook-dir=." in recipe, recipe
    assert "--ServerApp.ip=127.0.0.1" in recipe, "formgrader must listen on loopback only"


def test_server_answers_and_nbgrader_extensions_are_loaded(formgrader):
    status = formgrader.get_json("api/status")
    assert "started" in status
    log = formgrader.log_path.read_text(errors="replace")
    for ext in ("formgrader", "assignment_list", "validate_assignment", "course_list"):
        assert f"nbgrader.server_extensions.{ext} | extension was successfully loaded" in log, ext
    assert "No nbgrader_config.py file found" not in log, formgrader.log_tail()
    assert "not a subdirectory of the notebook server root" not in log


def test_formgrader_pages_render(formgrader):
    # /formgrader sends the instructor on to "Manage Assignments".
    status, _, _ = formgrader.get("formgrader")
    assert status == 302, status
    status, ctype, body = formgrader.get("formgrader/manage_assignments")
    assert status == 200 and "text/html" in ctype, (status, body[:300])
    assert "Manage Assignments" in body, body[:500]
    status, ctype, body = formgrader.get("formgrader/gradebook")
    assert status == 200 and "text/html" in ctype, (status, body[:300])


def test_formgrader_api_lists_the_course_assignments(formgrader, course):
    assert formgrader.get_json("formgrader/api/status") == {"status": True}
    listed = formgrader.get_json("formgrader/api/assignments")
    names = sorted(a["name"] for a in listed)
    expected = course_assignments(course)
    assert expected, "the course has no assignment"
    assert names == expected
    for assignment in listed:
        assert Path(assignment["source_path"]).parts[-2:] == ("source", assignment["name"])
        notebooks = formgrader.get_json(f"formgrader/api/notebooks/{assignment['name']}")
        assert isinstance(notebooks, list)
    print("formgrader lists:", ", ".join(names))


def test_formgrader_shows_the_grades_our_grader_recorded(formgrader):
    from student_notebooks import source_notebook

    from autograder.notebooks import grade_id, is_test_cell

    points = {
        grade_id(c): float(c.metadata.nbgrader["points"])
        for c in source_notebook(ASSIGNMENT, NOTEBOOK).cells
        if is_test_cell(c)
    }
    total = sum(points.values())
    expected = {"alice": total, "bob": total - sum(points[g] for g in WRONG_LOSES)}
    subs = formgrader.get_json(f"formgrader/api/submissions/{ASSIGNMENT}")
    shown = {s["student"]: (s["score"], s["max_score"], s["autograded"]) for s in subs}
    assert shown == {sid: (score, total, True) for sid, score in expected.items()}
    students = {s["id"]: s["score"] for s in formgrader.get_json("formgrader/api/students")}
    assert students == expected
    print("formgrader shows:", shown)
