"""Issue 10 with the real sandbox: the 08 FIFO, parse bombs, the 64 MB frame, unsafe HTML.

One hostile notebook is graded once (module fixture) with the real scorer and the course's own
TensorBoard check; each case then asserts on that result. The frame bomb is graded on its own
(it kills its sandbox). Feedback of the hostile notebook is opened in Debian's Chromium: no
script may run.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from autograder import guard, record
from autograder.results import SubmissionResult
from autograder.sandbox import Limits
from autograder.sanitize import image_data
from autograder.score import grade_notebook
from autograder.validate import merge_locked_cells, read_student_notebook

LIMITS = Limits(
    cell_timeout=20, notebook_timeout=300, memory=1024 * 2**20, processes=32, output=256 * 1024
)
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
v4 = nbformat.v4


def meta(gid: str, *, solution=False, points=None) -> dict:
    nbg = {"grade": points is not None, "solution": solution, "locked": not solution}
    nbg.update(grade_id=gid, schema_version=3)
    if points is not None:
        nbg["points"] = points
    return {"nbgrader": nbg}


def source(cells: list[tuple[str, str, int | None]]) -> nbformat.NotebookNode:
    """(grade_id, code, points or None for a solution cell) -> an nbgrader source notebook."""
    nb = v4.new_notebook(cells=[v4.new_code_cell("import numpy as np")])
    for gid, code, points in cells:
        nb.cells.append(
            v4.new_code_cell(code, metadata=meta(gid, solution=points is None, points=points))
        )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def student(src, answers: dict[str, str], extra: list) -> nbformat.NotebookNode:
    """The source with the student's answers and extra cells, read as the pipeline reads it."""
    nb = nbformat.reads(nbformat.writes(src), as_version=4)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    nb.cells[1:1] = extra
    path = Path(tempfile.mkdtemp()) / "student.ipynb"
    nbformat.write(nb, str(path))
    merged, _ = merge_locked_cells(src, read_student_notebook(path, path.name))
    return merged


def grade_in_thread(src, nb, workdir: Path, name: str):
    """grade_notebook in a worker thread (as under Dask), bounded here so a hang fails the test."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with cf.ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            grade_notebook,
            src,
            nb,
            workdir,
            LIMITS,
            name,
            print,
            workdir.parent / f"{name}.executed.ipynb",
        )
        result = future.result(timeout=900)
    return result, time.monotonic() - started


FIFO_LOG = '''import os

def log_feature_maps(logdir, maps, step, max_images=4):
    """Makes a FIFO named like a TensorBoard event file: a reader that opens it blocks."""
    os.makedirs(logdir, exist_ok=True)
    fifo = os.path.join(logdir, "events.out.tfevents.1700000000.host")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    os.symlink("/etc/passwd", os.path.join(logdir, f"events.out.tfevents.{step}.link"))
    return [f"feature_maps/image_{i}" for i in range(min(len(maps), max_images))]
'''
TEST_LOG = (
    "from course.checks.tensorboard import check_log_feature_maps\n\n"
    "check_log_feature_maps(log_feature_maps)\n"
)
STUB = "def {}:\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
HOSTILE_OUTPUT = """from IPython.display import HTML, Javascript, display
display(HTML('<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'))
display(Javascript('window.pwned=3'))
display({'image/png': 'AAAA"onerror="window.pwned=4', 'text/plain': 'bad png'}, raw=True)
display({'text/html': '<a href="javascript:window.pwned=5">x</a>',
         'image/svg+xml': '<svg onload="window.pwned=6"/>', 'text/plain': 'svg'}, raw=True)
