"""Checks for the conv assignments: 03 multi-channel, 04 stride/padding, 05 groups, 06 conv2d.

Every check compares the student's function with torch on plain data (NumPy float64 arrays,
ints, tuples, strings). The torch side mirrors ``torch.nn.Conv2d``:

* its constructor's validation (``padding_mode`` one of four values, ``padding`` one of
  'same'/'valid' when a string, 'same' only with stride 1, channels divisible by ``groups``),
  raising ``ValueError`` like ``nn.Conv2d`` does;
* its forward, ``_conv_forward``: for ``padding_mode != 'zeros'`` the input is padded with
  ``F.pad(x, (left, right, top, bottom), mode=padding_mode)`` and convolved with padding 0;
  for ``'zeros'`` the padding goes to ``F.conv2d`` itself. With ``padding='same'`` the total
  padding ``dilation * (kernel - 1)`` is split ``total // 2`` before and the rest after, so an odd
  extra row/column goes to the bottom/right.
* negative integer padding, which the constructor accepts in every mode: with ``'zeros'``
  ``F.conv2d`` raises ``RuntimeError: negative padding is not supported``; with ``'reflect'``,
  ``'replicate'`` and ``'circular'`` ``F.pad`` *crops* that many rows/columns from each side and
  the layer convolves what is left (a 6x6 input, ``padding=-1``, a 3x3 kernel: 4x4, then 2x2).

Where torch raises, the student's function must raise ``ValueError`` or ``RuntimeError``.
Randomized sweeps use :func:`course.checks.core.sweep`: a failing case is shrunk by hypothesis to
a minimal one, e.g. ``conv2d fails for x (1,1,3,3), weight (1,1,2,2), padding=1,
padding_mode='reflect'``.

Nothing here computes an answer without torch: these are references, not solutions.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import (
    CheckFailure,
    as_plain_array,
    check_cases,
    compare_arrays,
    compare_call,
    describe_case,
    not_written,
    one_thread,
    sweep,
)

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

#: Everything a conv2d can be asked to support; ``check_conv2d(features=...)`` picks a subset.
ALL_FEATURES = frozenset(
    {
        "bias",  # bias=None or an array (C_out,)
        "stride",  # int or (sh, sw)
        "padding",  # int or (ph, pw)
        "padding_str",  # 'same' / 'valid'
        "dilation",  # int or (dh, dw)
        "padding_mode",  # 'zeros', 'reflect', 'replicate', 'circular'
        "groups",  # groups > 1
        "unbatched",  # x of shape (C, H, W)
        "errors",  # cases where torch raises
    }
)


# ----------------------------------------------------------------------------------------------
# torch references (float64)


def _tensor(array: Any):
    import torch

    return torch.as_tensor(np.asarray(array, dtype=np.float64))


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"expected an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def torch_padding_amounts(
    kernel_size: Any, padding: Any = 0, dilation: Any = 1, stride: Any = 1
) -> tuple[int, int, int, int]:
    """``nn.Conv2d(...)._reversed_padding_repeated_twice``: (left, right, top, bottom).

    kernel_size, padding, dilation, stride: int or (h, w); padding may be 'same' or 'valid'.
    Raises ValueError where ``nn.Conv2d`` raises (unknown string, 'same' with stride > 1).
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = torch.nn.Conv2d(
            1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=False
        )
    return tuple(int(p) for p in layer._reversed_padding_repeated_twice)


def torch_pad2d(x: np.ndarray, pad: Any, mode: str = "zeros") -> np.ndarray:
    """``F.pad(x, pad, mode)`` with the conv padding-mode names ('zeros' means 'constant' 0).

    x: (N, C, H, W) or (C, H, W); pad: (left, right, top, bottom).
    """
    import torch.nn.functional as F

    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) != 4:
        raise ValueError("pad must be (left, right, top, bottom)")
    if mode == "zeros":
        return F.pad(_tensor(x), pad, mode="constant", value=0.0).numpy()
    return F.pad(_tensor(x), pad, mode=mode).numpy()


