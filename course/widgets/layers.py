"""What the explorers show, computed by torch: one JSON-able *state* dict per setting.

The explorers never compute a shape or a padding themselves. :func:`conv_state` builds a real
``torch.nn.Conv2d(1, 1, ...)`` and runs it on a concrete ``(1, 1, H, W)`` input; :func:`pool_state`
does the same with ``nn.MaxPool2d`` / ``nn.AvgPool2d``. Where torch raises, the state carries
torch's message (``"RuntimeError: ..."``) instead of a picture.

Only the *geometry* of a window is arithmetic: output cell ``(i, j)`` reads the padded input at
rows ``i * stride_h + m * dilation_h`` and columns ``j * stride_w + l * dilation_w``
(``0 <= m < kernel_h``, ``0 <= l < kernel_w``). Which input cell a padded cell holds is torch's
answer again: the padded grid of each mode is ``F.pad`` of an index grid. The tests check the
geometry against torch's gradient.

Coordinates: ``(row, col)``; "padded" coordinates count from the top-left corner of the padded
input, input coordinates from the first real row/column.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
#: The drawings stay readable up to this many rows/columns of (padded) input.
MAX_GRID = 28
#: Inputs larger than this are refused before torch runs (the explorer is for small cases).
MAX_INPUT = 16
#: Kernel sizes, strides, paddings and dilations beyond this are refused before torch runs.
MAX_PARAM = 32

Pair = tuple[int, int]


def as_pair(value: Any, name: str) -> Pair:
    """An int or an (h, w) pair of ints -> (h, w); anything else is a ValueError naming ``name``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return _int(value[0], name), _int(value[1], name)
    return _int(value, name), _int(value, name)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(value)


def torch_message(error: BaseException) -> str:
    """torch's error as the student would read it: ``"RuntimeError: <first line>"``."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip()


def _fmt_pair(value: Pair) -> str:
    return str(value[0]) if value[0] == value[1] else f"({value[0]}, {value[1]})"


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """torch warns about e.g. 'same' with an even kernel; the explorer shows what it does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ----------------------------------------------------------------------------------- convolution


def conv_settings(
    height: int = 5,
    width: int = 5,
    kernel_size: Any = 3,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    padding_mode: str = "zeros",
    values: str = "arange",
) -> dict:
    """Normalized Conv2d settings: pairs as [h, w] lists, padding 'same'/'valid' or [ph, pw].

    Raises ValueError for values that are not ints / pairs of ints (or a padding string).
    """
    if isinstance(padding, str):
        pad: str | list[int] = padding
    else:
        pad = list(as_pair(padding, "padding"))
    if not isinstance(padding_mode, str):
        raise ValueError(f"padding_mode must be a string, got {padding_mode!r}")
    if values not in ("arange", "ones"):
        raise ValueError(f"values must be 'arange' or 'ones', got {values!r}")
    return {
        "height": _int(height, "height"),
        "width": _int(width, "width"),
        "kernel_size": list(as_pair(kernel_size, "kernel_size")),
        "stride": list(as_pair(stride, "stride")),
        "padding": pad,
        "dilation": list(as_pair(dilation, "dilation")),
        "padding_mode": padding_mode,
        "values": values,
    }


def conv_call(settings: dict) -> str:
    """The layer as the student would write it: ``nn.Conv2d(1, 1, kernel_size=3, ...)``."""
    pad = settings["padding"]
    pad_text = repr(pad) if isinstance(pad, str) else _fmt_pair(tuple(pad))
    return (
        f"nn.Conv2d(1, 1, kernel_size={_fmt_pair(tuple(settings['kernel_size']))}, "
        f"stride={_fmt_pair(tuple(settings['stride']))}, padding={pad_text}, "
        f"dilation={_fmt_pair(tuple(settings['dilation']))}, "
        f"padding_mode={settings['padding_mode']!r})"
    )


