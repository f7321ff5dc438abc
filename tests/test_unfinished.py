"""An unfinished exercise reads as unfinished, in two lines: which function, and what to do.

The cells run in a real IPython shell (in a subprocess, so this test's process keeps no IPython
singleton): a stub called directly, a check called on a stub, a paste cell left blank, a figure
cell wrapped in ``needs``, and an unrelated NotImplementedError, which keeps its traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from course.checks.core import NotWrittenYet, compare_call, not_written

SHELL = textwrap.dedent(
    """
    import json
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="NoColor")
    shown = []
    shell._showtraceback = lambda etype, value, stb: shown.append(
        {"ename": etype.__name__, "lines": list(stb)}
    )
    cells = json.loads(input())
    report = []
    for source in cells:
        shown.clear()
        result = shell.run_cell(source, store_history=True)
        report.append({"ok": result.success, "shown": list(shown)})
    print("REPORT" + json.dumps(report))
    """
)

STUB = '''
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    """The student's cell as released."""
    # YOUR CODE HERE
    raise NotImplementedError()
'''

CELLS = [
    "import course",
    STUB,
    "conv2d_param_count(3, 2, 3)",
    "from course.checks.shapes import check_param_count\ncheck_param_count(conv2d_param_count)",
    "# Paste here your cell `x` of 01_anatomy.\n# YOUR CODE HERE\nraise NotImplementedError()",
    "from course.checks.core import needs\n"
    "with needs('conv2d_param_count'):\n"
    "    print(conv2d_param_count(3, 2, 3))\n"
    "print('the figure cell carried on')",
    "def helper():\n    raise NotImplementedError('a library without this feature')\nhelper()",
]


@pytest.fixture(scope="module")
def report():
    proc = subprocess.run(
        [sys.executable, "-c", SHELL],
        input=json.dumps(CELLS) + "\n",
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("REPORT")), None)
    assert line, proc.stdout + proc.stderr
    outputs = proc.stdout.split("REPORT")[0]
    return json.loads(line[len("REPORT") :]), outputs


def _lines(entry) -> list[str]:
    (shown,) = entry["shown"]
    return shown["lines"]


def test_a_stub_called_directly_shows_two_lines_naming_it(report):
    cells, _ = report
    assert cells[1]["ok"] and not cells[1]["shown"]  # defining the stub is fine
    lines = _lines(cells[2])
    assert not cells[2]["ok"]  # the cell still fails: Run All stops, nbgrader gives 0
    assert lines == [
        "NotImplementedError: `conv2d_param_count` is not written yet.",
        "Write its body in its cell (replace `raise NotImplementedError()`), "
        "run it, then this cell.",
    ]


def test_a_check_on_a_stub_shows_the_same_two_lines_not_the_check_internals(report):
    cells, _ = report
    lines = _lines(cells[3])
    assert not cells[3]["ok"] and len(lines) == 2
    assert "`conv2d_param_count` is not written yet" in lines[0]
    assert not any("Traceback" in line or "course/checks" in line for line in lines)


def test_a_blank_paste_cell_says_the_cell_is_not_written(report):
    cells, _ = report
    lines = _lines(cells[4])
    assert not cells[4]["ok"] and lines[0] == "NotImplementedError: this cell is not written yet."
    assert "the comment says what" in lines[1]


def test_a_figure_cell_says_what_to_finish_and_carries_on(report):
    cells, printed = report
    assert cells[5]["ok"] and not cells[5]["shown"]
    assert "Finish `conv2d_param_count` above first (this cell uses it)" in printed
    assert "the figure cell carried on" in printed


def test_other_not_implemented_errors_keep_their_traceback(report):
    cells, _ = report
    text = "\n".join(_lines(cells[6]))
    assert not cells[6]["ok"] and "Traceback" in text and "a library without this feature" in text


def test_outside_ipython_checks_raise_not_written_yet_with_the_name():
    def conv2d_output_size(h, w, kernel_size):
        raise NotImplementedError()

    with pytest.raises(NotWrittenYet) as unfinished:
        compare_call(lambda: conv2d_output_size(7, 7, 3), lambda: 0, name="a check's name")
    assert isinstance(unfinished.value, NotImplementedError)  # still reads as unfinished
    assert unfinished.value.name == "conv2d_output_size"  # found from the stub that raised
    assert "`conv2d_output_size` is not written yet" in str(unfinished.value)
    assert "NotImplementedError" in str(unfinished.value)  # the grader's feedback says so too


def test_in_the_grader_the_name_comes_from_the_check():
    def proxy_call():  # the grader re-raises the sandbox's NotImplementedError: no stub line here
        raise NotImplementedError("from the sandbox")

    with pytest.raises(NotWrittenYet) as unfinished:
        compare_call(proxy_call, lambda: 0, name="conv2d")
    assert unfinished.value.name == "conv2d"
    assert not_written(NotImplementedError(), "your function").name is None
