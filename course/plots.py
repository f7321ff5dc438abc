"""Figures for the convolution notebooks, in the style of Dumoulin & Visin's "conv_arithmetic".

* :func:`conv_arithmetic` draws one step of a 2-D convolution on a Matplotlib Axes: the input grid
  (blue), its padding (white, dashed), the kernel taps used for one output cell (dark), and the
  output grid (green) with that cell highlighted.
* :func:`conv_arithmetic_figure` puts several steps side by side; :func:`conv_arithmetic_animation`
  animates all of them (a ``matplotlib.animation.FuncAnimation``; show it with
  ``IPython.display.HTML(anim.to_jshtml())``).
* :func:`connectivity` draws which input channels reach which output channels (groups).

Sizes are ints or (height, width) pairs; padding is an int, a pair (ph, pw) applied to both sides,
or a 4-tuple (left, right, top, bottom) as in ``torch.nn.functional.pad`` (for 'same' padding with
an even kernel, where one side gets one more). These are drawings only: they compute no
convolution values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

INPUT_COLOR = "#6fa8dc"
PAD_COLOR = "#ffffff"
TAP_COLOR = "#1c4587"
OUTPUT_COLOR = "#93c47d"
CURRENT_COLOR = "#274e13"


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _pad4(padding: Any) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) from an int, a pair (ph, pw) or a 4-tuple."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(int(p) for p in padding)  # type: ignore[return-value]
    ph, pw = _pair(padding)
    return pw, pw, ph, ph


def _starts(size: int, span: int, step: int) -> list[int]:
    """Top-left offsets (in the padded grid) at which a footprint of ``span`` cells fits."""
    starts, start = [], 0
    while start + span <= size:
        starts.append(start)
        start += step
    return starts


def _geometry(in_size, kernel_size, stride, padding, dilation):
    h, w = _pair(in_size)
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    left, right, top, bottom = _pad4(padding)
    hp, wp = h + top + bottom, w + left + right
    rows = _starts(hp, dh * (kh - 1) + 1, sh)
    cols = _starts(wp, dw * (kw - 1) + 1, sw)
    return dict(
        h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw, dh=dh, dw=dw, left=left, top=top, hp=hp, wp=wp,
        rows=rows, cols=cols,
    )  # fmt: skip


def conv_arithmetic(
    in_size: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    position: tuple[int, int] = (0, 0),
    ax: Any = None,
    title: str | None = None,
):
    """Draw the step that computes output cell ``position`` = (row, col); return the Axes.

    in_size: H or (H, W) of the (unpadded) input; kernel_size, stride, dilation: int or (h, w);
    padding: int, (ph, pw) or (left, right, top, bottom). The output grid, (H_out, W_out) cells, is
    drawn to the right of the padded input.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    g = _geometry(in_size, kernel_size, stride, padding, dilation)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    ax.clear()
    row, col = position
    n_rows, n_cols = len(g["rows"]), len(g["cols"])
    taps = set()
    if 0 <= row < n_rows and 0 <= col < n_cols:
        r0, c0 = g["rows"][row], g["cols"][col]
        taps = {
            (r0 + i * g["dh"], c0 + j * g["dw"]) for i in range(g["kh"]) for j in range(g["kw"])
        }
    for r in range(g["hp"]):
        for c in range(g["wp"]):
            inside = g["top"] <= r < g["top"] + g["h"] and g["left"] <= c < g["left"] + g["w"]
            face = INPUT_COLOR if inside else PAD_COLOR
            if (r, c) in taps:
                face = TAP_COLOR
            ax.add_patch(
                Rectangle(
                    (c, -r - 1), 1, 1, facecolor=face, edgecolor="#444444",
                    linestyle="-" if inside else "--", linewidth=0.8,
                )
            )  # fmt: skip
    x0 = g["wp"] + 1.5
    y0 = -(g["hp"] - n_rows) / 2
    for r in range(n_rows):
        for c in range(n_cols):
            face = CURRENT_COLOR if (r, c) == (row, col) else OUTPUT_COLOR
            ax.add_patch(
                Rectangle((x0 + c, y0 - r - 1), 1, 1, facecolor=face, edgecolor="#444444", lw=0.8)
            )
    ax.annotate(
        "", xy=(x0 - 0.2, -g["hp"] / 2), xytext=(g["wp"] + 0.2, -g["hp"] / 2),
        arrowprops=dict(arrowstyle="->", color="#444444"),
    )  # fmt: skip
    ax.set_xlim(-0.5, x0 + n_cols + 0.5)
    ax.set_ylim(-g["hp"] - 0.5, 0.5 + max(0.0, -y0 - 0.0))
    ax.set_aspect("equal")
    ax.axis("off")
    if title is None:
        title = (
            f"in {g['h']}x{g['w']}, k {g['kh']}x{g['kw']}, s {g['sh']},{g['sw']}, "
            f"pad {_pad4(padding)}, d {g['dh']},{g['dw']} -> out {n_rows}x{n_cols}"
        )
    ax.set_title(title, fontsize=9)
    return ax


