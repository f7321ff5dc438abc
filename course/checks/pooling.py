"""Checks for assignment 07: output sizes, MaxPool2d from scratch and the seed 003 CNN's shapes.

Every check calls the student's function with plain data (NumPy arrays, ints, tuples, bools),
calls torch on the same case and compares. Randomized checks use :func:`course.checks.core.sweep`,
so a failure is shrunk to a minimal case and named with its parameters, e.g.
``maxpool2d fails for x (1,1,2,2), kernel_size=2, stride=None, padding=1, ...``.

Where torch raises (padding larger than half the kernel, output smaller than 1×1, stride 0, ...),
the student's function must raise ValueError or RuntimeError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import (
    CheckFailure,
    as_plain_array,
    check_cases,
    compare_arrays,
    one_thread,
    sweep,
)

Pair = int | tuple[int, int]


# --------------------------------------------------------------------------- torch references


def torch_maxpool2d(
    x: np.ndarray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """torch's ``F.max_pool2d`` on a NumPy array x (N, C, H, W) or (C, H, W).

    Returns the output as a NumPy array (same leading dims, H_out × W_out), or a tuple
    (output, indices) with int64 indices into each H×W plane when ``return_indices``.
    """
    import torch
    import torch.nn.functional as F

    with one_thread():
        result = F.max_pool2d(
            torch.from_numpy(np.array(x)),
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
            return_indices=return_indices,
        )
    if return_indices:
        return result[0].numpy(), result[1].numpy()
    return result.numpy()


def torch_pool2d_output_size(
    input_size: tuple[int, int],
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    dilation: Pair = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """(H_out, W_out) of ``nn.MaxPool2d`` for an input of spatial size ``input_size`` (H, W),
    measured by running torch on zeros. Raises where torch raises."""
    out = torch_maxpool2d(
        np.zeros((1, 1, *input_size)), kernel_size, stride, padding, dilation, ceil_mode
    )
    return np.array(out.shape[-2:])


def torch_conv2d_output_size(
    input_size: tuple[int, int],
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> np.ndarray:
    """(H_out, W_out) of ``nn.Conv2d`` (int/tuple padding) for spatial size ``input_size`` (H, W),
    measured by running torch. Raises where torch raises."""
    import torch
    import torch.nn.functional as F

    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    with one_thread():
        out = F.conv2d(
            torch.zeros(1, 1, *input_size),
            torch.zeros(1, 1, kh, kw),
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
    return np.array(out.shape[-2:])


def seed_cnn(in_channels: int, out_channels: int) -> Any:
    """The seed 003 CNN with its ``super().__init__()`` fixed: conv-pool-conv-pool.

    Conv2d(in, 10, 3, stride=1, padding=1), MaxPool2d(2, stride=1),
    Conv2d(10, out, 3, stride=1, padding=1), MaxPool2d(2, stride=1).
    """
    from torch import nn

    class CNN(nn.Module):
        def __init__(self, in_channels: int, out_channels: int):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, 10, 3, stride=1, padding=1)
            self.pool1 = nn.MaxPool2d(kernel_size=2, stride=1)
            self.conv2 = nn.Conv2d(10, out_channels, 3, stride=1, padding=1)
            self.pool2 = nn.MaxPool2d(kernel_size=2, stride=1)

        def forward(self, x):
            return self.pool2(self.conv2(self.pool1(self.conv1(x))))

    return CNN(in_channels, out_channels)


def torch_cnn_shapes(input_shape: tuple[int, ...], out_channels: int) -> np.ndarray:
    """Shapes after conv1, pool1, conv2, pool2 of the seed 003 CNN, as a (4, len(input_shape))
    array, measured with forward hooks on a real ``nn.Module``. Raises where torch raises."""
    import torch

    model = seed_cnn(input_shape[-3], out_channels)
    shapes: list[tuple[int, ...]] = []
    for layer in (model.conv1, model.pool1, model.conv2, model.pool2):
        layer.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
    with torch.no_grad(), one_thread():
        model(torch.zeros(*input_shape))
    return np.array(shapes)


# --------------------------------------------------------------------------- comparisons


def compare_pool_with_indices(got: Any, expected: tuple[np.ndarray, np.ndarray]) -> str | None:
    """Compare ``(output, indices)`` with torch's pair; None when both agree.

    Indices must be integers equal to torch's flat indices into each H×W input plane. Where a
    window lies entirely in the padding, torch's output is -inf and its index is meaningless:
    those positions are not compared.
    """
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return (
            "with return_indices=True your function must return a tuple (output, indices), "
            f"got {type(got).__name__}"
        )
    expected_out, expected_idx = expected
    problem = compare_arrays(got[0], expected_out, what="output")
    if problem is not None:
        return problem
    indices = as_plain_array(got[1], "your indices")
    if indices.shape != expected_idx.shape:
        return f"indices shape {tuple(indices.shape)} but torch gives {tuple(expected_idx.shape)}"
    if indices.size and indices.dtype.kind not in "iu":
        return f"indices have dtype {indices.dtype}; expected integers (torch gives int64)"
    meaningful = np.isfinite(expected_out)
    wrong = (indices != expected_idx) & meaningful
    if np.any(wrong):
        where = tuple(int(i) for i in np.argwhere(wrong)[0])
        return (
            f"indices differ from torch at {int(wrong.sum())} of {indices.size} positions; "
            f"first at [{', '.join(map(str, where))}] (yours {int(indices[where])}, "
            f"torch {int(expected_idx[where])}); indices are flat positions r*W + c in the "
            "unpadded H×W input plane"
        )
    return None


# --------------------------------------------------------------------------- strategies


def _pair(low: int, high: int):
    from hypothesis import strategies as st

    n = st.integers(low, high)
    return st.one_of(n, st.tuples(n, n))


def _as_pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def random_input(shape: tuple[int, ...], seed: int, negative: bool = False) -> np.ndarray:
    """A float64 array of ``shape`` with distinct values (no ties), reproducible from ``seed``.

    negative=True shifts every value below zero, the case where zero padding is wrong.
    """
    rng = np.random.default_rng(seed)
    x = rng.permutation(np.prod(shape, dtype=int)).reshape(shape) + rng.uniform(0.1, 0.9, shape)
    x = x / max(1, x.size)
    return x - 2.0 if negative else x


def maxpool_strategy(
    *,
    batched: bool | None = None,
    ceil_mode: bool | None = None,
    padding: bool = True,
    dilation: bool = True,
    return_indices: bool = False,
    max_size: int = 8,
):
    """Hypothesis strategy of keyword dicts for ``maxpool2d`` (None = draw both values).

    Some drawn cases are invalid for torch (padding > kernel/2, output smaller than 1): there the
    student's function must raise ValueError or RuntimeError.
    """
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        # booleans shrink to False: minimal failing cases come out batched, with int parameters
        is_batched = (not draw(st.booleans())) if batched is None else batched
        lead = (draw(st.integers(1, 2)),) if is_batched else ()
        shape = (*lead, draw(st.integers(1, 2)), draw(st.integers(1, max_size)))
        shape = (*shape, draw(st.integers(1, max_size)))
        negative = draw(st.booleans())
        case: dict[str, Any] = {"x": random_input(shape, draw(st.integers(0, 2**16)), negative)}
        square = not draw(st.booleans())  # int parameters, else (h, w) tuples

        def param(low: int, high: Any) -> Any:
            first = draw(st.integers(low, high(0) if callable(high) else high))
            if square:
                return first
            return (first, draw(st.integers(low, high(1) if callable(high) else high)))

        kernel = param(1, 4)
        kh, kw = _as_pair(kernel)
        case["kernel_size"] = kernel
        case["stride"] = None if draw(st.booleans()) else param(1, 3)
        # mostly valid padding (at most half the kernel); one case in six has one row/column
        # too many, where torch raises
        too_much = int(draw(st.integers(0, 5)) == 0)
        limits = (kh // 2, kw // 2) if not square else (min(kh, kw) // 2,) * 2
        if not padding:
            case["padding"] = 0
        elif too_much:
            case["padding"] = limits[0] + 1 if square else (limits[0] + 1, limits[1])
        else:
            case["padding"] = param(0, lambda i: limits[i])
        case["dilation"] = param(1, 2) if dilation else 1
        case["ceil_mode"] = draw(st.booleans()) if ceil_mode is None else ceil_mode
        case["return_indices"] = return_indices
        return case

    return cases()


def output_size_strategy():
    """Keyword dicts for ``pool2d_output_size``: input_size, kernel_size, stride, padding,
    dilation, ceil_mode (some invalid for torch: the student must raise there)."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "input_size": st.tuples(st.integers(1, 12), st.integers(1, 12)),
            "kernel_size": _pair(1, 5),
            "stride": st.one_of(st.none(), _pair(1, 4)),
            "padding": _pair(0, 3),
            "dilation": _pair(1, 3),
            "ceil_mode": st.booleans(),
        }
    )