print('<script>window.pwned=7</script>')
"""
NESTED = "x = a" + "[0]" * 100_000
MINUS = "y = " + "-" * 100_000 + "1"
UNSAFE = ("<script", "onerror", "onload", "javascript:", "pwned=4")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile_sandbox")
    src = source(
        [
            (
                "log",
                STUB.format("log_feature_maps(logdir, maps, step, max_images=4)"),
                None,
            ),
            ("test_log", TEST_LOG, 2),
            (
                "give",
                STUB.format("give()"),
                None,
            ),
            ("test_give", "assert give() == 1\n", 1),
        ]
    )
    extra = [
        v4.new_markdown_cell('<img src=x onerror="window.pwned=8"> notes'),
        v4.new_code_cell(HOSTILE_OUTPUT),
        v4.new_code_cell(NESTED),
        v4.new_code_cell(MINUS),
    ]
    nb = student(src, {"log": FIFO_LOG, "give": "def give():\n    return 1\n"}, extra)
    result, seconds = grade_in_thread(src, nb, tmp / "work", "hostile")
    result_record = SubmissionResult("mallory", "ex", "graded", notebooks=[result])
    record.write_student_files(tmp / "feedback", result_record)
    executed = nbformat.read(result.executed_path, as_version=4)
    return {
        "result": result,
        "seconds": seconds,
        "executed": executed,
        "page": tmp / "feedback" / "feedback.html",
    }


def test_fifo_named_like_an_event_file_is_a_failed_test_within_seconds(hostile):
    tests = {t.grade_id: t for t in hostile["result"].tests}
    print(f"graded in {hostile['seconds']:.1f} s; test_log: {tests['test_log'].message}")
    assert not tests["test_log"].passed and "no event file" in tests["test_log"].message
    assert "a FIFO" in tests["test_log"].message and "a symbolic link" in tests["test_log"].message
    assert tests["test_give"].passed  # the rest of the notebook is graded as usual
    assert hostile["seconds"] < 240  # a blocked reader would have waited for ever


def test_parse_bombs_in_student_cells_are_failed_cells_not_our_failure(hostile):
    errors = {
        c.source[:6]: [o.get("ename") for o in c.outputs if o.output_type == "error"]
        for c in hostile["executed"].cells
        if c.cell_type == "code" and c.source in (NESTED, MINUS)
    }
    assert set(errors) == {NESTED[:6], MINUS[:6]}
    assert all(names for names in errors.values()), errors  # each cell shows its own error


def test_executed_notebook_for_formgrader_has_no_unsafe_markup(hostile):
    """What formgrader/nbconvert render as HTML: markdown cells, HTML and markdown outputs."""
    cells = hostile["executed"].cells
    outputs = [o for c in cells for o in c.get("outputs", [])]
    rendered = [c.source for c in cells if c.cell_type == "markdown"]
    rendered += [
        o.get("data", {}).get(m, "") for o in outputs for m in ("text/html", "text/markdown")
    ]
    for bad in UNSAFE:
        assert not any(bad in text for text in rendered), bad
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert mimes <= {"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg"}
    assert any("<b>bold</b>" in text for text in rendered)  # sanitized, still shown


class _Markup(HTMLParser):
    """Every element and attribute of a page, as a browser's parser sees them."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, name, value or "") for name, value in attrs]


def test_feedback_html_has_no_unsafe_markup(hostile):
    markup = _Markup()
    markup.feed(hostile["page"].read_text())
    assert not {"script", "iframe", "object", "embed", "svg", "form"} & set(markup.tags)
    assert not [a for a in markup.attrs if a[1].startswith("on")]
    assert not [a for a in markup.attrs if "javascript:" in a[2].lower()]
    for tag, name, value in markup.attrs:
        if tag == "img" and name == "src":
            mime, _, data = value.removeprefix("data:").partition(";base64,")
            assert image_data(mime, data) == data, value[:80]  # real images only
    assert "b" in markup.tags  # sanitized HTML is still shown


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing (.ci/run installs it)")
def test_feedback_of_a_hostile_notebook_runs_no_script_in_chromium(hostile):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(hostile["page"].resolve().as_uri())
            page.wait_for_timeout(1000)  # let any image error handler fire
            assert page.evaluate("typeof window.pwned") == "undefined"
            assert page.locator("b", has_text="bold").count() >= 1  # the page did render
        finally:
            browser.close()


FRAME_BOMB = '''import gc, struct, sys

def give():
    """Writes one 64 MB frame of tiny lists straight onto the grader's channel."""
    kernel = sys.modules["autograder.kernel"]
    channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel")
    head = b'{"id": %d, "type": "done", "status": "ok", "value": [' % kernel._current_id
    body = head + b"[]," * 21_000_000 + b"[]]}"
    channel.sock.sendall(struct.pack(">I", len(body)) + body)
    return 1
'''


def test_64mb_frame_of_tiny_lists_is_refused_for_that_student_with_memory_bounded(tmp_path):
    src = source(
        [
            (
                "give",
                STUB.format("give()"),
                None,
            ),
            ("test_give", "assert give() == 1\n", 1),
        ]
    )
    nb = student(src, {"give": FRAME_BOMB}, [])
    peak, stop = [guard.rss()], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], guard.rss())
            time.sleep(0.02)

    before = guard.rss()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result, seconds = grade_in_thread(src, nb, tmp_path / "work", "bomb")
    finally:
        stop.set()
        sampler.join()
    (test,) = result.tests
    growth = (peak[0] - before) / 2**20
    print(
        f"grader RSS {before / 2**20:.0f} MiB -> peak {peak[0] / 2**20:.0f} MiB "
        f"(+{growth:.0f}); {seconds:.1f} s"
    )
    assert not test.passed and "too large to decode" in test.message
    assert growth < 600  # the frame itself is 64 MB; decoding it would take gigabytes
