"""Assignment 04 (stride, padding, dilation, padding_mode): wrong solutions the graded test cells
must catch, with the feedback the student reads."""

from __future__ import annotations

import functools
import sys

import numpy as np
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.notebooks import run_notebook_file

NOTEBOOK = ROOT / "source" / "04_stride_padding" / "stride_padding.ipynb"

solution_source = functools.partial(nbs.solution_source, NOTEBOOK)


def test_solutions_run_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    namespace = nbs.numpy_only_namespace(NOTEBOOK)
    assert namespace["padding_amounts"](2, "same") == (0, 1, 0, 1)
    row = np.array([[[[1.0, 2.0, 3.0, 4.0]]]])
    np.testing.assert_array_equal(
        namespace["pad2d"](row, (2, 2, 0, 0), "reflect")[0, 0, 0], [3, 2, 1, 2, 3, 4, 3, 2]
    )
    out = namespace["conv2d"](np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding=1)
    np.testing.assert_array_equal(out[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


# Reflect done as NumPy's 'symmetric' (edge repeated): the classic mistake.
SYMMETRIC = solution_source("pad2d").replace('"reflect": "reflect"', '"reflect": "symmetric"')
# 'same' with the odd extra row/column on the top/left instead of the bottom/right.
SAME_TOP_LEFT = solution_source("padding_amounts").replace(
    "return (total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2)",
    "return (total_w - total_w // 2, total_w // 2, total_h - total_h // 2, total_h // 2)",
)
# dilation ignored by the convolution (taps always adjacent).
NO_DILATION = solution_source("conv2d_stride_padding").replace(
    "[:, :, ::sh, ::sw, ::dh, ::dw]", "[:, :, ::sh, ::sw, :kh, :kw]"
)


def test_wrong_solutions_are_real_edits():
    assert SYMMETRIC != solution_source("pad2d")
    assert SAME_TOP_LEFT != solution_source("padding_amounts")
    assert NO_DILATION != solution_source("conv2d_stride_padding")


def test_reflect_as_symmetric_is_caught_and_feedback_names_reflect():
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"pad2d": SYMMETRIC}, stop_after="test_conv2d_all_modes"
    )
    assert outcomes["test_padding_amounts"].passed
    for grade_id in ("test_pad2d", "test_conv2d_all_modes"):
        outcome = outcomes[grade_id]
        print(grade_id, outcome.error)
        assert not outcome.passed and outcome.points == 0
    pad_feedback = outcomes["test_pad2d"].error
    assert "pad2d fails for x (1,1,3,4), pad=(1, 1, 1, 1), mode='reflect'" in pad_feedback
    assert "differs from torch" in pad_feedback and "max error" in pad_feedback
    conv_feedback = outcomes["test_conv2d_all_modes"].error
    assert "padding_mode='reflect'" in conv_feedback
    assert "conv2d fails for x (1,1,3,3), weight (1,1,2,2), padding=1" in conv_feedback


def test_same_padding_top_left_is_caught():
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"padding_amounts": SAME_TOP_LEFT}, stop_after="test_padding_amounts"
    )
    outcome = outcomes["test_padding_amounts"]
    print(outcome.error)
    assert not outcome.passed
    assert "padding='same'" in outcome.error and "(left, right, top, bottom)" in outcome.error


def test_ignored_dilation_is_caught():
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"conv2d_stride_padding": NO_DILATION}, stop_after="test_conv2d_all_modes"
    )
    assert outcomes["test_conv2d_stride_padding"].passed  # stride/padding alone are fine
    outcome = outcomes["test_conv2d_all_modes"]
    print(outcome.error)
    assert not outcome.passed and "dilation=" in outcome.error