def input_values(height: int, width: int, kind: str = "arange") -> np.ndarray:
    """The concrete conv input, (H, W) float64: 1, 2, ..., H*W row by row, or all ones."""
    if kind == "ones":
        return np.ones((height, width))
    return np.arange(1.0, height * width + 1).reshape(height, width)


def _size_error(settings: dict) -> str:
    """Our own limits, checked before torch runs: sizes a drawing can show (and that cannot
    make torch allocate gigabytes). '' when the settings are within them."""
    h, w = settings["height"], settings["width"]
    if not (1 <= h <= MAX_INPUT and 1 <= w <= MAX_INPUT):
        return (
            f"The explorer draws inputs from 1x1 to {MAX_INPUT}x{MAX_INPUT}; got {h}x{w}. "
            "(torch itself takes any size.)"
        )
    for name in ("kernel_size", "stride", "padding", "dilation"):
        value = settings.get(name)
        if isinstance(value, list) and max(abs(v) for v in value) > MAX_PARAM:
            return (
                f"The explorer takes {name} values up to {MAX_PARAM}; got {tuple(value)}. "
                "(torch itself takes larger ones.)"
            )
    return ""


def conv_formula(n: int, before: int, after: int, k: int, s: int, d: int, name: str) -> dict:
    """The output-size formula of one dimension with the numbers filled in.

    Returns {"text": str, "value": int | None}; value is None where the formula is undefined
    (stride 0).
    """
    padded = f"2·{before}" if before == after else f"{before} + {after}"
    body = f"{n} + {padded} − {d}·({k} − 1) − 1"
    if s == 0:
        return {"text": f"{name}_out = ⌊({body}) / 0⌋ + 1: division by zero", "value": None}
    value = math.floor((n + before + after - d * (k - 1) - 1) / s) + 1
    return {"text": f"{name}_out = ⌊({body}) / {s}⌋ + 1 = {value}", "value": value}


def conv_state(settings: dict) -> dict:
    """Everything the conv explorer draws for ``settings`` (see :func:`conv_settings`).

    Keys: settings, call, ok, error, limit (True when the error is the explorer's own size
    limit rather than torch's refusal), pads (left, right, top, bottom) or None, formula (list of
    {"text", "value"} for H and W, or []), input_shape [1, 1, H, W], and when torch accepts:
    output_shape (torch's), output (H_out x W_out values of the layer with all-ones weights, no
    bias), padded (the padded input's values), source (for each padded cell the flat index
    r * W + c of the input cell it copies, -1 for a zero).
    """
    state: dict[str, Any] = {
        "kind": "conv",
        "settings": settings,
        "call": conv_call(settings),
        "ok": False,
        "error": _size_error(settings),
        "limit": False,  # True: the explorer's own limit refused it, not torch
        "pads": None,
        "formula": [],
        "input_shape": [1, 1, settings["height"], settings["width"]],
    }
    if state["error"]:
        state["limit"] = True
    else:
        with _quiet_torch():
            _run_conv(settings, state)
    return state


def _build_conv(settings: dict):
    import torch

    padding = settings["padding"]
    return torch.nn.Conv2d(
        1,
        1,
        tuple(settings["kernel_size"]),
        stride=tuple(settings["stride"]),
        padding=padding if isinstance(padding, str) else tuple(padding),
        dilation=tuple(settings["dilation"]),
        padding_mode=settings["padding_mode"],
        bias=False,
        dtype=torch.float64,
    )


