"""Checks for the graded steps of assignment 06 (``conv2d`` from scratch, vectorized).

The whole ``conv2d`` is built from four parts, each checked on its own against torch so that
each step earns its points and a mistake is reported by the step that makes it:

1. ``conv2d_output_shape(x_shape, weight_shape, stride, padding, dilation)`` — the shape of the
   output, padding strings included (reference: the shape ``nn.Conv2d``'s forward returns);
2. ``conv_windows(xp, kernel_size, stride, dilation)`` — every window of an already padded input,
   (N, C, H_out, W_out, kH, kW) (reference: ``F.unfold``);
3. ``grouped_correlation(windows, weight, groups)`` — the windows contracted with the weight,
   group by group, (N, C_out, H_out, W_out) (reference: ``F.conv2d`` on each window);
4. ``pad_input(x, pads, mode)`` — padding in the four modes, and cropping for the negative
   amounts Conv2d passes with a non-zeros ``padding_mode`` (reference: ``F.pad``).

The fifth step, the whole ``conv2d`` with the errors torch raises, is checked by
:func:`course.checks.conv.check_conv2d` and :func:`course.checks.conv.check_against_modules`.
Every case is plain data; a failing random case is shrunk by hypothesis and named.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.conv import (
    PADDING_MODES,
    _arrays,
    _copying,
    _pair,
    _tensor,
    conv_cases,
    torch_pad2d,
)
from course.checks.core import CheckFailure, check_cases, one_thread, sweep

# ----------------------------------------------------------------------------------------------
# torch references


def torch_output_shape(
    x_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
) -> tuple[int, ...]:
    """The shape of ``F.conv2d(zeros(x_shape), zeros(weight_shape), ...)``: (N, C_out, H_out,
    W_out), or (C_out, H_out, W_out) for an unbatched (C_in, H, W) ``x_shape``."""
    import torch
    import torch.nn.functional as F

    x = torch.zeros(tuple(int(n) for n in x_shape))
    w = torch.zeros(tuple(int(n) for n in weight_shape))
    if not isinstance(padding, str):
        padding = _pair(padding)
    with warnings.catch_warnings(), one_thread():
        warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a copy
        return tuple(int(n) for n in F.conv2d(x, w, None, stride, padding, dilation).shape)


def torch_windows(xp: np.ndarray, kernel_size: Any, stride: Any = 1, dilation: Any = 1):
    """Every kernel window of the (already padded) input ``xp`` (N, C, Hp, Wp), by ``F.unfold``:
    an array (N, C, H_out, W_out, kH, kW) with ``[n, c, y, x, i, j] = xp[n, c, y*sh + i*dh,
    x*sw + j*dw]``."""
    import torch.nn.functional as F

    t = _tensor(xp)
    kh, kw = _pair(kernel_size)
    n, c = int(t.shape[0]), int(t.shape[1])
    h_out, w_out = torch_output_shape(t.shape, (1, c, kh, kw), stride, 0, dilation)[2:]
    with one_thread():
        cols = F.unfold(t, (kh, kw), dilation=_pair(dilation), padding=0, stride=_pair(stride))
    return cols.reshape(n, c, kh, kw, h_out, w_out).permute(0, 1, 4, 5, 2, 3).numpy()


def torch_grouped_correlation(windows: np.ndarray, weight: np.ndarray, groups: int = 1):
    """``F.conv2d`` applied to every window on its own: windows (N, C_in, H_out, W_out, kH, kW),
    weight (C_out, C_in / groups, kH, kW) -> (N, C_out, H_out, W_out). A window is exactly one
    kernel's footprint, so each gives a 1x1 output per output channel."""
    import torch.nn.functional as F

    win = _tensor(windows)
    if win.dim() != 6:
        raise ValueError(f"windows must be 6-d (N, C, H_out, W_out, kH, kW), got {win.dim()}-d")
    n, c, h_out, w_out, kh, kw = (int(s) for s in win.shape)
    patches = win.permute(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c, kh, kw)
    with one_thread():
        out = F.conv2d(patches, _tensor(weight), groups=groups)  # (N*H_out*W_out, C_out, 1, 1)
    return out.reshape(n, h_out, w_out, -1).permute(0, 3, 1, 2).numpy()


