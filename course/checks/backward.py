"""Checks for assignment 09: the gradients of conv2d, against torch autograd and numerically.

The student writes ``conv2d_forward(x, weight, bias, stride, padding, dilation, groups)`` and
``conv2d_backward(x, weight, grad_out, stride, padding, dilation, groups) -> (grad_x, grad_w,
grad_b)`` in NumPy. Two references:

- torch autograd in float64 (:func:`torch_conv2d_backward`);
- central differences of torch's forward, no autograd at all (:func:`numerical_conv2d_backward`,
  built on :mod:`course.gradient_check`).

Random cases are drawn by hypothesis and a failure is shrunk to a minimal case, named with its
shapes and parameters, and the gradient that differs (grad_x, grad_w or grad_b) is named with its
largest error and where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from course.checks.core import CheckFailure, check_cases, compare_arrays, one_thread, sweep

Pair = int | tuple[int, int]
PARTS = ("x", "w", "b")


def _as_pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv_output_shape(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> tuple[int, int, int, int]:
    """(N, C_out, H_out, W_out) for x (N, C_in, H, W) and weight (C_out, C_in/groups, kH, kW)."""
    sizes = []
    for n, k, s, p, d in zip(
        x_shape[2:],
        w_shape[2:],
        _as_pair(stride),
        _as_pair(padding),
        _as_pair(dilation),
        strict=True,
    ):
        sizes.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return (int(x_shape[0]), int(w_shape[0]), *sizes)


# --------------------------------------------------------------------------- torch references


def torch_conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> np.ndarray:
    """``F.conv2d`` on NumPy arrays: x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW),
    bias (C_out,) or None -> (N, C_out, H_out, W_out)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad(), one_thread():
        out = F.conv2d(
            torch.from_numpy(np.array(x)),
            torch.from_numpy(np.array(weight)),
            None if bias is None else torch.from_numpy(np.array(bias)),
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
        )
    return out.numpy()


def torch_conv2d_backward(
    x: np.ndarray,
    weight: np.ndarray,
    grad_out: np.ndarray,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of ``L = sum(conv2d(x, weight, bias) * grad_out)`` by torch autograd (float64).

    x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), grad_out (N, C_out, H_out, W_out).
    Returns (grad_x of x.shape, grad_w of weight.shape, grad_b of shape (C_out,)).
    """
    import torch
    import torch.nn.functional as F

    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    wt = torch.tensor(np.asarray(weight, dtype=np.float64), requires_grad=True)
    bt = torch.zeros(wt.shape[0], dtype=torch.float64, requires_grad=True)
    with one_thread():
        out = F.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
        out.backward(torch.tensor(np.asarray(grad_out, dtype=np.float64)))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def numerical_conv2d_backward(
    x: np.ndarray,
    weight: np.ndarray,
    grad_out: np.ndarray,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same three gradients as :func:`torch_conv2d_backward`, by central differences of
    torch's forward (no autograd). Costs 2 forward passes per entry of x, weight and bias: keep
    the arrays small."""
    from course.gradient_check import numerical_gradient_array

    x = np.array(x, dtype=np.float64)
    weight = np.array(weight, dtype=np.float64)
    bias = np.zeros(weight.shape[0])
    params = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    grad_x = numerical_gradient_array(
        lambda v: torch_conv2d_forward(v, weight, bias, **params), x, grad_out
    )
    grad_w = numerical_gradient_array(
        lambda v: torch_conv2d_forward(x, v, bias, **params), weight, grad_out
    )
    grad_b = numerical_gradient_array(
        lambda v: torch_conv2d_forward(x, weight, v, **params), bias, grad_out
    )
    return grad_x, grad_w, grad_b


# --------------------------------------------------------------------------- comparison


