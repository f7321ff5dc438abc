"""The explorers' static pictures: one matplotlib figure of a state (see :mod:`.layers`).

Shown wherever no widget front end runs (nbconvert/nbclient, the grader's feedback, a terminal):
the explorers put it into their mime bundle as ``image/png`` next to the widget view. The figure
is built on a bare ``matplotlib.figure.Figure`` (no pyplot), so it never shows up a second time
through the inline backend and never needs a display.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

from course.widgets import layers

INPUT = "#cfe2f3"
TAP = "#1c4587"
FEEDS = "#e69138"
OUTPUT = "#d9ead3"
CURRENT = "#274e13"
#: Shading of the padding cells, one colour per padding_mode (the explorer's CSS uses the same).
PAD_COLORS = {
    "zeros": "#ffffff",
    "reflect": "#d9d2e9",
    "replicate": "#f4cccc",
    "circular": "#fff2cc",
}
MINUS_INF = "#d9d9d9"
OUTSIDE = "#f3f3f3"
CELL_INCHES = 0.36
HEADER_LINE = 0.2  # inches per line of the monospace header


def _number(value: float) -> str:
    if value == float("-inf"):
        return "−∞"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def _cell(ax, row: int, col: int, face: str, text: str = "", **style) -> None:
    from matplotlib.patches import Rectangle

    edge = style.pop("edge", "#666666")
    ax.add_patch(
        Rectangle((col, -row - 1), 1, 1, facecolor=face, edgecolor=edge, lw=style.pop("lw", 0.6))
    )
    if text:
        color = style.pop("color", "#222222")
        size = 8 if len(text) <= 3 else 6
        ax.text(col + 0.5, -row - 0.5, text, ha="center", va="center", fontsize=size, color=color)


def _finish(ax, rows: int, cols: int, title: str) -> None:
    ax.set_xlim(-0.2, cols + 0.2)
    ax.set_ylim(-rows - 0.2, 0.2)
    ax.set_aspect("equal")
    ax.set_anchor("N")  # pictures right under the header; tight bbox trims the rest
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def _figure(grid: tuple[int, int], out: tuple[int, int], header: list[str]):
    from matplotlib.figure import Figure

    header = [part for line in header for part in textwrap.wrap(line, 96)]
    width = max(6.0, (grid[1] + out[1] + 2) * CELL_INCHES)
    height = max(grid[0], out[0]) * CELL_INCHES + HEADER_LINE * len(header) + 0.9
    fig = Figure(figsize=(width, height), dpi=100)
    fig.suptitle("\n".join(header), fontsize=9, family="monospace", y=0.99, va="top")
    top = 1 - (HEADER_LINE * len(header) + 0.5) / height  # room for 2-line panel titles
    return fig, fig.subplots(
        1, 2, gridspec_kw={"width_ratios": [grid[1] + 0.5, out[1] + 0.5], "top": top}
    )


def _error_figure(state: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 1.4), dpi=100)
    fig.text(0.01, 0.8, state["call"], fontsize=9, family="monospace", va="top")
    why = "the explorer cannot draw it:" if state.get("limit") else "torch refuses it:"
    fig.text(0.01, 0.45, why, fontsize=9, va="top")
    fig.text(0.01, 0.25, state["error"], fontsize=8, family="monospace", va="top", color="#a31515")
    return fig


def conv_figure(state: dict, cell: Sequence[int] = (0, 0)):
    """The conv explorer's picture of ``state`` with output ``cell`` and its taps highlighted.

    Left: the padded input (padding shaded by mode, showing the values the mode copies in), the
    taps of ``cell`` dark, input cells fed through copied padding outlined in orange. Right: the
    output (values of the all-ones kernel). Returns a matplotlib Figure.
    """
    if not state["ok"]:
        return _error_figure(state)
    settings = state["settings"]
    left, _, top, _ = state["pads"]
    h, w = settings["height"], settings["width"]
    padded, source, output = state["padded"], state["source"], state["output"]
    rows, cols = len(padded), len(padded[0])
    out_rows, out_cols = len(output), len(output[0])
    if not (0 <= cell[0] < out_rows and 0 <= cell[1] < out_cols):
        cell = (0, 0)
    taps = set(layers.conv_taps(state, cell))
    feeding = layers.conv_feeding_cells(state, cell)
    header = [
        state["call"],
        *(f["text"] for f in state["formula"]),
        f"torch output shape {tuple(state['output_shape'])}",
    ]
    fig, (ax_in, ax_out) = _figure((rows, cols), (out_rows, out_cols), header)
    pad_face = PAD_COLORS.get(settings["padding_mode"], "#ffffff")
    for r in range(rows):
        for c in range(cols):
            inside = top <= r < top + h and left <= c < left + w
            face = INPUT if inside else pad_face
            text, color = _number(padded[r][c]), "#222222"
            if (r, c) in taps:
                face, color = TAP, "white"
            _cell(ax_in, r, c, face, text, color=color)
            if inside and (r - top, c - left) in feeding and (r, c) not in taps:
                _cell(ax_in, r, c, "none", edge=FEEDS, lw=2.2)
            elif (r, c) in taps and not inside and source[r][c] >= 0:
                _cell(ax_in, r, c, "none", edge=FEEDS, lw=1.2)
    _outline(ax_in, top, left, h, w)
    for r in range(out_rows):
        for c in range(out_cols):
            current = (r, c) == tuple(cell)
            face, color = (CURRENT, "white") if current else (OUTPUT, "#222222")
            _cell(ax_out, r, c, face, _number(output[r][c]), color=color)
    _finish(
        ax_in,
        rows,
        cols,
        f"padded input ({settings['padding_mode']} padding): dark = taps of output "
        f"{tuple(cell)},\norange = input cells feeding it through the padding",
    )
    _finish(ax_out, out_rows, out_cols, "output (all-ones kernel)")
    return fig


def _outline(ax, top: int, left: int, h: int, w: int) -> None:
    """The border of the real input inside the padded grid."""
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((left, -top - h), w, h, fill=False, edgecolor="#1c4587", lw=1.6))


def pool_figure(state: dict):
    """The pooling explorer's picture: every window outlined in its own colour, for max pooling
    the winning input cell filled with it; the output cells in their window's colours."""
    if not state["ok"]:
        return _error_figure(state)
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    settings = state["settings"]
    (ph, pw), h, w = settings["padding"], settings["height"], settings["width"]
    rows, cols = state["grid"]
    output = state["output"]
    out_rows, out_cols = len(output), len(output[0])
    header = [
        state["call"],
        *(f["text"] for f in state["formula"]),
        f"torch output shape {tuple(state['output_shape'])}",
    ]
    fig, (ax_in, ax_out) = _figure((rows, cols), (out_rows, out_cols), header)
    pad_text = "−∞" if settings["op"] == "max" else "0"
    for r in range(rows):
        for c in range(cols):
            inside = 0 <= r - ph < h and 0 <= c - pw < w
            if inside:
                _cell(ax_in, r, c, INPUT, _number(state["input"][r - ph][c - pw]))
            elif r < h + 2 * ph and c < w + 2 * pw:
                _cell(ax_in, r, c, MINUS_INF if pad_text == "−∞" else "#ffffff", pad_text)
            else:
                _cell(ax_in, r, c, OUTSIDE, edge="#bbbbbb")
    colors = colormaps["tab10"]
    (kh, kw), (dh, dw) = settings["kernel_size"], state["dilation"]
    sh, sw = state["stride"]
    for i in range(out_rows):
        for j in range(out_cols):
            color = colors((i * out_cols + j) % 10)
            if settings["op"] == "max":
                r, c = layers.pool_winner(state, (i, j))
                ax_in.add_patch(
                    Rectangle((c + pw, -(r + ph) - 1), 1, 1, color=color, alpha=0.45, lw=0)
                )
            inset = 0.07 * ((i + j) % 3)
            ax_in.add_patch(
                Rectangle(
                    (j * sw + inset, -(i * sh) - dh * (kh - 1) - 1 + inset),
                    dw * (kw - 1) + 1 - 2 * inset,
                    dh * (kh - 1) + 1 - 2 * inset,
                    fill=False,
                    edgecolor=color,
                    lw=1.8,
                )
            )
            ax_out.add_patch(Rectangle((j, -i - 1), 1, 1, color=color, alpha=0.45, lw=0))
            _cell(ax_out, i, j, "none", _number(output[i][j]))
    _dropped(ax_in, state)
    _outline(ax_in, ph, pw, h, w)
    what = "max of each window, winner filled" if settings["op"] == "max" else "windows"
    _finish(ax_in, rows, cols, f"input with padding ({pad_text}): {what}")
    _finish(ax_out, out_rows, out_cols, "output")
    return fig


def _dropped(ax, state: dict) -> None:
    """A red dashed outline where ceil_mode's extra window would start in the padding."""
    from matplotlib.patches import Rectangle

    dropped_row, dropped_col = (f["dropped"] for f in state["formula"])
    (kh, kw), (dh, dw) = state["settings"]["kernel_size"], state["dilation"]
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    rows, cols = state["grid"]
    style = dict(fill=False, edgecolor="#cc0000", lw=1.5, linestyle="--")
    if dropped_row is not None:
        ax.add_patch(Rectangle((0, -dropped_row - span_h), cols, span_h, **style))
    if dropped_col is not None:
        ax.add_patch(Rectangle((dropped_col, -rows), span_w, rows, **style))


def png(fig) -> bytes:
    """The figure as PNG bytes (Agg, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
