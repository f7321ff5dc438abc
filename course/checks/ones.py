"""Checks for assignment 02: predicting Conv2d's output on an all-ones input (seed 004).

The reference is torch: ``torch.nn.functional.conv2d`` (float64) on ``torch.ones(1, C_in, H, W)``
with the given weight, bias and zeros padding. Cases are plain data: a weight array
(C_out, C_in, kH, kW), a bias array (C_out,) or None, the input size (H, W) and the padding
(an int or an (h, w) pair). Where torch raises (kernel larger than the padded input, negative
padding), the student's function must raise ``ValueError`` or ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import check_cases, one_thread, sweep


def reference_ones_output(
    weight: np.ndarray,
    bias: np.ndarray | None,
    input_hw: tuple[int, int],
    padding: int | tuple[int, int] = 0,
) -> np.ndarray:
    """torch's output for an all-ones input, shape (C_out, H_out, W_out), float64.

    weight: (C_out, C_in, kH, kW); bias: (C_out,) or None; input_hw: (H, W); zeros padding.
    """
    import torch
    import torch.nn.functional as F

    w = torch.as_tensor(np.array(weight, dtype=np.float64))
    b = None if bias is None else torch.as_tensor(np.array(bias, dtype=np.float64))
    h, wd = input_hw
    x = torch.ones(1, w.shape[1], h, wd, dtype=torch.float64)
    with one_thread():
        return F.conv2d(x, w, b, padding=padding)[0].numpy()


def make_ones_case(
    c_out: int,
    c_in: int,
    kernel_hw: tuple[int, int],
    input_hw: tuple[int, int],
    padding: int | tuple[int, int] = 0,
    *,
    bias: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Keyword arguments of ``predict_ones_output`` for a layer with random parameters.

    Weights and bias are uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] like torch's default
    initialisation, drawn from ``numpy.random.default_rng(seed)`` (torch's global RNG is left
    alone). weight: (c_out, c_in, kH, kW) float64; bias: (c_out,) float64 or None.
    """
    rng = np.random.default_rng(seed)
    kh, kw = kernel_hw
    bound = 1.0 / np.sqrt(c_in * kh * kw)
    weight = rng.uniform(-bound, bound, size=(c_out, c_in, kh, kw))
    bias_array = rng.uniform(-bound, bound, size=c_out) if bias else None
    return {
        "weight": weight,
        "bias": bias_array,
        "input_hw": tuple(input_hw),
        "padding": padding,
    }


def seed_ones_cases() -> list[dict[str, Any]]:
    """Seed 004's two experiments (no padding): Conv2d(1, 3, 3) and Conv2d(3, 4, 3) on 5x5."""
    return [
        make_ones_case(3, 1, (3, 3), (5, 5), seed=4),
        make_ones_case(4, 3, (3, 3), (5, 5), seed=40),
    ]


def padding_ones_cases() -> list[dict[str, Any]]:
    """Visible cases beyond the seed: no bias, non-square kernels, zeros padding, an error."""
    return [
        make_ones_case(2, 1, (2, 3), (5, 4), bias=False, seed=1),
        make_ones_case(3, 1, (3, 3), (5, 5), padding=1, seed=2),
        make_ones_case(2, 2, (3, 3), (4, 6), padding=(2, 1), seed=3),
        make_ones_case(1, 1, (4, 4), (2, 2), padding=1, seed=5),  # fits only thanks to padding
        make_ones_case(1, 1, (4, 4), (3, 3), seed=6),  # torch raises: kernel larger than input
    ]


def _copying(student_fn: Callable[..., Any]) -> Callable[..., Any]:
    """The student's function on fresh copies of the arrays, so in-place edits can't leak."""

    def call(**case: Any) -> Any:
        fresh = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.items()}
        return student_fn(**fresh)

    return call


def check_ones_output(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    name: str = "predict_ones_output",
) -> None:
    """Compare ``student_fn(**case)`` with torch for each case (default: the seed's cases and
    :func:`padding_ones_cases`). Raises CheckFailure naming the first failing case."""
    if cases is None:
        cases = seed_ones_cases() + padding_ones_cases()
    check_cases(_copying(student_fn), reference_ones_output, cases, name=name)


def ones_strategy(max_size: int = 7) -> Any:
    """Hypothesis strategy of keyword dicts for ``predict_ones_output``: 1..4 output and 1..3
    input channels, kernels 1..5 by 1..5, inputs 1..max_size square or not, padding 0..3 (int
    or pair), bias or None. Some cases have a kernel larger than the padded input (torch raises)."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw: Any) -> dict[str, Any]:
        c_out = draw(st.integers(1, 4))
        c_in = draw(st.integers(1, 3))
        kernel_hw = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        input_hw = (draw(st.integers(1, max_size)), draw(st.integers(1, max_size)))
        padding = draw(
            st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)))
        )
        bias = draw(st.booleans())
        seed = draw(st.integers(0, 2**16))
        return make_ones_case(c_out, c_in, kernel_hw, input_hw, padding, bias=bias, seed=seed)

    return cases()


def sweep_ones_output(
    student_fn: Callable[..., Any],
    max_examples: int = 200,
    *,
    name: str = "predict_ones_output",
) -> None:
    """Randomized comparison with torch over :func:`ones_strategy` (fixed seed). A failure
    names the minimal failing case (weight and bias shapes, input size, padding)."""
    sweep(
        _copying(student_fn),
        reference_ones_output,
        ones_strategy(),
        name=name,
        max_examples=max_examples,
    )
