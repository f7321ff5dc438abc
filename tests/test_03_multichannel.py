"""Assignment 03 (multi-channel sums): wrong solutions the graded test cells must catch."""

from __future__ import annotations

import functools
import sys

import numpy as np
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.notebooks import run_notebook_file

NOTEBOOK = ROOT / "source" / "03_multichannel" / "multichannel.ipynb"

solution_source = functools.partial(nbs.solution_source, NOTEBOOK)


def test_solutions_run_without_torch(monkeypatch):
    """numpy-only cells in order, torch blocked; the functions give d2l's known example."""
    monkeypatch.setitem(sys.modules, "torch", None)
    namespace = nbs.numpy_only_namespace(NOTEBOOK)
    x = np.arange(9.0).reshape(3, 3)
    k = np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(namespace["corr2d"](x, k), [[19.0, 25.0], [37.0, 43.0]])
    out = namespace["conv2d"](np.ones((2, 3, 5, 5)), np.ones((4, 3, 3, 3)), np.arange(4.0))
    assert out.shape == (2, 4, 3, 3)
    np.testing.assert_array_equal(out[1, :, 2, 2], 27.0 + np.arange(4.0))


# A true convolution (kernel flipped) instead of torch's cross-correlation.
FLIPPED = solution_source("corr2d").replace(
    "out[i, j] = (x[i : i + kh, j : j + kw] * k).sum()",
    "out[i, j] = (x[i : i + kh, j : j + kw] * k[::-1, ::-1]).sum()",
)

# The bias added once per input channel (inside the sum) instead of once per output channel.
BIAS_PER_INPUT_CHANNEL = '''
def conv2d(x, weight, bias=None):
    """Wrong: adds bias[o] for every input channel."""
    out = np.zeros((x.shape[0], weight.shape[0], x.shape[2] - weight.shape[2] + 1,
                    x.shape[3] - weight.shape[3] + 1))
    for n in range(x.shape[0]):
        for o in range(weight.shape[0]):
            for c in range(x.shape[1]):
                out[n, o] += corr2d(x[n, c], weight[o, c])
                if bias is not None:
                    out[n, o] += bias[o]
    return out
'''


def test_wrong_solutions_are_real_edits():
    assert FLIPPED != solution_source("corr2d")


def test_flipped_kernel_is_caught():
    outcomes = run_notebook_file(NOTEBOOK, replace={"corr2d": FLIPPED}, stop_after="test_corr2d")
    outcome = outcomes["test_corr2d"]
    print(outcome.error)
    assert not outcome.passed
    assert "corr2d fails for x (3,3), k (2,2)" in outcome.error


def test_bias_per_input_channel_is_caught_with_feedback():
    outcomes = run_notebook_file(
        NOTEBOOK,
        replace={"conv2d_batch": BIAS_PER_INPUT_CHANNEL},
        stop_after="test_conv2d_batch_bias",
    )
    assert outcomes["test_corr2d"].passed and outcomes["test_seed004_multichannel_sum"].passed
    outcome = outcomes["test_conv2d_batch_bias"]
    print(outcome.error)
    assert not outcome.passed and outcome.points == 0
    # the message names the case (with a bias, more than one input channel) and the error
    assert "conv2d fails for x (" in outcome.error and "bias (" in outcome.error
    assert "max error" in outcome.error
