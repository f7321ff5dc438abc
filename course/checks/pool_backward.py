"""Checks for assignment 09, section 6: the backward passes of max and average pooling.

The student writes, in NumPy:

- ``maxpool2d_backward(x, grad_out, kernel_size, stride=None, padding=0, dilation=1,
  ceil_mode=False) -> grad_x``: each output's gradient goes to the input pixel that won its
  window (torch's arg-max: the *first* maximum in the window, row by row, on ties); a pixel that
  wins several overlapping windows collects the sum;
- ``avgpool2d_backward(x, grad_out, kernel_size, stride=None, padding=0, ceil_mode=False,
  count_include_pad=True, divisor_override=None) -> grad_x``: each output's gradient, divided by
  its window's divisor, goes to every real input pixel of the window.

x: (N, C, H, W) float64; grad_out: (N, C, H_out, W_out), the upstream gradient dL/dy. The
reference is torch autograd in float64 (``y.backward(grad_out)``); average pooling is also
checked against central differences of torch's forward. Inputs with many ties (small integers)
check that ties are broken as torch breaks them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import CheckFailure, check_cases, compare_arrays, one_thread, sweep
from course.checks.pooling import random_input

Pair = int | tuple[int, int]
MAX_PARAMS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
AVG_PARAMS = (
    "kernel_size",
    "stride",
    "padding",
    "ceil_mode",
    "count_include_pad",
    "divisor_override",
)


def _pool(kind: str, x: Any, **params: Any) -> Any:
    import torch.nn.functional as F

    if kind == "max":
        return F.max_pool2d(x, **params)
    return F.avg_pool2d(x, **params)


def torch_pool_backward(kind: str, x: np.ndarray, grad_out: np.ndarray, **params: Any):
    """dL/dx of ``L = sum(pool(x) * grad_out)`` by torch autograd (float64).

    kind: "max" (``F.max_pool2d``) or "avg" (``F.avg_pool2d``); params: that function's keyword
    arguments. Returns an array of x's shape.
    """
    import torch

    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    with one_thread():
        out = _pool(kind, xt, **params)
        out.backward(torch.tensor(np.asarray(grad_out, dtype=np.float64)))
    return xt.grad.numpy()


def torch_maxpool2d_backward(
    x, grad_out, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
):
    """torch autograd's dL/dx for ``F.max_pool2d``; x (N, C, H, W), grad_out of its output."""
    params = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    return torch_pool_backward("max", x, grad_out, kernel_size=kernel_size, **params)


