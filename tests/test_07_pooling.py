"""Assignment 07 (pooling and the seed 003 CNN): stubs fail, and wrong solutions are caught.

Each test feeds a wrong solution (a small edit of the reference solution) into the source notebook,
runs it with nbclient and asserts which test cells fail — the ones whose (hidden) tests must catch
the mistake — and which still pass.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from autograder import notebooks as nbs
from autograder.notebooks import grade_id, is_solution_cell, is_test_cell, load, run_notebook_file

NOTEBOOK = Path(__file__).resolve().parent.parent / "source" / "07_pooling" / "pooling.ipynb"

solution_source = functools.partial(nbs.solution_source, NOTEBOOK)
edited = functools.partial(nbs.edited_solution, NOTEBOOK)
failing = nbs.failing
TESTS = [
    "test_conv2d_output_size",
    "test_pool2d_output_size",
    "test_maxpool2d_basic",
    "test_maxpool2d_padding",
    "test_maxpool2d_ceil_mode",
    "test_maxpool2d_indices",
    "test_cnn_shapes",
    "test_avgpool2d_divisors",
    "test_avgpool2d_basic",
    "test_avgpool2d_options",
    "test_receptive_field_seed",
    "test_receptive_field",
]


def test_notebook_has_the_expected_test_cells():
    nb = load(NOTEBOOK)
    assert [grade_id(c) for c in nb.cells if is_test_cell(c)] == TESTS
    for cell in nb.cells:
        if is_solution_cell(cell):
            assert "numpy-only" in cell.metadata.get("tags", []), grade_id(cell)
            assert "import torch" not in cell.source, grade_id(cell)


def test_zero_padding_instead_of_minus_inf_is_caught_with_feedback():
    wrong = edited("maxpool2d", "-np.inf, dtype=dtype", "0.0, dtype=dtype")
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_maxpool2d_padding")
    assert outcomes["test_pool2d_output_size"].passed
    assert "test_maxpool2d_padding" in failing(outcomes)
    # the hidden sweep of the basic test includes padding too
    assert "test_maxpool2d_basic" in failing(outcomes)
    error = outcomes["test_maxpool2d_padding"].error
    print(error)
    assert "CheckFailure: maxpool2d fails for x (1,1,4,4), kernel_size=2, padding=1:" in error
    assert re.search(r"output differs from torch at \d+ of 9 positions; max error", error)
    assert "(yours 0, torch -" in error


def test_ceil_mode_without_the_drop_rule_is_caught():
    # ceil_mode off by one: a last window that starts in the right padding is kept
    wrong = edited("pool2d_output_size", "if ceil_mode and (size - 1) * s >= n + p:", "if False:")
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_maxpool2d_ceil_mode")
    assert outcomes["test_conv2d_output_size"].passed
    assert {"test_pool2d_output_size", "test_maxpool2d_ceil_mode"} <= failing(outcomes)
    assert outcomes["test_maxpool2d_padding"].passed  # no ceil_mode there
    assert "output shape" in outcomes["test_maxpool2d_ceil_mode"].error


def test_padding_limit_not_enforced_is_caught():
    wrong = edited("pool2d_output_size", "if 2 * p > k:", "if 2 * p > k + 2:")
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_pool2d_output_size")
    assert failing(outcomes) == {"test_pool2d_output_size"}
    error = outcomes["test_pool2d_output_size"].error
    assert "torch raises RuntimeError here (pad should be at most half" in error


def test_wrong_indices_and_default_pool_stride_in_the_cnn_are_caught_by_their_own_cells():
    # indices counted from the padded corner instead of the unpadded input plane; and the CNN's
    # pooling layers read as MaxPool2d(2) (stride 2) instead of the seed's stride=1
    wrong = edited("maxpool2d", "* sh - ph + (arg // kw)", "* sh + (arg // kw)")
    wrong.update(
        edited("cnn_shapes", "pool2d_output_size(size, 2, stride=1)", "pool2d_output_size(size, 2)")
    )
    outcomes = run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_cnn_shapes")
    assert failing(outcomes) == {"test_maxpool2d_indices", "test_cnn_shapes"}
    assert "indices differ from torch" in outcomes["test_maxpool2d_indices"].error
    assert "cnn_shapes fails for input_shape=(4, 3, 32, 32)" in outcomes["test_cnn_shapes"].error


# --------------------------------------------------------------------------- sections 6 and 7
# One notebook run with two independent mistakes, shared by the tests below.


@pytest.fixture(scope="module")
def avg_and_field_mistakes():
    # the ceil_mode overhang counted as padding; a pool's default stride read as 1
    wrong = edited("avgpool2d_divisors", "end = np.minimum(start + k, n + p)", "end = start + k")
    wrong.update(
        edited(
            "receptive_field",
            'stride = layer["kernel_size"] if layer["kind"] == "pool" else 1',
            "stride = 1",
        )
    )
    return run_notebook_file(
        NOTEBOOK, replace=wrong, stop_after="test_receptive_field", timeout=300
    )


def test_ceil_mode_overhang_counted_as_padding_is_caught_by_the_divisor_cells(
    avg_and_field_mistakes,
):
    outcomes = avg_and_field_mistakes
    assert {"test_avgpool2d_divisors", "test_avgpool2d_options"} <= failing(outcomes)
    assert outcomes["test_avgpool2d_basic"].passed  # no padding and no ceil_mode there
    error = outcomes["test_avgpool2d_divisors"].error
    print(error)
    assert (
        "CheckFailure: avgpool2d_divisors fails for input_size=(6, 6), kernel_size=3, stride=2, "
        "padding=1, ceil_mode=True:"
    ) in error
    assert (
        "divisors differ from torch's at 7 of 16 output positions; first at [0, 3] (yours 9, "
        "torch divides by 6)" in error
    )
    assert "ceil_mode=True" in outcomes["test_avgpool2d_options"].error


def test_default_pool_stride_read_as_one_is_caught_but_the_seed_cnn_passes(
    avg_and_field_mistakes,
):
    outcomes = avg_and_field_mistakes
    assert outcomes["test_receptive_field_seed"].passed  # the seed's pools give stride=1
    error = outcomes["test_receptive_field"].error
    print(error)
    assert "CheckFailure: receptive_field fails for layers=" in error
    assert "'kind': 'pool', 'kernel_size': 2}" in error
    assert re.search(r"(size|jump) \(\d+, \d+\) \(h, w\), but torch measures", error)
    assert failing(outcomes) == {
        "test_avgpool2d_divisors",
        "test_avgpool2d_options",
        "test_receptive_field",
    }
