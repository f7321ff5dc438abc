"""The trusted grader against honest and cheating submissions (issue 5, stages 2-3).

Each test grades a tiny self-contained notebook pair (built below) with
``autograder.score.grade_notebook`` and asserts the score an honest grader would give, plus
what makes the attack fail. Limits are small so the whole file runs in about a minute.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import boundary, proxy, sandbox, score
from autograder.notebooks import stub_source as stub
from autograder.results import InfrastructureError, NotebookResult
from autograder.sandbox import UID_BASE, Limits, isolation_available, isolation_mode, process_state
from autograder.score import grade_notebook

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(
    cell_timeout=4, notebook_timeout=90, memory=768 * 2**20, processes=24, output=64 * 1024
)
needs_root = pytest.mark.skipif(not isolation_available(), reason="sandbox isolation needs root")

ADD_SOLUTION = '''def add(a, b):
    """Elementwise a + b for numbers or NumPy arrays of the same shape."""
    ### BEGIN SOLUTION
    return a + b
    ### END SOLUTION
'''
CONV_SOLUTION = '''def conv_like(x):
    """x: float array (N,) -> 2 * x, written with NumPy only."""
    ### BEGIN SOLUTION
    return np.asarray(x, dtype=float) * 2.0
    ### END SOLUTION
'''
TEST_ADD = """import numpy as np
from course.checks.core import check_cases

assert add(1, 2) == 3
check_cases(add, lambda a, b: a + b, [dict(a=np.ones(3), b=np.arange(3.0))], name="add")
"""
TEST_ADD_HIDDEN = """import numpy as np
import torch
from course.checks.core import assert_matches_torch

### BEGIN HIDDEN TESTS
x = np.random.default_rng(0).normal(size=(2, 3))
assert_matches_torch(add(x, x), torch.tensor(x) * 2, case="x (2,3)")
assert add(2, 2) == 4
### END HIDDEN TESTS
"""
TEST_CONV = """import numpy as np
import torch
from course.checks.core import assert_matches_torch