def _run_conv(settings: dict, state: dict) -> None:
    """Fill ``state`` from a real Conv2d: its padding, its output, or its error message."""
    import torch
    import torch.nn.functional as F

    h, w = settings["height"], settings["width"]
    kh, kw = settings["kernel_size"]
    (sh, sw), (dh, dw) = settings["stride"], settings["dilation"]
    try:
        layer = _build_conv(settings)
    except Exception as error:  # noqa: BLE001 - torch's refusal is what we show
        state["error"] = torch_message(error)
        return
    left, right, top, bottom = (int(p) for p in layer._reversed_padding_repeated_twice)
    state["pads"] = [left, right, top, bottom]
    state["formula"] = [
        conv_formula(h, top, bottom, kh, sh, dh, "H"),
        conv_formula(w, left, right, kw, sw, dw, "W"),
    ]
    x = torch.from_numpy(input_values(h, w, settings["values"]))[None, None]
    try:
        with torch.no_grad():
            layer.weight.fill_(1.0)
            out = layer(x)
    except Exception as error:  # noqa: BLE001
        state["error"] = torch_message(error)
        return
    state["output_shape"] = [int(n) for n in out.shape]
    hp, wp = h + top + bottom, w + left + right
    if max(hp, wp) > MAX_GRID:
        state["limit"] = True
        state["error"] = (
            f"torch accepts this (output shape {tuple(out.shape)}), but the padded input is "
            f"{hp}x{wp}: the explorer draws at most {MAX_GRID}x{MAX_GRID}."
        )
        return
    # What each padded cell holds, by torch's own padding: the values, and (padding an index
    # grid the same way) which input cell each one copies.
    mode, pads = settings["padding_mode"], (left, right, top, bottom)
    index = torch.arange(float(h * w), dtype=torch.float64).reshape(1, 1, h, w)
    if mode == "zeros":
        padded = F.pad(x, pads, mode="constant", value=0.0)
        source = F.pad(index, pads, mode="constant", value=-1.0)
    else:
        padded, source = F.pad(x, pads, mode=mode), F.pad(index, pads, mode=mode)
    state.update(
        ok=True,
        output=out[0, 0].numpy().tolist(),
        padded=padded[0, 0].numpy().tolist(),
        source=source[0, 0].numpy().astype(int).tolist(),
    )


def conv_taps(state: dict, cell: Sequence[int]) -> list[Pair]:
    """Padded-grid positions the kernel reads for output ``cell`` = (i, j), in kernel order."""
    i, j = cell
    kh, kw = state["settings"]["kernel_size"]
    (sh, sw), (dh, dw) = state["settings"]["stride"], state["settings"]["dilation"]
    return [(i * sh + m * dh, j * sw + n * dw) for m in range(kh) for n in range(kw)]


def conv_feeding_cells(state: dict, cell: Sequence[int]) -> set[Pair]:
    """Input cells (row, col) whose value reaches output ``cell``: the taps inside the input and
    the cells that padding taps copy (none for zero padding)."""
    width = state["settings"]["width"]
    feeding = set()
    for r, c in conv_taps(state, cell):
        flat = state["source"][r][c]
        if flat >= 0:
            feeding.add(divmod(flat, width))
    return feeding


# --------------------------------------------------------------------------------------- pooling


def pool_settings(
    op: str = "max",
    height: int = 5,
    width: int = 5,
    kernel_size: Any = 3,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    seed: int = 0,
    negative: bool = False,
) -> dict:
    """Normalized MaxPool2d/AvgPool2d settings; stride None (the default) means the kernel size."""
    if op not in ("max", "avg"):
        raise ValueError(f"op must be 'max' (MaxPool2d) or 'avg' (AvgPool2d), got {op!r}")
    return {
        "op": op,
        "height": _int(height, "height"),
        "width": _int(width, "width"),
        "kernel_size": list(as_pair(kernel_size, "kernel_size")),
        "stride": None if stride is None else list(as_pair(stride, "stride")),
        "padding": list(as_pair(padding, "padding")),
        "dilation": list(as_pair(dilation, "dilation")),
        "ceil_mode": bool(ceil_mode),
        "count_include_pad": bool(count_include_pad),
        "seed": _int(seed, "seed"),
        "negative": bool(negative),
    }


