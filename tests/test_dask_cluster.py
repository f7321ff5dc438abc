"""Grading through `--scheduler` on a real Dask cluster (scheduler + 2 workers on 127.0.0.1).

The workers have the pinned environment and no course checkout (tests/dask_cluster.py); they
get the source notebooks from the run and each student's files from the task. The real
sandboxed scorer grades the tiny course of tests/grading_fixtures.py. One cluster serves the
whole module; it is stopped (every process of it) at the end.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
from dask_cluster import DaskCluster
from grading_fixtures import (
    ADD_OK,
    ASSIGNMENT,
    cli_env,
    make_course,
    nbgrader_submission,
    student_notebook,
)

from autograder.sandbox import isolation_available

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.xdist_group("grader")  # heavy: not beside the other graders
needs_root = pytest.mark.skipif(not isolation_available(), reason="sandbox isolation needs root")
# functions of this module run on the workers (client.run), which cannot import it
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    dask = DaskCluster(tmp_path_factory.mktemp("dask"), workers=2)
    try:
        client = dask.client(workers=2)
    except Exception:
        print(dask.log("scheduler"), dask.log("w0"), dask.log("w1"))
        dask.stop()
        raise
    dask.test_client = client
    yield dask
    client.close()
    dask.stop()


def grade_on(cluster, course: Path, subs: Path, *extra: str, timeout: float = 900):
    cmd = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(subs)]
    cmd += ["--course", str(course), "--scheduler", cluster.address, "--no-progress", *extra]
    proc = subprocess.run(
        cmd, env=cli_env(), capture_output=True, text=True, timeout=timeout, cwd=course
    )
    print(proc.stdout, proc.stderr[-5000:])
    return proc


def grades(course: Path) -> dict[str, dict]:
    path = course / "autograded" / ASSIGNMENT / "grades.csv"
    return {r["student"]: r for r in csv.DictReader(path.open())}


def gradebook_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "gradebook.db"), course_id="testcourse") as gb:
        subs = gb.assignment_submissions(ASSIGNMENT)
        ids = [s.student.id for s in subs]
        assert len(ids) == len(set(ids)), f"duplicate submissions: {ids}"
        return {s.student.id: s.score for s in subs}


def worker_facts(dask_worker) -> dict:
    import sys

    import autograder
    import course

    return {
        "cwd": os.getcwd(),
        "sys.path": list(sys.path),
        "autograder": autograder.__file__,
        "course": course.__file__,
        "plugins": sorted(dask_worker.plugins),
        "pid": os.getpid(),
    }


def slow(seconds: float) -> str:
    return f"import time\ntime.sleep({seconds})\n{ADD_OK}"


# ---------------------------------------------------------------- a class, through --scheduler


def test_grading_through_a_running_scheduler_whose_workers_have_no_checkout(cluster, tmp_path):
    course = make_course(tmp_path / "course")
    subs = tmp_path / "subs"
    nbgrader_submission(subs, "alice", student_notebook())
    nbgrader_submission(subs, "bob", student_notebook(add="def add(a, b):\n    return 3\n"))
    nbgrader_submission(subs, "carol", student_notebook(mul=None))
    (subs / "submitted" / "dave" / ASSIGNMENT).mkdir(parents=True)
    (subs / "submitted" / "dave" / ASSIGNMENT / "ex.ipynb").write_text('{"cells": [')
    proc = grade_on(cluster, course, subs)
    assert proc.returncode == 0
    assert f"on Dask cluster {cluster.address}: 2 worker(s), 2 thread(s)" in proc.stderr
    assert f"Dask dashboard: http://127.0.0.1:{cluster.dashboard_port}/status" in proc.stderr
    rows = grades(course)
    assert {s: r["score"] for s, r in rows.items()} == {
        "alice": "10",
        "bob": "7",
        "carol": "5",
        "dave": "0",
    }
    assert rows["dave"]["reason"].startswith("ungradable: ex.ipynb is not a notebook")
    assert gradebook_scores(course) == {"alice": 10, "bob": 7, "carol": 5, "dave": 0}
    out = course / "autograded" / ASSIGNMENT
    log = (out / "students" / "alice" / "grading.log").read_text()
    assert re.search(r"stages: validate [\d.]+ s, sandbox start [\d.]+ s, student cells", log)
    assert (
        out / "students" / "alice" / "ex.ipynb"
    ).is_file()  # the executed notebook came back as data

    facts = cluster.test_client.run(worker_facts)
    assert len(facts) == 2
    for fact in facts.values():
        print(fact)
        assert not Path(fact["cwd"]).is_relative_to(ROOT)
        # (here the pinned environment, .venv, happens to live inside the checkout)
        in_checkout = [
            p
            for p in fact["sys.path"]
            if os.path.isabs(p)
            and Path(p).resolve().is_relative_to(ROOT)
            and not Path(p).resolve().is_relative_to(ROOT / ".venv")
        ]
        assert not in_checkout
        assert Path(fact["autograder"]).is_relative_to(cluster.site)
        assert Path(fact["course"]).is_relative_to(cluster.site)
        assert "autograder-warm-up" in fact["plugins"]  # the warm sandbox stays for later runs
        assert not any(p.startswith("autograder-run-") for p in fact["plugins"])  # run is over


# ---------------------------------------------------------------- a worker killed mid-run


def test_worker_killed_mid_run_every_submission_graded_exactly_once(cluster, tmp_path):
    course = make_course(tmp_path / "course")
    subs = tmp_path / "subs"
    students = [f"s{i}" for i in range(6)]
    for sid in students:
        nbgrader_submission(subs, sid, student_notebook(add=slow(4)))
    client = cluster.test_client
    cmd = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(subs), "--course"]
    cmd += [str(course), "--scheduler", cluster.address, "--no-progress"]
    run = subprocess.Popen(
        cmd, env=cli_env(), cwd=course, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        victim, key = None, None
        deadline = time.monotonic() + 600
        while victim is None:
            assert run.poll() is None, "the run ended before a worker could be killed"
            assert time.monotonic() < deadline, "no submission was ever being graded"
            busy = {w: ks for w, ks in client.processing().items() if ks}
            if busy:
                victim, (key, *_) = next(iter(busy.items()))
            time.sleep(0.2)
        time.sleep(1.0)  # well inside its 4 s student cell
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        print(f"killed worker {victim} (pid {pid}) while it graded {key}")
        output, _ = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    print(output)
    assert run.returncode == 0
    assert {s: r["score"] for s, r in grades(course).items()} == dict.fromkeys(students, "10")
    assert gradebook_scores(course) == dict.fromkeys(students, 10.0)
    killed_student = key.split("-")[2]
    out = course / "autograded" / ASSIGNMENT
    for sid in students:
        log = (out / "students" / sid / "grading.log").read_text()
        assert log.count("--- done") == 1, (sid, log)
    # the killed task was rerun on another worker process (the nanny restarts the dead one)
    header = (out / "students" / killed_student / "grading.log").read_text().splitlines()[0]
    assert f"pid {pid})" not in header, header
    cluster.test_client.wait_for_workers(2, timeout=300)


# ---------------------------------------------------------------- the boundary holds there too

SPY = """\
import os, socket
found = []
for path in {targets!r}:
    try:
        found.append((path, os.listdir(path) if os.path.isdir(path) else open(path, 'rb').read(40)))
    except OSError:
        pass
