"""Checks for assignment 11: 1×1 convolution, im2col / col2im, and convolution as one GEMM.

The student writes, in NumPy:

- ``pointwise_conv(x, weight, bias=None)``: x (N, C, H, W), weight (K, C, 1, 1), bias (K,) or
  None -> (N, K, H, W), compared with the layer ``nn.Conv2d(C, K, 1)`` holding those weights;
- ``conv_macs(in_channels, out_channels, kernel_size, output_size, groups=1)``: the multiply-adds
  of one image through ``nn.Conv2d``, measured on the layer (all-ones weights and input: the sum
  of the output counts the products);
- ``im2col(x, kernel_size, stride=1, padding=0, dilation=1)``: x (N, C, H, W) -> columns
  (N, C·kH·kW, L), L = H_out·W_out, exactly ``torch.nn.functional.unfold``;
- ``col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1)``: the adjoint,
  (N, C·kH·kW, L) -> (N, C, H, W) with overlapping entries summed, exactly ``F.fold``.

``conv2d_gemm`` and its backward are checked with :func:`course.checks.conv.check_conv2d` and
:func:`course.checks.backward.check_conv2d_backward`. Where torch raises, the student's function
must raise ValueError or RuntimeError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import (
    CheckFailure,
    check_cases,
    describe_case,
    one_thread,
    search_settings,
    sweep,
)

Pair = int | tuple[int, int]


def _as_pair(value: Pair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _tensor(array: Any):
    import torch

    return torch.from_numpy(np.array(array, dtype=np.float64))


# --------------------------------------------------------------------------- torch references


def torch_unfold(
    x: np.ndarray, kernel_size: Pair, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1
) -> np.ndarray:
    """``F.unfold`` (float64): x (N, C, H, W) -> (N, C·kH·kW, H_out·W_out). Row
    ``c·kH·kW + i·kW + j`` holds kernel tap (i, j) of channel c; column ``oh·W_out + ow`` holds
    output position (oh, ow)."""
    import torch.nn.functional as F

    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {x.shape}")
    with one_thread():
        return F.unfold(
            _tensor(x), kernel_size, dilation=dilation, padding=padding, stride=stride
        ).numpy()


def torch_fold(
    cols: np.ndarray,
    output_size: tuple[int, int],
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> np.ndarray:
    """``F.fold`` (float64): cols (N, C·kH·kW, L) -> (N, C, H, W) with (H, W) = ``output_size``;
    entries that land on the same input pixel are summed, those in the padding dropped."""
    import torch.nn.functional as F

    cols = np.asarray(cols)
    if cols.ndim != 3:
        raise ValueError(f"cols must be (N, C*kH*kW, L), got shape {cols.shape}")
    with one_thread():
        return F.fold(
            _tensor(cols),
            tuple(output_size),
            kernel_size,
            dilation=dilation,
            padding=padding,
            stride=stride,
        ).numpy()


def torch_pointwise_conv(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> np.ndarray:
    """The layer ``nn.Conv2d(C, K, 1, bias=bias is not None)`` with ``weight`` (K, C, 1, 1) and
    ``bias`` (K,) copied in, applied to x (N, C, H, W) (float64) -> (N, K, H, W)."""
    import torch

    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4 or weight.shape[2:] != (1, 1):
        raise ValueError(f"weight must be (K, C, 1, 1), got shape {weight.shape}")
    k, c = weight.shape[:2]
    layer = torch.nn.Conv2d(c, k, 1, bias=bias is not None).double()
    with torch.no_grad(), one_thread():
        layer.weight.copy_(torch.from_numpy(weight))
        if bias is not None:
            layer.bias.copy_(_tensor(bias))
        return layer(_tensor(x)).numpy()


def torch_conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: Pair,
    output_size: tuple[int, int],
    groups: int = 1,
) -> int:
    """Multiply-adds of one image through ``nn.Conv2d(in_channels, out_channels, kernel_size,
    groups=groups)`` producing an ``output_size`` (H_out, W_out) map (the bias not counted),
    measured by running the layer: with all-ones weights on an all-ones input every output value
    is the number of products summed into it, so the sum of the output counts them all (seed
    004's experiment, in float64 so that the count is exact)."""
    import torch

    kh, kw = _as_pair(kernel_size)
    h_out, w_out = _as_pair(output_size)
    if h_out < 1 or w_out < 1:
        raise ValueError("output_size must be at least 1x1")
    layer = torch.nn.Conv2d(in_channels, out_channels, (kh, kw), groups=groups, bias=False)
    layer = layer.double()
    x = torch.ones(1, in_channels, h_out + kh - 1, w_out + kw - 1, dtype=torch.float64)
    with torch.no_grad(), one_thread():
        layer.weight.fill_(1.0)
        return int(layer(x).sum().item())


# --------------------------------------------------------------------------- strategies


def _pair_strategy(low: int, high: int, square: bool, draw: Any) -> Pair:
    from hypothesis import strategies as st

    first = draw(st.integers(low, high))
    return first if square else (first, draw(st.integers(low, high)))


def unfold_strategy(*, max_extra: int = 4, invalid: bool = True):
    """Keyword dicts for ``im2col``: x (N, C, H, W) float64, kernel 1..3, stride 1..3, padding
    0..2, dilation 1..3 (ints or pairs). With ``invalid``, one case in eight has an input too
    small for the kernel, where torch raises."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        square = not draw(st.booleans())
        kernel = _pair_strategy(1, 3, square, draw)
        stride = _pair_strategy(1, 3, square, draw)
        padding = _pair_strategy(0, 2, square, draw)
        dilation = _pair_strategy(1, 3, square, draw)
        too_small = invalid and draw(st.integers(0, 7)) == 0
        sizes = []
        for k, p, d in zip(_as_pair(kernel), _as_pair(padding), _as_pair(dilation), strict=True):
            smallest = max(1, d * (k - 1) + 1 - 2 * p)
            if too_small and smallest > 1:
                sizes.append(smallest - 1)
            else:
                sizes.append(smallest + draw(st.integers(0, max_extra)))
        shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *sizes)
        x = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal(shape)
        return {
            "x": x,
            "kernel_size": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
        }

    return cases()


def fold_case(
    n: int,
    channels: int,
    output_size: tuple[int, int],
    kernel_size: Pair,
    seed: int = 0,
    **params: Any,
) -> dict[str, Any]:
    """One keyword dict for ``col2im``: random cols of the shape ``F.unfold`` gives for an
    (n, channels, *output_size) input with these parameters."""
    zeros = np.zeros((n, channels, *output_size))
    shape = torch_unfold(zeros, kernel_size, **params).shape
    cols = np.random.default_rng(seed).standard_normal(shape)
    return {"cols": cols, "output_size": tuple(output_size), "kernel_size": kernel_size, **params}


def fold_strategy(*, max_extra: int = 4):
    """Keyword dicts for ``col2im`` (always valid: the cols have the shape unfold gives)."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        case = draw(unfold_strategy(max_extra=max_extra, invalid=False))
        n, c, h, w = case.pop("x").shape
        return fold_case(n, c, (h, w), seed=draw(st.integers(0, 2**16)), **case)

    return cases()


def pointwise_strategy():
    """Keyword dicts for ``pointwise_conv``: x (N, C, H, W), weight (K, C, 1, 1), bias or None."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        n, c, k = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
        h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        case = {"x": rng.standard_normal((n, c, h, w)), "weight": rng.standard_normal((k, c, 1, 1))}
        case["bias"] = rng.standard_normal(k) if draw(st.booleans()) else None
        return case

    return cases()


# --------------------------------------------------------------------------- checks


def _fresh(student_fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(**case: Any) -> Any:
        return student_fn(
            **{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.items()}
        )

    return call


def _run(student_fn, reference, cases, strategy, random, name) -> None:
    count = 0
    if cases is not None:
        count += check_cases(_fresh(student_fn), reference, cases, name=name, atol=1e-8)
    if random:
        count += sweep(
            _fresh(student_fn), reference, strategy, name=name, max_examples=random, atol=1e-8
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


def unfold_case(shape: tuple[int, ...], kernel_size: Pair, seed: int = 0, **params: Any):
    """One keyword dict for :func:`check_im2col`: a random float64 x of ``shape`` and params."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return {"x": x, "kernel_size": kernel_size, **params}


def check_im2col(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "im2col",
) -> None:
    """Compare ``student_fn(x, kernel_size, stride, padding, dilation)`` with ``F.unfold`` on
    ``cases`` (see :func:`unfold_case`) and/or ``random`` cases of :func:`unfold_strategy`."""
    __tracebackhide__ = True
    _run(student_fn, torch_unfold, cases, unfold_strategy(), random, name)


def check_col2im(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "col2im",
) -> None:
    """Compare ``student_fn(cols, output_size, kernel_size, stride, padding, dilation)`` with
    ``F.fold`` on ``cases`` (see :func:`fold_case`) and/or ``random`` cases."""
    __tracebackhide__ = True
    _run(student_fn, torch_fold, cases, fold_strategy(), random, name)


def check_col2im_is_adjoint(
    im2col_fn: Callable[..., Any], col2im_fn: Callable[..., Any], *, random: int = 20
) -> None:
    """col2im is the transpose of im2col: <im2col(x), c> == <x, col2im(c)> for random x, c.

    This is why col2im computes the input gradient of im2col. Uses the student's two functions
    only (torch is not involved); the failing case is named.
    """
    __tracebackhide__ = True
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    def broken(case: dict[str, Any]) -> bool:
        return _adjoint_problem(im2col_fn, col2im_fn, case) is not None

    search = search_settings(random)
    try:
        case = find(unfold_strategy(invalid=False), broken, settings=search)
    except NoSuchExample:
        print(
            f"ok: <im2col(x), c> = <x, col2im(c)> on {random} random case(s): col2im is the "
            "transpose of im2col"
        )
        return
    raise CheckFailure(
        f"col2im is not the transpose of im2col for {describe_case(**case)}:\n  "
        f"{_adjoint_problem(im2col_fn, col2im_fn, case)}"
    )


def _adjoint_problem(im2col_fn, col2im_fn, case: dict[str, Any]) -> str | None:
    params = {k: v for k, v in case.items() if k != "x"}
    x = case["x"]
    cols = np.random.default_rng(1).standard_normal(torch_unfold(x, **params).shape)
    try:
        left = float(np.sum(np.asarray(im2col_fn(x.copy(), **params)) * cols))
        right = float(np.sum(x * np.asarray(col2im_fn(cols.copy(), x.shape[2:], **params))))
    except Exception as err:  # noqa: BLE001 - a crash is the finding
        return f"{type(err).__name__}: {err}"
    if not np.isclose(left, right, rtol=1e-7, atol=1e-8):
        return f"<im2col(x), c> = {left:.6g} but <x, col2im(c)> = {right:.6g}"
    return None


def check_pointwise_conv(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "pointwise_conv",
) -> None:
    """Compare ``student_fn(x, weight, bias)`` with ``nn.Conv2d(C, K, 1)`` holding the same
    weight (K, C, 1, 1) and bias (K,) or no bias."""
    __tracebackhide__ = True
    _run(student_fn, torch_pointwise_conv, cases, pointwise_strategy(), random, name)


def check_conv_macs(
    student_fn: Callable[..., Any], *, hidden: bool = False, quiet: bool = False
) -> None:
    """Compare ``student_fn(in_channels, out_channels, kernel_size, output_size, groups)`` with
    the count measured on ordinary, 1×1, depthwise and grouped layers; the answer must be an
    int. ``hidden`` adds a layer torch refuses to build (groups not dividing the channels) and
    more grouped shapes."""
    __tracebackhide__ = True
    cases = [
        dict(in_channels=32, out_channels=64, kernel_size=3, output_size=(8, 8)),
        dict(in_channels=32, out_channels=64, kernel_size=1, output_size=(8, 8)),
        dict(in_channels=32, out_channels=32, kernel_size=3, output_size=(8, 8), groups=32),
        dict(in_channels=6, out_channels=12, kernel_size=(3, 2), output_size=(5, 7), groups=3),
        dict(in_channels=3, out_channels=10, kernel_size=3, output_size=(32, 32)),
        dict(in_channels=10, out_channels=5, kernel_size=3, output_size=(31, 31)),
        dict(in_channels=16, out_channels=48, kernel_size=(1, 5), output_size=(4, 9), groups=16),
    ]
    if hidden:
        cases += [
            dict(in_channels=6, out_channels=9, kernel_size=3, output_size=(4, 4), groups=2),
            dict(in_channels=8, out_channels=8, kernel_size=(2, 5), output_size=(1, 3), groups=4),
            dict(in_channels=1, out_channels=1, kernel_size=1, output_size=(1, 1)),
        ]

    def compare(got: Any, expected: int) -> str | None:
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            return f"return an int, got {type(got).__name__} {got!r}"
        if int(got) != expected:
            return f"got {int(got)} multiply-adds, the layer measured in torch does {expected}"
        return None

    check_cases(student_fn, torch_conv_macs, cases, name="conv_macs", compare=compare, quiet=quiet)


__all__ = [
    "CheckFailure",
    "check_col2im",
    "check_col2im_is_adjoint",
    "check_conv_macs",
    "check_im2col",
    "check_pointwise_conv",
    "fold_case",
    "fold_strategy",
    "pointwise_strategy",
    "torch_conv_macs",
    "torch_fold",
    "torch_pointwise_conv",
    "torch_unfold",
    "unfold_case",
    "unfold_strategy",
]
