"""Assignment 01 (Conv2d anatomy, output-shape formula): its checks and its notebook.

Unit tests call the checks in course/checks/shapes.py directly with the notebook's own solution
(extracted from the source notebook) and with wrong functions. Notebook tests execute
source/01_anatomy/anatomy.ipynb with a wrong solution swapped in and expect the hidden sweep to
fail with a message that names the failing case.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import ROOT

from autograder import notebooks as nbs
from course.checks.core import CheckFailure
from course.checks.shapes import (
    INVALID_SIZE_CASES,
    SEED_PARAM_CASES,
    SEED_SIZE_CASES,
    VISIBLE_SIZE_CASES,
    check_output_size,
    check_param_count,
    check_seed003_example,
    reference_output_size,
    reference_param_count,
    seed003_example_shape,
    sweep_output_size,
    sweep_param_count,
)

NOTEBOOK = ROOT / "source" / "01_anatomy" / "anatomy.ipynb"


def solution_namespace(path, grade_id: str) -> dict:
    """Execute the solution cell ``grade_id`` of a source notebook; return its namespace."""
    namespace: dict = {"np": np}
    for cell in nbs.load(path).cells:
        if nbs.grade_id(cell) == grade_id:
            exec(cell.source, namespace)  # noqa: S102 - our own instructor notebook
            return namespace
    raise KeyError(grade_id)


@pytest.fixture(scope="module")
def output_size():
    return solution_namespace(NOTEBOOK, "conv2d_output_size")["conv2d_output_size"]


@pytest.fixture(scope="module")
def param_count():
    return solution_namespace(NOTEBOOK, "conv2d_param_count")["conv2d_param_count"]


# --- wrong solutions (module level, so both the unit tests and the notebook tests use them) ----

_VALIDATING_PREFIX = """
def conv2d_output_size(h, w, kernel_size, stride=1, padding=0, dilation=1):
    import math

    def pair(v):
        return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))

    kh, kw = pair(kernel_size)
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    if min(kh, kw, sh, sw, dh, dw) < 1:
        raise ValueError("kernel_size, stride and dilation must be at least 1")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(padding)
        if padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError("'same' needs stride 1")
            return h, w
        padding = 0
    ph, pw = pair(padding)
    if min(ph, pw) < 0:
        raise ValueError("negative padding")
    sizes = []
    for n, k, s, p, d in ((h, kh, sh, ph, dh), (w, kw, sw, pw, dw)):
        if d * (k - 1) + 1 > n + 2 * p:
            raise ValueError("kernel larger than the padded input")
"""

#: Rounds up instead of down: right whenever the stride divides evenly (as in every seed).
WRONG_CEIL = (
    _VALIDATING_PREFIX
    + """        sizes.append(math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1)
    return sizes[0], sizes[1]
"""
)

#: Forgets the "- 1": the footprint is taken as d*(k-1) instead of d*(k-1)+1.
WRONG_NO_MINUS_ONE = (
    _VALIDATING_PREFIX
    + """        sizes.append((n + 2 * p - d * (k - 1)) // s + 1)
    return sizes[0], sizes[1]
"""
)

#: Correct formula, but never raises where torch raises: returns 0 or negative sizes instead.
WRONG_NO_ERRORS = """
def conv2d_output_size(h, w, kernel_size, stride=1, padding=0, dilation=1):
    def pair(v):
        return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))

    if padding == "same":
        return h, w
    if padding == "valid":
        padding = 0
    k, s, p, d = pair(kernel_size), pair(stride), pair(padding), pair(dilation)
    return tuple(
        (n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // max(s[i], 1) + 1 for i, n in enumerate((h, w))
    )
"""

#: Ignores groups: the weight is (out, in, kH, kW) instead of (out, in/groups, kH, kW).
WRONG_PARAM_NO_GROUPS = """
def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    kh, kw = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size, kernel_size)
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError("channels must be divisible by groups")
    return out_channels * in_channels * kh * kw + (out_channels if bias else 0)