def conv_output_size_strategy():
    """Keyword dicts for ``conv2d_output_size``: input_size, kernel_size, stride, padding,
    dilation (some give an output smaller than 1: the student must raise there)."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "input_size": st.tuples(st.integers(1, 12), st.integers(1, 12)),
            "kernel_size": _pair(1, 5),
            "stride": _pair(1, 4),
            "padding": _pair(0, 3),
            "dilation": _pair(1, 3),
        }
    )


def cnn_shapes_strategy():
    """Keyword dicts for ``cnn_shapes``: input_shape (N, C, H, W) or (C, H, W), out_channels."""
    from hypothesis import strategies as st

    batched = st.tuples(
        st.integers(1, 4), st.integers(1, 4), st.integers(1, 40), st.integers(1, 40)
    )
    unbatched = st.tuples(st.integers(1, 4), st.integers(1, 40), st.integers(1, 40))
    return st.fixed_dictionaries(
        {"input_shape": st.one_of(batched, unbatched), "out_channels": st.integers(1, 8)}
    )


# --------------------------------------------------------------------------- checks


def _run(
    student_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None,
    strategy: Any,
    random: int,
    name: str,
    compare: Callable[[Any, Any], str | None] | None = None,
) -> None:
    count = 0
    if cases is not None:
        count += check_cases(student_fn, reference_fn, cases, name=name, compare=compare)
    if random:
        count += sweep(
            student_fn, reference_fn, strategy, name=name, max_examples=random, compare=compare
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


def check_pool2d_output_size(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "pool2d_output_size",
) -> None:
    """Compare ``student_fn(input_size, kernel_size, stride, padding, dilation, ceil_mode)``
    (-> (H_out, W_out)) with the shape ``nn.MaxPool2d`` produces, on ``cases`` and/or ``random``
    hypothesis cases."""
    _run(student_fn, torch_pool2d_output_size, cases, output_size_strategy(), random, name)


def check_conv2d_output_size(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "conv2d_output_size",
) -> None:
    """Compare ``student_fn(input_size, kernel_size, stride, padding, dilation)``
    (-> (H_out, W_out)) with the shape ``nn.Conv2d`` produces."""
    _run(student_fn, torch_conv2d_output_size, cases, conv_output_size_strategy(), random, name)


def maxpool_case(shape: tuple[int, ...], seed: int = 0, negative: bool = False, **params: Any):
    """One keyword dict for :func:`check_maxpool2d`: an input of ``shape`` plus ``params``."""
    return {"x": random_input(shape, seed, negative), **params}


def check_maxpool2d(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    return_indices: bool = False,
    name: str = "maxpool2d",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(x, kernel_size, stride, padding, dilation, ceil_mode,
    return_indices)`` with ``torch.nn.functional.max_pool2d``.

    cases: keyword dicts (see :func:`maxpool_case`); random: number of hypothesis cases drawn
    from :func:`maxpool_strategy` (``strategy_options`` are passed on to it). With
    ``return_indices=True`` the random cases ask for (output, indices) and both are compared.
    """
    compare = compare_pool_with_indices if return_indices else None
    if cases is not None and return_indices:
        cases = [{**case, "return_indices": True} for case in cases]
    strategy = maxpool_strategy(return_indices=return_indices, **strategy_options)
    _run(student_fn, torch_maxpool2d, cases, strategy, random, name, compare)


def check_cnn_shapes(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "cnn_shapes",
) -> None:
    """Compare ``student_fn(input_shape, out_channels)`` (-> list of the 4 shapes after conv1,
    pool1, conv2, pool2) with the shapes a real seed 003 CNN produces (forward hooks)."""
    _run(student_fn, torch_cnn_shapes, cases, cnn_shapes_strategy(), random, name)


__all__ = [
    "CheckFailure",
    "check_cnn_shapes",
    "check_conv2d_output_size",
    "check_maxpool2d",
    "check_pool2d_output_size",
    "compare_pool_with_indices",
    "maxpool_case",
    "maxpool_strategy",
    "random_input",
    "seed_cnn",
    "torch_cnn_shapes",
    "torch_conv2d_output_size",
    "torch_maxpool2d",
    "torch_pool2d_output_size",
]
