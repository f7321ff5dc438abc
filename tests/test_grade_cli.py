"""`python -m autograder grade`: a class in, grades/feedback/Gradescope JSON out; resumable.

Most tests run the real CLI (as a subprocess, on a real Dask LocalCluster of worker processes)
on a tiny course built in tmp_path, with a stand-in scorer (tests/grading_fixtures.py: exec, no
sandbox) so they are fast; the last tests use the real sandboxed scorer on the tiny course and
on source/01_anatomy. Grading through --scheduler on a separate cluster: test_dask_cluster.py.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dask_cluster import free_port
from grading_fixtures import (
    ADD_OK,
    ASSIGNMENT,
    TOTAL,
    cell_of,
    cli_env,
    make_course,
    make_zip,
    nb_text,
    nbgrader_submission,
    student_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
FAKE = {"AUTOGRADER_TEST_SCORER": "grading_fixtures:fake_grade_notebook"}


def grade(course: Path, subs: Path, *extra: str, env=None, timeout=600):
    cmd = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        ASSIGNMENT,
        str(subs),
        "--course",
        str(course),
    ]
    proc = subprocess.run(
        [*cmd, "--no-progress", *extra],
        env=cli_env(**(FAKE if env is None else env)),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=course,
    )
    print(proc.stdout, proc.stderr[-3000:])
    return proc


def csv_rows(course: Path) -> dict[str, dict]:
    path = course / "autograded" / ASSIGNMENT / "grades.csv"
    return {r["student"]: r for r in csv.DictReader(path.open())}


def gradebook_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "gradebook.db"), course_id="testcourse") as gb:
        subs = gb.assignment_submissions(ASSIGNMENT)
        ids = [s.student.id for s in subs]
        assert len(ids) == len(set(ids)), f"duplicate submissions: {ids}"
        return {s.student.id: s.score for s in subs}


def wrong(body: str) -> str:
    return f"def add(a, b):\n    {body}\n"


CLASS = {
    # student: (zip entry, notebook text, expected score)
    "alice": ("alice.ipynb", nb_text(student_notebook()), 10.0),
    "bob": ("bob/ex.ipynb", nb_text(student_notebook(add=wrong("return 4 if a == b else 3"))), 7.0),
    "carol": ("carol_111_222_ex.ipynb", nb_text(student_notebook(mul=None)), 5.0),  # stub left
    "dave": ("dave/ex.ipynb", "", 0.0),  # empty file
    "erin": ("erin/ex.ipynb", '{"cells": [', 0.0),  # corrupt JSON
    "frank": ("frank/my work (final).ipynb", nb_text(student_notebook()), 10.0),  # renamed
}


def edited_tests(nb):
    cell_of(nb, "test_mul").source = "pass"
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_add"]


CLASS["gina"] = ("gina/ex.ipynb", nb_text(student_notebook(mul=None, edit=edited_tests)), 5.0)


@pytest.fixture
def course(tmp_path):
    return make_course(tmp_path / "course")


def test_zip_of_a_class_gets_exactly_the_honest_scores(course, tmp_path):
    z = make_zip(
        tmp_path / "class.zip",
        {entry: text for entry, text, _ in CLASS.values()} | {"../evil.py": "x"},
    )
    before = z.read_bytes()
    proc = grade(course, z, "--workers", "2")
    assert proc.returncode == 0
    assert z.read_bytes() == before
    rows = csv_rows(course)
    assert set(rows) == set(CLASS)
    for sid, (_, _, expected) in CLASS.items():
        assert float(rows[sid]["score"]) == expected, (sid, rows[sid])
        assert rows[sid]["max_score"] == f"{TOTAL:g}"
    assert rows["dave"]["reason"] == "ungradable: ex.ipynb is an empty file"
    assert rows["erin"]["reason"].startswith("ungradable: ex.ipynb is not a notebook (corrupt JSON")
    assert "matched to ex.ipynb by its content" in rows["frank"]["notes"]
    assert "'test_mul' was edited" in rows["gina"]["notes"]
    assert "'test_add' was deleted" in rows["gina"]["notes"]
    assert "'..'" in proc.stderr  # the refused zip entry is reported
    assert gradebook_scores(course) == {sid: exp for sid, (_, _, exp) in CLASS.items()}
    out = course / "autograded" / ASSIGNMENT
    gs = json.loads((out / "students" / "bob" / "results.json").read_text())
    assert gs["score"] == 7.0 and gs["max_score"] == TOTAL
    hidden = next(t for t in gs["tests"] if t["name"].endswith("test_add_hidden"))
    assert hidden["visibility"] == "after_published" and hidden["score"] == 0.0
    page = (out / "students" / "bob" / "feedback.html").read_text()
    assert "add(-1, 1)" not in page and "Score: 7 / 10" in page
    assert (out / "students" / "bob" / "grading.log").read_text().count("--- done") == 1
    assert "Ungradable" in (out / "students" / "dave" / "feedback.html").read_text()

    # nbgrader's own export reads the gradebook
    export = tmp_path / "export.csv"
    p = subprocess.run(
        [str(Path(sys.executable).parent / "nbgrader"), "export", "--to", str(export)],
        cwd=course,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    exported = {r["student_id"]: float(r["score"]) for r in csv.DictReader(export.open())}
    assert exported == {sid: exp for sid, (_, _, exp) in CLASS.items()}


def autograded_by_formgrader(course: Path) -> set[str]:
    """Who formgrader (nbgrader's API) counts as autograded for the assignment."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    return set(api.get_autograded_students(ASSIGNMENT))


def test_rerun_skips_finished_and_force_regrades(course, tmp_path):
    # the course's own submitted/ folder (nbgrader's exchange), with a timestamp
    subs = course
    nbgrader_submission(subs, "alice", student_notebook())
    nbgrader_submission(subs, "bob", student_notebook(mul=None))
    (course / "submitted" / "bob" / ASSIGNMENT / "timestamp.txt").write_text("2026-11-20 10:00:00")
    assert grade(course, subs).returncode == 0
    assert autograded_by_formgrader(course) == {"alice", "bob"}
    assert (course / "autograded" / "bob" / ASSIGNMENT / "ex.ipynb").is_file()
    out = course / "autograded" / ASSIGNMENT
    proc = grade(course, subs)
    assert "2 submission(s) already graded" in proc.stderr
    assert (out / "students" / "alice" / "grading.log").read_text().count("--- done") == 1
    proc = grade(course, subs, "--force")
    assert (out / "students" / "alice" / "grading.log").read_text().count("--- done") == 2
    assert gradebook_scores(course) == {"alice": 10.0, "bob": 5.0}


def test_killed_worker_is_rerun_then_reported_never_zero(course, tmp_path):
    subs = tmp_path / "subs"
    nbgrader_submission(subs, "alice", student_notebook())
    nbgrader_submission(subs, "bob", student_notebook(mul=None))
    # the stand-in scorer runs student code in the worker: this kills the worker every time
    killer = student_notebook(add="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    nbgrader_submission(subs, "mallory", killer)
    nbgrader_submission(subs, "oscar", student_notebook(add="# SIMULATE_GRADER_BUG\n" + ADD_OK))
    once = tmp_path / "killed-once"
    env = FAKE | {"FAKE_SCORER_KILL_ONCE": str(once)}
    proc = grade(course, subs, "--workers", "2", env=env, timeout=1200)  # 3 worker restarts
    assert once.exists()  # the first attempt of the first submission died by kill -9 ...
    assert proc.returncode == 3
    rows = csv_rows(course)
    # ... and was rerun on a new worker: every innocent submission is graded, once
    assert rows["alice"]["score"] == "10" and rows["bob"]["score"] == "5"
    assert rows["mallory"]["status"] == "infrastructure failure"
    assert rows["mallory"]["score"] == ""  # never a zero
    assert "a grader process died while grading it (tried 2 times" in rows["mallory"]["reason"]
    assert "mallory: infrastructure failure: a grader process died" in proc.stderr
    assert rows["oscar"]["status"] == "infrastructure failure" and rows["oscar"]["score"] == ""
    assert "simulated failure of the grader itself" in rows["oscar"]["reason"]
    assert "oscar: simulated failure of the grader itself; retrying" in proc.stderr
    out = course / "autograded" / ASSIGNMENT
    oscar_log = (out / "students" / "oscar" / "grading.log").read_text()
    assert oscar_log.count("INFRASTRUCTURE ERROR: simulated failure of the grader itself") == 2
    assert gradebook_scores(course) == {"alice": 10.0, "bob": 5.0}  # not recorded
    for sid in ("alice", "bob"):
        assert (out / "students" / sid / "grading.log").read_text().count("--- done") == 1
    assert not (out / "students" / "mallory" / "result.json").exists()  # so a rerun retries it
    shutil.rmtree(subs / "submitted" / "mallory")  # (its retry is the same as above)
    proc = grade(course, subs, "--max-attempts", "1")
    assert "2 submission(s) already graded" in proc.stderr
    assert "oscar: infrastructure failure" in proc.stderr and "alice:" not in proc.stderr
    assert "retrying" not in proc.stderr  # --max-attempts 1


def test_hung_grading_makes_its_worker_process_exit():
    # the engine cannot stop a thread: a submission past --worker-timeout ends its process, which
    # Dask treats as a worker death (rerun elsewhere, then reported like mallory above)
    code = (
        "import time\nfrom autograder.engine import _watchdog\n"
        "with _watchdog(0.5, 'hugo'):\n    time.sleep(60)\n"
    )
    # (generous timeouts: importing distributed can take a minute on a loaded machine)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    from autograder.engine import WORKER_HUNG

    assert proc.returncode == WORKER_HUNG, proc.stderr  # the 60 s sleep did not run out
    with_no_hang = "from autograder.engine import _watchdog\nwith _watchdog(0.5, 'x'):\n    pass\n"
    code = with_no_hang + "import time\ntime.sleep(1.5)\n"
    assert subprocess.run([sys.executable, "-c", code], timeout=600).returncode == 0


def test_kill_9_of_the_whole_run_then_rerun_grades_each_once(course, tmp_path):
    subs = tmp_path / "subs"
    students = [f"s{i}" for i in range(6)]
    for i, sid in enumerate(students):
        slow = f"import time\ntime.sleep(1.5)\n{ADD_OK}" if i % 2 == 0 else wrong("return 3")
        nbgrader_submission(subs, sid, student_notebook(add=slow))
    cmd = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        ASSIGNMENT,
        str(subs),
        "--course",
        str(course),
        "--workers",
        "2",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        cmd,
        env=cli_env(**FAKE),
        start_new_session=True,
        cwd=course,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = course / "autograded" / ASSIGNMENT
    deadline = time.monotonic() + 300
    while not list(out.glob("students/*/result.json")):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(out.glob("students/*/result.json")))
    print(f"killed with {done_before} of {len(students)} recorded")
    assert done_before < len(students)
    rerun = grade(course, subs, "--workers", "2")
    assert rerun.returncode == 0
    rows = csv_rows(course)
    assert sorted(rows) == students
    expected = {sid: (10.0 if i % 2 == 0 else 7.0) for i, sid in enumerate(students)}
    assert {s: float(r["score"]) for s, r in rows.items()} == expected
    assert gradebook_scores(course) == expected
    for sid in students:
        log = (out / "students" / sid / "grading.log").read_text()
        assert log.count("--- done") == 1, (sid, log)


def test_missing_assignment_and_bad_input_are_clear_errors(course, tmp_path):
    proc = grade(course, tmp_path / "nope.zip")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    bad = tmp_path / "bad.zip"
    bad.write_text("hello")
    assert "neither a folder nor a zip" in grade(course, bad).stderr
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            "nosuch",
            str(tmp_path),
            "--course",
            str(course),
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2 and "no notebooks" in p.stderr
    sub = tmp_path / "subs"
    nbgrader_submission(sub, "alice", student_notebook())
    nobody = f"tcp://127.0.0.1:{free_port()}"
    quick = FAKE | {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    proc = grade(course, sub, "--scheduler", nobody, env=quick)
    assert proc.returncode == 2
    assert f"error: cannot reach the Dask scheduler at {nobody}" in proc.stderr


# ---------------------------------------------------------------- with the real sandboxed scorer


def _real_scorer_available() -> bool:
    try:
        from autograder.score import grade_notebook  # noqa: F401
    except ImportError:
        return False
    return True


real = pytest.mark.skipif(not _real_scorer_available(), reason="autograder.score not there yet")


@real
def test_real_scorer_tiny_course_exact_points(course, tmp_path):
    subs = tmp_path / "subs"
    nbgrader_submission(subs, "alice", student_notebook())
    nbgrader_submission(subs, "bob", student_notebook(add=wrong("return 4 if a == b else 3")))
    nbgrader_submission(subs, "carol", student_notebook(mul=None))
    gina = student_notebook(mul=None, edit=edited_tests)
    nbgrader_submission(subs, "gina", gina)
    proc = grade(course, subs, "--workers", "2", env={})
    assert proc.returncode == 0
    rows = csv_rows(course)
    assert {s: float(r["score"]) for s, r in rows.items()} == {
        "alice": 10.0,
        "bob": 7.0,
        "carol": 5.0,
        "gina": 5.0,
    }


@real
@pytest.mark.skipif(not (ROOT / "source" / "01_anatomy").is_dir(), reason="no source/01_anatomy")
def test_real_scorer_on_01_anatomy_solution_and_stub(tmp_path):
    """The reference solution gets every point, the blank release none (end to end)."""
    import nbformat

    from autograder.release import release
    from autograder.task import max_score
    from autograder.validate import load_notebook

    src = ROOT / "source" / "01_anatomy"
    release(["01_anatomy"], tmp_path / "release")
    subs = tmp_path / "submitted"
    for who, folder in (("solution", src), ("blank", tmp_path / "release" / "01_anatomy")):
        for nbp in folder.glob("*.ipynb"):
            (subs / who / "01_anatomy").mkdir(parents=True, exist_ok=True)
            nbformat.write(load_notebook(nbp), str(subs / who / "01_anatomy" / nbp.name))
    total = max_score({p.stem: load_notebook(p) for p in src.glob("*.ipynb")})
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            "01_anatomy",
            str(subs),
            "--out",
            str(out),
            "--db",
            str(tmp_path / "gb.db"),
            "--workers",
            "2",
            "--no-progress",
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    print(proc.stdout, proc.stderr[-3000:])
    assert proc.returncode == 0
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert float(rows["solution"]["score"]) == total > 0
    assert rows["solution"]["notes"] == ""  # nothing to report about an untouched notebook
    assert float(rows["blank"]["score"]) == 0.0
    assert rows["blank"]["notes"] == ""


def test_limit_options_become_sandbox_limits():
    from autograder.sandbox import Limits
    from autograder.task import limits_from_spec as _limits

    lim = _limits({"cell_timeout": "5", "memory": "1e9", "processes": "8"})
    assert (lim.cell_timeout, lim.memory, lim.processes) == (5.0, 1_000_000_000, 8)
    assert lim.notebook_timeout == Limits().notebook_timeout
    with pytest.raises(SystemExit, match="unknown limit 'nope'"):
        _limits({"nope": "1"})