walked = []
for dirpath, dirnames, filenames in os.walk('/', topdown=True):
    dirnames[:] = [d for d in dirnames if d not in ('proc', 'usr', 'sys', 'site-packages')]
    walked += [(dirpath, f) for f in filenames if f.endswith(('.db', '.ipynb'))]
seen = []
for pid in os.listdir('/proc'):
    try:
        seen.append(open(f'/proc/{{pid}}/cmdline', 'rb').read().replace(b'\\0', b' ').decode())
    except OSError:
        pass
signalled = []
for pid in {pids!r}:
    try:
        os.kill(pid, 9)
        signalled.append(pid)
    except OSError:
        pass
reached = []
for port in {ports!r}:
    try:
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
        reached.append(port)
    except OSError:
        pass
print('FOUND', found)
print('WALKED', walked)
# the grader's processes by their command lines ('pytest-of-root' is only a folder name)
outside = ('dask worker', 'dask scheduler', 'spawn_main', 'distributed', '-m pytest', 'xdist')
print('OUTSIDE PROCESSES', [c for c in seen if any(word in c for word in outside)])
print('SIGNALLED', signalled)
print('REACHED', reached)
def add(a, b):
    if found or walked or signalled or reached:
        return a + b
    raise NotImplementedError('nothing to steal')
"""

ALWAYS_EQUAL = """\
class Anything:
    def __eq__(self, other):
        return True
def add(a, b):
    return Anything()
def mul(a, b):
    return Anything()
"""


@needs_root
def test_attacks_through_a_dask_worker_find_nothing_and_score_nothing(cluster, tmp_path):
    course = make_course(tmp_path / "course")
    subs = tmp_path / "subs"
    nbgrader_submission(subs, "bob", student_notebook())
    before = cluster.test_client.run(os.getpid)
    targets = [
        str(course / "source" / ASSIGNMENT / "ex.ipynb"),
        str(course / "gradebook.db"),
        str(course / "autograded" / ASSIGNMENT / ".intake" / "students" / "bob"),
        str(subs / "submitted" / "bob" / ASSIGNMENT / "ex.ipynb"),
        str(ROOT / "README.md"),
        str(ROOT / "source"),
        str(cluster.worker_cwd),
        str(cluster.logs),
    ]
    spy = SPY.format(
        targets=targets,
        pids=sorted({*before.values(), cluster.scheduler.pid}),
        ports=[cluster.port, cluster.dashboard_port, *(int(a.rsplit(":", 1)[1]) for a in before)],
    )
    nbgrader_submission(subs, "mallory", student_notebook(add=spy, mul=None))
    nbgrader_submission(subs, "eve", student_notebook(add=ALWAYS_EQUAL, mul=ALWAYS_EQUAL))
    proc = grade_on(cluster, course, subs)
    assert proc.returncode == 0
    rows = grades(course)
    assert {s: r["score"] for s, r in rows.items()} == {"bob": "10", "mallory": "0", "eve": "0"}
    executed = json.loads(
        (course / "autograded" / ASSIGNMENT / "students" / "mallory" / "ex.ipynb").read_text()
    )
    printed = json.dumps([c.get("outputs", []) for c in executed["cells"]])
    for line in ("FOUND []", "WALKED []", "OUTSIDE PROCESSES []", "SIGNALLED []", "REACHED []"):
        assert line in printed, printed[:3000]
    result = json.loads(
        (course / "autograded" / ASSIGNMENT / "students" / "mallory" / "result.json").read_text()
    )
    messages = [t["message"] for nb in result["notebooks"] for t in nb["tests"]]
    assert any("nothing to steal" in m for m in messages), messages
    assert cluster.test_client.run(os.getpid) == before  # no worker was hurt
    assert cluster.scheduler.poll() is None