def torch_pad_input(x: np.ndarray, pads: Any, mode: str = "zeros") -> np.ndarray:
    """``F.pad(x, pads, mode)`` with the Conv2d mode names; a negative amount crops."""
    return torch_pad2d(x, pads, mode)


# ----------------------------------------------------------------------------------------------
# step 1: shapes and padding


def compare_shape(got: Any, expected: tuple[int, ...]) -> str | None:
    """None when ``got`` is the tuple of ints ``expected``, else what is wrong, in words."""
    if isinstance(got, np.ndarray) and got.ndim == 1 and got.dtype.kind in "iu":
        got = tuple(got.tolist())
    if not isinstance(got, (tuple, list)) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in got
    ):
        return f"you returned {got!r}; expected a tuple of ints such as {expected}"
    if tuple(int(v) for v in got) != tuple(expected):
        return f"you return the shape {tuple(int(v) for v in got)}, torch gives {tuple(expected)}"
    return None


def _shape_case(x_shape, w_shape, **params) -> dict[str, Any]:
    return {"x_shape": x_shape, "weight_shape": w_shape, **params}


#: Hand-picked step-1 cases; each one catches a mistake (floor, pairs, 'same', unbatched).
OUTPUT_SHAPE_CASES = [
    _shape_case((1, 3, 7, 7), (2, 3, 3, 3), stride=2),  # seed 000
    _shape_case((3, 1, 5, 4), (4, 1, 2, 3)),  # seed 001
    _shape_case((20, 16, 50, 100), (33, 16, 3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1)),
    _shape_case((1, 1, 8, 8), (1, 1, 3, 3), stride=3),  # floor: 8 -> 2, not 3
    _shape_case((2, 3, 6, 5), (4, 3, 2, 2), padding="same"),  # an odd total: bottom/right
    _shape_case((1, 2, 6, 6), (3, 2, 2, 3), padding="same", dilation=(3, 1)),
    _shape_case((1, 1, 6, 5), (2, 1, 3, 3), padding="valid"),
    _shape_case((3, 5, 5), (2, 3, 3, 3), padding=1),  # unbatched (C, H, W)
]


def check_conv2d_output_shape(
    student_fn: Callable[..., Any],
    *,
    max_examples: int = 40,
    name: str = "conv2d_output_shape",
    quiet: bool = False,
) -> None:
    """``conv2d_output_shape(x_shape, weight_shape, stride=1, padding=0, dilation=1)`` against the
    shape torch's forward gives: the hand-picked cases, then ``max_examples`` random ones."""
    check_cases(
        student_fn,
        torch_output_shape,
        OUTPUT_SHAPE_CASES,
        name=name,
        compare=compare_shape,
        quiet=quiet,
    )
    if max_examples:
        strategy = conv_cases({"stride", "padding", "padding_str", "dilation", "unbatched"}).map(
            lambda c: _shape_case(
                tuple(c["x"].shape),
                tuple(c["weight"].shape),
                **{k: c[k] for k in ("stride", "padding", "dilation") if k in c},
            )
        )
        sweep(
            student_fn,
            torch_output_shape,
            strategy,
            name=name,
            max_examples=max_examples,
            compare=compare_shape,
            quiet=quiet,
        )


# ----------------------------------------------------------------------------------------------
# step 2: sliding windows


def _window_case(x_shape, kernel_size, seed=0, **params) -> dict[str, Any]:
    (xp,) = _arrays(seed, x_shape)
    return {"xp": xp, "kernel_size": kernel_size, **params}


