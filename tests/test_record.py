"""Record: gradebook (idempotent, nbgrader-readable), grades.csv, feedback HTML, Gradescope JSON."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from grading_fixtures import ASSIGNMENT, NOTEBOOK, TOTAL, cli_env, make_course, source_notebook

from autograder import record
from autograder.results import NotebookResult, SubmissionResult
from autograder.results import TestResult as TR

SECRET = "assert add(-1, 1) == 0"  # a hidden test line: must never reach a student-facing file


def result(student: str, add_ok=True, mul_ok=True, status="graded", reason="") -> SubmissionResult:
    tests = [
        TR(
            "test_add",
            2.0 if add_ok else 0.0,
            2.0,
            add_ok,
            "ok: add" if add_ok else "AssertionError",
        ),
        TR(
            "test_add_hidden",
            3.0 if add_ok else 0.0,
            3.0,
            add_ok,
            "" if add_ok else "AssertionError: add(-1, 1) gave 5, expected 0",
            hidden=True,
        ),
        TR("test_mul", 5.0 if mul_ok else 0.0, 5.0, mul_ok, "" if mul_ok else "NameError"),
    ]
    nbs = [
        NotebookResult(
            NOTEBOOK, tests, notes=["test cell 'test_mul' was edited: the original was used"]
        )
    ]
    if status != "graded":
        nbs = []
    return SubmissionResult(student, ASSIGNMENT, status, reason, nbs, max_score_expected=TOTAL)


def grades(db_url: str) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, float]] = {}
    with Gradebook(db_url, course_id="testcourse") as gb:
        subs = gb.assignment_submissions(ASSIGNMENT)
        for sub in subs:
            out.setdefault(sub.student.id, {})
            for nb in sub.notebooks:
                for g in nb.grades:
                    out[sub.student.id][g.name] = g.auto_score
        assert len({s.student.id for s in subs}) == len(subs)  # no duplicate submissions
    return out


def test_gradebook_records_scores_idempotently(tmp_path):
    db = "sqlite:///" + str(tmp_path / "gradebook.db")
    src = {NOTEBOOK: source_notebook()}
    record.prepare_gradebook(db, "testcourse", ASSIGNMENT, src)
    record.record_submission(db, "testcourse", result("alice"))
    record.record_submission(db, "testcourse", result("bob", add_ok=False))
    record.record_submission(db, "testcourse", result("carol", status="ungradable", reason="empty"))
    record.record_submission(db, "testcourse", result("dave", status=record.INFRA, reason="killed"))
    late = result("erin")
    late.timestamp = "2026-11-20 10:00:00"
    record.record_submission(db, "testcourse", late)
    # a rerun records the same again and re-prepares the assignment: no duplicates, same scores
    record.prepare_gradebook(db, "testcourse", ASSIGNMENT, src)
    record.record_submission(db, "testcourse", result("bob", add_ok=False))
    g = grades(db)
    assert g == {
        "alice": {"test_add": 2.0, "test_add_hidden": 3.0, "test_mul": 5.0},
        "bob": {"test_add": 0.0, "test_add_hidden": 0.0, "test_mul": 5.0},
        "carol": {"test_add": 0.0, "test_add_hidden": 0.0, "test_mul": 0.0},
        "erin": {"test_add": 2.0, "test_add_hidden": 3.0, "test_mul": 5.0},
    }  # dave (infrastructure failure) is not recorded at all, in particular not as a zero
    from nbgrader.api import Gradebook

    with Gradebook(db, course_id="testcourse") as gb:
        assert str(gb.find_submission(ASSIGNMENT, "erin").timestamp) == "2026-11-20 10:00:00"


def test_nbgrader_export_reads_our_gradebook(tmp_path):
    root = make_course(tmp_path / "course")
    db = "sqlite:///" + str(root / "gradebook.db")
    record.prepare_gradebook(db, "testcourse", ASSIGNMENT, {NOTEBOOK: source_notebook()})
    record.record_submission(db, "testcourse", result("alice"))
    record.record_submission(db, "testcourse", result("bob", mul_ok=False))
    out = tmp_path / "export.csv"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), "export", "--to", str(out)],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert {k: float(v["score"]) for k, v in rows.items()} == {"alice": 10.0, "bob": 5.0}
    assert all(float(r["max_score"]) == TOTAL for r in rows.values())


def test_grades_csv_rows_for_every_status(tmp_path):
    path = tmp_path / "grades.csv"
    rows = [
        result("bob", add_ok=False),
        result("alice"),
        result("carol", status="ungradable", reason="ex.ipynb is an empty file"),
        result("dave", status=record.INFRA, reason="worker failed (killed by signal 9)"),
    ]
    record.write_grades_csv(path, rows, [NOTEBOOK])
    got = list(csv.DictReader(path.open()))
    assert [r["student"] for r in got] == ["alice", "bob", "carol", "dave"]
    assert [r["score"] for r in got] == ["10", "5", "0", ""]  # infrastructure failure: no zero
    assert got[2]["reason"] == "ungradable: ex.ipynb is an empty file"
    assert got[3]["reason"].startswith("infrastructure failure: worker failed")
    assert all(r["max_score"] == "10" for r in got)
    assert got[1][NOTEBOOK] == "5"
    assert "edited" in got[0]["notes"]


def test_gradescope_json_format(tmp_path):
    data = record.gradescope_json(result("bob", add_ok=False))
    assert data["score"] == 5.0 and data["max_score"] == 10.0
    by_name = {t["name"]: t for t in data["tests"]}
    assert set(by_name) == {
        f"{NOTEBOOK}: test_add",
        f"{NOTEBOOK}: test_add_hidden",
        f"{NOTEBOOK}: test_mul",
    }
    hidden = by_name[f"{NOTEBOOK}: test_add_hidden"]
    assert hidden["visibility"] == "after_published" and hidden["score"] == 0.0
    assert hidden["max_score"] == 3.0
    assert by_name[f"{NOTEBOOK}: test_mul"]["visibility"] == "visible"
    assert "edited" in data["output"]
    json.dumps(data)
    bad = record.gradescope_json(result("carol", status="ungradable", reason="empty file"))
    assert bad["score"] == 0.0 and bad["max_score"] == 10.0 and "empty file" in bad["output"]


def test_feedback_html_never_shows_test_sources(tmp_path):
    import nbformat
    from grading_fixtures import student_notebook

    nb = student_notebook()
    # the executed notebook may hold the source test cells (as the grader ran them)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "test_add_hidden":
            c.source = "assert add(2, 2) == 4\n" + SECRET
        if c.metadata.get("nbgrader", {}).get("grade_id") == "add":
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello <b>\n")]
    exe = tmp_path / "ex.executed.ipynb"
    nbformat.write(nb, str(exe))
    r = result("bob", add_ok=False)
    r.notebooks[0].executed_path = str(exe)
    record.write_student_files(tmp_path / "bob", r)
    page = (tmp_path / "bob" / "feedback.html").read_text()
    assert SECRET not in page and "BEGIN HIDDEN" not in page
    assert "test_add_hidden (hidden test)" in page
    assert "add(-1, 1) gave 5, expected 0" in page  # the failure message is shown
    assert "hello &lt;b&gt;" in page  # student output, escaped
    assert "Score: 5 / 10" in page
    assert json.loads((tmp_path / "bob" / "results.json").read_text())["score"] == 5.0
