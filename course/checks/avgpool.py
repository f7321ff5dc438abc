"""Checks for assignment 07, section 6: average pooling (平均池化) as ``nn.AvgPool2d``.

The student writes, in NumPy:

- ``avgpool2d_divisors(input_size, kernel_size, stride=None, padding=0, ceil_mode=False,
  count_include_pad=True, divisor_override=None)`` -> int array (H_out, W_out): the number each
  window's sum is divided by;
- ``avgpool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
  divisor_override=None)`` for x (N, C, H, W) or (C, H, W) -> the same leading dims, H_out × W_out.

The divisors are *measured*: torch's ``avg_pool2d`` on an all-ones input with
``divisor_override=1`` gives each window's count of real input pixels, and dividing that by the
plain ``avg_pool2d`` of the same ones gives the divisor torch used. Where torch raises (padding
more than half the kernel, an output smaller than 1, a stride of 0, ``divisor_override=0``) the
student's function must raise ValueError or RuntimeError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import CheckFailure, as_plain_array, check_cases, one_thread, sweep
from course.checks.pooling import random_input

Pair = int | tuple[int, int]


def _as_pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def torch_avgpool2d(
    x: np.ndarray,
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """torch's ``F.avg_pool2d`` on a NumPy array x (N, C, H, W) or (C, H, W) (float64)."""
    import torch
    import torch.nn.functional as F

    with one_thread():
        out = F.avg_pool2d(
            torch.from_numpy(np.asarray(x, dtype=np.float64)),
            kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
            divisor_override=divisor_override,
        )
    return out.numpy()


def torch_avgpool_divisors(
    input_size: tuple[int, int],
    kernel_size: Pair,
    stride: Pair | None = None,
    padding: Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """The divisor of every output position of ``nn.AvgPool2d`` on an (H, W) = ``input_size``
    input, measured on all-ones inputs (see the module docstring). Returns int64 (H_out, W_out).
    Raises where torch raises."""
    ones = np.ones((1, 1, *input_size))
    params = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
    counts = torch_avgpool2d(ones, **params, divisor_override=1)[0, 0]  # real pixels per window
    means = torch_avgpool2d(
        ones, **params, count_include_pad=count_include_pad, divisor_override=divisor_override
    )[0, 0]
    return np.rint(counts / means).astype(np.int64)


# --------------------------------------------------------------------------- strategies


def avgpool_strategy(
    *,
    array: bool = True,
    batched: bool | None = None,
    ceil_mode: bool | None = None,
    padding: bool = True,
    count_include_pad: bool | None = None,
    divisor_override: bool = True,
    max_size: int = 7,
):
    """Hypothesis strategy of keyword dicts for ``avgpool2d`` (``array=True``) or for
    ``avgpool2d_divisors`` (``array=False``: ``input_size`` instead of ``x``).

    None means "draw both values". One case in six has padding one more than half the kernel,
    where torch raises; ``divisor_override`` is drawn from None, -2..4 (0 raises in torch).
    """
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        square = not draw(st.booleans())

        def param(low: int, high: int | tuple[int, int]) -> Pair:
            hi = high if isinstance(high, tuple) else (high, high)
            first = draw(st.integers(low, hi[0]))
            return first if square else (first, draw(st.integers(low, hi[1])))

        h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
        case: dict[str, Any] = {}
        if array:
            is_batched = (not draw(st.booleans())) if batched is None else batched
            lead = (draw(st.integers(1, 2)),) if is_batched else ()
            shape = (*lead, draw(st.integers(1, 2)), h, w)
            case["x"] = random_input(shape, draw(st.integers(0, 2**16)), draw(st.booleans()))
        else:
            case["input_size"] = (h, w)
        kernel = param(1, 4)
        kh, kw = _as_pair(kernel)
        case["kernel_size"] = kernel
        case["stride"] = None if draw(st.booleans()) else param(1, 3)
        limits = (kh // 2, kw // 2) if not square else (min(kh, kw) // 2,) * 2
        if padding:
            if draw(st.integers(0, 5)) == 0:  # one row/column too many: torch raises
                case["padding"] = limits[0] + 1 if square else (limits[0] + 1, limits[1])
            else:
                case["padding"] = param(0, limits)
        else:
            case["padding"] = 0
        case["ceil_mode"] = draw(st.booleans()) if ceil_mode is None else ceil_mode
        case["count_include_pad"] = (
            (not draw(st.booleans())) if count_include_pad is None else count_include_pad
        )
        case["divisor_override"] = (
            draw(st.one_of(st.none(), st.integers(-2, 4))) if divisor_override else None
        )
        return case

    return cases()


# --------------------------------------------------------------------------- checks


def _compare_divisors(got: Any, expected: np.ndarray) -> str | None:
    array = as_plain_array(got, "your divisors")
    if array.shape != expected.shape:
        return f"divisors shape {tuple(array.shape)} but torch's output is {tuple(expected.shape)}"
    if array.dtype.kind == "f" and not np.all(array == np.rint(array)):
        return "divisors must be whole numbers"
    wrong = array != expected
    if np.any(wrong):
        where = tuple(int(i) for i in np.argwhere(wrong)[0])
        return (
            f"divisors differ from torch's at {int(wrong.sum())} of {expected.size} output "
            f"positions; first at {list(where)} (yours {array[where]:g}, torch divides by "
            f"{int(expected[where])})\n  torch's divisors:\n{expected}"
        )
    return None


def _run(student_fn, reference, cases, strategy, random, name, compare=None, atol=1e-8) -> None:
    count = 0
    if cases is not None:
        count += check_cases(student_fn, reference, cases, name=name, compare=compare, atol=atol)
    if random:
        count += sweep(
            student_fn,
            reference,
            strategy,
            name=name,
            max_examples=random,
            compare=compare,
            atol=atol,
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


def check_avgpool_divisors(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "avgpool2d_divisors",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(input_size, kernel_size, stride, padding, ceil_mode,
    count_include_pad, divisor_override)`` with the divisors torch uses (measured)."""
    __tracebackhide__ = True
    strategy = avgpool_strategy(array=False, **strategy_options)
    _run(student_fn, torch_avgpool_divisors, cases, strategy, random, name, _compare_divisors)


def avgpool_case(shape: tuple[int, ...], seed: int = 0, negative: bool = False, **params: Any):
    """One keyword dict for :func:`check_avgpool2d`: an input of ``shape`` plus ``params``."""
    return {"x": random_input(shape, seed, negative), **params}


def check_avgpool2d(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "avgpool2d",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
    divisor_override)`` with ``F.avg_pool2d`` (float64), on ``cases`` (see :func:`avgpool_case`)
    and/or ``random`` cases of :func:`avgpool_strategy` (``strategy_options`` passed on)."""
    __tracebackhide__ = True
    strategy = avgpool_strategy(array=True, **strategy_options)

    def fresh(**case: Any) -> Any:
        return student_fn(
            **{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.items()}
        )

    _run(fresh, torch_avgpool2d, cases, strategy, random, name)


__all__ = [
    "CheckFailure",
    "avgpool_case",
    "avgpool_strategy",
    "check_avgpool2d",
    "check_avgpool_divisors",
    "torch_avgpool2d",
    "torch_avgpool_divisors",
]