WINDOW_CASES = [
    _window_case((1, 1, 4, 4), 2),
    _window_case((2, 3, 5, 4), (2, 3), seed=1),  # a non-square kernel
    _window_case((1, 2, 7, 7), 3, seed=2, stride=2),
    _window_case((1, 1, 7, 7), 3, seed=3, dilation=2),  # taps two apart
    _window_case((1, 1, 7, 8), 3, seed=4, stride=(2, 1), dilation=(2, 3)),
    _window_case((2, 1, 3, 3), 3, seed=5),  # one window
]


def check_conv_windows(
    student_fn: Callable[..., Any],
    *,
    max_examples: int = 40,
    name: str = "conv_windows",
    quiet: bool = False,
) -> None:
    """``conv_windows(xp, kernel_size, stride=1, dilation=1)`` -> (N, C, H_out, W_out, kH, kW)
    against ``F.unfold``, on hand-picked and random cases."""
    fn = _copying(student_fn)
    check_cases(fn, torch_windows, WINDOW_CASES, name=name, atol=0, rtol=0, quiet=quiet)
    if max_examples:
        strategy = conv_cases({"stride", "dilation"}).map(
            lambda c: {
                "xp": c["x"],
                "kernel_size": tuple(c["weight"].shape[2:]),
                **{k: c[k] for k in ("stride", "dilation") if k in c},
            }
        )
        sweep(fn, torch_windows, strategy, name=name, max_examples=max_examples, atol=0, rtol=0,
              quiet=quiet)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# step 3: groups


def _grouped_case(x_shape, w_shape, seed=0, groups=1, **params) -> dict[str, Any]:
    xp, weight = _arrays(seed, x_shape, w_shape)
    windows = torch_windows(xp, w_shape[2:], **params)
    return {"windows": windows, "weight": weight, "groups": groups}


GROUPED_CASES = [
    _grouped_case((1, 1, 4, 4), (1, 1, 2, 2)),
    _grouped_case((2, 3, 5, 5), (4, 3, 3, 3), seed=1),  # every input channel summed
    _grouped_case((1, 4, 5, 6), (6, 2, 3, 2), seed=2, groups=2),
    _grouped_case((1, 3, 5, 5), (6, 1, 3, 3), seed=3, groups=3),  # depthwise, 2 kernels each
    _grouped_case((2, 6, 4, 4), (6, 2, 1, 1), seed=4, groups=3),  # 1x1 kernels
    _grouped_case((1, 4, 7, 7), (4, 2, 3, 3), seed=5, groups=2, stride=2, dilation=2),
]


def check_grouped_correlation(
    student_fn: Callable[..., Any],
    *,
    max_examples: int = 40,
    name: str = "grouped_correlation",
    quiet: bool = False,
) -> None:
    """``grouped_correlation(windows, weight, groups=1)`` -> (N, C_out, H_out, W_out) against
    ``F.conv2d`` on every window; the windows come from ``F.unfold`` of a random input."""
    fn = _copying(student_fn)
    check_cases(
        fn, torch_grouped_correlation, GROUPED_CASES, name=name, atol=1e-6, rtol=1e-5, quiet=quiet
    )
    if max_examples:
        strategy = conv_cases({"groups", "stride", "dilation"}, max_channels=3).map(
            lambda c: {
                "windows": torch_windows(
                    c["x"],
                    c["weight"].shape[2:],
                    **{k: c[k] for k in ("stride", "dilation") if k in c},
                ),
                "weight": c["weight"],
                "groups": c.get("groups", 1),
            }
        )
        sweep(fn, torch_grouped_correlation, strategy, name=name, max_examples=max_examples,
              atol=1e-6, rtol=1e-5, quiet=quiet)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# step 4: padding modes, and the crop of a negative padding


def _pad_case(x_shape, pads, mode, seed=0) -> dict[str, Any]:
    (x,) = _arrays(seed, x_shape)
    return {"x": x, "pads": tuple(pads), "mode": mode}


