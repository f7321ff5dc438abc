"""Checks for assignment 01: the Conv2d output-shape formula and parameter counts.

The reference is always torch itself: output sizes come from running
``torch.nn.functional.conv2d`` on a zeros input of shape (1, 1, h, w) with a zeros kernel of
shape (1, 1, kH, kW); parameter counts come from building ``torch.nn.Conv2d`` on the ``meta``
device (no memory is allocated) and counting its parameters. Errors torch raises (``padding='same'``
with a stride, a kernel larger than the padded input, a zero stride or dilation, ...) are part of
the contract: the student's function must raise ``ValueError`` or ``RuntimeError`` there.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import check_cases, one_thread, pure_reference, seeding, sweep

IntOrPair = int | tuple[int, int]

#: The seeds' experiments, as keyword arguments of ``conv2d_output_size``.
#: seed 000: Conv2d(3, 2, 3, stride=2) on (1, 3, 7, 7) -> (1, 2, 3, 3)
#: seed 001: Conv2d(1, 4, (2, 3)) on (3, 1, 5, 4) -> (3, 4, 4, 2)
#: seed 002: Conv2d(3, 6, 3) on CIFAR-10 images (64, 3, 32, 32) -> (64, 6, 30, 30)
SEED_SIZE_CASES: list[dict[str, Any]] = [
    {"h": 7, "w": 7, "kernel_size": 3, "stride": 2},
    {"h": 5, "w": 4, "kernel_size": (2, 3)},
    {"h": 32, "w": 32, "kernel_size": 3},
]

#: Seed 003 quotes this example from torch's documentation and never runs it:
#: ``nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1))`` on an input
#: (20, 16, 50, 100). Run, it gives (20, 33, 26, 100): H (50 + 8 - 6 - 1) // 2 + 1 = 26 (the
#: stride does not divide evenly), W (100 + 4 - 4 - 1) // 1 + 1 = 100.
SEED_003_LAYER: dict[str, Any] = {
    "in_channels": 16,
    "out_channels": 33,
    "kernel_size": (3, 5),
    "stride": (2, 1),
    "padding": (4, 2),
    "dilation": (3, 1),
}
SEED_003_INPUT = (20, 16, 50, 100)

#: Hand-picked cases a student can see: each one catches a common mistake.
VISIBLE_SIZE_CASES: list[dict[str, Any]] = [
    # stride that does not divide evenly: floor, not ceil
    {"h": 8, "w": 8, "kernel_size": 3, "stride": 2},
    {"h": 10, "w": 7, "kernel_size": (3, 2), "stride": (3, 2), "padding": (1, 0)},
    # padding keeps the size; dilation enlarges the kernel's footprint to d*(k-1)+1
    {"h": 32, "w": 32, "kernel_size": 3, "padding": 1},
    {"h": 9, "w": 9, "kernel_size": 3, "dilation": 2},
    {"h": 224, "w": 224, "kernel_size": 7, "stride": 2, "padding": 3},
    # padding strings
    {"h": 6, "w": 5, "kernel_size": 4, "padding": "same"},
    {"h": 2, "w": 2, "kernel_size": 5, "padding": "same", "dilation": 2},
    {"h": 6, "w": 5, "kernel_size": 3, "padding": "valid"},
    # where torch raises
    {"h": 8, "w": 8, "kernel_size": 3, "stride": 2, "padding": "same"},
    {"h": 2, "w": 2, "kernel_size": 3},
    {"h": 5, "w": 5, "kernel_size": 3, "dilation": 3},
]

#: Arguments torch rejects outright. "dilation=0" (seed 003) is one of them.
INVALID_SIZE_CASES: list[dict[str, Any]] = [
    {"h": 5, "w": 5, "kernel_size": 3, "dilation": 0},
    {"h": 5, "w": 5, "kernel_size": 3, "dilation": (1, 0)},
    {"h": 5, "w": 5, "kernel_size": 3, "stride": 0},
    {"h": 5, "w": 5, "kernel_size": 3, "stride": (2, 0)},
    {"h": 5, "w": 5, "kernel_size": 3, "padding": -1},
    {"h": 5, "w": 5, "kernel_size": 3, "padding": (0, -2)},
    {"h": 5, "w": 5, "kernel_size": 3, "padding": "full"},
    {"h": 5, "w": 5, "kernel_size": 0},
    {"h": 5, "w": 5, "kernel_size": (3, 0)},
    {"h": 5, "w": 5, "kernel_size": 3, "stride": (1, 2), "padding": "same"},
]

#: The seeds' layers, as keyword arguments of ``conv2d_param_count``.
SEED_PARAM_CASES: list[dict[str, Any]] = [
    {"in_channels": 3, "out_channels": 2, "kernel_size": 3},  # seed 000: 2*3*3*3 + 2 = 56
    {"in_channels": 1, "out_channels": 4, "kernel_size": (2, 3)},  # seed 001: 4*1*2*3 + 4 = 28
    {"in_channels": 3, "out_channels": 6, "kernel_size": 3},  # seed 002: 6*3*3*3 + 6 = 168
    {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "bias": False},  # weight only: 4*3*3*3
    {"in_channels": 8, "out_channels": 4, "kernel_size": 3, "groups": 2},  # seed 001: N*C/G*K*K
    {"in_channels": 6, "out_channels": 6, "kernel_size": (3, 5), "groups": 6, "bias": False},
    {"in_channels": 6, "out_channels": 4, "kernel_size": 3, "groups": 4},  # torch raises
    {"in_channels": 4, "out_channels": 6, "kernel_size": 1, "groups": 4},  # torch raises
    {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "groups": 0},  # torch raises
]


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)):
        return tuple(value)  # type: ignore[return-value]
    return (value, value)


@pure_reference
def reference_output_size(
    h: int,
    w: int,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair | str = 0,
    dilation: IntOrPair = 1,
) -> tuple[int, int]:
    """torch's (h_out, w_out) for a (N, C, h, w) input, or the error torch raises.

    Runs ``torch.nn.functional.conv2d`` on zeros of shape (1, 1, h, w) with a zeros kernel of
    shape (1, 1, kH, kW); the sizes do not depend on N or the channels.
    """
    import torch
    import torch.nn.functional as F

    kh, kw = _pair(kernel_size)
    x = torch.zeros(1, 1, h, w)
    weight = torch.zeros(1, 1, kh, kw)
    with warnings.catch_warnings(), one_thread():
        # padding='same' with an even kernel warns about an extra copy; irrelevant here.
        warnings.simplefilter("ignore")
        out = F.conv2d(x, weight, stride=stride, padding=padding, dilation=dilation)
    return int(out.shape[2]), int(out.shape[3])


@pure_reference
def reference_param_count(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    groups: int = 1,
    bias: bool = True,
) -> int:
    """Number of learnable numbers in ``torch.nn.Conv2d(...)`` (weight plus bias).

    Builds the layer on the ``meta`` device, so nothing is allocated or initialised.
    """
    import torch

    layer = torch.nn.Conv2d(
        in_channels, out_channels, kernel_size, groups=groups, bias=bias, device="meta"
    )
    return int(sum(p.numel() for p in layer.parameters()))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def compare_size(got: Any, expected: tuple[int, int]) -> str | None:
    """None when ``got`` is the pair of ints ``expected``, else what is wrong, in words."""
    if isinstance(got, np.ndarray) and got.shape == (2,) and got.dtype.kind in "iu":
        got = tuple(int(v) for v in got)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"you returned {got!r}; expected a pair (h_out, w_out) of ints such as {expected}"
    for value in got:
        if not _is_int(value):
            return (
                f"you returned {got!r}: sizes must be ints, not {type(value).__name__} "
                f"(torch gives {expected})"
            )
    got_pair = (int(got[0]), int(got[1]))
    if got_pair != tuple(expected):
        return f"you return (h_out, w_out) = {got_pair}, torch gives {tuple(expected)}"
    return None


def compare_count(got: Any, expected: int) -> str | None:
    """None when ``got`` is the int ``expected``, else what is wrong, in words."""
    if not _is_int(got):
        return f"you returned {got!r} ({type(got).__name__}); expected an int ({expected})"
    if int(got) != expected:
        return f"you count {int(got)} parameters, torch.nn.Conv2d has {expected}"
    return None


def check_output_size(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    name: str = "conv2d_output_size",
) -> None:
    """Compare ``student_fn(**case)`` with torch's output size for each case (default: the
    seeds' examples and :data:`VISIBLE_SIZE_CASES`). Raises CheckFailure naming the first
    failing case; prints how many cases agree."""
    if cases is None:
        cases = SEED_SIZE_CASES + VISIBLE_SIZE_CASES
    check_cases(student_fn, reference_output_size, cases, name=name, compare=compare_size)


def seed003_example_shape() -> tuple[int, ...]:
    """The output shape of seed 003's documentation example, by running the layer in torch."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad(), one_thread():
        layer = torch.nn.Conv2d(**SEED_003_LAYER)
        return tuple(int(n) for n in layer(torch.randn(*SEED_003_INPUT)).shape)


