"""The check modules of 07's sections 6–7 and 09's section 6, tested directly (no kernel).

course/checks/avgpool.py, receptive_field.py and pool_backward.py: the reference solutions
(taken from the source notebooks) pass; wrong ones fail with a message naming the case; the
torch-side measurements agree with what torch documents.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_pooling_checks import solutions

from course.checks import avgpool, pool_backward, receptive_field
from course.checks.core import CheckFailure


@pytest.fixture(scope="module")
def pool():
    return solutions("07_pooling/pooling.ipynb")


@pytest.fixture(scope="module")
def back():
    return solutions("09_backward/backward.ipynb")


def edited_function(notebook: str, gid: str, name: str, old: str, new: str):
    return solutions(notebook, **{gid: (old, new)})[name]


# --------------------------------------------------------------------------- average pooling


def test_measured_divisors_match_torchs_documented_rule():
    # AvgPool2d(3, stride=2, padding=1, ceil_mode=True) on 6x6: the last window covers a real
    # row, a padding row and a row past the padding, which does not count
    divisors = avgpool.torch_avgpool_divisors((6, 6), 3, 2, 1, ceil_mode=True)
    assert divisors.tolist() == [[9, 9, 9, 6]] * 3 + [[6, 6, 6, 4]]
    no_pad = avgpool.torch_avgpool_divisors((6, 6), 3, 2, 1, count_include_pad=False)
    assert no_pad.tolist() == [[4, 6, 6], [6, 9, 9], [6, 9, 9]]
    assert avgpool.torch_avgpool_divisors((4, 4), 2, divisor_override=-3).tolist() == [[-3] * 2] * 2
    with pytest.raises(RuntimeError):
        avgpool.torch_avgpool_divisors((4, 4), 2, divisor_override=0)


def test_reference_avgpool_solutions_pass(pool, capsys):
    avgpool.check_avgpool_divisors(pool["avgpool2d_divisors"], random=150)
    avgpool.check_avgpool2d(pool["avgpool2d"], random=150)
    assert "matches torch on 150 random case(s)" in capsys.readouterr().out


def test_count_include_pad_ignored_is_caught_with_a_minimal_case():
    wrong = edited_function(
        "07_pooling/pooling.ipynb",
        "avgpool2d_divisors",
        "avgpool2d_divisors",
        "if not count_include_pad:",
        "if False:",
    )
    with pytest.raises(CheckFailure) as failure:
        avgpool.check_avgpool_divisors(wrong, random=100)
    message = str(failure.value)
    print(message)
    assert "minimal failing case, shrunk by hypothesis" in message
    assert "count_include_pad=False" in message
    assert "divisors differ from torch's at" in message


def test_divisor_override_zero_must_raise():
    wrong = edited_function(
        "07_pooling/pooling.ipynb",
        "avgpool2d_divisors",
        "avgpool2d_divisors",
        "if divisor_override == 0:",
        "if False:",
    )
    case = dict(input_size=(4, 4), kernel_size=2, divisor_override=0)
    with pytest.raises(CheckFailure, match=r"torch raises RuntimeError here \(divisor must be"):
        avgpool.check_avgpool_divisors(wrong, [case])


def test_zero_padding_of_avgpool_matters_only_through_the_divisor(pool):
    # the -inf padding of max pooling would make every border average -inf
    wrong = edited_function(
        "07_pooling/pooling.ipynb",
        "avgpool2d",
        "avgpool2d",
        "xp = np.zeros((n, c, rows, cols))",
        "xp = np.full((n, c, rows, cols), -np.inf)",
    )
    case = avgpool.avgpool_case((1, 1, 4, 4), kernel_size=2, padding=1)
    with pytest.raises(CheckFailure, match=r"yours -inf"):
        avgpool.check_avgpool2d(wrong, [case])


# --------------------------------------------------------------------------- receptive field


def test_measured_fields_of_known_stacks():
    conv3 = {"kind": "conv", "kernel_size": 3}
    assert receptive_field.torch_receptive_field([conv3, conv3]) == {
        "size": (5, 5),
        "jump": (1, 1),
        "start": (0, 0),
    }
    seed = receptive_field.seed_cnn_layers()
    assert receptive_field.torch_receptive_field(seed)["size"] == (7, 7)
    dilated = [{"kind": "conv", "kernel_size": 3, "dilation": d, "padding": d} for d in (1, 2, 4)]
    assert receptive_field.torch_receptive_field(dilated) == {
        "size": (15, 15),
        "jump": (1, 1),
        "start": (-7, -7),
    }
    pools = [{"kind": "pool", "kernel_size": 2}] * 3  # a pool strides by its kernel
    assert receptive_field.torch_receptive_field(pools) == {
        "size": (8, 8),
        "jump": (8, 8),
        "start": (0, 0),
    }


def test_field_mask_of_a_dilated_stack_has_holes():
    layers = [{"kind": "conv", "kernel_size": 3, "dilation": 2}] * 3
    mask = receptive_field.field_mask(layers, (20, 20), (0, 0))
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (0, 12, 0, 12)
    assert mask[:13, :13].sum() == 49  # every other row and column: a 7x7 grid of pixels


def test_linearized_seed_cnn_measures_the_whole_window_of_each_max_pool():
    from course.checks.pooling import seed_cnn

    model = seed_cnn(3, 5)
    support = receptive_field.gradient_support(
        receptive_field.linearized(model), (1, 3, 16, 16), (7, 7)
    )
    assert support.sum() == 49 and support[5:12, 5:12].all()


def test_reference_receptive_field_passes(pool, capsys):
    receptive_field.check_seed_cnn_field(pool["receptive_field"])
    receptive_field.check_receptive_field(pool["receptive_field"], random=80)
    out = capsys.readouterr().out
    assert "one output pixel sees 7x7 input pixels starting at (-2, -2)" in out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # the start ignores the padding
        ("start[a] -= padding[a] * jump[a]", "pass", "start (0, 0) (h, w), but torch measures"),
        # the size ignores the dilation
        (
            "size[a] += dilation[a] * (kernel[a] - 1) * jump[a]",
            "size[a] += (kernel[a] - 1) * jump[a]",
            "size",
        ),
        # the jump is not carried into later layers' sizes
        (
            "size[a] += dilation[a] * (kernel[a] - 1) * jump[a]",
            "size[a] += dilation[a] * (kernel[a] - 1)",
            "size",
        ),
    ],
)
def test_wrong_receptive_fields_are_caught(old, new, expected):
    wrong = edited_function(
        "07_pooling/pooling.ipynb", "receptive_field", "receptive_field", old, new
    )
    with pytest.raises(CheckFailure) as failure:
        receptive_field.check_seed_cnn_field(wrong)
        receptive_field.check_receptive_field(wrong, random=100)
    print(failure.value)
    assert expected in str(failure.value)


def test_receptive_field_result_must_be_a_dict_of_int_pairs():
    problem = receptive_field.compare_fields(
        {"size": (7.0, 7.0), "jump": (1, 1), "start": (-2, -2)},
        {"size": (7, 7), "jump": (1, 1), "start": (-2, -2)},
    )
    assert problem == "'size' must be an (h, w) pair of ints, got (7.0, 7.0)"
    assert "lacks ['start']" in receptive_field.compare_fields(
        {"size": (1, 1), "jump": (1, 1)}, {"size": (1, 1), "jump": (1, 1), "start": (0, 0)}
    )


# --------------------------------------------------------------------------- pooling backward


def test_torch_breaks_max_pool_ties_at_the_first_maximum():
    x = torch.ones(1, 1, 3, 3, requires_grad=True)
    out, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
    out.backward(torch.ones_like(out))
    assert indices.flatten().tolist() == [0, 1, 3, 4]
    assert x.grad[0, 0].tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]


def test_cases_with_a_window_entirely_in_the_padding_are_refused():
    # torch's backward writes outside the input there (heap corruption in torch 2.14.1)
    with pytest.raises(ValueError, match="entirely in the padding"):
        pool_backward.pool_backward_case(
            "max", (1, 1, 1, 7), kernel_size=2, stride=2, padding=1, dilation=2
        )


def test_reference_pool_backward_solutions_pass(back, capsys):
    pool_backward.check_maxpool2d_backward(back["maxpool2d_backward"], random=60, ties=True)
    pool_backward.check_maxpool2d_backward(back["maxpool2d_backward"], random=60, ties=False)
    pool_backward.check_avgpool2d_backward(back["avgpool2d_backward"], random=60)
    pool_backward.check_avgpool2d_backward(
        back["avgpool2d_backward"], random=5, reference="numerical", max_size=4
    )
    assert "(vs numerical gradient) matches torch on 5" in capsys.readouterr().out


def test_gradient_to_every_tied_maximum_is_caught(back):
    # every pixel equal to the window's maximum gets the gradient: wrong on ties only
    ns = solutions("09_backward/backward.ipynb")

    def all_maxima(x, grad_out, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        out = ns["maxpool2d"](x, kernel_size, stride, padding, dilation, ceil_mode)
        grad = np.zeros_like(x)
        kh, kw = ns["as_pair"](kernel_size)
        sh, sw = ns["as_pair"](kernel_size if stride is None else stride)
        (ph, pw), (dh, dw) = ns["as_pair"](padding), ns["as_pair"](dilation)
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                for p in range(kh):
                    for q in range(kw):
                        r, c = i * sh - ph + p * dh, j * sw - pw + q * dw
                        if 0 <= r < x.shape[2] and 0 <= c < x.shape[3]:
                            hit = x[:, :, r, c] == out[:, :, i, j]
                            grad[:, :, r, c] += np.where(hit, grad_out[:, :, i, j], 0)
        return grad

    pool_backward.check_maxpool2d_backward(all_maxima, random=40, ties=False)  # right without ties
    with pytest.raises(CheckFailure) as failure:
        pool_backward.check_maxpool2d_backward(all_maxima, random=60, ties=True)
    print(failure.value)
    assert "grad_x differs from torch" in str(failure.value)
    assert "(yours " in str(failure.value) and "torch 0)" in str(failure.value)


def test_returning_a_tuple_from_a_pool_backward_is_explained(back):
    def triple(x, grad_out, kernel_size, **params):
        return back["maxpool2d_backward"](x, grad_out, kernel_size, **params), None, None

    case = pool_backward.pool_backward_case("max", (1, 1, 4, 4), kernel_size=2)
    with pytest.raises(CheckFailure, match="return grad_x alone"):
        pool_backward.check_maxpool2d_backward(triple, [case])
