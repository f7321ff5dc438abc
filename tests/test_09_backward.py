"""Assignment 09 (conv2d backward, bonus): stubs fail, and wrong gradients are caught.

Each test feeds a wrong solution (a small edit of the reference solution) into the source notebook,
runs it with nbclient and asserts which test cells fail and which still pass: a mistake in one
gradient must be reported by that gradient's test cell.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from autograder import notebooks as nbs
from autograder.notebooks import grade_id, is_solution_cell, is_test_cell, load, run_notebook_file

NOTEBOOK = Path(__file__).resolve().parent.parent / "source" / "09_backward" / "backward.ipynb"

solution_source = functools.partial(nbs.solution_source, NOTEBOOK)
edited = functools.partial(nbs.edited_solution, NOTEBOOK)
failing = nbs.failing
TESTS = [
    "test_conv2d_forward",
    "test_grad_b",
    "test_grad_w",
    "test_grad_x",
    "test_backward_numerical",
    "test_pooling_from_07",
    "test_maxpool2d_backward",
    "test_avgpool2d_backward",
]


def test_notebook_has_the_expected_test_cells():
    nb = load(NOTEBOOK)
    assert [grade_id(c) for c in nb.cells if is_test_cell(c)] == TESTS
    for cell in nb.cells:
        if is_solution_cell(cell):
            assert "numpy-only" in cell.metadata.get("tags", []), grade_id(cell)
            assert "import torch" not in cell.source, grade_id(cell)


def test_grad_b_summed_over_the_wrong_axes_is_caught():
    # averaged over the batch instead of summed: right for N=1, wrong for N=2
    wrong = edited(
        "conv2d_backward",
        "grad_b = grad_out.sum(axis=(0, 2, 3))",
        "grad_b = grad_out.sum(axis=(2, 3)).mean(axis=0)",
    )
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_grad_x")
    assert failing(outcomes) == {"test_grad_b"}
    assert "grad_b differs from torch" in outcomes["test_grad_b"].error


def test_stride_ignored_in_the_weight_gradient_is_caught_with_feedback():
    # windows for grad_w taken at every position (stride 1), then cut to the output size
    backward = solution_source("conv2d_backward")
    old = "axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]"
    assert backward.count(old) == 1
    wrong = {"conv2d_backward": backward.replace(old, "axis=(2, 3))[:, :, :, :, ::dh, ::dw]")}
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_grad_x")
    assert failing(outcomes) == {"test_grad_w"}
    error = outcomes["test_grad_w"].error
    print(error)
    assert (
        "CheckFailure: conv2d_backward (vs torch autograd) fails for x (2,3,7,6), "
        "weight (2,3,3,2), grad_out (2,2,3,3), stride=2:"
    ) in error
    assert re.search(
        r"grad_w differs from torch at \d+ of 36 positions; max error \S+ at \[", error
    )


def test_overwriting_instead_of_accumulating_grad_x_is_caught():
    # "=" instead of "+=": overlapping windows overwrite each other's contributions
    wrong = edited(
        "conv2d_backward",
        "grad_xp[:, :, rows, cols] += grad_cols[..., p, q]",
        "grad_xp[:, :, rows, cols] = grad_cols[..., p, q]",
    )
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_backward_numerical")
    assert failing(outcomes) == {"test_grad_x", "test_backward_numerical"}
    assert "grad_x differs from torch" in outcomes["test_grad_x"].error
    numerical = outcomes["test_backward_numerical"].error
    assert "(vs numerical gradient)" in numerical
    assert "grad_x differs from the numerical gradient" in numerical


def test_padding_cut_from_the_wrong_side_is_caught():
    # cropping the padded gradient as [0:H] instead of [p:p+H]: shifted by the padding
    wrong = edited(
        "conv2d_backward",
        "grad_xp[:, :, ph : ph + h, pw : pw + w]",
        "grad_xp[:, :, :h, :w]",
    )
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_grad_x")
    assert failing(outcomes) == {"test_grad_x"}


def test_dilation_ignored_in_the_forward_is_caught():
    # the forward pass is the student's conv2d of 05, pasted; the error is in the pasted code
    forward = solution_source("conv2d_from_05")
    wrong = forward.replace(
        "span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1", "span_h, span_w = kh, kw"
    ).replace("[:, :, ::sh, ::sw, ::dh, ::dw]", "[:, :, ::sh, ::sw]")
    assert wrong.count("span_h, span_w = kh, kw") == 1 and "::dh" not in wrong
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"conv2d_from_05": wrong}, stop_after="test_conv2d_forward"
    )
    assert failing(outcomes) == {"test_conv2d_forward"}
    assert "dilation=2" in outcomes["test_conv2d_forward"].error


def test_pooling_backward_mistakes_are_caught_each_by_its_own_cell():
    # overlapping windows overwrite instead of adding up (fancy-index +=); the average pool's
    # gradient cut from the top-left corner instead of the padding's inside
    wrong = edited(
        "maxpool2d_backward",
        "np.add.at(grad_x, (batch, channel, indices.reshape(n, c, -1)), "
        "grad_out.reshape(n, c, -1))",
        "grad_x[batch, channel, indices.reshape(n, c, -1)] += grad_out.reshape(n, c, -1)",
    )
    wrong.update(
        edited(
            "avgpool2d_backward",
            "return grad_xp[:, :, ph : ph + h, pw : pw + w]",
            "return grad_xp[:, :, :h, :w]",
        )
    )
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, timeout=300)
    assert failing(outcomes) == {"test_maxpool2d_backward", "test_avgpool2d_backward"}
    error = outcomes["test_maxpool2d_backward"].error
    print(error)
    assert (
        "CheckFailure: maxpool2d_backward (vs torch autograd) fails for x (2,3,5,5), "
        "grad_out (2,3,3,3), kernel_size=3, stride=1:"
    ) in error
    assert re.search(r"grad_x differs from torch at \d+ of 150 positions", error)
    error = outcomes["test_avgpool2d_backward"].error
    assert "avgpool2d_backward (vs torch autograd) fails for x (2,3,5,5)" in error
    assert "padding=1" in error
