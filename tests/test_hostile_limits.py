"""Issue 10, grader-side limits: test-cell time and memory in any thread, copy-out, decoding bounds.

No sandbox here: the guard and the copy are exercised directly (in worker threads, as under Dask),
and the decoder on crafted frames. The real-sandbox cases are in test_hostile_sandbox.py.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import io
import json
import os
import shutil
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import guard, proxy
from autograder.copyout import Mirror


def run_in_thread(fn):
    with cf.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=120)


def guarded(body, tmp_path, seconds=0.5, memory=200 * 2**20):
    """Run ``body(cell)`` in a TrustedCell in a worker thread; the exception type it ended with."""

    def work():
        out = io.StringIO()
        try:
            with guard.TrustedCell(tmp_path, seconds, memory, out) as cell:
                body(cell)
        except guard.CellLimitExceeded as error:
            return type(error), out.getvalue()
        return None, out.getvalue()

    return run_in_thread(work)


def test_busy_test_cell_is_stopped_in_a_worker_thread(tmp_path):
    def spin(cell):
        while True:
            try:
                sum(range(1000))
            except Exception:  # noqa: BLE001 - a check's broad except must not swallow it
                pass

    started = time.monotonic()
    kind, _ = guarded(spin, tmp_path)
    assert kind is guard.CellTimeLimit
    assert time.monotonic() - started < 60  # limit 0.5 s CPU; generous for a loaded machine


def test_growing_test_cell_is_stopped_at_its_memory_bound(tmp_path):
    def grow(cell):
        hoard = []
        while True:
            hoard.append(bytearray(8 * 2**20))

    kind, _ = guarded(grow, tmp_path, seconds=60, memory=300 * 2**20)
    assert kind is guard.CellMemoryLimit


def test_time_in_sandbox_calls_is_not_charged_and_output_is_per_thread(tmp_path):
    def wait_outside(cell):
        print("from the cell")
        for _ in range(3):
            with cell.outside():
                time.sleep(0.6)  # a slow student function: its own limit applies, not ours
        assert os.getcwd() == str(tmp_path)

    kind, printed = guarded(wait_outside, tmp_path, seconds=0.5)
    assert kind is None and printed == "from the cell\n"


def test_no_exception_leaks_after_the_cell(tmp_path):
    def short(cell):
        time.sleep(0.01)

    def many():
        before = os.getcwd()
        for _ in range(50):
            guarded(short, tmp_path, seconds=0.001)
        time.sleep(1.5)  # a late asynchronous exception would land here
        assert os.getcwd() == before  # the cell's working directory is not left behind
        return "clean"

    assert run_in_thread(many) == "clean"


def test_copy_out_keeps_regular_files_only_and_caps_them(tmp_path):
    student = tmp_path / "student"
    (student / "logs").mkdir(parents=True)
    (student / "logs" / "events.out.tfevents.1").write_bytes(b"real")
    os.mkfifo(student / "logs" / "events.out.tfevents.2")
    os.symlink("/etc/passwd", student / "logs" / "events.out.tfevents.3")
    os.symlink("/etc", student / "etc")
    (student / "big.bin").write_bytes(b"0" * 5000)
    (student / "zz").mkdir()
    for i in range(30):
        (student / "zz" / f"f{i:02d}").write_text("x")
    mirror = Mirror(student, max_file_bytes=4096, max_entries=20)
    started = time.monotonic()
    mirror.sync()
    assert time.monotonic() - started < 30  # never blocks on the FIFO
    root = mirror.root
    assert (root / "logs" / "events.out.tfevents.1").read_bytes() == b"real"
    for rel in ("logs/events.out.tfevents.2", "logs/events.out.tfevents.3", "etc", "big.bin"):
        assert not os.path.lexists(root / rel), rel
    assert mirror.skipped["logs/events.out.tfevents.2"] == "a FIFO"
    assert mirror.skipped["logs/events.out.tfevents.3"] == "a symbolic link"
    assert "larger than 4096" in mirror.skipped["big.bin"]
    assert any("past the first 20" in why for why in mirror.skipped.values())
    # a file the student's code removes goes; one it rewrites is copied again
    (student / "logs" / "events.out.tfevents.1").write_bytes(b"newer")
    mirror.sync()
    assert (root / "logs" / "events.out.tfevents.1").read_bytes() == b"newer"
    (student / "logs" / "events.out.tfevents.1").unlink()
    mirror.sync()
    assert not (root / "logs" / "events.out.tfevents.1").exists()
    assert "a FIFO" in mirror.describe_skipped()
    # a file that becomes a folder, and a folder that becomes a file
    (student / "big.bin").unlink()
    (student / "x").write_text("1")
    mirror.sync()
    (student / "x").unlink()
    (student / "x").mkdir()
    (student / "x" / "y").write_text("2")
    shutil.rmtree(student / "zz")
    (student / "zz").write_text("3")
    mirror.sync()
    assert (root / "x" / "y").read_text() == "2" and (root / "zz").read_text() == "3"
    mirror.close()
    assert not root.exists()


def test_what_the_check_deletes_is_deleted_in_the_student_folder_never_outside(tmp_path):
    student, outside = tmp_path / "student", tmp_path / "outside"
    (student / "tb" / "run").mkdir(parents=True)
    (student / "tb" / "run" / "events").write_text("e")
    (student / "keep").mkdir()
    (student / "keep" / "a").write_text("a")
    outside.mkdir()
    (outside / "a").write_text("secret")
    mirror = Mirror(student)
    mirror.sync()
    shutil.rmtree(mirror.root / "tb")  # the check cleans up its log folder
    (student / "keep" / "a").unlink()  # the student swaps a folder for a symlink meanwhile
    (student / "keep").rmdir()
    os.symlink(outside, student / "keep")
    (mirror.root / "keep" / "a").unlink()
    mirror.push_deletions()
    assert not (student / "tb").exists()
    assert (outside / "a").read_text() == "secret"  # not reached through the symlink
    mirror.close()


# ---------------------------------------------------------------- decoding bounds


def _npy(array: np.ndarray) -> dict:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return {"__ndarray__": base64.b64encode(buffer.getvalue()).decode()}


def test_frame_of_many_tiny_lists_is_refused_before_it_is_built():
    body = b'{"id": 1, "type": "done", "value": [' + b"[]," * 10_000_000 + b"[]]}"
    with pytest.raises(proxy.FrameTooComplex, match="more than"):
        proxy.unpack_body(body)


def test_arrays_past_the_element_bound_are_refused_from_their_header(monkeypatch):
    monkeypatch.setattr(proxy, "MAX_ARRAY_ELEMENTS", 1000)
    ok = proxy.decode({"__tuple__": [_npy(np.zeros(400)), _npy(np.zeros(500))]})
    assert len(ok) == 2
    with pytest.raises(proxy.FrameTooComplex, match="1000 elements"):
        proxy.decode({"__tuple__": [_npy(np.zeros(600)), _npy(np.zeros(600))]})
    truncated = _npy(np.zeros(10))
    truncated["__ndarray__"] = truncated["__ndarray__"][:-12]
    with pytest.raises(proxy.NotPlainData, match="malformed array"):
        proxy.decode(truncated)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=',[{"\\}]: ab'),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=20,
)


def _reference_count(text: str) -> int:
    """Structure characters outside strings, counted character by character."""
    count, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            in_string = escaped or ch != '"'
            escaped = not escaped and ch == "\\"
        elif ch == '"':
            in_string = True
        elif ch in ",[{":
            count += 1
    return count


@settings(max_examples=200, deadline=None)
@given(value=JSON)
def test_property_value_count_matches_a_reference_count(value):
    text = json.dumps(value)
    saved = proxy.MAX_VALUES
    proxy.MAX_VALUES = 0  # force the exact path
    try:
        assert proxy.json_value_count(text.encode()) == _reference_count(text)
    finally:
        proxy.MAX_VALUES = saved