"""


def _define(source: str, name: str):
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - test fixtures written above
    return namespace[name]


# --- references -----------------------------------------------------------------------------


def test_reference_output_size_reproduces_the_seeds():
    sizes = [reference_output_size(**case) for case in SEED_SIZE_CASES]
    assert sizes == [(3, 3), (4, 2), (30, 30)]


def test_reference_output_size_raises_where_torch_raises():
    for case in INVALID_SIZE_CASES:
        with pytest.raises(RuntimeError):
            reference_output_size(**case)


def test_reference_param_count_reproduces_the_seeds():
    counts = [reference_param_count(**case) for case in SEED_PARAM_CASES[:5]]
    assert counts == [56, 28, 168, 108, 4 * 4 * 9 + 4]


# --- the checks accept the notebook's solution ------------------------------------------------


def test_check_output_size_passes_the_solution(output_size, capsys):
    check_output_size(output_size)
    assert f"{len(SEED_SIZE_CASES) + len(VISIBLE_SIZE_CASES)} case(s)" in capsys.readouterr().out


def test_sweep_output_size_passes_the_solution(output_size, capsys):
    sweep_output_size(output_size, max_examples=300)
    assert "ok: conv2d_output_size matches torch" in capsys.readouterr().out


def test_check_and_sweep_param_count_pass_the_solution(param_count, capsys):
    check_param_count(param_count)
    sweep_param_count(param_count, max_examples=100)
    out = capsys.readouterr().out
    assert out.count("ok: conv2d_param_count matches torch") == 2


# --- the checks reject wrong functions and name the case -----------------------------------


def test_seed003_documentation_example_runs_and_checks_the_students_sizes(output_size, capsys):
    assert seed003_example_shape() == (20, 33, 26, 100)
    check_seed003_example(output_size)
    assert "your sizes give (20, 33, 26, 100)" in capsys.readouterr().out
    with pytest.raises(CheckFailure) as failure:  # (50 + 8 - 6 - 1) / 2 = 25.5: ceil gives 27
        check_seed003_example(_define(WRONG_CEIL, "conv2d_output_size"))
    message = str(failure.value)
    print(message)
    assert "h=50, w=100, kernel_size=(3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1)" in (
        message
    )
    assert "(27, 100), torch gives (26, 100)" in message


def test_check_output_size_catches_ceil_on_a_visible_uneven_stride():
    with pytest.raises(CheckFailure) as failure:
        check_output_size(_define(WRONG_CEIL, "conv2d_output_size"))
    message = str(failure.value)
    print(message)
    # the first uneven-stride visible case: (8, 8), k=3, stride 2 -> torch (3, 3), ceil (4, 4)
    assert "h=8, w=8, kernel_size=3, stride=2" in message
    assert "(4, 4)" in message and "torch gives (3, 3)" in message


def test_ceil_passes_the_seed_cases_but_not_the_sweep():
    wrong = _define(WRONG_CEIL, "conv2d_output_size")
    check_output_size(wrong, SEED_SIZE_CASES)  # every seed's stride divides evenly
    with pytest.raises(CheckFailure) as failure:
        sweep_output_size(wrong, max_examples=200)
    message = str(failure.value)
    print(message)
    assert "minimal failing case" in message
    assert re.search(r"h=\d+, w=\d+, kernel_size=\S+, stride=", message)


def test_sweep_output_size_catches_a_missing_minus_one():
    with pytest.raises(CheckFailure) as failure:
        sweep_output_size(_define(WRONG_NO_MINUS_ONE, "conv2d_output_size"), max_examples=200)
    message = str(failure.value)
    print(message)
    assert "conv2d_output_size fails for h=" in message and "torch gives" in message


def test_sweep_output_size_demands_errors_where_torch_raises():
    with pytest.raises(CheckFailure) as failure:
        sweep_output_size(_define(WRONG_NO_ERRORS, "conv2d_output_size"), max_examples=200)
    message = str(failure.value)
    print(message)
    assert "torch raises" in message and "raise ValueError or RuntimeError" in message


@pytest.mark.parametrize(
    "result, expected_text",
    [((3.0, 3.0), "sizes must be ints"), (np.array([3, 3]), None), ([3, 3], None), (9, "pair")],
    ids=["floats", "int-array", "list", "single-int"],
)
def test_check_output_size_result_types(result, expected_text):
    def returns(h, w, kernel_size, stride=1, padding=0, dilation=1):
        return result

    case = [{"h": 7, "w": 7, "kernel_size": 3, "stride": 2}]  # torch: (3, 3)
    if expected_text is None:
        check_output_size(returns, case)
    else:
        with pytest.raises(CheckFailure, match=expected_text) as failure:
            check_output_size(returns, case)
        assert "h=7, w=7, kernel_size=3, stride=2" in str(failure.value)


def test_check_param_count_catches_ignored_groups():
    with pytest.raises(CheckFailure) as failure:
        check_param_count(_define(WRONG_PARAM_NO_GROUPS, "conv2d_param_count"))
    message = str(failure.value)
    print(message)
    assert "in_channels=8, out_channels=4, kernel_size=3, groups=2" in message
    assert "torch.nn.Conv2d has 148" in message


def test_check_param_count_demands_value_error_for_indivisible_groups(param_count):
    def never_raises(in_channels, out_channels, kernel_size, groups=1, bias=True):
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)

    with pytest.raises(CheckFailure) as failure:
        check_param_count(never_raises)
    assert "in_channels=6, out_channels=4, kernel_size=3, groups=4" in str(failure.value)


def test_stub_reads_as_unfinished_not_as_wrong():
    def unfinished(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check_output_size(unfinished)
    with pytest.raises(NotImplementedError):
        sweep_output_size(unfinished, max_examples=10)


# --- the notebook ---------------------------------------------------------------------------
# The solution run and the stub run of every notebook are tests/test_course_check.py's job
# (source and release). Here: wrong solutions that the hidden test cells must catch.


def test_hidden_sweep_cell_catches_ceil_instead_of_floor():
    outcomes = nbs.run_notebook_file(
        NOTEBOOK, replace={"conv2d_output_size": WRONG_CEIL}, stop_after="test_output_size_sweep"
    )
    hidden = outcomes["test_output_size_sweep"]
    print(hidden.error)
    assert not hidden.passed and hidden.points == 0
    assert "CheckFailure" in hidden.error and "minimal failing case" in hidden.error
    assert re.search(r"conv2d_output_size fails for h=\d+, w=\d+, kernel_size=", hidden.error)
    assert "stride=" in hidden.error and "torch gives" in hidden.error
    # the correct parameter count still earns its points
    assert outcomes["test_param_count_seeds"].passed and outcomes["test_param_count_sweep"].passed


def test_hidden_cells_catch_a_missing_minus_one_and_ignored_groups():
    outcomes = nbs.run_notebook_file(
        NOTEBOOK,
        replace={
            "conv2d_output_size": WRONG_NO_MINUS_ONE,
            "conv2d_param_count": WRONG_PARAM_NO_GROUPS,
        },
        stop_after="test_output_size_sweep",
    )
    for gid, outcome in outcomes.items():
        print(gid, outcome.passed, outcome.error)
    hidden = outcomes["test_output_size_sweep"]
    assert not hidden.passed and "minimal failing case" in hidden.error
    assert re.search(r"conv2d_output_size fails for h=\d+, w=\d+, kernel_size=", hidden.error)
    params = outcomes["test_param_count_sweep"]
    assert not params.passed and "minimal failing case" in params.error
    assert re.search(r"conv2d_param_count fails for in_channels=\d+, .*groups=[234]", params.error)
    assert "groups=2" in outcomes["test_param_count_seeds"].error