def torch_conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """What ``nn.Conv2d`` (float64) returns for these parameters, as a NumPy array.

    x: (N, C_in, H, W) or (C_in, H, W); weight: (C_out, C_in / groups, kH, kW); bias: (C_out,).
    Returns (N, C_out, H_out, W_out), or (C_out, H_out, W_out) for an unbatched x.
    Negative padding raises with 'zeros' and crops with the other modes, as in torch.
    """
    import torch.nn.functional as F

    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {set(PADDING_MODES)}, "
            f"but got padding_mode={padding_mode!r}"
        )
    x_t, w_t = _tensor(x), _tensor(weight)
    b_t = None if bias is None else _tensor(bias)
    if w_t.dim() != 4:
        raise RuntimeError(f"weight must be 4-D (C_out, C_in/groups, kH, kW), got {w_t.dim()}-D")
    if x_t.dim() not in (3, 4):
        raise RuntimeError(f"x must be 3-D or 4-D, got {x_t.dim()}-D")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups <= 0:
        raise ValueError("groups must be a positive integer")
    c_in, c_out = x_t.shape[-3], w_t.shape[0]
    if c_in % groups:
        raise ValueError("in_channels must be divisible by groups")
    if c_out % groups:
        raise ValueError("out_channels must be divisible by groups")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(
                f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}"
            )
        if padding == "same" and _pair(stride) != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
    kernel = (int(w_t.shape[2]), int(w_t.shape[3]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if padding_mode != "zeros":
            pads = torch_padding_amounts(kernel, padding, dilation, 1)
            x_t = F.pad(x_t, pads, mode=padding_mode)
            out = F.conv2d(x_t, w_t, b_t, stride, 0, dilation, groups)
        else:
            if not isinstance(padding, str):
                padding = _pair(padding)
            out = F.conv2d(x_t, w_t, b_t, stride, padding, dilation, groups)
    return out.numpy()


def torch_corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Single-channel cross-correlation by torch. x: (H, W); k: (kH, kW) -> (H-kH+1, W-kW+1)."""
    x, k = np.asarray(x), np.asarray(k)
    if x.ndim != 2 or k.ndim != 2:
        raise ValueError("x and k must be 2-D")
    return torch_conv2d(x[None, None], k[None, None])[0, 0]


def torch_corr2d_multi_in(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sum over input channels. x: (C, H, W); k: (C, kH, kW) -> (H_out, W_out)."""
    x, k = np.asarray(x), np.asarray(k)
    if x.ndim != 3 or k.ndim != 3 or x.shape[0] != k.shape[0]:
        raise ValueError("x (C, H, W) and k (C, kH, kW) must have the same C")
    return torch_conv2d(x[None], k[None])[0, 0]


def torch_corr2d_multi_in_out(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """One output channel per kernel. x: (C, H, W); k: (O, C, kH, kW) -> (O, H_out, W_out)."""
    x, k = np.asarray(x), np.asarray(k)
    if x.ndim != 3 or k.ndim != 4 or x.shape[0] != k.shape[1]:
        raise ValueError("x (C, H, W) and k (O, C, kH, kW) must have the same C")
    return torch_conv2d(x[None], k)[0]


def torch_param_count(
    in_channels: int, out_channels: int, kernel_size: Any, groups: int = 1, bias: bool = True
) -> int:
    """Number of learnable numbers in ``nn.Conv2d(in, out, kernel_size, groups=.., bias=..)``."""
    import torch

    layer = torch.nn.Conv2d(in_channels, out_channels, kernel_size, groups=groups, bias=bias)
    return int(sum(p.numel() for p in layer.parameters()))


def torch_connectivity(in_channels: int, out_channels: int, groups: int = 1) -> np.ndarray:
    """Which input channel reaches which output channel in ``nn.Conv2d(.., groups=groups)``.

    Measured, not derived: the layer gets an all-ones weight and no bias, and input channel j is
    fed a 1 (all other channels 0). Returns a bool array (out_channels, in_channels): entry
    [i, j] is True when output channel i sees input channel j.
    """
    import torch

    layer = torch.nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        probe = torch.eye(in_channels).reshape(in_channels, in_channels, 1, 1)
        out = layer(probe)  # (in_channels, out_channels, 1, 1): batch item j = input channel j
    return (out[:, :, 0, 0] != 0).T.numpy()


# ----------------------------------------------------------------------------------------------
# random cases (hypothesis strategies of keyword dicts)


def _arrays(seed: int, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _copying(student_fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give the student fresh copies so an in-place edit can't change the case for torch."""

    def call(**case: Any) -> Any:
        return student_fn(
            **{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.items()}
        )

    return call


def _min_size(kernel: int, dilation: int, pad_before: int, pad_after: int, mode: str) -> int:
    """Smallest input size for which torch accepts the case (output size >= 1, pad legal)."""
    size = max(1, dilation * (kernel - 1) + 1 - pad_before - pad_after)
    if mode == "reflect":
        size = max(size, pad_before + 1, pad_after + 1)
    elif mode == "circular":
        size = max(size, pad_before, pad_after)
    return size


def conv_cases(features: Iterable[str] = ALL_FEATURES, max_channels: int = 2, max_extra: int = 4):
    """Hypothesis strategy of ``conv2d`` keyword dicts torch accepts.

    Each dict has ``x`` (N, C_in, H, W) — or (C_in, H, W) with "unbatched" — and ``weight``
    (C_out, C_in/groups, kH, kW), float64; other parameters appear only when they differ from
    the default, so a shrunk case reads short. Kernels are 1..3 by 1..3 (non-square included).
    """
    from hypothesis import strategies as st

    features = frozenset(features)
    unknown = features - ALL_FEATURES
    if unknown:
        raise ValueError(f"unknown features {sorted(unknown)}; choose from {sorted(ALL_FEATURES)}")

    def int_or_pair(lo: int, hi: int):
        # the default first (shrinks there, and keeps 'same' frequent), then ints, then pairs
        return st.one_of(
            st.just(lo), st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi))
        )

    @st.composite
    def cases(draw):
        groups = draw(st.integers(1, 3)) if "groups" in features else 1
        c_in = groups * draw(st.integers(1, max_channels))
        c_out = groups * draw(st.integers(1, max_channels))
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = draw(int_or_pair(1, 3)) if "stride" in features else 1
        dilation = draw(int_or_pair(1, 3)) if "dilation" in features else 1
        options = []
        if "padding" in features:
            options.append(int_or_pair(0, 2))
        if "padding_str" in features:
            options.append(
                st.sampled_from(["valid", "same"] if _pair(stride) == (1, 1) else ["valid"])
            )
        padding = draw(st.one_of(*options)) if options else 0
        mode = draw(st.sampled_from(PADDING_MODES)) if "padding_mode" in features else "zeros"
        left, right, top, bottom = torch_padding_amounts((kh, kw), padding, dilation, 1)
        dh, dw = _pair(dilation)
        h = draw(st.integers(0, max_extra)) + _min_size(kh, dh, top, bottom, mode)
        w = draw(st.integers(0, max_extra)) + _min_size(kw, dw, left, right, mode)
        batched = draw(st.sampled_from([True, False])) if "unbatched" in features else True
        n = draw(st.integers(1, 2))
        with_bias = draw(st.sampled_from([False, True])) if "bias" in features else False
        seed = draw(st.integers(0, 2**16))
        x_shape = (n, c_in, h, w) if batched else (c_in, h, w)
        x, weight, bias = _arrays(seed, x_shape, (c_out, c_in // groups, kh, kw), (c_out,))
        case: dict[str, Any] = {"x": x, "weight": weight}
        if with_bias:
            case["bias"] = bias
        for name, value, default in (
            ("stride", stride, 1),
            ("padding", padding, 0),
            ("dilation", dilation, 1),
            ("groups", groups, 1),
            ("padding_mode", mode, "zeros"),
        ):
            if not (isinstance(value, type(default)) and value == default):
                case[name] = value
        return case

    return cases()


def _case(x_shape, w_shape, bias: bool = False, seed: int = 0, **params: Any) -> dict[str, Any]:
    x, weight, b = _arrays(seed, x_shape, w_shape, (w_shape[0],))
    case: dict[str, Any] = {"x": x, "weight": weight}
    if bias:
        case["bias"] = b
    case.update(params)
    return case


def fixed_conv_cases(features: Iterable[str] = ALL_FEATURES) -> list[dict[str, Any]]:
    """Hand-picked cases (edge cases torch accepts, and — with "errors" — cases torch rejects).

    Only cases whose parameters are all in ``features`` are returned.
    """
    features = frozenset(features)
    table: list[tuple[set[str], dict[str, Any]]] = [
        (set(), _case((1, 1, 5, 5), (1, 1, 3, 3))),
        (set(), _case((2, 3, 5, 4), (4, 3, 2, 3))),  # non-square kernel
        (set(), _case((1, 2, 4, 6), (3, 2, 1, 1))),  # 1x1 kernel
        (set(), _case((1, 1, 3, 3), (1, 1, 3, 3))),  # kernel as big as the input
        ({"bias"}, _case((3, 1, 5, 4), (4, 1, 2, 3), bias=True)),  # seed 001
        ({"bias", "stride"}, _case((1, 3, 7, 7), (2, 3, 3, 3), bias=True, stride=2)),  # seed 000
        ({"stride"}, _case((1, 1, 6, 7), (1, 1, 2, 2), stride=(2, 3))),
        ({"padding"}, _case((1, 1, 4, 4), (1, 1, 3, 3), padding=1)),
        ({"padding"}, _case((1, 1, 4, 5), (1, 1, 3, 2), padding=(2, 0))),
        ({"padding_str"}, _case((1, 1, 4, 4), (1, 1, 2, 2), padding="same")),  # extra: bottom/right
        ({"padding_str"}, _case((1, 2, 5, 5), (1, 2, 3, 3), padding="valid")),
        (
            {"padding_str", "dilation"},
            _case((1, 1, 6, 6), (1, 1, 2, 3), padding="same", dilation=3),
        ),
        ({"dilation"}, _case((1, 1, 7, 7), (1, 1, 3, 3), dilation=2)),
        ({"dilation"}, _case((1, 1, 7, 7), (1, 1, 3, 2), dilation=(1, 3))),
        (
            {"padding", "padding_mode"},
            _case((1, 1, 3, 3), (1, 1, 2, 2), padding=1, padding_mode="reflect"),
        ),
        (
            {"padding", "padding_mode"},
            _case((1, 1, 3, 4), (1, 1, 3, 3), padding=2, padding_mode="reflect"),
        ),
        (
            {"padding", "padding_mode"},
            _case((1, 1, 3, 3), (1, 1, 3, 3), padding=3, padding_mode="circular"),
        ),
        (
            {"padding", "padding_mode"},
            _case((1, 1, 2, 2), (1, 1, 3, 3), padding=5, padding_mode="replicate"),
        ),
        (
            {"padding_str", "padding_mode"},
            _case((1, 1, 4, 4), (1, 1, 2, 2), padding="same", padding_mode="reflect"),
        ),
        # negative padding: 'zeros' raises (below), the other modes crop before convolving
        (
            {"padding", "padding_mode"},
            _case((1, 1, 6, 6), (1, 1, 3, 3), padding=-1, padding_mode="reflect"),
        ),
        (
            {"padding", "padding_mode"},
            _case((1, 2, 5, 6), (2, 2, 2, 3), padding=(-1, 1), padding_mode="circular"),
        ),
        (
            {"padding", "padding_mode", "stride"},
            _case((1, 1, 7, 6), (1, 1, 2, 2), padding=(0, -2), stride=2, padding_mode="replicate"),
        ),
        (
            {"padding", "padding_mode", "stride"},
            _case((1, 2, 5, 6), (2, 2, 3, 3), padding=(1, 2), stride=2, padding_mode="circular"),
        ),
        ({"groups"}, _case((1, 4, 4, 4), (2, 2, 3, 3), groups=2)),
        ({"groups"}, _case((1, 3, 4, 4), (6, 1, 3, 3), groups=3)),  # depthwise, multiplier 2
        ({"groups", "bias"}, _case((2, 6, 3, 3), (12, 3, 1, 1), bias=True, groups=2)),
        ({"unbatched"}, _case((2, 4, 4), (3, 2, 2, 2))),
        ({"unbatched", "bias", "padding"}, _case((1, 3, 3), (2, 1, 3, 3), bias=True, padding=1)),
        # torch rejects these: the student's function must raise ValueError or RuntimeError
        ({"errors"}, _case((1, 1, 2, 2), (1, 1, 3, 3))),  # kernel larger than the input
        ({"errors"}, _case((1, 3, 4, 4), (2, 2, 3, 3))),  # channel mismatch
        ({"errors", "stride"}, _case((1, 1, 4, 4), (1, 1, 3, 3), stride=0)),
        # zeros mode: torch raises although a crop would leave room for the kernel
        ({"errors", "padding"}, _case((1, 1, 6, 6), (1, 1, 3, 3), padding=-1)),
        (
            {"errors", "padding", "padding_mode"},  # cropped to 2x2: smaller than the kernel
            _case((1, 1, 4, 4), (1, 1, 3, 3), padding=-1, padding_mode="replicate"),
        ),
        ({"errors", "dilation"}, _case((1, 1, 4, 4), (1, 1, 3, 3), dilation=0)),  # seed 003
        ({"errors", "padding_str"}, _case((1, 1, 4, 4), (1, 1, 3, 3), padding="full")),
        (
            {"errors", "padding_str", "stride"},
            _case((1, 1, 5, 5), (1, 1, 3, 3), padding="same", stride=2),
        ),
        (
            {"errors", "padding_mode"},
            _case((1, 1, 4, 4), (1, 1, 3, 3), padding=1, padding_mode="symmetric"),
        ),
        (
            {"errors", "padding", "padding_mode"},
            _case((1, 1, 3, 5), (1, 1, 3, 3), padding=3, padding_mode="reflect"),
        ),
        (
            {"errors", "padding", "padding_mode"},
            _case((1, 1, 3, 5), (1, 1, 3, 3), padding=4, padding_mode="circular"),
        ),
        ({"errors", "groups"}, _case((1, 3, 4, 4), (2, 1, 3, 3), groups=2)),  # 3 % 2
        ({"errors", "groups"}, _case((1, 4, 4, 4), (3, 2, 3, 3), groups=2)),  # out 3 % 2
    ]
    return [case for needs, case in table if needs <= features]


# ----------------------------------------------------------------------------------------------
# the checks notebooks call


def check_conv2d(
    student_fn: Callable[..., Any],
    *,
    features: Iterable[str] = ALL_FEATURES,
    max_examples: int = 60,
    fixed: bool = True,
    name: str = "conv2d",
    atol: float = 1e-6,
    rtol: float = 1e-5,
    quiet: bool = False,
    max_channels: int = 2,
) -> None:
    """Compare ``student_fn(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
    padding_mode='zeros')`` with ``nn.Conv2d`` (float64).

    features: which parameters to exercise (subset of :data:`ALL_FEATURES`); parameters not in
    ``features`` are never passed, so an early version of the function may leave them out.
    max_channels: the random cases use 1..max_channels input/output channels per group.
    Runs the hand-picked cases (if ``fixed``) and then ``max_examples`` random cases; the first
    failure raises :class:`CheckFailure` naming a minimal failing case.
    """
    features = frozenset(features)
    fn = _copying(student_fn)
    count = 0
    if fixed:
        count += check_cases(
            fn,
            torch_conv2d,
            fixed_conv_cases(features),
            name=name,
            atol=atol,
            rtol=rtol,
            quiet=quiet,
        )
    if max_examples:
        count += sweep(
            fn,
            torch_conv2d,
            conv_cases(features - {"errors"}, max_channels=max_channels),
            name=name,
            max_examples=max_examples,
            atol=atol,
            rtol=rtol,
            quiet=quiet,
        )


def _single_cases(kind: str, max_extra: int = 4):
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        h, w = kh + draw(st.integers(0, max_extra)), kw + draw(st.integers(0, max_extra))
        c = draw(st.integers(1, 3)) if kind != "single" else 0
        o = draw(st.integers(1, 3)) if kind == "multi_in_out" else 0
        seed = draw(st.integers(0, 2**16))
        if kind == "single":
            x, k = _arrays(seed, (h, w), (kh, kw))
        elif kind == "multi_in":
            x, k = _arrays(seed, (c, h, w), (c, kh, kw))
        else:
            x, k = _arrays(seed, (c, h, w), (o, c, kh, kw))
        return {"x": x, "k": k}

    return cases()


_SINGLE_REFERENCES = {
    "single": torch_corr2d,
    "multi_in": torch_corr2d_multi_in,
    "multi_in_out": torch_corr2d_multi_in_out,
}


def _check_single(student_fn, kind, name, fixed_cases, max_examples, quiet) -> int:
    fn = _copying(student_fn)
    reference = _SINGLE_REFERENCES[kind]
    count = check_cases(fn, reference, fixed_cases, name=name, atol=1e-6, rtol=1e-5, quiet=quiet)
    if max_examples:
        count += sweep(
            fn,
            reference,
            _single_cases(kind),
            name=name,
            max_examples=max_examples,
            atol=1e-6,
            rtol=1e-5,
            quiet=quiet,
        )
    return count


def check_corr2d(student_fn, *, max_examples: int = 30, quiet: bool = False) -> None:
    """``corr2d(x, k)``: x (H, W), k (kH, kW) -> (H-kH+1, W-kW+1), cross-correlation (no flip)."""
    x = np.arange(9.0).reshape(3, 3)
    fixed = [
        {"x": x, "k": np.arange(4.0).reshape(2, 2)},  # d2l's example: [[19, 25], [37, 43]]
        {"x": np.ones((5, 5)), "k": np.ones((3, 3))},  # seed 004: all ones
        {"x": np.arange(12.0).reshape(3, 4), "k": np.array([[1.0, -1.0]])},
        {"x": np.arange(12.0).reshape(4, 3), "k": np.array([[2.0], [-1.0]])},
        {"x": x, "k": np.eye(3)},
    ]
    _check_single(student_fn, "single", "corr2d", fixed, max_examples, quiet)


def check_corr2d_multi_in(student_fn, *, max_examples: int = 30, quiet: bool = False) -> None:
    """``corr2d_multi_in(x, k)``: x (C, H, W), k (C, kH, kW) -> (H_out, W_out), summed over C."""
    x = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    k = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)])
    fixed = [{"x": x, "k": k}, {"x": np.ones((3, 5, 5)), "k": np.ones((3, 3, 3))}]
    _check_single(student_fn, "multi_in", "corr2d_multi_in", fixed, max_examples, quiet)


def check_corr2d_multi_in_out(student_fn, *, max_examples: int = 30, quiet: bool = False) -> None:
    """``corr2d_multi_in_out(x, k)``: x (C, H, W), k (O, C, kH, kW) -> (O, H_out, W_out)."""
    x = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    k = np.stack([np.arange(4.0).reshape(2, 2), np.arange(1.0, 5.0).reshape(2, 2)])
    fixed = [{"x": x, "k": np.stack([k, k + 1, k + 2])}, {"x": x, "k": k[None]}]
    _check_single(student_fn, "multi_in_out", "corr2d_multi_in_out", fixed, max_examples, quiet)


def check_seed004(student_conv: Callable[..., Any], *, seed: int = 0, quiet: bool = False) -> None:
    """Seed 004's experiment with the student's ``conv2d(x, weight, bias)``.

    An all-ones input (1, C, 5, 5) through ``nn.Conv2d(C, O, 3)`` gives, in every position of
    output channel j, ``weight[j].sum() + bias[j]`` — for C, O = 1, 3 and 3, 4 as in the seed.
    The student's function must reproduce torch's layer output.
    """
    import torch

    torch.manual_seed(seed)
    for c_in, c_out in ((1, 3), (3, 4)):
        layer = torch.nn.Conv2d(c_in, c_out, 3).double()
        x = np.ones((1, c_in, 5, 5))
        weight = layer.weight.detach().numpy().copy()
        bias = layer.bias.detach().numpy().copy()
        with torch.no_grad():
            expected = layer(torch.from_numpy(x)).numpy()
        problem = compare_call(
            lambda x=x, weight=weight, bias=bias: student_conv(
                x.copy(), weight.copy(), bias.copy()
            ),
            lambda expected=expected: expected,
            atol=1e-6,
            rtol=1e-5,
        )
        if problem is not None:
            case = describe_case(x=x, weight=weight, bias=bias)
            raise CheckFailure(f"seed 004, nn.Conv2d({c_in}, {c_out}, 3): {case}\n  {problem}")
        if not quiet:
            sums = weight.reshape(c_out, -1).sum(axis=1) + bias
            print(f"seed 004, nn.Conv2d({c_in}, {c_out}, 3): weight[j].sum() + bias[j] =", sums)
    if not quiet:
        print("ok: seed 004 reproduced: all-ones input -> weight[j].sum() + bias[j] (1->3, 3->4)")


def check_pad2d(
    student_fn: Callable[..., Any],
    *,
    modes: Iterable[str] = PADDING_MODES,
    max_examples: int = 40,
    errors: bool = True,
    quiet: bool = False,
) -> None:
    """``pad2d(x, pad, mode='zeros')`` vs ``F.pad``: x (N, C, H, W), pad (left, right, top, bottom).

    mode is one of 'zeros', 'reflect', 'replicate', 'circular' (the Conv2d padding_mode names).
    With ``errors``: where torch raises (reflect pad >= size, circular pad > size, unknown mode),
    the student must raise ValueError or RuntimeError.
    """
    from hypothesis import strategies as st

    modes = tuple(modes)
    x = np.arange(12.0).reshape(1, 1, 3, 4)
    fixed = [{"x": x, "pad": (1, 1, 1, 1), "mode": m} for m in modes]
    fixed += [{"x": x, "pad": (2, 0, 0, 1), "mode": m} for m in modes]
    if "reflect" in modes:
        fixed.append({"x": x, "pad": (3, 3, 2, 2), "mode": "reflect"})
    if "circular" in modes:
        fixed.append({"x": x, "pad": (4, 4, 3, 3), "mode": "circular"})
    if "replicate" in modes:
        fixed.append({"x": x, "pad": (6, 0, 5, 0), "mode": "replicate"})
    if errors:
        if "reflect" in modes:
            fixed += [{"x": x, "pad": (4, 0, 0, 0), "mode": "reflect"}]
            fixed += [{"x": x, "pad": (0, 0, 3, 0), "mode": "reflect"}]
        if "circular" in modes:
            fixed += [{"x": x, "pad": (0, 0, 0, 4), "mode": "circular"}]
        fixed += [{"x": x, "pad": (1, 1, 1, 1), "mode": "symmetric"}]

    @st.composite
    def cases(draw):
        mode = draw(st.sampled_from(modes))
        pad = tuple(draw(st.integers(0, 3)) for _ in range(4))
        left, right, top, bottom = pad
        h = draw(st.integers(0, 3)) + _min_size(1, 1, top, bottom, mode)
        w = draw(st.integers(0, 3)) + _min_size(1, 1, left, right, mode)
        (arr,) = _arrays(draw(st.integers(0, 2**16)), (draw(st.integers(1, 2)), 1, h, w))
        return {"x": arr, "pad": pad, "mode": mode}

    fn = _copying(student_fn)
    count = check_cases(fn, torch_pad2d, fixed, name="pad2d", quiet=quiet)
    if max_examples:
        count += sweep(
            fn, torch_pad2d, cases(), name="pad2d", max_examples=max_examples, quiet=quiet
        )


def check_padding_amounts(student_fn: Callable[..., Any], *, quiet: bool = False) -> None:
    """``padding_amounts(kernel_size, padding, dilation=1, stride=1)`` -> (left, right, top, bottom)
    as ``nn.Conv2d`` computes it; ValueError/RuntimeError where ``nn.Conv2d`` raises."""
    cases = []
    for kernel in (1, 2, 3, 4, (2, 3), (1, 4)):
        for padding in (0, 1, (2, 1), "valid", "same"):
            for dilation in (1, 2, (1, 3)):
                cases.append(
                    {"kernel_size": kernel, "padding": padding, "dilation": dilation, "stride": 1}
                )
    cases += [
        {"kernel_size": 3, "padding": 1, "dilation": 1, "stride": 2},
        {"kernel_size": 3, "padding": "valid", "dilation": 1, "stride": 2},
        {"kernel_size": 3, "padding": "same", "dilation": 1, "stride": 2},
        {"kernel_size": 3, "padding": "same", "dilation": 1, "stride": (1, 2)},
        {"kernel_size": 3, "padding": "full", "dilation": 1, "stride": 1},
    ]

    def compare(got, expected):
        got_t = tuple(int(v) for v in got) if isinstance(got, (tuple, list, np.ndarray)) else got
        if got_t != tuple(expected):
            return f"got {got!r}, torch gives (left, right, top, bottom) = {tuple(expected)}"
        return None

    check_cases(
        student_fn,
        torch_padding_amounts,
        cases,
        name="padding_amounts",
        compare=compare,
        quiet=quiet,
    )


def check_param_count(student_fn: Callable[..., Any], *, quiet: bool = False) -> None:
    """``param_count(in_channels, out_channels, kernel_size, groups=1, bias=True)`` -> int,
    as ``sum(p.numel() for p in nn.Conv2d(...).parameters())``; ValueError where torch raises."""
    cases = [
        {"in_channels": 6, "out_channels": 12, "kernel_size": 3, "groups": g, "bias": True}
        for g in (1, 2, 3, 6)
    ]
    cases += [
        {"in_channels": 3, "out_channels": 6, "kernel_size": 3, "groups": 1, "bias": True},
        {"in_channels": 1, "out_channels": 4, "kernel_size": (2, 3), "groups": 1, "bias": True},
        {"in_channels": 32, "out_channels": 32, "kernel_size": 3, "groups": 32, "bias": False},
        {"in_channels": 8, "out_channels": 16, "kernel_size": (1, 5), "groups": 4, "bias": False},
        {"in_channels": 6, "out_channels": 12, "kernel_size": 3, "groups": 4, "bias": True},
        {"in_channels": 6, "out_channels": 9, "kernel_size": 3, "groups": 2, "bias": True},
        {"in_channels": 6, "out_channels": 12, "kernel_size": 3, "groups": 0, "bias": True},
    ]

    def compare(got, expected):
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)) or got != expected:
            return f"got {got!r}, torch counts {expected}"
        return None

    check_cases(
        student_fn, torch_param_count, cases, name="param_count", compare=compare, quiet=quiet
    )


