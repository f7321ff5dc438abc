"""The trusted grader against honest and cheating submissions (issue 5, stages 2-3).

Each test grades a tiny self-contained notebook pair (built below) with
``autograder.score.grade_notebook`` and asserts the score an honest grader would give, plus
what makes the attack fail. Limits are small so the whole file runs in about a minute.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import proxy, score
from autograder.notebooks import stub_source as stub
from autograder.results import InfrastructureError, NotebookResult
from autograder.sandbox import UID_BASE, Limits, isolation_available, process_state
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


# -- attacks on the disk ------------------------------------------------------------------------


@needs_root
def test_reading_hidden_tests_gradebook_and_other_students_from_disk(tmp_path):
    course_root = tmp_path / "course_root"
    (course_root / "source" / "fixture").mkdir(parents=True)
    secret_nb = course_root / "source" / "fixture" / "fixture.ipynb"
    nbformat.write(source_notebook(), str(secret_nb))
    gradebook = course_root / "gradebook.db"
    gradebook.write_text("SECRET GRADEBOOK")
    other = course_root / "submitted" / "bob" / "fixture" / "fixture.ipynb"
    other.parent.mkdir(parents=True)
    other.write_text("BOB'S WORK")
    for path in (secret_nb, gradebook, other):  # the grader itself can read them
        assert path.read_bytes()
    targets = [
        "../../../gradebook.db",
        "../../../source/fixture/fixture.ipynb",
        "../../bob/fixture/fixture.ipynb",
        str(gradebook),
        str(secret_nb),
        str(other),
        str(ROOT / "README.md"),
        str(ROOT / "autograder" / "score.py"),
        str(ROOT / "source"),
    ]
    spy = (
        "import os\n"
        f"targets = {targets!r}\n"
        "found = []\n"
        "for path in targets:\n"
        "    try:\n"
        "        if os.path.isdir(path):\n"
        "            found.append((path, os.listdir(path)))\n"
        "        else:\n"
        "            found.append((path, open(path, 'rb').read(40)))\n"
        "    except OSError:\n"
        "        pass\n"
        "walked = []\n"
        "for dirpath, dirnames, filenames in os.walk('/', topdown=True):\n"
        "    skip = ('proc', 'usr', 'sys', 'site-packages')\n"
        "    dirnames[:] = [d for d in dirnames if d not in skip]\n"
        "    walked += [(dirpath, f) for f in filenames if f.endswith(('.db', '.ipynb'))]\n"
        "print('FOUND', found)\n"
        "print('WALKED', walked)\n"
        "def add(a, b):\n"
        "    if found:\n"
        "        return a + b\n"
        "    raise NotImplementedError('nothing to steal')\n"
    )
    result = grade(tmp_path, student_notebook(add=spy, conv=NO_SOLUTION_CONV))
    outputs = executed_text(result)
    assert "FOUND []" in outputs, outputs[:2000]
    # the student's own notebook is the only notebook or database on the visible disk
    own = str(tmp_path / "course_root" / "submitted" / "alice" / "fixture")
    assert f"WALKED [({own!r}, 'fixture.ipynb')]" in outputs, outputs[:2000]
    assert "SECRET" not in outputs and "BOB" not in outputs and "HIDDEN" not in outputs
    assert "gradebook.db" not in outputs.replace("../../../gradebook.db", "")
    assert result.score == 0


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
