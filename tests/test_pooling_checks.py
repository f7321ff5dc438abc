"""The check modules behind assignments 07 and 09, tested directly (no notebook kernel).

course/checks/pooling.py, course/checks/backward.py and course/gradient_check.py: the reference
solutions (taken from the source notebooks) pass, wrong ones fail with a message that names the
(shrunk) case, and the helpers' edge cases behave as documented.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autograder.notebooks import grade_id, is_solution_cell, load
from course.checks.core import CheckFailure
from course.gradient_check import numerical_gradient, numerical_gradient_array, relative_error

SOURCE = Path(__file__).resolve().parent.parent / "source"


def solutions(notebook: str, **edits: tuple[str, str]) -> dict:
    """The namespace of a source notebook's solution cells; ``edits`` maps a grade_id to an
    (old, new) replacement applied to that cell first."""
    namespace: dict = {"np": np}
    for cell in load(SOURCE / notebook).cells:
        if is_solution_cell(cell):
            source = cell.source
            if grade_id(cell) in edits:
                old, new = edits[grade_id(cell)]
                assert old in source
                source = source.replace(old, new)
            exec(compile(source, grade_id(cell), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def pool():
    return solutions("07_pooling/pooling.ipynb")


@pytest.fixture(scope="module")
def back():
    return solutions("09_backward/backward.ipynb")


# --------------------------------------------------------------------------- pooling


def test_reference_solutions_of_07_pass_every_pooling_check(pool, capsys):
    from course.checks import pooling as checks

    assert checks.check_conv2d_output_size(pool["conv2d_output_size"], random=60) is None
    checks.check_pool2d_output_size(pool["pool2d_output_size"], random=100)
    checks.check_maxpool2d(pool["maxpool2d"], random=60)
    checks.check_maxpool2d(pool["maxpool2d"], random=60, return_indices=True, ceil_mode=True)
    checks.check_cnn_shapes(pool["cnn_shapes"], random=40)
    out = capsys.readouterr().out
    assert out.count("ok: ") == 5 and "maxpool2d matches torch on 60 random case(s)" in out


def test_zero_padding_failure_is_shrunk_to_a_minimal_named_case():
    wrong = solutions(
        "07_pooling/pooling.ipynb", maxpool2d=("-np.inf, dtype=dtype", "0.0, dtype=dtype")
    )
    from course.checks.pooling import check_maxpool2d

    with pytest.raises(CheckFailure) as info:
        check_maxpool2d(wrong["maxpool2d"], random=100)
    message = str(info.value)
    print(message)
    assert message.startswith("maxpool2d fails for x (")
    assert "padding=1" in message and "(minimal failing case, shrunk by hypothesis)" in message
    assert "(yours 0, torch -" in message
    # shrunk: one channel, one or two pixels
    assert "x (1,1,1)" in message or "x (1,1,1,1)" in message


def test_seed_003_cnn_shapes_come_from_a_real_module():
    from course.checks.pooling import torch_cnn_shapes

    shapes = torch_cnn_shapes((4, 3, 32, 32), 5)
    assert shapes.tolist() == [[4, 10, 32, 32], [4, 10, 31, 31], [4, 5, 31, 31], [4, 5, 30, 30]]
    assert torch_cnn_shapes((3, 9, 9), 2).tolist()[-1] == [2, 7, 7]


def test_torch_rejects_padding_over_half_the_kernel_and_the_check_demands_an_error(pool):
    from course.checks.pooling import check_maxpool2d, maxpool_case

    def no_error(x, kernel_size, stride=None, padding=0, **_):
        return np.zeros((1, 1, 5, 5))

    with pytest.raises(CheckFailure, match="torch raises RuntimeError here .pad should be"):
        check_maxpool2d(no_error, [maxpool_case((1, 1, 5, 5), kernel_size=3, padding=2)])


def test_indices_comparison_rules():
    from course.checks.pooling import compare_pool_with_indices

    out = np.array([[[-np.inf, 2.0]]])
    idx = np.array([[[7, 1]]])
    assert compare_pool_with_indices((out, np.array([[[0, 1]]])), (out, idx)) is None  # -inf
    assert "must return a tuple (output, indices)" in compare_pool_with_indices(out, (out, idx))
    assert "expected integers" in compare_pool_with_indices((out, idx * 1.0), (out, idx))
    message = compare_pool_with_indices((out, np.array([[[7, 3]]])), (out, idx))
    assert "indices differ from torch at 1 of 2 positions; first at [0, 0, 1]" in message


def test_maxpool_strategy_draws_valid_cases_and_cases_where_torch_raises():
    from hypothesis import given, settings

    from course.checks.pooling import maxpool_strategy, torch_maxpool2d

    seen = {"ok": 0, "raises": 0, "unbatched": 0, "tuple": 0}

    @settings(max_examples=150, derandomize=True, database=None, deadline=None)
    @given(maxpool_strategy())
    def draw(case):
        seen["unbatched"] += case["x"].ndim == 3
        seen["tuple"] += isinstance(case["kernel_size"], tuple)
        try:
            torch_maxpool2d(**case)
            seen["ok"] += 1
        except RuntimeError:
            seen["raises"] += 1

    draw()
    print(seen)
    assert seen["ok"] > 60 and seen["raises"] > 10
    assert seen["unbatched"] > 10 and seen["tuple"] > 10


# --------------------------------------------------------------------------- backward


def test_reference_solutions_of_09_pass_every_backward_check(back, capsys):
    from course.checks import backward as checks

    assert checks.check_conv2d_forward(back["conv2d_forward"], random=40) is None
    checks.check_conv2d_backward(back["conv2d_backward"], random=40)
    checks.check_conv2d_backward(back["conv2d_backward"], random=5, reference="numerical")
    assert capsys.readouterr().out.count("ok: ") == 3


def test_numerical_reference_agrees_with_autograd_on_a_strided_grouped_case():
    from course.checks.backward import conv_case, numerical_conv2d_backward, torch_conv2d_backward

    case = conv_case(
        (2, 4, 6, 5), (4, 2, 3, 2), seed=3, stride=(2, 1), padding=1, dilation=(1, 2), groups=2
    )
    for numerical, autograd in zip(
        numerical_conv2d_backward(**case), torch_conv2d_backward(**case), strict=True
    ):
        assert numerical.shape == autograd.shape
        assert relative_error(numerical, autograd) < 1e-6


def test_wrong_grad_b_is_named_in_the_message(back):
    from course.checks.backward import check_conv2d_backward, conv_case

    def wrong(x, weight, grad_out, **params):
        grad_x, grad_w, grad_b = back["conv2d_backward"](x, weight, grad_out, **params)
        return grad_x, grad_w, grad_out.sum(axis=(1, 2, 3))[: grad_b.size]

    case = conv_case((3, 2, 4, 4), (3, 2, 2, 2), seed=1)
    with pytest.raises(CheckFailure, match=r"grad_b differs from torch at \d of 3 positions"):
        check_conv2d_backward(wrong, [case])
    # comparing only grad_x and grad_w, the same function passes
    check_conv2d_backward(wrong, [case], parts=("x", "w"))


def test_backward_must_return_three_arrays():
    from course.checks.backward import compare_grads

    compare = compare_grads()
    assert "must return a tuple (grad_x, grad_w, grad_b)" in compare((1, 2), (1, 2, 3))
    with pytest.raises(ValueError):
        compare_grads(("y",))


# --------------------------------------------------------------------------- gradient_check


def test_numerical_gradient_of_a_cube_and_x_is_restored():
    x = np.random.default_rng(0).standard_normal((3, 4))
    before = x.copy()
    grad = numerical_gradient(lambda a: np.sum(a**3), x)
    assert np.array_equal(x, before)
    assert relative_error(grad, 3 * x**2) < 1e-7


def test_numerical_gradient_array_is_a_vector_jacobian_product():
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((5, 3))
    x = rng.standard_normal((3,))
    grad_out = rng.standard_normal((5,))
    grad = numerical_gradient_array(lambda v: matrix @ v, x, grad_out)
    assert relative_error(grad, matrix.T @ grad_out) < 1e-7


def test_numerical_gradient_refuses_float32_and_relative_error_checks_shapes():
    with pytest.raises(ValueError, match="float64"):
        numerical_gradient(np.sum, np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="shapes differ"):
        relative_error(np.zeros(2), np.zeros(3))
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    assert relative_error(np.array([1.0]), np.array([1.1])) == pytest.approx(0.1 / 2.1)