def torch_avgpool2d_backward(
    x,
    grad_out,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """torch autograd's dL/dx for ``F.avg_pool2d``; x (N, C, H, W), grad_out of its output."""
    params = dict(
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )
    return torch_pool_backward("avg", x, grad_out, kernel_size=kernel_size, **params)


def numerical_avgpool2d_backward(x, grad_out, **params: Any) -> np.ndarray:
    """The same gradient by central differences of torch's ``avg_pool2d`` (no autograd)."""
    from course.checks.avgpool import torch_avgpool2d
    from course.gradient_check import numerical_gradient_array

    return numerical_gradient_array(
        lambda v: torch_avgpool2d(v, **params), np.array(x, dtype=np.float64), grad_out
    )


# --------------------------------------------------------------------------- cases


def tied_input(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """float64 array of small integers 0..2: nearly every window holds a tie."""
    return np.random.default_rng(seed).integers(0, 3, shape).astype(np.float64)


def pool_backward_case(
    kind: str, shape: tuple[int, ...], seed: int = 0, ties: bool = False, **params: Any
) -> dict[str, Any]:
    """One keyword dict ``{x, grad_out, **params}`` for a pooling backward; ``grad_out`` has the
    shape torch's forward gives (computed by running it). kind: "max" or "avg"."""
    import torch

    x = tied_input(shape, seed) if ties else random_input(shape, seed)
    with torch.no_grad(), one_thread():
        out = _pool(kind, torch.from_numpy(x), **params)
    if not bool(torch.isfinite(out).all()):
        # A max-pool window entirely in the padding: torch's output is -inf there and its index
        # points outside the input, and torch's own backward then writes outside x's memory
        # (torch 2.14 corrupts its heap). No gradient is defined: such cases are not checked.
        raise ValueError(f"a pooling window lies entirely in the padding: {params}")
    out_shape = tuple(out.shape)
    grad_out = np.random.default_rng(seed + 1).standard_normal(out_shape)
    return {"x": x, "grad_out": grad_out, **params}


def backward_strategy(kind: str, *, ties: bool | None = None, max_size: int = 7):
    """Hypothesis strategy of valid keyword dicts for ``maxpool2d_backward`` (kind "max") or
    ``avgpool2d_backward`` (kind "avg"): batched float64 inputs, all pooling parameters; with
    ``ties`` (None: draw) the inputs are small integers, full of ties."""
    from hypothesis import strategies as st

    from course.checks.avgpool import avgpool_strategy
    from course.checks.pooling import maxpool_strategy

    if kind == "max":
        forward = maxpool_strategy(batched=True, max_size=max_size)
        names = MAX_PARAMS
    else:
        forward = avgpool_strategy(batched=True, max_size=max_size)
        names = AVG_PARAMS

    @st.composite
    def cases(draw):
        case = draw(forward)
        params = {k: case[k] for k in names if k in case}
        if kind == "avg" and params.get("divisor_override") == 0:
            params["divisor_override"] = None
        with_ties = draw(st.booleans()) if ties is None else ties
        seed = draw(st.integers(0, 2**16))
        try:
            return pool_backward_case(kind, case["x"].shape, seed, ties=with_ties, **params)
        except (RuntimeError, ValueError):
            # torch rejects the case (padding too large, no output) or a window lies entirely
            # in the padding: no gradient to check, so the same input with kernel 1 instead
            return pool_backward_case(kind, case["x"].shape, seed, ties=with_ties, kernel_size=1)

    return cases()


# --------------------------------------------------------------------------- checks


def _compare(got: Any, expected: np.ndarray) -> str | None:
    if isinstance(got, (tuple, list)) and len(got) != 0 and not np.isscalar(got[0]):
        return (
            f"return grad_x alone (an array of x's shape), not a {type(got).__name__} of "
            f"{len(got)} items"
        )
    return compare_arrays(got, expected, atol=1e-8, rtol=1e-6, what="grad_x")


def _fresh(student_fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(**case: Any) -> Any:
        return student_fn(
            **{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.items()}
        )

    return call


def _check(kind, student_fn, reference, cases, random, label, strategy_options) -> None:
    count = 0
    if cases is not None:
        count += check_cases(_fresh(student_fn), reference, cases, name=label, compare=_compare)
    if random:
        count += sweep(
            _fresh(student_fn),
            reference,
            backward_strategy(kind, **strategy_options),
            name=label,
            max_examples=random,
            compare=_compare,
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


def check_maxpool2d_backward(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "maxpool2d_backward",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(x, grad_out, kernel_size, stride, padding, dilation, ceil_mode)``
    with torch autograd on ``cases`` (see :func:`pool_backward_case` with kind "max") and/or
    ``random`` cases (``ties=True/False/None`` and ``max_size`` passed to the strategy)."""
    __tracebackhide__ = True
    label = f"{name} (vs torch autograd)"
    _check("max", student_fn, torch_maxpool2d_backward, cases, random, label, strategy_options)


def check_avgpool2d_backward(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    reference: str = "autograd",
    name: str = "avgpool2d_backward",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(x, grad_out, kernel_size, stride, padding, ceil_mode,
    count_include_pad, divisor_override)`` with torch autograd (``reference="autograd"``) or with
    central differences of torch's forward (``reference="numerical"``; keep cases small)."""
    __tracebackhide__ = True
    references = {
        "autograd": (torch_avgpool2d_backward, "torch autograd"),
        "numerical": (numerical_avgpool2d_backward, "numerical gradient"),
    }
    if reference not in references:
        raise ValueError("reference must be 'autograd' or 'numerical'")
    ref, against = references[reference]
    _check("avg", student_fn, ref, cases, random, f"{name} (vs {against})", strategy_options)


__all__ = [
    "CheckFailure",
    "backward_strategy",
    "check_avgpool2d_backward",
    "check_maxpool2d_backward",
    "numerical_avgpool2d_backward",
    "pool_backward_case",
    "tied_input",
    "torch_avgpool2d_backward",
    "torch_maxpool2d_backward",
    "torch_pool_backward",
]