def check_seed003_example(student_fn: Callable[..., Any], *, name: str = "conv2d_output_size"):
    """Seed 003's documentation example as a check of ``student_fn`` (``conv2d_output_size``):
    torch's layer maps (20, 16, 50, 100) to (20, 33, 26, 100), so the student's function must
    return (26, 100) for h=50, w=100 and the layer's kernel, stride, padding and dilation."""
    expected = seed003_example_shape()
    n, _, h, w = SEED_003_INPUT
    layer = SEED_003_LAYER
    case = {
        "h": h,
        "w": w,
        **{k: layer[k] for k in ("kernel_size", "stride", "padding", "dilation")},
    }
    check_cases(
        student_fn, reference_output_size, [case], name=name, compare=compare_size, quiet=True
    )
    got = student_fn(**case)
    print(
        f"ok: seed 003's example: torch maps {SEED_003_INPUT} to {expected}, "
        f"your sizes give {(n, layer['out_channels'], *(int(v) for v in got))}"
    )


def _int_or_pair(low: int, high: int) -> Any:
    from hypothesis import strategies as st

    return st.one_of(
        st.integers(low, high), st.tuples(st.integers(low, high), st.integers(low, high))
    )


def output_size_strategy(max_size: int = 16) -> Any:
    """Hypothesis strategy of keyword dicts for ``conv2d_output_size``: sizes 1..max_size,
    kernels 1..6, strides 1..4, paddings 0..3 or 'same'/'valid', dilations 1..3, each an int
    or an (h, w) pair. Torch raises on about a third of the public sweep's cases (on
    two fifths of the hidden ones, drawn without hypothesis's search engine)."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "h": st.integers(1, max_size),
            "w": st.integers(1, max_size),
            "kernel_size": _int_or_pair(1, 6),
            "stride": _int_or_pair(1, 4),
            "padding": st.one_of(_int_or_pair(0, 3), st.sampled_from(["same", "valid"])),
            "dilation": _int_or_pair(1, 3),
        }
    )


def sweep_output_size(
    student_fn: Callable[..., Any],
    max_examples: int = 400,
    *,
    name: str = "conv2d_output_size",
) -> None:
    """Randomized comparison with torch over :func:`output_size_strategy` (fixed seed), then
    every case of :data:`INVALID_SIZE_CASES`. A failure names the minimal failing case."""
    count = sweep(
        student_fn,
        reference_output_size,
        output_size_strategy(),
        name=name,
        max_examples=max_examples,
        compare=compare_size,
        quiet=True,
    )
    count += check_cases(
        student_fn,
        reference_output_size,
        INVALID_SIZE_CASES,
        name=name,
        compare=compare_size,
        quiet=True,
    )
    print(f"ok: {name} matches torch on {count} case(s) ({max_examples} random, {seeding()})")


def check_param_count(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    name: str = "conv2d_param_count",
) -> None:
    """Compare ``student_fn(**case)`` with the parameter count of ``torch.nn.Conv2d(**case)``
    (default cases: :data:`SEED_PARAM_CASES`). Raises CheckFailure naming the failing case."""
    if cases is None:
        cases = SEED_PARAM_CASES
    check_cases(student_fn, reference_param_count, cases, name=name, compare=compare_count)


def param_count_strategy() -> Any:
    """Hypothesis strategy of keyword dicts for ``conv2d_param_count``: channels 1..16,
    kernels 1..7 (int or pair), groups 1..4 (often not dividing the channels), bias or not."""
    from hypothesis import strategies as st

    return st.fixed_dictionaries(
        {
            "in_channels": st.integers(1, 16),
            "out_channels": st.integers(1, 16),
            "kernel_size": _int_or_pair(1, 7),
            "groups": st.integers(1, 4),
            "bias": st.booleans(),
        }
    )


def sweep_param_count(
    student_fn: Callable[..., Any],
    max_examples: int = 200,
    *,
    name: str = "conv2d_param_count",
) -> None:
    """Randomized comparison with torch.nn.Conv2d's parameter count (fixed seed)."""
    sweep(
        student_fn,
        reference_param_count,
        param_count_strategy(),
        name=name,
        max_examples=max_examples,
        compare=compare_count,
    )
