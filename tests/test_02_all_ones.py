"""Assignment 02 (the all-ones input, seed 004): its checks and its notebook.

Unit tests call the checks in course/checks/ones.py directly with the notebook's own solution
(extracted from the source notebook) and with wrong predictions. Notebook tests execute
source/02_all_ones/all_ones.ipynb with a border mistake swapped in and expect the hidden sweep to
fail with a message that names the failing case.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import ROOT

from autograder import notebooks as nbs
from course.checks.core import CheckFailure
from course.checks.ones import (
    check_ones_output,
    make_ones_case,
    padding_ones_cases,
    reference_ones_output,
    seed_ones_cases,
    sweep_ones_output,
)

NOTEBOOK = ROOT / "source" / "02_all_ones" / "all_ones.ipynb"


@pytest.fixture(scope="module")
def predict():
    namespace: dict = {"np": np}
    for cell in nbs.load(NOTEBOOK).cells:
        if nbs.grade_id(cell) == "predict_ones_output":
            exec(cell.source, namespace)  # noqa: S102 - our own instructor notebook
            return namespace["predict_ones_output"]
    raise KeyError("predict_ones_output")


#: Border mistake 1: the right output shape, but every position gets the full kernel sum + bias
#: (as if the padding held ones). Right whenever padding is 0, as in seed 004.
WRONG_FULL_SUM_EVERYWHERE = """
import numpy as np


def predict_ones_output(weight, bias, input_hw, padding=0):
    c_out, _, kh, kw = weight.shape
    h, w = input_hw
    ph, pw = padding if isinstance(padding, (tuple, list)) else (padding, padding)
    if ph < 0 or pw < 0 or kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError("kernel does not fit")
    full = weight.sum(axis=(1, 2, 3)) + (0.0 if bias is None else bias)
    out = np.empty((c_out, h + 2 * ph - kh + 1, w + 2 * pw - kw + 1))
    out[...] = full[:, None, None]
    return out
"""

#: Border mistake 2: ignores padding altogether (output as for padding=0).
WRONG_IGNORES_PADDING = """
import numpy as np


def predict_ones_output(weight, bias, input_hw, padding=0):
    c_out, _, kh, kw = weight.shape
    h, w = input_hw
    if kh > h or kw > w:
        raise ValueError("kernel larger than input")
    full = weight.sum(axis=(1, 2, 3)) + (0.0 if bias is None else bias)
    out = np.empty((c_out, h - kh + 1, w - kw + 1))
    out[...] = full[:, None, None]
    return out