def check_connectivity(student_fn: Callable[..., Any], *, quiet: bool = False) -> None:
    """``connectivity(in_channels, out_channels, groups)`` -> bool array (out, in), as measured
    on ``nn.Conv2d``; ValueError/RuntimeError where torch raises."""
    cases = [
        {"in_channels": c, "out_channels": o, "groups": g}
        for c, o, g in (
            (4, 2, 1),
            (4, 2, 2),
            (6, 12, 3),
            (6, 6, 6),
            (3, 6, 3),
            (4, 6, 2),
            (3, 4, 2),
        )
    ]

    def compare(got, expected):
        from course.checks.core import compare_arrays

        return compare_arrays(
            np.asarray(got).astype(bool).astype(int) if isinstance(got, np.ndarray) else got,
            expected.astype(int),
            what="connectivity",
        )

    check_cases(
        student_fn, torch_connectivity, cases, name="connectivity", compare=compare, quiet=quiet
    )


#: The speed report's layers: (label, shapes and conv2d keyword arguments). Small enough that a
#: loop over output positions (assignment 03's conv2d) finishes in about a second in all.
SPEED_CASES: list[tuple[str, dict[str, Any]]] = [
    ("1x3x32x32 -> 6, k3 (seed 002)", {"x": (1, 3, 32, 32), "weight": (6, 3, 3, 3)}),
    ("1x8x16x16 -> 8, k3", {"x": (1, 8, 16, 16), "weight": (8, 8, 3, 3)}),
    ("1x8x16x16 -> 16, 1x1", {"x": (1, 8, 16, 16), "weight": (16, 8, 1, 1)}),
    (
        "1x16x16x16 depthwise k3 pad 1",
        {"x": (1, 16, 16, 16), "weight": (16, 1, 3, 3), "groups": 16, "padding": 1},
    ),
]