x = np.arange(4.0)
assert_matches_torch(conv_like(x), torch.tensor(x) * 2, case="x (4,)")
print("ok: conv_like matches torch")
"""
POINTS = {"test_add": 1, "test_add_hidden": 2, "test_conv": 3}
FULL = sum(POINTS.values())


def _meta(grade_id: str, *, solution=False, grade=False, points=None) -> dict:
    meta = {
        "grade": grade,
        "solution": solution,
        "locked": not solution,
        "grade_id": grade_id,
        "schema_version": 3,
    }
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def source_notebook() -> nbformat.NotebookNode:
    v4 = nbformat.v4
    cells = [
        v4.new_markdown_cell("# Fixture assignment\n`conv_like` is graded with torch unavailable."),
        v4.new_code_cell("import numpy as np"),
        v4.new_code_cell(ADD_SOLUTION, metadata=_meta("add", solution=True)),
        v4.new_code_cell(TEST_ADD, metadata=_meta("test_add", grade=True, points=1)),
        v4.new_code_cell(TEST_ADD_HIDDEN, metadata=_meta("test_add_hidden", grade=True, points=2)),
        v4.new_code_cell(CONV_SOLUTION, metadata=_meta("conv_like", solution=True)),
        v4.new_code_cell(TEST_CONV, metadata=_meta("test_conv", grade=True, points=3)),
    ]
    cells[5].metadata["tags"] = ["numpy-only"]
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    return nb


def student_notebook(
    add: str | None = None, conv: str | None = None, extra: dict[int, str] | None = None
) -> nbformat.NotebookNode:
    """The source with the student's versions of the solution cells (None: the reference).

    ``extra`` inserts student cells (position in the source's cell list -> code) before that
    position, e.g. an attack cell before the first test.
    """
    nb = source_notebook()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "add" and add is not None:
            cell.source = add
        if grade_id == "conv_like" and conv is not None:
            cell.source = conv
    for index in sorted(extra or {}, reverse=True):
        nb.cells.insert(index, nbformat.v4.new_code_cell(extra[index]))
    return nb


def grade(
    tmp_path: Path, student: nbformat.NotebookNode, name: str = "fixture", limits: Limits = LIMITS
) -> NotebookResult:
    workdir = tmp_path / "course_root" / "submitted" / "alice" / "fixture"
    workdir.mkdir(parents=True, exist_ok=True)
    nbformat.write(student, str(workdir / f"{name}.ipynb"))
    started = time.monotonic()
    uids: list[int] = []

    class RecordingSandbox(score.Sandbox):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            uids.append(self.uid)

    original = score.Sandbox
    score.Sandbox = RecordingSandbox
    try:
        result = grade_notebook(source_notebook(), student, workdir, limits, name, log=print)
    finally:
        score.Sandbox = original
    print(f"graded in {time.monotonic() - started:.2f} s")
    for test in result.tests:
        print(f"  {test.grade_id}: {test.points}/{test.max_points} {test.message[:300]!r}")
    if isolation_available():
        assert uids and all(uid >= UID_BASE for uid in uids)
        leftovers = sandbox_processes(set(uids))
        assert not leftovers, f"sandbox processes survived grading: {leftovers}"
    return result


def sandbox_processes(uids: set[int]) -> list[int]:
    """Live processes of these sandbox uids (the grader must have killed them all)."""
    for _ in range(20):
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid in uids:
                        if process_state(int(entry)) not in (None, "Z", "X"):
                            out.append(int(entry))
                except OSError:
                    pass
        if not out:
            return out
        time.sleep(0.1)  # killed processes take a moment to go
    return out


def points(result: NotebookResult) -> dict[str, float]:
    return {t.grade_id: t.points for t in result.tests}


def message(result: NotebookResult, grade_id: str) -> str:
    return next(t.message for t in result.tests if t.grade_id == grade_id)


def executed_text(result: NotebookResult) -> str:
    nb = nbformat.read(result.executed_path, as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


# -- the plain-data codec -----------------------------------------------------------------------


def test_codec_round_trips_plain_data_exactly():
    value = (
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([True, False]),
        np.array([1 + 2j]),
        np.int64(3),
        {"a": [1.5, None, float("nan"), float("inf")], 2: (True, "s", 2**70, 1 - 1j)},
        [],
    )
    back = proxy.decode(json.loads(json.dumps(proxy.encode(value))))
    assert type(back) is tuple and len(back) == len(value)
    for got, want in zip(back[:4], value[:4], strict=True):
        assert type(got) is type(want) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert back[4]["a"][0] == 1.5 and back[4]["a"][1] is None and np.isnan(back[4]["a"][2])
    assert back[4][2] == (True, "s", 2**70, 1 - 1j) and back[5] == []


@pytest.mark.parametrize(
    "value",
    [
        np.array([object()], dtype=object),
        np.array(["text"]),
        np.zeros(2, dtype=[("a", "f8")]),
        np.zeros(3).view(type("Sub", (np.ndarray,), {})),
        type("MyInt", (int,), {})(3),
        type("MyTuple", (tuple,), {})((1, 2)),
        {1, 2},
        lambda: 1,
        b"bytes",
    ],
    ids=["object", "str-array", "structured", "subclass", "int-sub", "tuple-sub", "set", "fn", "b"],
)
def test_codec_refuses_anything_but_plain_data(value):
    with pytest.raises(proxy.NotPlainData):
        proxy.encode(value)


@pytest.mark.parametrize(
    "tree",
    [
        {"__ndarray__": "not base64!"},
        {"__pickle__": "gASVAAAA"},
        {"__dict__": [[[1], 2]]},
        {"__complex__": ["1", 2]},
        {"a": 1},
    ],
)
def test_codec_decoder_refuses_malformed_or_foreign_payloads(tree):
    with pytest.raises((proxy.NotPlainData, ValueError)):
        proxy.decode(tree)


def test_codec_decoder_never_unpickles():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    payload = {"__ndarray__": base64.b64encode(buffer.getvalue()).decode()}
    with pytest.raises(ValueError, match="pickle"):
        proxy.decode(payload)


def test_proxy_calls_carry_plain_values_and_builtin_errors_across(tmp_path):
    from autograder.execute import Sandbox

    code = (
        "import numpy as np\n"
        "class ShapeError(ValueError):\n    pass\n"
        "def f(x, *, k=1):\n"
        "    if k < 0:\n        raise ShapeError('k must be >= 0')\n"
        "    if k == 0:\n        raise OSError('disk')\n"
        "    return {'y': x * k, 'shape': x.shape, 'n': np.float32(2.5)}\n"
        "CONSTANT = (1, 2.0)\n"
    )
    with Sandbox(tmp_path, LIMITS) as sandbox:
        assert sandbox.run_cell(code).status == "ok"
        student_f = proxy.StudentFunction("f", lambda n, a, k: sandbox.call(n, a, k, 1e12))
        out = student_f(np.ones((2, 2)), k=3)
        assert out["shape"] == (2, 2) and type(out["n"]) is np.float32
        np.testing.assert_array_equal(out["y"], 3 * np.ones((2, 2)))
        with pytest.raises(ValueError, match="k must be >= 0") as raised:
            student_f(np.ones(1), k=-1)
        assert type(raised.value) is ValueError  # the builtin, never the student's class
        with pytest.raises(proxy.StudentException, match="OSError: disk"):
            student_f(np.ones(1), k=0)
        assert sandbox.lookup("CONSTANT", 5) == ("value", (1, 2.0))
        assert sandbox.lookup("nothing", 5)[0] == "missing"


# -- honest submissions -------------------------------------------------------------------------


def test_honest_correct_submission_gets_full_points(tmp_path):
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
    # after the numpy-only sandbox has started, the main kernel still owns its folder
    writer = (
        "with open('after.txt', 'w') as f:\n    f.write('x')\n"
        "print('WROTE', open('after.txt').read())\n"
    )
    result = grade(tmp_path, student_notebook(extra={2: plot, 6: writer}))
    assert "WROTE x" in executed_text(result)
    assert points(result) == POINTS
    assert result.score == FULL
    assert "ok: conv_like matches torch" in message(result, "test_conv")
    assert next(t for t in result.tests if t.grade_id == "test_add_hidden").hidden
    executed = nbformat.read(result.executed_path, as_version=4)
    nbformat.validate(executed)
    assert "BEGIN HIDDEN TESTS" not in json.dumps(executed), "hidden tests leaked into feedback"
    assert "image/png" in executed_text(result), "the plot is kept for feedback"


def test_honest_partly_wrong_submission_gets_exactly_its_points(tmp_path):
    wrong_conv = CONV_SOLUTION.replace("* 2.0", "* 3.0")
    result = grade(tmp_path, student_notebook(conv=wrong_conv))
    assert points(result) == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0}
    assert "differs from torch" in message(result, "test_conv")


def test_release_stub_gets_zero(tmp_path):
    result = grade(tmp_path, student_notebook(add=stub(ADD_SOLUTION), conv=stub(CONV_SOLUTION)))
    assert result.score == 0
    assert "NotImplementedError" in message(result, "test_add")


def test_passing_test_whose_student_code_writes_to_stderr_keeps_its_points(tmp_path):
    # stock nbgrader zeroes a passing test cell that wrote to stderr
    noisy = (
        "import sys, warnings\n"
        "def add(a, b):\n"
        "    print('debug: adding', file=sys.stderr)\n"
        "    warnings.warn('just a warning')\n"
        "    return a + b\n"
    )
    result = grade(tmp_path, student_notebook(add=noisy))
    assert result.score == FULL
    assert "debug: adding" in message(result, "test_add")


# -- attacks on the comparison ------------------------------------------------------------------

NO_SOLUTION_ADD = stub(ADD_SOLUTION)
NO_SOLUTION_CONV = stub(CONV_SOLUTION)


@needs_root
def test_ipython_input_transformer_swallowing_later_cells(tmp_path):
    # In a stock kernel this turns every later cell, the test cells included, into `pass`.
    hook = (
        "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"
        + NO_SOLUTION_ADD
    )
    result = grade(tmp_path, student_notebook(add=hook, conv=NO_SOLUTION_CONV))
    assert result.score == 0
    assert "NotImplementedError" in message(result, "test_add")


@needs_root
def test_ipython_pre_run_cell_event_and_custom_exc_hooks(tmp_path):
    hooks = (
        "ip = get_ipython()\n"
        "ip.events.register('pre_run_cell', lambda info: setattr(info, 'raw_cell', 'pass'))\n"
        "ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)\n"
        "ip.events.register('post_run_cell', lambda result: None)\n"
        "def add(a, b):\n    return 0\n"
    )
    result = grade(tmp_path, student_notebook(add=hooks, conv=NO_SOLUTION_CONV))
    assert result.score == 0
    assert "AssertionError" in message(result, "test_add")


@needs_root
def test_object_whose_eq_is_always_true_nbgrader_1379(tmp_path):
    cheat_add = (
        "class Anything:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __array_priority__ = 1000\n"
        "def add(a, b):\n    return Anything()\n"
    )
    cheat_conv = (
        "import numpy as np\n"
        "class Always(np.ndarray):\n"
        "    def __eq__(self, other):\n        return True\n"
        "def conv_like(x):\n    return np.zeros(4).view(Always)\n"
    )
    result = grade(tmp_path, student_notebook(add=cheat_add, conv=cheat_conv))
    assert result.score == 0
    assert "not plain data" in message(result, "test_add")
    assert "Always" in message(result, "test_conv") and "not plain data" in message(
        result, "test_conv"
    )


@needs_root
def test_monkeypatching_numpy_allclose_testing_and_torch_allclose(tmp_path):
    patch = (
        "import numpy as np, numpy.testing, torch\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.isclose = lambda a, b, **k: np.ones(np.shape(a), bool)\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "np.testing.assert_array_equal = lambda *a, **k: None\n"
        "torch.allclose = lambda *a, **k: True\n"
        "import course.checks.core as core\n"
        "core.compare_arrays = lambda *a, **k: None\n"
        "import builtins\nbuiltins.AssertionError = type('Nothing', (Exception,), {})\n"
        "def add(a, b):\n    return a - b\n"
    )
    result = grade(tmp_path, student_notebook(add=patch, conv=NO_SOLUTION_CONV))
    assert result.score == 0
    assert "AssertionError" in message(result, "test_add")
    assert "differs from torch" in message(result, "test_add_hidden")


@needs_root
def test_skip_execution_tag_on_test_cells_is_ignored(tmp_path):
    student = student_notebook(add=NO_SOLUTION_ADD, conv=NO_SOLUTION_CONV)
    for cell in student.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
            cell.source = "pass"  # and edited: the source's test is used anyway
    result = grade(tmp_path, student)
    assert result.score == 0
    assert all("NotImplementedError" in t.message for t in result.tests)


@needs_root
def test_calling_torch_inside_the_numpy_only_function(tmp_path):
    via_import = "import torch\ndef conv_like(x):\n    return (torch.as_tensor(x) * 2).numpy()\n"
    result = grade(tmp_path, student_notebook(conv=via_import))
    assert points(result) == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0}
    assert "not available in this exercise" in message(result, "test_conv")
    # torch works in the ordinary sandbox: the same cell ran there without error
    executed = nbformat.read(result.executed_path, as_version=4)
    cell = next(
        c for c in executed.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "conv_like"
    )
    assert cell.outputs == []


@needs_root
def test_calling_torch_inside_the_numpy_only_function_bypassing_the_import_hook(tmp_path):
    bypass = (
        "import sys, importlib, ctypes, glob\n"
        "def conv_like(x):\n"
        "    sys.meta_path[:] = [f for f in sys.meta_path if 'Torch' not in type(f).__name__]\n"
        "    libs = glob.glob(sys.prefix + '/lib/python3*/site-packages/torch/lib/*.so*')\n"
        "    if not libs:\n"
        "        raise RuntimeError('torch files: ' + repr(libs))\n"
        "    torch = importlib.import_module('torch')\n"
        "    return (torch.as_tensor(x) * 2).numpy()\n"
    )
    result = grade(tmp_path, student_notebook(conv=bypass))
    assert points(result) == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0}
    assert "torch files: []" in message(result, "test_conv")


# -- attacks on the boundary: see the attack suite at the end of this file ----------------------


@needs_root
def test_no_network_in_the_sandbox(tmp_path):
    net = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 22), timeout=1)\n"
        "    net = 'reachable'\n"
        "except OSError as error:\n"
        "    net = f'unreachable: {error}'\n"
        "print('NET', net)\n" + ADD_SOLUTION
    )
    result = grade(tmp_path, student_notebook(add=net))
    assert "NET unreachable" in executed_text(result)
    assert result.score == FULL


# -- attacks on the grader's resources ----------------------------------------------------------


@needs_root
def test_os_exit_kills_the_kernel_later_tests_fail_grading_continues(tmp_path):
    exit_cell = "import os\nos._exit(3)\n" + CONV_SOLUTION
    result = grade(tmp_path, student_notebook(conv=exit_cell))
    assert points(result) == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0}
    assert "died" in message(result, "test_conv")


@needs_root
def test_infinite_loop_times_out_and_grading_continues(tmp_path):
    loop_cell = "while True:\n    pass\n"  # a cell that never ends, before the tests
    stubborn = (
        "def conv_like(x):\n"
        "    while True:\n"
        "        try:\n"
        "            pass\n"
        "        except KeyboardInterrupt:\n"
        "            pass\n"
    )
    started = time.monotonic()
    result = grade(tmp_path, student_notebook(conv=stubborn, extra={3: loop_cell}))
    assert time.monotonic() - started < 4 * LIMITS.cell_timeout + 20
    assert points(result) == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0}
    assert "time limit" in message(result, "test_conv")
    assert "Timeout" in executed_text(result)


@needs_root
def test_memory_bomb_fails_the_test_and_grader_survives(tmp_path):
    bomb = (
        "import numpy as np\n"
        "def conv_like(x):\n"
        "    hog = []\n"
        "    while True:\n"
        "        hog.append(np.ones(2**24))  # 128 MiB at a time, touched\n"
    )
    top_level = "big = bytearray(64 * 2**30)\n"  # 64 GiB at once, at the top of a cell
    limits = dataclasses.replace(LIMITS, memory=256 * 2**20, cell_timeout=10)
    result = grade(tmp_path, student_notebook(conv=bomb, extra={5: top_level}), limits=limits)
    assert points(result) == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0}
    assert "MemoryError" in message(result, "test_conv") or "memory" in message(result, "test_conv")
    assert "MemoryError" in executed_text(result)


@needs_root
def test_fork_bomb_is_bounded(tmp_path):
    counted = (
        "import os, time\n"
        "children = 0\n"
        "try:\n"
        "    while children < 10_000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        children += 1\n"
        "except OSError as error:\n"
        "    print('FORK REFUSED after', children, 'children:', type(error).__name__)\n"
        + ADD_SOLUTION
    )
    classic = "import os\ndef conv_like(x):\n    while True:\n        os.fork()\n"
    result = grade(tmp_path, student_notebook(add=counted, conv=classic))
    found = re.search(r"FORK REFUSED after (\d+) children", executed_text(result))
    assert found, executed_text(result)[:2000]
    assert int(found.group(1)) < LIMITS.processes
    assert points(result) == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0}


# Student code shares its process with the kernel's end of the channel to the grader: it can
# write anything on that socket. Each variant must cost the student only the tests of that
# sandbox, with a reason, and never become our failure.
CHANNEL_ATTACKS = {
    "a header claiming 4 GiB": "k._channel.sock.sendall(b'\\xff\\xff\\xff\\xff' + b'x' * 64)",
    "bytes that are no frame": "k._channel.sock.sendall(b'\\x00\\x00\\x00\\x05hello')",
    "the socket closed": "import os\nos.close(k._channel.sock.fileno())",
}


@needs_root
@pytest.mark.parametrize("attack", sorted(CHANNEL_ATTACKS))
def test_garbage_on_the_grader_channel_costs_only_that_sandboxs_tests(tmp_path, attack):
    cell = "import autograder.kernel as k\n" + CHANNEL_ATTACKS[attack] + "\n"
    result = grade(tmp_path, student_notebook(add=ADD_SOLUTION + "\n" + cell))
    assert points(result) == {"test_add": 0, "test_add_hidden": 0, "test_conv": 3}
    assert "kernel could not be used" in message(result, "test_add")


@needs_root
def test_forged_replies_ahead_buy_nothing_a_function_could_not_return(tmp_path):
    """Replies sent ahead for the grader's next request ids are taken as that sandbox's answers
    (its code controls its kernel anyway); they are plain data like any return value, so a
    wrong add stays wrong and the other sandbox's test is untouched."""
    forge = (
        "import autograder.kernel as k\n"
        "for ahead in range(1, 60):\n"
        "    k._channel.send({'id': k._current_id + ahead, 'type': 'done', 'status': 'ok',\n"
        "                     'value': 3})\n"
    )
    wrong = "def add(a, b):\n    return a - b\n"
    result = grade(tmp_path, student_notebook(add=wrong + forge))
    assert points(result) == {"test_add": 0, "test_add_hidden": 0, "test_conv": 3}


@needs_root
def test_100_mb_of_printed_output_is_capped(tmp_path):
    flood = "for _ in range(100):\n    print('x' * 2**20)\n" + ADD_SOLUTION
    flood_conv = "import sys\nsys.stdout.write('y' * 100 * 2**20)\n" + CONV_SOLUTION
    started = time.monotonic()
    result = grade(tmp_path, student_notebook(add=flood, conv=flood_conv))
    assert time.monotonic() - started < 60
    assert result.score == FULL
    size = os.path.getsize(result.executed_path)
    assert size < 4 * LIMITS.output, size
    assert "output truncated" in executed_text(result)


GRADER_SCRIPT = """
import sys, nbformat
from pathlib import Path
from autograder.sandbox import Limits
from autograder.score import grade_notebook
source = nbformat.read(sys.argv[1], as_version=4)
student = nbformat.read(sys.argv[2], as_version=4)
grade_notebook(source, student, Path(sys.argv[3]), Limits(cell_timeout=300), "fixture",
               log=lambda line: print(line, flush=True))
"""


@needs_root
def test_grader_killed_mid_notebook_leaves_no_sandbox_processes(tmp_path):
    sleeper = (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            time.sleep(1)\n"
        "print('forked', flush=True)\n"
        "while True:\n"
        "    pass\n"
    )
    nbformat.write(source_notebook(), str(tmp_path / "source.ipynb"))
    nbformat.write(student_notebook(extra={2: sleeper}), str(tmp_path / "student.ipynb"))
    workdir = tmp_path / "work"
    workdir.mkdir()
    grader = subprocess.Popen(
        [sys.executable, "-c", GRADER_SCRIPT, "source.ipynb", "student.ipynb", str(workdir)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = grader.stdout.readline()  # "sandbox ready in ... (pid N)"
        found = re.search(r"pid (\d+)", line)
        assert found, line
        uid = UID_BASE + int(found.group(1))
        deadline = time.monotonic() + 60
        while len(sandbox_processes({uid})) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(sandbox_processes({uid})) >= 4, "the kernel and its 3 children are running"
    finally:
        grader.kill()  # SIGKILL: no cleanup code of the grader runs
        grader.wait()
    assert sandbox_processes({uid}) == [], "orphaned sandbox processes outlived the grader"


# -- whose failure is it ------------------------------------------------------------------------


@needs_root
def test_grader_side_import_failure_is_infrastructure_error_not_zero(tmp_path):
    source = source_notebook()
    source.cells[3].source = "from course.checks.no_such_module import check\n" + TEST_ADD
    workdir = tmp_path / "w"
    workdir.mkdir()
    with pytest.raises(InfrastructureError, match="no_such_module"):
        grade_notebook(source, student_notebook(), workdir, LIMITS, "fixture", log=print)


@needs_root
def test_student_function_raising_import_error_is_a_failed_test(tmp_path):
    raising = "def add(a, b):\n    import no_such_module_of_the_student\n"
    result = grade(tmp_path, student_notebook(add=raising))
    assert points(result) == {"test_add": 0, "test_add_hidden": 0, "test_conv": 3}
    assert "no_such_module_of_the_student" in message(result, "test_add_hidden")


# -- the real course ----------------------------------------------------------------------------


def _real(relative: str) -> nbformat.NotebookNode:
    path = ROOT / "source" / relative
    if not path.exists():
        pytest.skip(f"{relative} not written yet")
    return nbformat.read(str(path), as_version=4)


def _grade_real(tmp_path: Path, source, student, name: str) -> NotebookResult:
    workdir = tmp_path / "submitted" / "alice" / name
    workdir.mkdir(parents=True)
    result = grade_notebook(source, student, workdir, Limits(), name, log=print)
    for test in result.tests:
        print(f"  {test.grade_id}: {test.points}/{test.max_points} {test.message[:200]!r}")
    return result


@needs_root
def test_real_course_anatomy_solutions_get_full_points_and_release_stub_gets_zero(tmp_path):
    source = _real("01_anatomy/anatomy.ipynb")
    solved = _grade_real(tmp_path / "solved", source, copy.deepcopy(source), "anatomy")
    assert solved.max_score > 0
    assert solved.score == solved.max_score, [t for t in solved.tests if not t.passed]
    blank = copy.deepcopy(source)
    for cell in blank.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = stub(cell.source)
    stubbed = _grade_real(tmp_path / "stub", source, blank, "anatomy")
    assert stubbed.score == 0


@needs_root
def test_real_course_torch_inside_numpy_only_conv2d_gets_zero(tmp_path):
    source = _real("06_conv2d_numpy/conv2d_numpy.ipynb")
    cheat = copy.deepcopy(source)
    for cell in cheat.cells:
        if "numpy-only" in cell.metadata.get("tags", []):
            cell.source = (
                "import numpy as np\n\n\n"
                "def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,\n"
                "           padding_mode='zeros'):\n"
                "    import torch\n"
                "    conv = torch.nn.functional.conv2d\n"
                "    t = lambda a: None if a is None else torch.from_numpy(np.asarray(a))\n"
                "    return conv(t(x), t(weight), t(bias), stride, padding, dilation,\n"
                "                groups).numpy()\n"
            )
    result = _grade_real(tmp_path, source, cheat, "conv2d_numpy")
    assert result.score == 0
    assert any("not available in this exercise" in t.message for t in result.tests)


# -- the attack suite: every class of issue 9, in every isolation mode ---------------------------
#
# One hostile notebook per mode, graded once in a grader subprocess (so that the mode is really
# decided by that process: plain root = namespaces; `setpriv` without CAP_SYS_ADMIN = a container,
# bubblewrap through a user namespace; AUTOGRADER_ISOLATION=off = no namespaces, a private uid).
# Its cells attack the boundary and print what they reached as JSON; the tests below read those
# reports, the scores and the machine's process table. All of these attacks worked against the
# grader before issue 9.

TOKENS = {
    "source": "HIDDEN-SOURCE-TOKEN-7f3c9a",
    "gradebook": "GRADEBOOK-TOKEN-0b8e41",
    "bob": "BOB-NOTEBOOK-TOKEN-52d6e0",
    "daemon": "DAEMON-MARKER-c1a5f9",
}
ATTACK_MODES = {
    "namespaces": ([], {}),
    "user-namespaces": (["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin"], {}),
    "uid": ([], {"AUTOGRADER_ISOLATION": "off"}),
}
TEST_ADD_SWEEP = """from hypothesis import strategies as st

from course.checks.core import sweep

_ = add(1, 1)  # visible: what the student's code prints here is shown
### BEGIN HIDDEN TESTS
cases = st.fixed_dictionaries({"a": st.integers(-10**6, 10**6), "b": st.integers(-10**6, 10**6)})
sweep(add, lambda a, b: a + b, cases, name="add", max_examples=12, quiet=True)
### END HIDDEN TESTS
"""

# Runs first, in the torch sandbox: looks for anything outside the sandbox and reports it.
RECON = r"""
import json, os, signal, socket, subprocess, sys, time
T = json.loads(__TARGETS__)
report = {"uid": os.getuid(), "pid": os.getpid(), "cwd": os.getcwd()}
report["folder"] = sorted(os.listdir("."))

def reads(path):
    try:
        if os.path.isdir(path):
            return sorted(os.listdir(path))[:20]
        with open(path, "rb") as f:
            return f.read(300).decode("latin-1")
    except OSError as error:
        return None

# 1. processes: by scanning /proc, and by ps
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) if os.path.isdir("/proc") else []
report["proc_pids"] = pids
uids = set()
for p in pids:
    try:
        uids.add(os.stat(f"/proc/{p}").st_uid)
    except OSError:
        pass
report["proc_uids"] = sorted(uids)
try:
    ps = subprocess.run(
        ["ps", "-eo", "pid=,uid=,args="], capture_output=True, text=True, timeout=20
    )
    report["ps"] = ps.stdout.splitlines()
except Exception as error:
    report["ps"] = [f"ps failed: {error}"]
ps_pids = []
for line in report["ps"]:
    if line.strip() and line.split()[0].isdigit():
        ps_pids.append(int(line.split()[0]))
foreign = [p for p in set(pids) | set(ps_pids) if p != os.getpid()]
reached = []
signalled = []
for p in foreign:
    for way in ("root", "cwd"):
        base = f"/proc/{p}/{way}"
        got = reads(base)
        if got:
            reached.append([p, way, got[:5] if isinstance(got, list) else got[:50]])
        for secret in T["secrets"]:
            if reads(base + secret) is not None:
                reached.append([p, way + secret, "SECRET"])
    if reads(f"/proc/{p}/environ") is not None:
        reached.append([p, "environ", "readable"])
    try:
        os.kill(p, 0)
        signalled.append(p)
    except OSError:
        pass
report["reached"] = reached
report["signalled"] = signalled

# 2. the secret files, directly and by relative paths
report["direct"] = {p: reads(p) for p in T["secrets"] + T["relative"] if reads(p) is not None}

# 3. a walk of the file system for anything of the course, the gradebook or classmates
found = []
names = (".ipynb", ".db", ".csv", ".json", ".log", ".txt", ".py", "-secret")
started = time.monotonic()
for top in T["walk"] + [os.path.dirname(os.getcwd())]:
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == "/":
            dirnames[:] = [d for d in dirnames if d not in T["skip_dirs"]]
        dirnames[:] = [d for d in dirnames if d not in ("site-packages", "__pycache__")]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if name in (".autograder-secret", "nbgrader_config.py", "gradebook.db"):
                found.append(path)
            if name.endswith(names) and time.monotonic() - started < 60:
                try:
                    if os.path.getsize(path) < 4 * 2**20:
                        with open(path, "rb") as f:
                            text = f.read().decode("latin-1")
                        found += [f"{path}: {t}" for t in T["tokens"] if t in text]
                except OSError:
                    pass
report["walk_found"] = found

# 4. the base interpreter's packages and the machine's other Pythons
imported = {}
for directory, module in T["foreign_packages"]:
    sys.path.append(directory)
    try:
        __import__(module)
        imported[module] = directory
    except Exception as error:
        pass
    sys.path.remove(directory)
    listing = reads(directory)
    if listing:
        imported[directory] = listing[:5]
report["foreign_imports"] = imported

# 5. the grader's code and the course package: rewrite them for every later student
# (probes that change nothing when they succeed, so a broken grader does not break this machine)
changed = []
for path in T["code_files"]:
    try:
        with open(path, "r+b"):
            changed.append([path, "opened for writing"])
    except OSError:
        pass
    try:
        os.chmod(path, os.stat(path).st_mode & 0o7777)
        changed.append([path, "chmod"])
    except OSError:
        pass
    new = os.path.join(os.path.dirname(path), "evil_student_module.py")
    try:
        os.close(os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.unlink(new)
        changed.append([new, "created"])
    except OSError:
        pass
report["changed"] = changed

# 6. the network
try:
    socket.create_connection(("127.0.0.1", T["grader_port"]), timeout=1).close()
    report["network"] = "reached the grader's port"
except OSError as error:
    report["network"] = f"unreachable: {error}"

# 7. a double-forked daemon that outlives the sandbox (and would rewrite grades.csv later)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sh", ["sh", "-c", f"sleep 600; : {T['daemon']}"])
    os._exit(0)
time.sleep(0.5)
print("RECON " + json.dumps(report))
"""

ADD_LOGGING = '''LOGGED = []


def add(a, b):
    """Correct, but prints and keeps every case it is called with."""
    LOGGED.append([a, b] if isinstance(a, int) else "array")
    print("ADD-ARGS", a, b)
    return a + b
'''

# In the torch sandbox: serve torch's answers on every channel a numpy-only cell might reach.
TORCH_SERVER = r"""
import json, os, socket, threading, time
import torch
T = json.loads(__TARGETS__)

def answer(x):
    return (torch.tensor(x, dtype=torch.float64) * 2).tolist()

def serve_stream(server):
    while True:
        conn, _ = server.accept()
        try:
            conn.sendall(json.dumps(answer(json.loads(conn.recv(65536)))).encode())
        finally:
            conn.close()

def serve_fifo(folder):
    while True:
        with open(os.path.join(folder, "req.fifo")) as f:
            request = f.read()
        with open(os.path.join(folder, "rep.fifo"), "w") as f:
            f.write(json.dumps(answer(json.loads(request))))

def serve_polled(folder):
    while True:
        question = os.path.join(folder, "question.json")
        if os.path.exists(question):
            with open(question) as f:
                request = json.load(f)
            os.unlink(question)
            with open(os.path.join(folder, "answer.json"), "w") as f:
                json.dump(answer(request), f)
            os.chmod(os.path.join(folder, "answer.json"), 0o666)
        time.sleep(0.01)

os.chmod(".", 0o777)
servers = []
TMP = "/tmp/" + T["daemon"]  # a folder of this run in the (maybe shared) /tmp
os.makedirs(TMP, exist_ok=True)
os.chmod(TMP, 0o777)
for path in ("answers.sock", TMP + "/answers.sock", "\0answers-" + T["daemon"]):
    s = socket.socket(socket.AF_UNIX)
    if not path.startswith("\0") and os.path.exists(path):
        os.unlink(path)
    s.bind(path)
    if not path.startswith("\0"):
        os.chmod(path, 0o777)
    s.listen()
    servers.append(s)
tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    tcp.bind(("127.0.0.1", T["answer_port"]))
    tcp.listen()
    servers.append(tcp)
except OSError:
    pass
for s in servers:
    threading.Thread(target=serve_stream, args=(s,), daemon=True).start()
for folder in (os.getcwd(), TMP):
    for name in ("req.fifo", "rep.fifo"):
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            os.mkfifo(path, 0o666)
        os.chmod(path, 0o666)
    threading.Thread(target=serve_fifo, args=(folder,), daemon=True).start()
    threading.Thread(target=serve_polled, args=(folder,), daemon=True).start()
with open(TMP + "/torch-folder.txt", "w") as f:
    f.write(os.getcwd())
os.chmod(TMP + "/torch-folder.txt", 0o666)
print("SERVING", len(servers), "sockets")
"""

# The numpy-only function: asks the torch sandbox (every channel), or imports torch behind the
# import hook's back; returns zeros (a wrong answer) when nothing works.
NUMPY_CHEAT = r"""
import json, os, select, socket, sys, time
import numpy as np
T = json.loads(__TARGETS__)

def _stream(address, family, x):
    s = socket.socket(family)
    s.settimeout(0.4)
    s.connect(address)
    s.sendall(json.dumps(x).encode())
    return json.loads(s.recv(65536))

def _fifo(folder, x):
    fd = os.open(os.path.join(folder, "req.fifo"), os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, json.dumps(x).encode())
    os.close(fd)
    fd = os.open(os.path.join(folder, "rep.fifo"), os.O_RDONLY | os.O_NONBLOCK)
    if not select.select([fd], [], [], 0.4)[0]:
        raise TimeoutError("no answer on the FIFO")
    return json.loads(os.read(fd, 65536))

def _polled(folder, x):
    with open(os.path.join(folder, "question.json"), "w") as f:
        json.dump(x, f)
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:
        try:
            with open(os.path.join(folder, "answer.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.01)
    raise TimeoutError("no answer file")

def conv_like(x):
    x = [float(v) for v in np.asarray(x).ravel()]
    tried = {}
    try:
        sys.meta_path[:] = [f for f in sys.meta_path if "Torch" not in type(f).__name__]
        for name in [m for m in sys.modules if m.startswith("torch")]:
            del sys.modules[name]
        import torch
        tried["torch import"] = "WORKED"
        return (torch.tensor(x) * 2).numpy()
    except Exception as error:
        tried["torch import"] = type(error).__name__
    tmp = "/tmp/" + T["daemon"]
    folders = [".", tmp]
    try:
        folders.append(open(tmp + "/torch-folder.txt").read().strip())
    except OSError:
        pass
    attempts = [("abstract", lambda: _stream("\0answers-" + T["daemon"], socket.AF_UNIX, x))]
    attempts.append(("tcp", lambda: _stream(("127.0.0.1", T["answer_port"]), socket.AF_INET, x)))
    for folder in folders:
        sock = os.path.join(folder, "answers.sock")
        attempts.append((f"socket {folder}", lambda p=sock: _stream(p, socket.AF_UNIX, x)))
        attempts.append((f"fifo {folder}", lambda d=folder: _fifo(d, x)))
        attempts.append((f"polled {folder}", lambda d=folder: _polled(d, x)))
    for name, attempt in attempts:
        try:
            got = attempt()
            tried[name] = "WORKED"
            print("CHANNELS " + json.dumps(tried))
            return np.asarray(got)
        except Exception as error:
            tried[name] = type(error).__name__
    print("CHANNELS " + json.dumps(tried))
    return np.zeros(len(x))
"""

LEAK = "print('LEAKED ' + json.dumps(LOGGED))\n"

ATTACK_GRADER = """
import json, sys
from pathlib import Path
import nbformat
from autograder.sandbox import Limits, Zygote, isolation
from autograder.score import grade_notebook
config = json.loads(Path(sys.argv[1]).read_text())
source = nbformat.read(config["source"], as_version=4)
out = {"isolation": isolation().mode, "runs": []}
try:
    for run in config["runs"]:
        log = []
        student = nbformat.read(run["student"], as_version=4)
        result = grade_notebook(source, student, Path(run["workdir"]), Limits(**config["limits"]),
                                "fixture", log=log.append, executed_path=Path(run["executed"]))
        nb = nbformat.read(run["executed"], as_version=4)
        out["runs"].append({
            "tests": {t.grade_id: [t.points, t.message] for t in result.tests},
            "log": log,
            "outputs": [
                o.get("text") or f"{o.get('ename')}: {o.get('evalue')}"
                for c in nb.cells
                for o in c.get("outputs", [])
            ],
        })
finally:
    Zygote.shutdown_all()
Path(sys.argv[2]).write_text(json.dumps(out))
"""


def attack_source() -> nbformat.NotebookNode:
    nb = source_notebook()
    hidden = nb.cells[4]
    hidden.source = hidden.source.replace(
        "### BEGIN HIDDEN TESTS\n", f"### BEGIN HIDDEN TESTS\n# {TOKENS['source']}\n"
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            TEST_ADD_SWEEP, metadata=_meta("test_add_sweep", grade=True, points=1)
        )
    )
    return nb


def attack_student(targets: dict, comment: str = "") -> nbformat.NotebookNode:
    text = json.dumps(json.dumps(targets))
    nb = attack_source()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "add":
            cell.source = ADD_LOGGING + comment
        elif grade_id == "conv_like":
            cell.source = NUMPY_CHEAT.replace("__TARGETS__", text)
    nb.cells.insert(5, nbformat.v4.new_code_cell(TORCH_SERVER.replace("__TARGETS__", text)))
    nb.cells.insert(2, nbformat.v4.new_code_cell(RECON.replace("__TARGETS__", text)))
    nb.cells.append(nbformat.v4.new_code_cell("import json\n" + LEAK))
    return nb


def _attack_course(base: Path) -> dict:
    """A course root every user could read (so only the sandbox keeps it out of reach)."""
    course = base / "course_root"
    (course / "source" / "fixture").mkdir(parents=True)
    nbformat.write(attack_source(), str(course / "source" / "fixture" / "fixture.ipynb"))
    (course / "gradebook.db").write_text(TOKENS["gradebook"])
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    bob = course / "submitted" / "bob" / "fixture" / "fixture.ipynb"
    bob.parent.mkdir(parents=True)
    bob.write_text(TOKENS["bob"])
    work = course / "submitted" / "alice" / "fixture"
    work.mkdir(parents=True)
    (work / "data.txt").write_text("the student's own file\n")
    (work / "link-to-bob.ipynb").symlink_to(bob)  # never copied into a sandbox
    os.mkfifo(work / "a.fifo")
    for path in [base, *base.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    import sysconfig

    base_vars = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    foreign = [(sysconfig.get_path("purelib", vars=base_vars), "scipy")]
    foreign += [(d, "apt_pkg") for d in ("/usr/lib/python3/dist-packages",) if os.path.isdir(d)]
    secrets_ = [
        str(course / "source" / "fixture" / "fixture.ipynb"),
        str(course / "source"),
        str(course / "gradebook.db"),
        str(course / ".autograder-secret"),
        str(bob),
        str(course / "submitted" / "bob"),
        str(ROOT / "source" / "01_anatomy" / "anatomy.ipynb"),
        str(ROOT / "nbgrader_config.py"),
    ]
    code_files = [
        str(ROOT / "course" / "checks" / "core.py"),
        str(ROOT / "autograder" / "score.py"),
        str(Path(np.__file__)),
    ]
    return {
        "course": str(course),
        "work": str(work),
        "secrets": secrets_,
        "relative": ["../../../gradebook.db", "../../bob/fixture/fixture.ipynb", "../../../source"],
        "tokens": [TOKENS["source"], TOKENS["gradebook"], TOKENS["bob"]],
        "foreign_packages": foreign,
        "code_files": code_files,
        "daemon": TOKENS["daemon"] + "-" + os.urandom(4).hex(),
        "answer_port": 20000 + int.from_bytes(os.urandom(2), "big") % 30000,
        "grader_port": 0,
    }


def _mode_available(mode: str) -> str | None:
    if os.geteuid() != 0:
        return "the attack suite needs root (to choose the isolation mode per run)"
    if mode in ("namespaces", "user-namespaces") and not shutil.which("bwrap"):
        return "bubblewrap is not installed"
    if mode == "namespaces" and isolation_mode() != "namespaces":
        return f"this machine gives {isolation_mode()!r} isolation, not namespaces"
    if mode == "user-namespaces" and not shutil.which("setpriv"):
        return "setpriv (util-linux) is not installed"
    return None


def _host_cmdlines(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _report(outputs: list[str], tag: str):
    for text in outputs:
        for line in text.splitlines():
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1 :])
    raise AssertionError(f"no {tag} report in the outputs: {outputs}")


#: One xdist worker grades each mode once and runs all the tests reading that run.
attack_suite = pytest.mark.xdist_group("attack-suite")


@pytest.fixture(scope="module", params=list(ATTACK_MODES))
def attack(request, tmp_path_factory):
    """The attack notebook graded once in ``request.param`` mode (namespaces mode: 3 runs)."""
    mode = request.param
    why_not = _mode_available(mode)
    if why_not:
        pytest.skip(why_not)
    base = Path(tempfile.mkdtemp(prefix="attack-", dir="/tmp"))
    try:
        targets = _attack_course(base)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        targets["grader_port"] = listener.getsockname()[1]
        # without namespaces the machine's world-readable files stay visible (other users' /tmp):
        # what must be out of reach is the course, this checkout and the other sandboxes
        targets["walk"] = ["/"] if mode != "uid" else [str(base), str(ROOT)]
        targets["skip_dirs"] = ["proc", "sys", "dev", "usr"]
        runs = [("first", "")]
        if mode == "namespaces":  # hidden cases: a regrade, and a resubmission that hard-codes
            runs += [("regrade", ""), ("changed", "# answers hard-coded from the feedback\n")]
        config = {
            "source": str(base / "course_root" / "source" / "fixture" / "fixture.ipynb"),
            "limits": dataclasses.asdict(
                dataclasses.replace(LIMITS, cell_timeout=30, notebook_timeout=240, output=2**20)
            ),
            "runs": [],
        }
        private = base / "grader"  # the grader's own files (they name the tokens)
        private.mkdir(mode=0o700)
        for name, comment in runs:
            student = private / f"student-{name}.ipynb"
            nbformat.write(attack_student(targets, comment), str(student))
            config["runs"].append(
                {
                    "student": str(student),
                    "workdir": targets["work"],
                    "executed": str(private / f"executed-{name}.ipynb"),
                }
            )
        (private / "config.json").write_text(json.dumps(config))
        prefix, extra_env = ATTACK_MODES[mode]
        # each mode as named, whatever the outer run's AUTOGRADER_ISOLATION says
        env = {k: v for k, v in os.environ.items() if k != sandbox.MODE_ENV}
        env.update(COURSE_ROOT=targets["course"], **extra_env)
        env["AUTOGRADER_PROTECTED"] = str(ROOT)  # this checkout is a course on the machine too
        env.pop(sandbox.UNSAFE_ENV, None)
        started = time.monotonic()
        proc = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-c",
                ATTACK_GRADER,
                str(private / "config.json"),
                str(private / "out.json"),
            ],
            cwd=private,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        print(f"{mode}: graded in {time.monotonic() - started:.1f} s")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
        out = json.loads((private / "out.json").read_text())
        listener.close()
        for run in out["runs"]:
            print("\n".join(run["log"]))
        yield {
            "mode": mode,
            "isolation": out["isolation"],
            "runs": out["runs"],
            "first": out["runs"][0],
            "recon": _report(out["runs"][0]["outputs"], "RECON"),
            "targets": targets,
            "alive_daemons": _host_cmdlines(targets["daemon"]),
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)


@attack_suite
def test_attack_run_used_the_isolation_mode_it_was_meant_to(attack):
    # AUTOGRADER_ISOLATION=off reaches the process that decides (it used to stop at the zygote)
    assert attack["isolation"] == attack["mode"]
    assert f"{attack['mode']} isolation" in attack["first"]["log"][0]
    recon = attack["recon"]
    if attack["mode"] == "user-namespaces":
        assert recon["uid"] == boundary.INNER_ID
    else:
        assert recon["uid"] >= UID_BASE, "student code runs under a private uid"


@attack_suite
def test_cheating_notebook_scores_exactly_the_honest_part(attack):
    tests = attack["first"]["tests"]
    points = {gid: value[0] for gid, value in tests.items()}
    assert points == {"test_add": 1, "test_add_hidden": 2, "test_conv": 0, "test_add_sweep": 1}


@attack_suite
def test_proc_lists_only_the_sandbox_and_no_process_outside_is_reachable(attack):
    recon = attack["recon"]
    if attack["mode"] == "namespaces":  # a fresh /proc of the student's own PID namespace
        assert 1 in recon["proc_pids"] and recon["pid"] == 1, recon["proc_pids"]
        assert len(recon["proc_pids"]) < 12, recon["proc_pids"]
        assert recon["proc_uids"] == [recon["uid"]], "only the sandbox's processes are listed"
    elif attack["mode"] == "user-namespaces":  # no /proc can be mounted there: there is none
        assert recon["proc_pids"] == [] and recon["pid"] == 1
    else:  # no namespaces: processes are listed, none of them can be entered or signalled
        assert len(recon["proc_pids"]) > 20
    own = [line for line in recon["ps"] if line.split()[1:2] == [str(recon["uid"])]]
    assert all(entry[1] in ("root", "cwd") for entry in recon["reached"]) or not recon["reached"]
    secret_hits = [entry for entry in recon["reached"] if entry[2] == "SECRET"]
    assert secret_hits == [], secret_hits
    if attack["mode"] == "uid":
        foreign_pids = {int(line.split()[0]) for line in recon["ps"] if line not in own}
        assert not foreign_pids & {entry[0] for entry in recon["reached"]}, recon["reached"]
        assert not foreign_pids & set(recon["signalled"]), recon["signalled"]
    else:
        assert all(line.split()[1] == str(recon["uid"]) for line in own)
        assert len(recon["ps"]) < 12 or recon["ps"][0].startswith("ps failed"), recon["ps"]


@attack_suite
def test_course_gradebook_classmates_and_secret_are_out_of_reach(attack):
    recon = attack["recon"]
    assert recon["direct"] == {}, recon["direct"]
    assert recon["walk_found"] == [], recon["walk_found"]
    # its folder is a copy of the student's regular files: no symlink, FIFO, notebook or socket
    assert recon["folder"] == ["data.txt"] or set(recon["folder"]) == {".home", ".tmp", "data.txt"}
    everything = json.dumps(attack["first"])
    for token in TOKENS.values():
        assert token not in everything or token == TOKENS["daemon"]


@attack_suite
def test_base_interpreter_and_system_packages_are_not_importable(attack):
    assert attack["recon"]["foreign_imports"] == {}


@attack_suite
def test_course_and_grader_code_cannot_be_rewritten(attack):
    assert attack["recon"]["changed"] == []


@attack_suite
def test_double_forked_daemon_does_not_outlive_the_sandbox(attack):
    assert attack["alive_daemons"] == [], "a process of the student outlived its sandbox"


@attack_suite
def test_no_network_with_namespaces(attack):
    if attack["mode"] == "uid":
        pytest.skip("without namespaces the network is not hidden (see the README)")
    assert attack["recon"]["network"].startswith("unreachable"), attack["recon"]["network"]


@attack_suite
def test_numpy_only_function_reaches_neither_torch_nor_the_torch_sandbox(attack):
    points, message = attack["first"]["tests"]["test_conv"]
    assert any(out.startswith("SERVING") for out in attack["first"]["outputs"]), "no server ran"
    channels = _report([message], "CHANNELS")
    assert "WORKED" not in channels.values(), channels
    assert channels["torch import"] != "WORKED"  # no torch files: at most an empty namespace
    tmp = "/tmp/" + attack["targets"]["daemon"]
    assert {"abstract", "tcp", "socket .", "fifo .", "polled .", f"socket {tmp}"} <= set(channels)
    if attack["mode"] == "uid":  # the torch sandbox told it where its folder is, via /tmp...
        assert any(k.startswith("socket /tmp/autograder-sandboxes-") for k in channels), channels
    assert points == 0


@attack_suite
def test_hidden_test_output_is_not_shown_but_visible_output_is(attack):
    points, message = attack["first"]["tests"]["test_add_sweep"]
    assert points == 1
    assert "ADD-ARGS 1 1" in message, message  # the visible part's print is kept
    assert message.count("ADD-ARGS") == 1, message
    assert score.HIDDEN_OUTPUT_NOTE in message
    feedback = "".join(attack["first"]["outputs"])
    assert feedback.count("ADD-ARGS") == 3  # visible calls of test_add (2) and test_add_sweep


@attack_suite
def test_hidden_cases_come_from_the_secret_stable_per_submission(attack):
    if attack["mode"] != "namespaces":
        pytest.skip("the seeding does not depend on the isolation mode: checked once")
    leaked = [_report(run["outputs"], "LEAKED") for run in attack["runs"]]
    first, regrade, changed = ([tuple(c) for c in cases if c != "array"] for cases in leaked)
    hidden = set(first) - {(1, 2), (2, 2), (1, 1)}
    assert len(hidden) >= 5, first
    assert first == regrade, "a regrade of the same submission must draw the same cases"
    # hypothesis always tries a few special values (0, the bounds): those may recur, no more
    assert len(hidden & set(changed)) <= len(hidden) // 3, "a resubmission draws new cases"
    from hypothesis import strategies as st

    from course.checks.core import sweep

    public = []

    def spy(a, b):
        public.append((a, b))
        return a + b

    bounds = st.integers(-(10**6), 10**6)
    sweep(spy, lambda a, b: a + b, st.fixed_dictionaries({"a": bounds, "b": bounds}),
          name="add", max_examples=12, quiet=True)  # fmt: skip
    assert len(hidden & set(public)) <= len(hidden) // 3, "not the public derandomized cases"


# -- the isolation decision, the layout and the secret (no grading) ------------------------------


def test_without_root_or_namespaces_the_grader_refuses_unless_told(monkeypatch, tmp_path, capsys):
    from autograder import cli
    from autograder.execute import Sandbox

    monkeypatch.setattr(
        sandbox, "isolation", lambda: sandbox.Isolation("unsafe", "not root, no user namespaces")
    )
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    monkeypatch.setattr(sandbox.Zygote, "_instances", {})
    why = sandbox.refusal()
    assert "not root, no user namespaces" in why and "--unsafe-no-sandbox" in why
    with pytest.raises(InfrastructureError, match="cannot isolate student code"):
        Sandbox(tmp_path, LIMITS)
    code = cli.main(["grade", "01_anatomy", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--unsafe-no-sandbox" in capsys.readouterr().err
    sandbox.allow_unsafe()
    assert sandbox.refusal() is None


def test_isolation_off_is_decided_where_the_sandbox_is_made():
    env = dict(os.environ, AUTOGRADER_ISOLATION="off")
    code = "from autograder.sandbox import isolation; print(isolation().mode)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == ("uid" if os.geteuid() == 0 else "unsafe"), out.stderr


def test_the_sandbox_view_holds_no_course_file_and_no_other_python():
    import sysconfig

    for numpy_only in (False, True):
        entries = boundary.layout(numpy_only=numpy_only)
        readable = boundary.readable_paths(entries)
        covers = [e[1] for e in entries if e[0] == "cover"]
        for path in readable:
            assert path != str(ROOT) and not str(ROOT).startswith(path + "/"), path
            assert not path.startswith(str(ROOT / "source")) and "release" not in path, path
        base_vars = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
        base_site = sysconfig.get_path("purelib", vars=base_vars)
        if any(base_site.startswith(p + "/") for p in readable):
            assert base_site in covers, "the base interpreter's packages must be covered"
        assert not any(p.endswith(("dist-packages",)) for p in readable), readable
        torch_dir = os.path.dirname(os.path.dirname(__import__("torch").__file__)) + "/torch"
        assert (torch_dir in covers) == numpy_only


def test_course_secret_is_made_once_kept_out_of_release_and_carried_by_gradescope(tmp_path):
    import zipfile

    from autograder import secret
    from autograder.gradescope import build_bundle

    course = tmp_path / "course"
    (course / "source" / "fixture").mkdir(parents=True)
    nbformat.write(source_notebook(), str(course / "source" / "fixture" / "fixture.ipynb"))
    for name in ("pyproject.toml", "README.md", "nbgrader_config.py"):
        (course / name).write_text("")
    for package in ("course", "autograder"):
        (course / package).mkdir()
        (course / package / "__init__.py").write_text("")
    key = secret.assignment_key(course, "fixture")
    assert key == secret.assignment_key(course, "fixture"), "stable from run to run"
    assert key != secret.assignment_key(course, "other")
    assert oct((course / secret.SECRET_FILE).stat().st_mode & 0o777) == "0o600"
    bundle = build_bundle("fixture", course, tmp_path / "bundle.zip")
    with zipfile.ZipFile(bundle) as zf:
        carried = zf.read(secret.SECRET_FILE).decode().strip()
    assert bytes.fromhex(carried) == secret.course_secret(course)
    assert not list((ROOT / "release").rglob(secret.SECRET_FILE))
    assert secret.SECRET_FILE in (ROOT / ".gitignore").read_text()


def test_hidden_cases_need_the_grader_visible_ones_stay_derandomized():
    from hypothesis import strategies as st

    from course.checks import core

    def cases(key=None) -> list:
        seen = []

        def spy(a):
            seen.append(a)
            return a

        with core.hidden_cases(key) if key else contextlib.nullcontext():
            core.sweep(
                spy, lambda a: a, st.fixed_dictionaries({"a": st.integers(-999, 999)}), quiet=True
            )
        return seen

    assert cases() == cases(), "visible: the same cases on every run"
    assert cases(b"k1") == cases(b"k1"), "hidden: stable for one key"
    assert cases(b"k1") != cases() and cases(b"k1") != cases(b"k2")


@needs_root
def test_zygote_started_from_a_thread_outlives_the_thread():
    # Dask runs tasks in threads; bubblewrap's --die-with-parent follows the starting *thread*
    import threading

    zygote = sandbox.Zygote(torch=False)
    thread = threading.Thread(target=zygote.ensure_started)
    thread.start()
    thread.join()
    try:
        time.sleep(1.0)
        assert zygote.alive(), "the zygote died with the thread that started it"
        assert zygote.ensure_started() == 0.0
    finally:
        zygote.stop()
