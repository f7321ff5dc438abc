"""Assignment 11 (1×1 convolution, im2col, col2im, conv2d_gemm): wrong solutions are caught.

The check functions are exercised in-process with edited reference solutions (fast); one shared
notebook run shows that the graded cells catch mistakes each in its own cell.
"""

from __future__ import annotations

import contextlib
import functools
import sys

import numpy as np
import pytest
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.notebooks import grade_id, is_solution_cell, is_test_cell, load, run_notebook_file
from course.checks import im2col as checks
from course.checks.backward import check_conv2d_backward
from course.checks.conv import check_conv2d
from course.checks.core import CheckFailure

NOTEBOOK = ROOT / "source" / "11_im2col" / "im2col.ipynb"
edited = functools.partial(nbs.edited_solution, NOTEBOOK)
failing = nbs.failing
TESTS = [
    "test_pointwise_conv",
    "test_conv_macs",
    "test_im2col_basic",
    "test_im2col",
    "test_conv2d_gemm",
    "test_col2im",
    "test_conv2d_gemm_backward",
]


def solutions(monkeypatch=None, **edits: tuple[str, str]) -> dict:
    """The namespace of the solution cells (with torch unavailable when ``monkeypatch`` is
    given); ``edits`` maps a grade_id to an (old, new) replacement."""
    namespace: dict = {}
    context = monkeypatch.context() if monkeypatch else contextlib.nullcontext()
    with context as blocked:
        if monkeypatch:
            blocked.setitem(sys.modules, "torch", None)
        for cell in load(NOTEBOOK).cells:
            if is_solution_cell(cell):
                source = cell.source
                if grade_id(cell) in edits:
                    old, new = edits[grade_id(cell)]
                    assert old in source, f"{grade_id(cell)} no longer contains {old!r}"
                    source = source.replace(old, new)
                exec(compile(source, grade_id(cell), "exec"), namespace)  # noqa: S102
    return namespace


def test_notebook_has_the_expected_test_cells_and_numpy_only_solutions():
    nb = load(NOTEBOOK)
    assert [grade_id(c) for c in nb.cells if is_test_cell(c)] == TESTS
    for cell in nb.cells:
        if is_solution_cell(cell):
            assert "numpy-only" in cell.metadata.get("tags", []), grade_id(cell)
            assert "import torch" not in cell.source, grade_id(cell)


def test_reference_solutions_run_without_torch_and_pass(monkeypatch, capsys):
    ns = solutions(monkeypatch)
    checks.check_pointwise_conv(ns["pointwise_conv"], random=40)
    checks.check_conv_macs(ns["conv_macs"], hidden=True)
    checks.check_im2col(ns["im2col"], random=80)
    checks.check_col2im(ns["col2im"], random=60)
    checks.check_col2im_is_adjoint(ns["im2col"], ns["col2im"], random=20)
    check_conv2d(ns["conv2d_gemm"], features={"bias", "stride", "padding", "dilation", "groups"})
    check_conv2d_backward(ns["conv2d_gemm_backward"], random=40)
    out = capsys.readouterr().out
    assert "col2im is the transpose of im2col" in out


def test_im2col_rows_in_the_wrong_order_are_caught_with_feedback():
    # kernel taps before channels: the right numbers in the wrong rows
    ns = solutions(im2col=("transpose(0, 1, 4, 5, 2, 3)", "transpose(0, 4, 5, 1, 2, 3)"))
    with pytest.raises(CheckFailure) as failure:
        checks.check_im2col(ns["im2col"], [checks.unfold_case((1, 2, 3, 3), kernel_size=2)])
    message = str(failure.value)
    print(message)
    assert "im2col fails for x (1,2,3,3), kernel_size=2:" in message
    assert "output differs from torch at" in message


def test_col2im_that_overwrites_is_caught_and_breaks_the_adjoint():
    ns = solutions(
        col2im=("+= (\n                blocks[:, :, p, q]\n            )", "= blocks[:, :, p, q]")
    )
    with pytest.raises(CheckFailure, match="col2im fails for cols"):
        checks.check_col2im(ns["col2im"], random=40)
    with pytest.raises(CheckFailure, match="col2im is not the transpose of im2col"):
        checks.check_col2im_is_adjoint(ns["im2col"], ns["col2im"], random=40)


def test_conv2d_gemm_that_ignores_groups_is_caught():
    # every output channel reads every input channel's rows
    ns = solutions(
        conv2d_gemm=(
            "cols = cols.reshape(n, groups, c_group * kh * kw, h_out * w_out)",
            "cols = cols[:, : c_group * kh * kw].reshape(n, 1, c_group * kh * kw, -1)",
        )
    )
    with pytest.raises(CheckFailure) as failure:
        check_conv2d(ns["conv2d_gemm"], features={"groups"}, max_examples=40)
    print(failure.value)
    assert "groups=" in str(failure.value)


def test_conv_macs_without_groups_is_caught():
    ns = solutions(conv_macs=("(in_channels // groups)", "in_channels"))
    with pytest.raises(CheckFailure) as failure:
        checks.check_conv_macs(ns["conv_macs"])
    message = str(failure.value)
    print(message)
    assert "conv_macs fails for in_channels=32, out_channels=32, kernel_size=3" in message
    assert "got 589824 multiply-adds, the layer measured in torch does 18432" in message


def test_measured_macs_agree_with_the_formula():
    assert checks.torch_conv_macs(32, 64, 3, (8, 8)) == 64 * 32 * 9 * 64
    assert checks.torch_conv_macs(32, 32, 3, (8, 8), groups=32) == 32 * 9 * 64
    with pytest.raises(ValueError):
        checks.torch_conv_macs(6, 9, 3, (4, 4), groups=2)


def test_timing_helpers_time_and_format():
    from course.timing import format_seconds, seconds_per_call, single_threaded

    with single_threaded():
        assert seconds_per_call(lambda: np.ones(10).sum(), repeats=2, min_seconds=0.001) > 0
    assert format_seconds(0.000123) == "123 µs"
    assert format_seconds(0.0456) == "45.6 ms"
    assert format_seconds(2.5) == "2.5 s"


@pytest.fixture(scope="module")
def mistakes():
    """One notebook run: no bias in the 1×1 convolution; col2im overwrites instead of adding.
    Stops after the graded cells (the timing section is not run)."""
    wrong = edited(
        "pointwise_conv",
        "out = out + np.asarray(bias, dtype=np.float64)[None, :, None]",
        "pass",
    )
    wrong.update(
        edited(
            "col2im",
            "+= (\n                blocks[:, :, p, q]\n            )",
            "= blocks[:, :, p, q]",
        )
    )
    return run_notebook_file(
        NOTEBOOK, replace=wrong, stop_after="test_conv2d_gemm_backward", timeout=300
    )


def test_each_mistake_is_caught_by_its_own_cell(mistakes):
    assert failing(mistakes) == {"test_pointwise_conv", "test_col2im", "test_conv2d_gemm_backward"}
    error = mistakes["test_pointwise_conv"].error
    print(error)
    assert (
        "CheckFailure: pointwise_conv fails for x (1,3,2,2), weight (1,3,1,1), bias (1,):" in error
    )
    assert "col2im fails for cols (1,4,6), output_size=(3, 4), kernel_size=2:" in (
        mistakes["test_col2im"].error
    )
    assert "grad_x differs from torch" in mistakes["test_conv2d_gemm_backward"].error
