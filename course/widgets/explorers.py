"""The two explorers as anywidget widgets: controls in JupyterLab, torch in the kernel.

The front end (``explorer.js``, shipped in this package; no CDN, no build step) draws the grids
and the controls. Every setting a student changes comes back here as a trait; the kernel
rebuilds the real torch layer (:mod:`course.widgets.layers`) and sends the new ``state`` back.
Which input cells a pointed-at output cell reads is drawn by the front end from that state.

Displaying an explorer gives a mime bundle with the widget view *and* a PNG of the current
settings (:mod:`course.widgets.static`): JupyterLab shows the widget; nbconvert, the grader's
feedback and anything else without a widget front end show the picture. Nothing waits for a
front end.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from course.widgets import layers, static

HERE = Path(__file__).resolve().parent


class Pair(t.TraitType):
    """An [h, w] pair of ints; an int n is stored as [n, n] (Conv2d's convention)."""

    info_text = "an int or a pair (h, w) of ints"

    def validate(self, obj: Any, value: Any) -> list[int]:
        try:
            return list(layers.as_pair(value, self.name))
        except ValueError:
            self.error(obj, value)


class ConvPadding(Pair):
    """Conv2d's padding: 'same', 'valid' (or another string, for torch to refuse) or a pair."""

    info_text = "an int, a pair (h, w) of ints or a string"

    def validate(self, obj: Any, value: Any) -> str | list[int]:
        return value if isinstance(value, str) else super().validate(obj, value)


def _pair_trait(default: int) -> Pair:
    return Pair(default_value=[default, default]).tag(sync=True)


class _Explorer(anywidget.AnyWidget):
    _esm = HERE / "explorer.js"
    _css = HERE / "explorer.css"
    _kind = t.Unicode("").tag(sync=True)
    #: What the front end draws, recomputed by torch after every change (read-only for JS).
    state = t.Dict().tag(sync=True)
    _settings_traits: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._update()
        self.observe(lambda change: self._update(), names=list(self._settings_traits))

    def _repr_mimebundle_(self, **kwargs: Any):
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = self.describe()
        data["image/png"] = base64.b64encode(static.png(self.figure())).decode("ascii")
        return data, metadata

    # -- what students and tests read -------------------------------------------------------

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The output shape torch computed for the current settings, or None if it refused."""
        shape = self.state.get("output_shape")
        return tuple(shape) if shape and self.state.get("ok") else None

    @property
    def error(self) -> str:
        """torch's message for the current settings ('' when torch accepts them)."""
        return self.state.get("error", "")

    def describe(self) -> str:
        """One line: the torch call and what torch made of it."""
        if self.state.get("ok"):
            return f"{self.state['call']} -> output shape {tuple(self.state['output_shape'])}"
        return f"{self.state['call']} -> {self.state['error']}"

    def _update(self) -> None:
        raise NotImplementedError

    def figure(self):
        raise NotImplementedError


class ConvExplorer(_Explorer):
    """``nn.Conv2d(1, 1, ...)`` on an H x W input, drawn: padded input, output, and the input
    cells that feed the output cell under the pointer.

    Arguments are Conv2d's: kernel_size, stride, dilation: int or (h, w); padding: int, (h, w),
    'same' or 'valid'; padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'. ``values``:
    the input holds 1, 2, ..., H*W ('arange') or ones ('ones'). ``cell``: the output cell the
    static picture highlights (clicking one in JupyterLab pins it).
    """

    _kind = t.Unicode("conv").tag(sync=True)
    height = t.Int(5).tag(sync=True)
    width = t.Int(5).tag(sync=True)
    kernel_size = _pair_trait(3)
    stride = _pair_trait(1)
    padding = ConvPadding(default_value=[0, 0]).tag(sync=True)
    dilation = _pair_trait(1)
    padding_mode = t.Unicode("zeros").tag(sync=True)
    values = t.Unicode("arange").tag(sync=True)
    cell = _pair_trait(0)
    _settings_traits = (
        "height",
        "width",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "padding_mode",
        "values",
    )

    def __init__(
        self,
        height: int = 5,
        width: int = 5,
        kernel_size: Any = 3,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        *,
        values: str = "arange",
        cell: tuple[int, int] = (0, 0),
    ):
        settings = layers.conv_settings(
            height, width, kernel_size, stride, padding, dilation, padding_mode, values
        )
        super().__init__(**settings, cell=list(layers.as_pair(cell, "cell")))

    @property
    def settings(self) -> dict:
        """The current settings, normalized (pairs as [h, w] lists)."""
        return layers.conv_settings(*(getattr(self, name) for name in self._settings_traits))

    def _update(self) -> None:
        self.state = layers.conv_state(self.settings)

    def feeding_cells(self, cell: tuple[int, int]) -> set[tuple[int, int]]:
        """Input cells (row, col) whose values reach output ``cell`` (what the widget marks)."""
        if not self.state.get("ok"):
            return set()
        return layers.conv_feeding_cells(self.state, cell)

    def figure(self, cell: tuple[int, int] | None = None):
        """The static picture of the current settings (a matplotlib Figure)."""
        return static.conv_figure(self.state, tuple(self.cell) if cell is None else cell)


class PoolExplorer(_Explorer):
    """``nn.MaxPool2d`` (op='max') or ``nn.AvgPool2d`` (op='avg') on a shuffled H x W input:
    every window, the cell that wins it (max), the -inf (max) or zero (avg) padding, and the
    windows ceil_mode keeps or drops.

    Arguments are the layers': kernel_size, stride (None: the kernel size), padding, dilation
    (max only): int or (h, w); ceil_mode; count_include_pad (avg only). ``seed`` shuffles the
    input 1 .. H*W; ``negative=True`` negates it (then zero padding would win every border
    window; -inf padding never does).
    """

    _kind = t.Unicode("pool").tag(sync=True)
    op = t.Unicode("max").tag(sync=True)
    height = t.Int(5).tag(sync=True)
    width = t.Int(5).tag(sync=True)
    kernel_size = _pair_trait(2)
    stride = Pair(default_value=None, allow_none=True).tag(sync=True)
    padding = _pair_trait(0)
    dilation = _pair_trait(1)
    ceil_mode = t.Bool(False).tag(sync=True)
    count_include_pad = t.Bool(True).tag(sync=True)
    seed = t.Int(0).tag(sync=True)
    negative = t.Bool(False).tag(sync=True)
    cell = _pair_trait(0)
    _settings_traits = (
        "op",
        "height",
        "width",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "ceil_mode",
        "count_include_pad",
        "seed",
        "negative",
    )

    def __init__(
        self,
        height: int = 5,
        width: int = 5,
        kernel_size: Any = 2,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        ceil_mode: bool = False,
        *,
        op: str = "max",
        count_include_pad: bool = True,
        seed: int = 0,
        negative: bool = False,
    ):
        settings = layers.pool_settings(
            op,
            height,
            width,
            kernel_size,
            stride,
            padding,
            dilation,
            ceil_mode,
            count_include_pad,
            seed,
            negative,
        )
        super().__init__(**settings)

    @property
    def settings(self) -> dict:
        return layers.pool_settings(*(getattr(self, name) for name in self._settings_traits))

    def _update(self) -> None:
        try:
            settings = self.settings
        except ValueError as problem:  # e.g. op set to something else from Python
            self.state = {"kind": "pool", "ok": False, "error": str(problem), "call": ""}
            return
        self.state = layers.pool_state(settings)

    def window_inputs(self, cell: tuple[int, int]) -> set[tuple[int, int]]:
        """Input cells (row, col) inside output ``cell``'s window (padding left out)."""
        return layers.pool_window_inputs(self.state, cell) if self.state.get("ok") else set()

    def winner(self, cell: tuple[int, int]) -> tuple[int, int] | None:
        """The input cell torch took as the maximum of ``cell``'s window (max pooling)."""
        if not self.state.get("ok") or self.op != "max":
            return None
        return layers.pool_winner(self.state, cell)

    def figure(self):
        """The static picture of the current settings (a matplotlib Figure)."""
        return static.pool_figure(self.state)