def two_digits(value: float) -> str:
    """``value`` rounded to two significant digits, without an exponent where it reads easily:
    0.00123 -> '0.0012', 0.5 -> '0.50', 2.46 -> '2.5', 1234 -> '1200'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    rounded = float(f"{value:.2g}")
    if not 1e-4 <= abs(rounded) < 1e6:
        return f"{rounded:.1e}"
    decimals = max(0, 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:.{decimals}f}"


def _median_seconds(fn: Callable[[], Any], repeats: int, warm_up: bool = True) -> float:
    if warm_up:
        fn()  # first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def speed_report(
    student_fn: Callable[..., Any],
    loops_fn: Callable[..., Any] | None = None,
    *,
    cases: Iterable[tuple[str, dict[str, Any]]] | None = None,
    repeats: int = 5,
) -> dict[str, dict[str, float | None]]:
    """Time ``student_fn`` against ``torch.nn.functional.conv2d`` (float32, torch on one thread),
    and ``loops_fn`` (assignment 03's loop version, ``conv2d(x, weight)``) where it applies;
    print the times and ratios to two significant digits.

    Informative only: never raises on slowness. ``loops_fn`` is timed once per case (it is slow),
    only on cases without stride/padding/groups, and skipped (with a note) if it is not written.
    Returns {case: {"yours_s", "torch_s", "loops_s", "yours/torch", "loops/yours"}}; the loop
    entries are None where the loop version was not run.
    """
    cases = SPEED_CASES if cases is None else list(cases)
    rows: dict[str, dict[str, float | None]] = {}
    rng = np.random.default_rng(0)
    loops_note = None
    print(
        f"{'case':32s} {'loops (03)':>11s} {'yours':>9s} {'torch':>9s} "
        f"{'yours/torch':>12s} {'loops/yours':>12s}"
    )
    for label, spec in cases:
        params = dict(spec)
        x = rng.standard_normal(params.pop("x")).astype(np.float32)
        weight = rng.standard_normal(params.pop("weight")).astype(np.float32)
        yours, theirs, loops = _time_case(
            student_fn, None if loops_note else loops_fn, x, weight, params, repeats
        )
        if loops is _UNFINISHED:
            loops = None
            loops_note = "loops: not written yet (paste your 03 conv2d above to compare)"
        row = {
            "yours_s": yours,
            "torch_s": theirs,
            "loops_s": loops,
            "yours/torch": yours / theirs,
            "loops/yours": None if loops is None else loops / yours,
        }
        rows[label] = row
        print(
            f"{label:32s} {_ms(loops):>11s} {_ms(yours):>9s} {_ms(theirs):>9s} "
            f"{two_digits(row['yours/torch']):>12s} "
            f"{'-' if loops is None else two_digits(row['loops/yours']):>12s}"
        )
    geo = float(np.exp(np.mean(np.log([row["yours/torch"] for row in rows.values()]))))
    print(f"geometric mean of yours/torch: {two_digits(geo)}")
    print(f"(torch on one thread, NumPy with its default threads; median of {repeats} calls,")
    print(" loops: one call; '-': the loop version does not apply here or was not run)")
    if loops_note:
        print(loops_note)
    return rows


_UNFINISHED: Any = object()  # loops_fn still raises NotImplementedError


def _time_case(student_fn, loops_fn, x, weight, params, repeats):
    """(yours, torch, loops) seconds for one case; loops is None where it does not apply and
    ``_UNFINISHED`` when the loop version still raises NotImplementedError."""
    import torch.nn.functional as F

    xt, wt = torch_tensor32(x), torch_tensor32(weight)
    try:
        yours = _median_seconds(lambda: student_fn(x, weight, **params), repeats)
    except NotImplementedError as err:
        raise not_written(err, "conv2d") from None
    with one_thread():
        theirs = _median_seconds(lambda: F.conv2d(xt, wt, **params), repeats)
    loops = None
    if loops_fn is not None and not params:
        try:
            loops = _median_seconds(lambda: loops_fn(x, weight), 1, warm_up=False)
        except NotImplementedError:
            loops = _UNFINISHED
    return yours, theirs, loops


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{two_digits(seconds * 1e3)} ms"


def torch_tensor32(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def check_multichannel_sum(student_corr2d: Callable[..., Any], *, quiet: bool = False) -> None:
    """Seed 004's multi-channel rule with the student's single-channel ``corr2d(x, k)``:

    for ``layer = nn.Conv2d(3, 4, 3)`` and a random input (1, 3, 5, 5),
    ``layer(input)[0, j] == sum_k corr2d(input[0, k], weight[j, k]) + bias[j]`` for every j.
    """
    import torch

    torch.manual_seed(4)
    layer = torch.nn.Conv2d(3, 4, 3).double()
    x = torch.randn(1, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        expected = layer(x).numpy()[0]
    weight = layer.weight.detach().numpy()
    bias = layer.bias.detach().numpy()
    xs = x.numpy()[0]
    for j in range(4):
        got = sum(
            as_plain_array(student_corr2d(xs[k].copy(), weight[j, k].copy())) for k in range(3)
        )
        problem = compare_arrays(got + bias[j], expected[j], atol=1e-6, rtol=1e-5)
        if problem is not None:
            raise CheckFailure(
                f"seed 004: sum_k corr2d(input[0, k], weight[{j}, k]) + bias[{j}] should equal "
                f"nn.Conv2d(3, 4, 3)(input)[0, {j}]:\n  {problem}"
            )
    if not quiet:
        print("ok: output[0, j] == sum_k corr2d(input[k], weight[j, k]) + bias[j] for j = 0..3")


#: nn.Conv2d configurations for :func:`check_against_modules`: (constructor kwargs, input shape)
MODULE_CONFIGS = [
    (dict(in_channels=3, out_channels=2, kernel_size=3, stride=2), (1, 3, 7, 7)),  # seed 000
    (dict(in_channels=1, out_channels=4, kernel_size=(2, 3)), (3, 1, 5, 4)),  # seed 001
    (dict(in_channels=3, out_channels=6, kernel_size=3), (4, 3, 8, 8)),  # seed 002
    (dict(in_channels=3, out_channels=10, kernel_size=3, padding=1), (2, 3, 6, 6)),  # seed 003
    (dict(in_channels=4, out_channels=6, kernel_size=3, padding="same", padding_mode="reflect"),
     (2, 4, 5, 6)),
    (dict(in_channels=4, out_channels=4, kernel_size=(3, 2), stride=(2, 1), padding=(2, 1),
          dilation=(1, 2), padding_mode="circular", bias=False), (1, 4, 6, 7)),
    (dict(in_channels=6, out_channels=12, kernel_size=3, groups=3, padding_mode="replicate",
          padding=2), (2, 6, 4, 4)),
    (dict(in_channels=8, out_channels=8, kernel_size=3, groups=8, padding=1), (8, 5, 5)),
]  # fmt: skip


def check_against_modules(student_conv: Callable[..., Any], *, quiet: bool = False) -> None:
    """Build real ``nn.Conv2d`` layers (float64, seeded) and compare their forward with
    ``student_conv(x, weight, bias, stride=, padding=, dilation=, groups=, padding_mode=)`` given
    the layer's weight, bias and settings."""
    import torch

    torch.manual_seed(0)
    for kwargs, x_shape in MODULE_CONFIGS:
        layer = torch.nn.Conv2d(**kwargs).double()
        x = torch.randn(*x_shape, dtype=torch.float64)
        with torch.no_grad():
            expected = layer(x).numpy()
        bias = None if layer.bias is None else layer.bias.detach().numpy().copy()
        params = dict(
            stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
            groups=layer.groups, padding_mode=layer.padding_mode,
        )  # fmt: skip
        weight = layer.weight.detach().numpy().copy()
        problem = compare_call(
            lambda x=x, weight=weight, bias=bias, params=params: student_conv(
                x.numpy().copy(), weight, bias, **params
            ),
            lambda expected=expected: expected,
            atol=1e-6,
            rtol=1e-5,
        )
        if problem is not None:
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise CheckFailure(f"nn.Conv2d({args}) on x {tuple(x_shape)}:\n  {problem}")
    if not quiet:
        print(f"ok: your conv2d reproduces {len(MODULE_CONFIGS)} nn.Conv2d layers")