def compare_grads(
    parts: Sequence[str] = PARTS,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    reference: str = "torch",
):
    """A ``compare=`` hook for core's checks: the student's (grad_x, grad_w, grad_b) against the
    reference triple, comparing only ``parts`` (any of "x", "w", "b"). ``reference`` names the
    reference in the message ("torch", "the numerical gradient")."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"parts must be among {PARTS}, got {sorted(unknown)}")

    def compare(got: Any, expected: tuple[np.ndarray, np.ndarray, np.ndarray]) -> str | None:
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            return (
                "conv2d_backward must return a tuple (grad_x, grad_w, grad_b), "
                f"got {type(got).__name__}"
                + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else "")
            )
        for part, mine, ref in zip(PARTS, got, expected, strict=True):
            if part not in parts:
                continue
            problem = compare_arrays(
                mine, ref, atol=atol, rtol=rtol, what=f"grad_{part}", reference=reference
            )
            if problem is not None:
                return problem
        return None

    return compare


# --------------------------------------------------------------------------- cases


def _array(rng: np.random.Generator, shape: Sequence[int]) -> np.ndarray:
    return rng.standard_normal(tuple(shape))


def conv_case(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    seed: int = 0,
    *,
    backward: bool = True,
    bias: bool = True,
    **params: Any,
) -> dict[str, Any]:
    """One keyword dict of float64 arrays: for ``conv2d_backward`` (x, weight, grad_out, params)
    or, with ``backward=False``, for ``conv2d_forward`` (x, weight, bias, params).

    x_shape (N, C_in, H, W); w_shape (C_out, C_in/groups, kH, kW); params: stride, padding,
    dilation, groups.
    """
    rng = np.random.default_rng(seed)
    case: dict[str, Any] = {"x": _array(rng, x_shape), "weight": _array(rng, w_shape)}
    if backward:
        out_shape = conv_output_shape(
            x_shape,
            w_shape,
            params.get("stride", 1),
            params.get("padding", 0),
            params.get("dilation", 1),
        )
        case["grad_out"] = _array(rng, out_shape)
    else:
        case["bias"] = _array(rng, (w_shape[0],)) if bias else None
    case.update(params)
    return case


def conv_strategy(
    *,
    backward: bool = True,
    stride: bool = True,
    padding: bool = True,
    dilation: bool = True,
    groups: bool = True,
    max_size: int = 6,
):
    """Hypothesis strategy of valid keyword dicts (see :func:`conv_case`); switch a parameter off
    to keep it at its default. Sizes stay small so numerical gradients are cheap."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        square = not draw(st.booleans())  # int parameters (shrinks to), else (h, w) tuples

        def param(low: int, high: int) -> Pair:
            first = draw(st.integers(low, high))
            return first if square else (first, draw(st.integers(low, high)))

        g = draw(st.integers(1, 3)) if groups else 1
        c_in, c_out = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
        kh, kw = _as_pair(param(1, 3))
        s = param(1, 3) if stride else 1
        p = param(0, 2) if padding else 0
        d = param(1, 2) if dilation else 1
        sizes = []
        for k, pad, dil in zip((kh, kw), _as_pair(p), _as_pair(d), strict=True):
            smallest = max(1, dil * (k - 1) + 1 - 2 * pad)
            sizes.append(draw(st.integers(smallest, max(smallest, max_size))))
        n = draw(st.integers(1, 2))
        params = {"stride": s, "padding": p, "dilation": d, "groups": g}
        return conv_case(
            (n, c_in, *sizes),
            (c_out, c_in // g, kh, kw),
            draw(st.integers(0, 2**16)),
            backward=backward,
            bias=draw(st.booleans()),
            **params,
        )

    return cases()


# --------------------------------------------------------------------------- checks


def check_conv2d_forward(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "conv2d_forward",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(x, weight, bias, stride, padding, dilation, groups)`` with
    ``F.conv2d`` on ``cases`` (see :func:`conv_case` with backward=False) and/or ``random``
    hypothesis cases."""
    count = 0
    if cases is not None:
        count += check_cases(student_fn, torch_conv2d_forward, cases, name=name, atol=1e-8)
    if random:
        strategy = conv_strategy(backward=False, **strategy_options)
        count += sweep(
            student_fn, torch_conv2d_forward, strategy, name=name, max_examples=random, atol=1e-8
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


def check_conv2d_backward(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    parts: Sequence[str] = PARTS,
    reference: str = "autograd",
    name: str = "conv2d_backward",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(x, weight, grad_out, stride, padding, dilation, groups)`` ->
    (grad_x, grad_w, grad_b) with torch.

    parts: which gradients to compare ("x", "w", "b").
    reference: "autograd" (torch autograd, float64) or "numerical" (central differences of
    torch's forward; slower, keep cases few and small).
    """
    if reference == "autograd":
        reference_fn, against = torch_conv2d_backward, "torch"
    elif reference == "numerical":
        # central differences of torch's forward: no autograd, so "matches torch" would be wrong
        reference_fn, against = numerical_conv2d_backward, "central differences of torch's forward"
    else:
        raise ValueError("reference must be 'autograd' or 'numerical'")
    label = f"{name} (vs {'torch autograd' if reference == 'autograd' else 'numerical gradient'})"
    compare = compare_grads(
        parts, reference="torch" if reference == "autograd" else "the numerical gradient"
    )
    count = 0
    if cases is not None:
        count += check_cases(
            student_fn, reference_fn, cases, name=label, compare=compare, against=against
        )
    if random:
        strategy = conv_strategy(backward=True, **strategy_options)
        count += sweep(
            student_fn,
            reference_fn,
            strategy,
            name=label,
            max_examples=random,
            compare=compare,
            against=against,
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


__all__ = [
    "CheckFailure",
    "check_conv2d_backward",
    "check_conv2d_forward",
    "compare_grads",
    "conv_case",
    "conv_output_shape",
    "conv_strategy",
    "numerical_conv2d_backward",
    "torch_conv2d_backward",
    "torch_conv2d_forward",
]
