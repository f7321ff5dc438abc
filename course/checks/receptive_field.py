"""Checks for assignment 07, section 7: the receptive field (感受野) of a stack of layers.

The student writes ``receptive_field(layers)``: for a list of conv/pool layers, each a dict

    {"kind": "conv" or "pool", "kernel_size": k, "stride": s, "padding": p, "dilation": d}

(ints or (h, w) pairs; ``stride`` defaults to 1 for a conv and to the kernel size for a pool, as
in ``nn.Conv2d`` / ``nn.MaxPool2d``; ``padding`` defaults to 0, ``dilation`` to 1), it returns a
dict of three (h, w) pairs of ints:

- ``"size"``: how many input rows/columns one output pixel depends on (first to last);
- ``"jump"``: how far apart, in input pixels, the fields of two neighbouring output pixels are;
- ``"start"``: the input row/column where the field of output pixel (0, 0) begins (negative
  when it begins in the padding).

Nothing here uses a formula. The reference *measures* the field in torch: every layer becomes a
one-channel ``Conv2d`` with an all-ones kernel of the same geometry (a max pool sends the gradient
to one pixel of its window only — which one depends on the input — but any pixel of the window can
win, so the field counts the whole window), and the input pixels with a non-zero gradient of one
output pixel are the field. The same measurement runs on a real ``nn.Module`` (the seed 003 CNN)
with :func:`measure_module`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from course.checks.core import CheckFailure, check_cases, one_thread, sweep

Pair = int | tuple[int, int]
KEYS = ("size", "jump", "start")
#: Largest input side the measurement tries before giving up (the field must fit inside).
MAX_SIDE = 4096


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def layer_geometry(layer: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """A layer dict with every default filled in: kernel_size, stride, padding, dilation pairs.

    Raises ValueError for an unknown kind or a missing kernel size.
    """
    kind = layer.get("kind", "conv")
    if kind not in ("conv", "pool"):
        raise ValueError(f"layer kind must be 'conv' or 'pool', got {kind!r}")
    if "kernel_size" not in layer:
        raise ValueError(f"layer {layer!r} has no kernel_size")
    kernel = _pair(layer["kernel_size"])
    stride = layer.get("stride")
    if stride is None:
        stride = kernel if kind == "pool" else 1
    return {
        "kernel_size": kernel,
        "stride": _pair(stride),
        "padding": _pair(layer.get("padding", 0)),
        "dilation": _pair(layer.get("dilation", 1)),
    }


# --------------------------------------------------------------------------- measuring in torch


def module_from_layers(layers: Sequence[dict[str, Any]]) -> Any:
    """An ``nn.Sequential`` of one-channel ``nn.Conv2d`` / ``nn.MaxPool2d`` layers (float64)."""
    from torch import nn

    modules = []
    for layer in layers:
        g = layer_geometry(layer)
        if layer.get("kind", "conv") == "pool":
            modules.append(nn.MaxPool2d(g["kernel_size"], g["stride"], g["padding"], g["dilation"]))
        else:
            modules.append(nn.Conv2d(1, 1, bias=False, **g))
    return nn.Sequential(*modules).double()


def linearized(model: Any) -> Any:
    """A copy of ``model`` for measuring fields: every ``Conv2d`` gets all-ones weights and zero
    bias, every ``MaxPool2d`` becomes an all-ones depthwise ``Conv2d`` of the same kernel, stride,
    padding and dilation (a sum over the same window). float64."""
    import torch
    from torch import nn

    model = copy.deepcopy(model).double()
    for name, child in list(model.named_children()):
        if isinstance(child, nn.MaxPool2d):
            channels = _channels_before(model, name)
            replacement = nn.Conv2d(
                channels,
                channels,
                child.kernel_size,
                stride=child.stride,
                padding=child.padding,
                dilation=child.dilation,
                groups=channels,
                bias=False,
            ).double()
            setattr(model, name, replacement)
        elif not isinstance(child, nn.Conv2d) and list(child.children()):
            setattr(model, name, linearized(child))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0)
                if module.bias is not None:
                    module.bias.zero_()
    return model


def _channels_before(model: Any, name: str) -> int:
    """Output channels of the last Conv2d registered before child ``name`` (1 if none)."""
    from torch import nn

    channels = 1
    for child_name, child in model.named_children():
        if child_name == name:
            break
        for module in child.modules():
            if isinstance(module, nn.Conv2d):
                channels = module.out_channels
    return channels


def gradient_support(
    model: Any, input_shape: tuple[int, int, int, int], out_index: tuple[int, int]
) -> np.ndarray:
    """Bool (H, W): the input pixels whose gradient of ``model(x)[0, 0, i, j]`` is non-zero.

    model: any module (run as it is: linearize it first for a field). input_shape: (1, C, H, W);
    x is all ones (float64). out_index: (i, j) in the output.
    """
    import torch

    x = torch.ones(input_shape, dtype=torch.float64, requires_grad=True)
    with one_thread():
        out = model(x)
        (grad,) = torch.autograd.grad(out[0, 0, out_index[0], out_index[1]], x)
    return (grad[0] != 0).any(dim=0).numpy()


def _input_channels(model: Any) -> int:
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return 1


def measure_module(model: Any, in_channels: int | None = None) -> dict[str, tuple[int, int]]:
    """Measure ``{"size", "jump", "start"}`` of an ``nn.Module`` mapping (1, C, H, W) images to
    (1, C', H', W') maps, by gradients (see the module docstring).

    The input grows (doubling, up to MAX_SIDE) until the output has at least 3 pixels per side
    and the fields of the middle output pixel and of its neighbours lie strictly inside the input,
    so no border clips what is measured. Raises RuntimeError where torch does (an input too small
    for the stack at every size tried is reported as such).
    """
    net = linearized(model)
    channels = in_channels or _input_channels(model)
    side = [8, 8]
    while True:
        try:
            result = _measure_at(net, channels, side)
        except RuntimeError:
            if max(side) >= MAX_SIDE:
                raise
            result = None  # the input is too small for the stack: try a larger one
        if result is not None:
            return result
        if max(side) >= MAX_SIDE:
            raise RuntimeError(f"the receptive field does not fit in a {MAX_SIDE}² input")
        side = [min(2 * s, MAX_SIDE) for s in side]


def _measure_at(net: Any, channels: int, side: list[int]) -> dict[str, tuple[int, int]] | None:
    import torch

    with torch.no_grad(), one_thread():
        out_h, out_w = net(torch.zeros(1, channels, *side, dtype=torch.float64)).shape[-2:]
    if out_h < 3 or out_w < 3:
        return None
    i, j = out_h // 2, out_w // 2
    shape = (1, channels, *side)
    centre = gradient_support(net, shape, (i, j))
    below = gradient_support(net, shape, (i + 1, j))
    right = gradient_support(net, shape, (i, j + 1))
    rows, cols = np.flatnonzero(centre.any(axis=1)), np.flatnonzero(centre.any(axis=0))
    if rows.size == 0:
        raise RuntimeError("no input pixel reaches the output (an empty receptive field)")
    for support in (centre, below, right):
        r, c = np.flatnonzero(support.any(axis=1)), np.flatnonzero(support.any(axis=0))
        if r[0] < 1 or c[0] < 1 or r[-1] > side[0] - 2 or c[-1] > side[1] - 2:
            return None  # clipped by the border: measure on a larger input
    jump = (
        int(np.flatnonzero(below.any(axis=1))[0] - rows[0]),
        int(np.flatnonzero(right.any(axis=0))[0] - cols[0]),
    )
    return {
        "size": (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)),
        "jump": jump,
        "start": (int(rows[0] - i * jump[0]), int(cols[0] - j * jump[1])),
    }


def torch_receptive_field(layers: Sequence[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """The field of a stack of layer dicts, measured in torch on :func:`module_from_layers`."""
    for layer in layers:
        g = layer_geometry(layer)
        if min(*g["kernel_size"], *g["stride"], *g["dilation"]) < 1 or min(g["padding"]) < 0:
            raise ValueError(
                f"invalid layer {layer!r}: kernel, stride, dilation >= 1, padding >= 0"
            )
    return measure_module(module_from_layers(layers), in_channels=1)


def field_mask(
    layers: Sequence[dict[str, Any]], input_size: tuple[int, int], out_index: tuple[int, int]
) -> np.ndarray:
    """Bool (H, W): which pixels of an ``input_size`` image output pixel ``out_index`` sees,
    measured in torch (holes included: dilated kernels skip pixels)."""
    net = linearized(module_from_layers(layers))
    return gradient_support(net, (1, 1, *input_size), out_index)


def module_layers(model: Any) -> list[dict[str, Any]]:
    """The layer dicts of a module's ``Conv2d`` and ``MaxPool2d`` layers, in registration order
    (which is the order the seed 003 CNN applies them in)."""
    from torch import nn

    layers = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            kind = "conv" if isinstance(module, nn.Conv2d) else "pool"
            layers.append(
                {
                    "kind": kind,
                    "kernel_size": _pair(module.kernel_size),
                    "stride": _pair(module.stride),
                    "padding": _pair(module.padding),
                    "dilation": _pair(module.dilation),
                }
            )
    return layers


def seed_cnn_layers() -> list[dict[str, Any]]:
    """The four layers of the (fixed) seed 003 CNN, read from the real ``nn.Module``."""
    from course.checks.pooling import seed_cnn

    return module_layers(seed_cnn(3, 5))


# --------------------------------------------------------------------------- comparison


def compare_fields(got: Any, expected: dict[str, tuple[int, int]]) -> str | None:
    """None when the student's dict has the measured size, jump and start; else which differs."""
    if not isinstance(got, dict):
        return (
            f"receptive_field must return a dict with keys {list(KEYS)}, got {type(got).__name__}"
        )
    missing = [key for key in KEYS if key not in got]
    if missing:
        return f"the returned dict lacks {missing}; expected keys {list(KEYS)}"
    for key in KEYS:
        value = got[key]
        if (
            not isinstance(value, (tuple, list, np.ndarray))
            or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        ):
            return f"{key!r} must be an (h, w) pair of ints, got {value!r}"
        if tuple(int(v) for v in value) != tuple(expected[key]):
            return (
                f"{key} {tuple(int(v) for v in value)} (h, w), but torch measures "
                f"{tuple(expected[key])} (size {expected['size']}, jump {expected['jump']}, "
                f"start {expected['start']})"
            )
    return None


# --------------------------------------------------------------------------- strategies


def layers_strategy(max_layers: int = 4, dilation: bool = True, padding: bool = True):
    """Hypothesis strategy of ``{"layers": [...]}`` keyword dicts: 1..max_layers conv/pool layers
    with kernel 1..3, stride 1..2 (or a pool's default), padding up to half the kernel, dilation
    1..2; ints or (h, w) pairs."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        square = not draw(st.booleans())

        def param(low: int, high: int) -> Pair:
            first = draw(st.integers(low, high))
            return first if square else (first, draw(st.integers(low, high)))

        layers = []
        for _ in range(draw(st.integers(1, max_layers))):
            kind = "pool" if draw(st.booleans()) else "conv"
            kernel = param(1, 3)
            layer: dict[str, Any] = {"kind": kind, "kernel_size": kernel}
            if kind == "conv" or not draw(st.booleans()):
                layer["stride"] = param(1, 2)
            if padding and draw(st.booleans()):
                kh, kw = _pair(kernel)
                layer["padding"] = (
                    draw(st.integers(0, min(kh, kw) // 2))
                    if square
                    else (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
                )
            if dilation and draw(st.booleans()):
                layer["dilation"] = param(1, 2)
            layers.append(layer)
        return {"layers": layers}

    return cases()


# --------------------------------------------------------------------------- checks


def _fresh(student_fn: Callable[..., Any]) -> Callable[..., Any]:
    # a deep copy per call: an in-place edit of the list cannot change what torch measures
    return lambda layers: student_fn(copy.deepcopy(layers))


def check_receptive_field(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "receptive_field",
    **strategy_options: Any,
) -> None:
    """Compare ``student_fn(layers)`` -> {"size", "jump", "start"} with the field torch measures,
    on ``cases`` (keyword dicts ``{"layers": [...]}``) and/or ``random`` hypothesis stacks."""
    __tracebackhide__ = True
    fn = _fresh(student_fn)
    count = 0
    if cases is not None:
        count += check_cases(fn, torch_receptive_field, cases, name=name, compare=compare_fields)
    if random:
        count += sweep(
            fn,
            torch_receptive_field,
            layers_strategy(**strategy_options),
            name=name,
            max_examples=random,
            compare=compare_fields,
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


def check_seed_cnn_field(student_fn: Callable[..., Any]) -> None:
    """The seed 003 CNN: its layers read from the real module, its field measured on the module
    itself (weights replaced by ones, max pools by sums over the same windows)."""
    __tracebackhide__ = True
    from course.checks.pooling import seed_cnn

    model = seed_cnn(3, 5)
    layers = module_layers(model)
    expected = measure_module(model, in_channels=3)
    got = student_fn(copy.deepcopy(layers))
    problem = compare_fields(got, expected)
    if problem is not None:
        raise CheckFailure(
            f"receptive_field fails for the seed 003 CNN, layers={layers}:\n  {problem}"
        )
    print(
        f"ok: seed 003 CNN: one output pixel sees {expected['size'][0]}x{expected['size'][1]} "
        f"input pixels starting at {expected['start']}, neighbours {expected['jump']} apart "
        "(measured on the real module)"
    )


__all__ = [
    "CheckFailure",
    "check_receptive_field",
    "check_seed_cnn_field",
    "compare_fields",
    "field_mask",
    "gradient_support",
    "layer_geometry",
    "layers_strategy",
    "linearized",
    "measure_module",
    "module_from_layers",
    "module_layers",
    "seed_cnn_layers",
    "torch_receptive_field",
]