#: Hand-picked step-4 cases: the four modes, the uneven pads of 'same', the crops of a negative
#: padding (what nn.Conv2d passes to F.pad for padding=-1 or (-1, 2)), and torch's errors.
PAD_INPUT_CASES = (
    [_pad_case((1, 1, 3, 4), (1, 1, 1, 1), m) for m in PADDING_MODES]
    + [_pad_case((1, 2, 4, 4), (0, 1, 0, 1), m, seed=1) for m in PADDING_MODES]
    + [_pad_case((1, 1, 6, 6), (-1, -1, -1, -1), m, seed=2) for m in PADDING_MODES]
    + [_pad_case((2, 1, 5, 4), (2, 2, -1, -1), m, seed=3) for m in PADDING_MODES]
    + [
        _pad_case((1, 1, 5, 5), (-2, -2, 0, 0), "reflect", seed=4),
        _pad_case((1, 1, 3, 4), (4, 0, 0, 0), "reflect"),  # torch raises: pad >= size
        _pad_case((1, 1, 3, 4), (0, 0, 0, 4), "circular"),  # torch raises: wraps twice
        _pad_case((1, 1, 3, 4), (1, 1, 1, 1), "symmetric"),  # not a Conv2d mode
    ]
)


def pad_input_strategy(modes: Iterable[str] = PADDING_MODES, max_extra: int = 3):
    """Keyword dicts for ``pad_input``: per dimension either a crop (the same negative amount on
    both sides, as nn.Conv2d passes it) or any non-negative amounts; sizes that leave at least one
    row and column after a crop and respect torch's limits for reflect and circular."""
    from hypothesis import strategies as st

    modes = tuple(modes)

    @st.composite
    def cases(draw):
        mode = draw(st.sampled_from(modes))
        sides = []
        for _ in range(2):  # width pair, then height pair: (left, right), (top, bottom)
            if draw(st.booleans()):
                crop = draw(st.integers(1, 2))
                sides.append((-crop, -crop, 2 * crop + 1))
            else:
                a, b = draw(st.integers(0, 3)), draw(st.integers(0, 3))
                if mode == "reflect":
                    smallest = max(a, b) + 1
                elif mode == "circular":
                    smallest = max(a, b, 1)
                else:
                    smallest = 1
                sides.append((a, b, smallest))
        (left, right, min_w), (top, bottom, min_h) = sides
        h = min_h + draw(st.integers(0, max_extra))
        w = min_w + draw(st.integers(0, max_extra))
        (x,) = _arrays(draw(st.integers(0, 2**16)), (draw(st.integers(1, 2)), 1, h, w))
        return {"x": x, "pads": (left, right, top, bottom), "mode": mode}

    return cases()


def check_pad_input(
    student_fn: Callable[..., Any],
    *,
    max_examples: int = 40,
    name: str = "pad_input",
    quiet: bool = False,
) -> None:
    """``pad_input(x, pads, mode='zeros')`` against ``F.pad`` (with the Conv2d mode names):
    x (N, C, H, W), pads (left, right, top, bottom), a negative amount crops."""
    fn = _copying(student_fn)
    check_cases(fn, torch_pad_input, PAD_INPUT_CASES, name=name, quiet=quiet)
    if max_examples:
        sweep(fn, torch_pad_input, pad_input_strategy(), name=name, max_examples=max_examples,
              quiet=quiet)  # fmt: skip


__all__ = [
    "CheckFailure",
    "GROUPED_CASES",
    "OUTPUT_SHAPE_CASES",
    "PAD_INPUT_CASES",
    "WINDOW_CASES",
    "check_conv2d_output_shape",
    "check_conv_windows",
    "check_grouped_correlation",
    "check_pad_input",
    "compare_shape",
    "pad_input_strategy",
    "torch_grouped_correlation",
    "torch_output_shape",
    "torch_pad_input",
    "torch_windows",
]