"""


def _define(source: str):
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - test fixtures written above
    return namespace["predict_ones_output"]


# --- the reference reproduces seed 004 ------------------------------------------------------


def test_reference_is_kernel_sum_plus_bias_without_padding():
    for case in seed_ones_cases():
        out = reference_ones_output(**case)
        expected = case["weight"].sum(axis=(1, 2, 3)) + case["bias"]
        assert out.shape == (case["weight"].shape[0], 3, 3)
        np.testing.assert_allclose(out, np.broadcast_to(expected[:, None, None], out.shape))


def test_reference_agrees_with_a_seeded_torch_layer():
    torch.manual_seed(4)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    case = {
        "weight": conv.weight.detach().numpy().astype(np.float64),
        "bias": conv.bias.detach().numpy().astype(np.float64),
        "input_hw": (5, 5),
        "padding": 1,
    }
    expected = conv(torch.ones(1, 3, 5, 5))[0].detach().numpy()
    np.testing.assert_allclose(reference_ones_output(**case), expected, atol=1e-6)


def test_reference_raises_when_the_kernel_does_not_fit():
    with pytest.raises(RuntimeError):
        reference_ones_output(**make_ones_case(1, 1, (4, 4), (3, 3)))


# --- the checks accept the notebook's solution ------------------------------------------------


def test_checks_pass_the_solution(predict, capsys):
    check_ones_output(predict, seed_ones_cases())
    check_ones_output(predict, padding_ones_cases())
    sweep_ones_output(predict, max_examples=150)
    out = capsys.readouterr().out
    assert "matches torch on 2 case(s)" in out and "150 random case(s)" in out


def test_a_float32_prediction_is_close_enough(predict):
    check_ones_output(lambda **case: predict(**case).astype(np.float32))


# --- the checks reject border mistakes and name the case ------------------------------------


def test_full_sum_everywhere_passes_the_seed_but_not_padding():
    wrong = _define(WRONG_FULL_SUM_EVERYWHERE)
    check_ones_output(wrong, seed_ones_cases())  # seed 004 has no padding
    with pytest.raises(CheckFailure) as failure:
        check_ones_output(wrong, padding_ones_cases())
    message = str(failure.value)
    print(message)
    assert "weight (3,1,3,3), bias (3,), input_hw=(5, 5), padding=1" in message
    assert "differs from torch at 48 of 75 positions" in message  # 3 channels x 16 border


def test_sweep_catches_full_sum_everywhere_with_a_minimal_case():
    with pytest.raises(CheckFailure) as failure:
        sweep_ones_output(_define(WRONG_FULL_SUM_EVERYWHERE), max_examples=100)
    message = str(failure.value)
    print(message)
    assert "minimal failing case" in message
    assert re.search(r"weight \(\d,\d,\d,\d\), bias=None, input_hw=\(\d, \d\), padding=1", message)


def test_sweep_catches_ignored_padding_by_shape():
    with pytest.raises(CheckFailure) as failure:
        sweep_ones_output(_define(WRONG_IGNORES_PADDING), max_examples=100)
    message = str(failure.value)
    print(message)
    assert "padding=" in message and "output shape" in message and "torch gives" in message


def test_check_demands_an_error_when_the_kernel_does_not_fit(predict):
    def never_raises(weight, bias, input_hw, padding=0):
        try:
            return predict(weight, bias, input_hw, padding)
        except ValueError:
            return np.zeros((weight.shape[0], 1, 1))

    with pytest.raises(CheckFailure) as failure:
        check_ones_output(never_raises, padding_ones_cases())
    message = str(failure.value)
    assert "weight (1,1,4,4), bias (1,), input_hw=(3, 3), padding=0" in message
    assert "raise ValueError or RuntimeError" in message


def test_check_refuses_a_torch_tensor(predict):
    with pytest.raises(CheckFailure, match="return a NumPy array"):
        check_ones_output(lambda **case: torch.from_numpy(predict(**case)), seed_ones_cases())


def test_in_place_changes_to_the_weight_do_not_leak(predict):
    def vandal(weight, bias, input_hw, padding=0):
        out = predict(weight, bias, input_hw, padding)
        weight[...] = 0.0  # must not change the case the next call or the reference sees
        return out

    check_ones_output(vandal)
    sweep_ones_output(vandal, max_examples=30)


# --- the notebook ---------------------------------------------------------------------------
# The solution run and the stub run are tests/test_course_check.py's job. Here: border mistakes
# that the hidden sweep cell must catch, naming the case.


@pytest.mark.parametrize(
    "wrong",
    [WRONG_FULL_SUM_EVERYWHERE, WRONG_IGNORES_PADDING],
    ids=["full-sum-everywhere", "ignores-padding"],
)
def test_hidden_sweep_cell_catches_a_border_mistake(wrong):
    outcomes = nbs.run_notebook_file(NOTEBOOK, replace={"predict_ones_output": wrong})
    for gid, outcome in outcomes.items():
        print(gid, outcome.passed, outcome.error)
    assert outcomes["test_ones_seed"].passed  # seed 004 has no padding: the mistake hides there
    hidden = outcomes["test_ones_sweep"]
    assert not hidden.passed and hidden.points == 0
    assert "CheckFailure" in hidden.error and "minimal failing case" in hidden.error
    assert re.search(
        r"predict_ones_output fails for weight \(\d,\d,\d,\d\), bias.*input_hw=\(\d, \d\), "
        r"padding=",
        hidden.error,
    )