def pool_call(settings: dict) -> str:
    k = _fmt_pair(tuple(settings["kernel_size"]))
    stride = "None" if settings["stride"] is None else _fmt_pair(tuple(settings["stride"]))
    args = f"kernel_size={k}, stride={stride}, padding={_fmt_pair(tuple(settings['padding']))}"
    if settings["op"] == "max":
        d = _fmt_pair(tuple(settings["dilation"]))
        return f"nn.MaxPool2d({args}, dilation={d}, ceil_mode={settings['ceil_mode']})"
    return (
        f"nn.AvgPool2d({args}, ceil_mode={settings['ceil_mode']}, "
        f"count_include_pad={settings['count_include_pad']})"
    )


def pool_input(height: int, width: int, seed: int = 0, negative: bool = False) -> np.ndarray:
    """The concrete pooling input, (H, W) float64: a shuffle of 1 .. H*W (negated if asked)."""
    values = np.random.default_rng(seed).permutation(height * width) + 1.0
    return (-values if negative else values).reshape(height, width)


def pool_formula(n: int, k: int, s: int, p: int, d: int, ceil: bool, name: str) -> dict:
    """The pooling output size of one dimension, numbers filled in, with the ceil_mode rule.

    Returns {"text", "value", "dropped"}: dropped is the padded-grid start of a window that
    ceil_mode would add but torch drops (it would start in the right/bottom padding), or None.
    """
    body = f"{n} + 2·{p} − {d}·({k} − 1) − 1"
    if s <= 0:
        return {
            "text": f"{name}_out: stride {s} (torch refuses it)",
            "value": None,
            "dropped": None,
        }
    span = n + 2 * p - d * (k - 1) - 1
    left, right = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    size = (-(-span // s) if ceil else span // s) + 1
    text = f"{name}_out = {left}({body}) / {s}{right} + 1 = {size}"
    dropped = None
    if ceil and size >= 1 and (size - 1) * s >= n + p:
        dropped = (size - 1) * s
        size -= 1
        text += (
            f"; but window {size + 1} would start at padded {'row' if name == 'H' else 'column'} "
            f"{dropped} ≥ {n} + {p}, in the padding: torch drops it, {name}_out = {size}"
        )
    return {"text": text, "value": size, "dropped": dropped}


def pool_state(settings: dict) -> dict:
    """Everything the pooling explorer draws for ``settings`` (see :func:`pool_settings`).

    Keys: settings, call, ok, error, limit (as in :func:`conv_state`), stride and dilation (the
    effective [h, w] pairs), formula,
    input ((H, W) values), and when torch accepts: output_shape (torch's), output (values), for
    max pooling ``winners`` (torch's return_indices: flat r * W + c of each window's maximum),
    for average pooling ``divisor`` (per output cell, what torch divided the window's sum by) and
    ``sums``; ``grid`` = [rows, cols] of the drawn padded grid: the padded input, extended where
    ceil_mode windows (kept or dropped) hang over it.
    """
    stride = settings["stride"] or settings["kernel_size"]
    # AvgPool2d has no dilation
    dilation = settings["dilation"] if settings["op"] == "max" else [1, 1]
    h, w = settings["height"], settings["width"]
    state: dict[str, Any] = {
        "kind": "pool",
        "settings": settings,
        "call": pool_call(settings),
        "ok": False,
        "error": _size_error(settings),
        "limit": False,  # True: the explorer's own limit refused it, not torch
        "stride": list(stride),
        "dilation": list(dilation),
        "formula": [],
        "input_shape": [1, 1, h, w],
    }
    if state["error"]:
        state["limit"] = True
        return state
    (kh, kw), (sh, sw), (ph, pw) = settings["kernel_size"], stride, settings["padding"]
    (dh, dw), ceil = dilation, settings["ceil_mode"]
    state["formula"] = [
        pool_formula(h, kh, sh, ph, dh, ceil, "H"),
        pool_formula(w, kw, sw, pw, dw, ceil, "W"),
    ]
    values = pool_input(h, w, settings["seed"], settings["negative"])
    state["input"] = values.tolist()
    with _quiet_torch():
        _run_pool(settings, state, values)
    if state["ok"]:
        _size_pool_grid(state)
    return state


def _run_pool(settings: dict, state: dict, values: np.ndarray) -> None:
    """Fill ``state`` from a real MaxPool2d / AvgPool2d: its output, or its error message."""
    import torch

    x = torch.from_numpy(values)[None, None]
    common = dict(
        kernel_size=tuple(settings["kernel_size"]),
        stride=tuple(state["stride"]),
        padding=tuple(settings["padding"]),
        ceil_mode=settings["ceil_mode"],
    )
    try:
        if settings["op"] == "max":
            layer = torch.nn.MaxPool2d(
                dilation=tuple(state["dilation"]), return_indices=True, **common
            )
            out, winners = layer(x)
            extra = {"winners": winners[0, 0].numpy().astype(int).tolist()}
        else:
            include = settings["count_include_pad"]
            out = torch.nn.AvgPool2d(count_include_pad=include, **common)(x)
            sums = torch.nn.AvgPool2d(count_include_pad=include, divisor_override=1, **common)(x)
            # Every window holds an input cell (padding <= kernel / 2) and no value is 0.
            divisor = torch.round(sums / out).to(torch.int64)
            extra = {"divisor": divisor[0, 0].numpy().tolist(), "sums": sums[0, 0].tolist()}
    except Exception as error:  # noqa: BLE001 - torch's refusal is what we show
        state["error"] = torch_message(error)
        return
    state.update(
        ok=True,
        output_shape=[int(n) for n in out.shape],
        output=out[0, 0].numpy().tolist(),
        **extra,
    )


def _size_pool_grid(state: dict) -> None:
    """The drawn grid covers the padded input and every window, including a dropped one."""
    settings = state["settings"]
    (kh, kw), (sh, sw) = settings["kernel_size"], state["stride"]
    (ph, pw), (dh, dw) = settings["padding"], state["dilation"]
    _, _, h_out, w_out = state["output_shape"]
    rows = max(settings["height"] + 2 * ph, (h_out - 1) * sh + dh * (kh - 1) + 1)
    cols = max(settings["width"] + 2 * pw, (w_out - 1) * sw + dw * (kw - 1) + 1)
    dropped_row, dropped_col = (f["dropped"] for f in state["formula"])
    if dropped_row is not None:
        rows = max(rows, dropped_row + dh * (kh - 1) + 1)
    if dropped_col is not None:
        cols = max(cols, dropped_col + dw * (kw - 1) + 1)
    state["grid"] = [rows, cols]
    if max(rows, cols) > MAX_GRID:
        state["ok"] = False
        state["limit"] = True
        state["error"] = (
            f"torch accepts this (output shape {tuple(state['output_shape'])}), but the "
            f"padded input is {rows}x{cols}: the explorer draws at most {MAX_GRID}x{MAX_GRID}."
        )


def pool_window(state: dict, cell: Sequence[int]) -> list[Pair]:
    """Padded-grid positions of the window of output ``cell`` = (i, j), in window order."""
    i, j = cell
    kh, kw = state["settings"]["kernel_size"]
    (sh, sw), (dh, dw) = state["stride"], state["dilation"]
    return [(i * sh + m * dh, j * sw + n * dw) for m in range(kh) for n in range(kw)]


def pool_window_inputs(state: dict, cell: Sequence[int]) -> set[Pair]:
    """Input cells (row, col) inside the window of output ``cell`` (padding left out)."""
    ph, pw = state["settings"]["padding"]
    h, w = state["settings"]["height"], state["settings"]["width"]
    return {
        (r - ph, c - pw) for r, c in pool_window(state, cell) if 0 <= r - ph < h and 0 <= c - pw < w
    }


def pool_winner(state: dict, cell: Sequence[int]) -> Pair:
    """The input cell (row, col) torch picked as the maximum of output ``cell``'s window."""
    return divmod(state["winners"][cell[0]][cell[1]], state["settings"]["width"])