def conv_arithmetic_figure(
    in_size: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    positions: Sequence[tuple[int, int]] | None = None,
    title: str | None = None,
):
    """Several steps side by side (default: the first two and the last output cell).

    Same parameters as :func:`conv_arithmetic`. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    g = _geometry(in_size, kernel_size, stride, padding, dilation)
    n_rows, n_cols = len(g["rows"]), len(g["cols"])
    if positions is None:
        positions = [(0, 0), (0, min(1, n_cols - 1)), (n_rows - 1, n_cols - 1)]
    width = (g["wp"] + n_cols + 3) * 0.33
    fig, axes = plt.subplots(
        1, len(positions), figsize=(width * len(positions), g["hp"] * 0.33 + 0.8)
    )
    axes = np.atleast_1d(axes)
    for ax, pos in zip(axes, positions, strict=True):
        conv_arithmetic(
            in_size, kernel_size, stride=stride, padding=padding, dilation=dilation,
            position=pos, ax=ax, title=f"output cell {pos}",
        )  # fmt: skip
    fig.suptitle(
        title
        or (
            f"input {g['h']}x{g['w']}, kernel {g['kh']}x{g['kw']}, stride {stride}, "
            f"padding {padding}, dilation {dilation} -> output {n_rows}x{n_cols}"
        ),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def conv_arithmetic_animation(
    in_size: Any,
    kernel_size: Any,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    interval: int = 500,
):
    """A FuncAnimation stepping through every output cell, row by row.

    Same parameters as :func:`conv_arithmetic`. Display in a notebook with
    ``IPython.display.HTML(anim.to_jshtml())`` (then ``plt.close(anim._fig)``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    g = _geometry(in_size, kernel_size, stride, padding, dilation)
    positions = [(r, c) for r in range(len(g["rows"])) for c in range(len(g["cols"]))]
    fig, ax = plt.subplots(figsize=((g["wp"] + len(g["cols"]) + 3) * 0.4, g["hp"] * 0.4 + 0.8))

    def draw(frame: int):
        conv_arithmetic(
            in_size, kernel_size, stride=stride, padding=padding, dilation=dilation,
            position=positions[frame], ax=ax,
        )  # fmt: skip
        return []

    return FuncAnimation(fig, draw, frames=len(positions), interval=interval, blit=False)


def connectivity(matrix: Any, *, ax: Any = None, title: str | None = None):
    """Draw a bipartite graph: input channels (left) to output channels (right).

    matrix: bool array (C_out, C_in); entry [o, c] True when output channel o sees input channel c.
    Lines are coloured by connected block (the groups). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=bool)
    c_out, c_in = matrix.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 0.35 * max(c_in, c_out) + 1))
    patterns: dict[bytes, int] = {}
    colors = plt.get_cmap("tab10")
    y_in = np.linspace(0, 1, c_in) if c_in > 1 else np.array([0.5])
    y_out = np.linspace(0, 1, c_out) if c_out > 1 else np.array([0.5])
    for o in range(c_out):
        color = colors(patterns.setdefault(matrix[o].tobytes(), len(patterns)) % 10)
        for c in np.flatnonzero(matrix[o]):
            ax.plot([0, 1], [1 - y_in[c], 1 - y_out[o]], color=color, lw=1.2, alpha=0.8)
    ax.scatter(np.zeros(c_in), 1 - y_in, s=120, color=INPUT_COLOR, edgecolor="k", zorder=3)
    ax.scatter(np.ones(c_out), 1 - y_out, s=120, color=OUTPUT_COLOR, edgecolor="k", zorder=3)
    for c in range(c_in):
        ax.text(-0.14, 1 - y_in[c], f"in {c}", ha="right", va="center", fontsize=8)
    for o in range(c_out):
        ax.text(1.14, 1 - y_out[o], f"out {o}", ha="left", va="center", fontsize=8)
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylim(-0.1, 1.1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def pooling_windows(
    x: Any,
    output: Any,
    indices: Any,
    kernel_size: Any,
    *,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    panel_size: float = 1.9,
):
    """Max pooling one window at a time: one small panel per output cell, then the output.

    x: (H, W) input; output, indices: (H_out, W_out), what a ``maxpool2d(...,
    return_indices=True)`` returned for it (indices are flat positions r * W + q in x).
    kernel_size, stride (None = kernel_size), padding, dilation: int or (h, w).
    Panel (i, j) shows the padded input (padding grey, it holds -inf), the taps of window (i, j)
    in blue inside its outline, and the cell ``indices[i, j]`` points to in orange: the maximum
    the window picked. The
    last column shows the output with each value and its index. Draws only: computes nothing.
    Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    x, output, indices = np.asarray(x), np.asarray(output), np.asarray(indices)
    (h, w), (h_out, w_out) = x.shape, output.shape
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    rows = max(h + 2 * ph, (h_out - 1) * sh + dh * (kh - 1) + 1)
    cols = max(w + 2 * pw, (w_out - 1) * sw + dw * (kw - 1) + 1)
    fig, axes = plt.subplots(
        h_out,
        w_out + 1,
        figsize=(panel_size * (w_out + 1), panel_size * h_out * rows / cols + 0.6),
        squeeze=False,
    )
    for (i, j), flat in np.ndenumerate(indices):
        ax = axes[i, j]
        taps = {
            (i * sh + a * dh, j * sw + b * dw) for a in range(kh) for b in range(kw)
        }  # in padded coordinates
        winner = divmod(int(flat), w)
        for r in range(rows):
            for q in range(cols):
                inside = 0 <= r - ph < h and 0 <= q - pw < w
                if inside and (r - ph, q - pw) == winner:
                    face = "#f6b26b"
                elif (r, q) in taps:
                    face = "#cfe2f3" if inside else "0.7"
                else:
                    face = "white" if inside else "0.88"
                ax.add_patch(Rectangle((q, -r - 1), 1, 1, facecolor=face, edgecolor="0.6", lw=0.4))
                if inside:
                    value = x[r - ph, q - pw]
                    ax.text(q + 0.5, -r - 0.5, f"{value:g}", ha="center", va="center", fontsize=6)
        top, left = i * sh, j * sw
        ax.add_patch(
            Rectangle(
                (left, -top - dh * (kh - 1) - 1), dw * (kw - 1) + 1, dh * (kh - 1) + 1,
                fill=False, edgecolor=TAP_COLOR, lw=1.8,
            )
        )  # fmt: skip
        ax.set_title(f"out[{i}, {j}] = {output[i, j]:g}", fontsize=8)
        ax.set_xlim(-0.2, cols + 0.2)
        ax.set_ylim(-rows - 0.2, 0.2)
        ax.set_aspect("equal")
        ax.axis("off")
    for i in range(h_out):
        axes[i, w_out].axis("off")
    result = fig.add_subplot(1, w_out + 1, w_out + 1)
    for (i, j), value in np.ndenumerate(output):
        result.add_patch(
            Rectangle((j, -i - 1), 1, 1, facecolor=OUTPUT_COLOR, edgecolor="0.3", lw=0.8)
        )
        label = f"{value:g}\n@{int(indices[i, j])}"
        result.text(j + 0.5, -i - 0.5, label, ha="center", va="center", fontsize=8)
    result.set_xlim(-0.2, w_out + 0.2)
    result.set_ylim(-h_out - 0.2, 0.2)
    result.set_aspect("equal")
    result.axis("off")
    result.set_title("output (value @ index)", fontsize=8)
    fig.suptitle(
        f"MaxPool2d, {h}x{w} input, kernel {kh}x{kw}, stride ({sh}, {sw}), padding ({ph}, {pw})\n"
        "one window per panel (blue: its taps), orange: the maximum it picks, grey: -inf padding",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
