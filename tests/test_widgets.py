"""The Python side of the explorers (course.widgets), without a browser.

What the explorers show must be torch's answer: shapes from a real layer, the input cells marked
for an output cell exactly those torch's gradient says feed it, torch's own error text where it
refuses. Then the static fallback: a PNG wherever no widget front end runs (nbclient, nbconvert
HTML, the grader's sandbox), without waiting for one.
"""

from __future__ import annotations

import base64
import json
import random
import time
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

from course.widgets import ConvExplorer, PoolExplorer, layers

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The explorer cells of the notebooks: (assignment, notebook, cell id).
EXPLORER_CELLS = [
    ("04_stride_padding", "stride_padding", "conv-explorer"),
    ("07_pooling", "pooling", "p07-21-explorer"),
]


# ------------------------------------------------------------------ torch, independently


def torch_conv(settings: dict) -> torch.nn.Conv2d:
    padding = settings["padding"]
    layer = torch.nn.Conv2d(
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
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return layer


def gradient_support(layer, height: int, width: int, cell: tuple[int, int], x=None) -> set:
    """Input cells (row, col) with a nonzero gradient of output ``cell``: the cells feeding it.

    x: the (1, 1, H, W) input (max pooling's winners depend on it); by default a positive
    random one: with all-ones weights contributions only add up (no cancellation).
    """
    if x is None:
        x = torch.rand(1, 1, height, width, dtype=torch.float64) + 0.5
    x = x.clone().requires_grad_(True)
    out = layer(x)
    if isinstance(out, tuple):
        out = out[0]
    out[0, 0, cell[0], cell[1]].backward()
    return {tuple(int(v) for v in rc) for rc in torch.nonzero(x.grad[0, 0])}


def torch_error(make) -> str:
    try:
        make()
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
    raise AssertionError("torch accepted the setting")


def random_conv_settings(rng: random.Random) -> dict:
    padding = rng.choice(
        ["same", "valid", rng.randint(0, 3), (rng.randint(0, 3), rng.randint(0, 2))]
    )
    return layers.conv_settings(
        height=rng.randint(2, 7),
        width=rng.randint(2, 7),
        kernel_size=(rng.randint(1, 4), rng.randint(1, 4)),
        stride=1 if padding == "same" else (rng.randint(1, 3), rng.randint(1, 3)),
        padding=padding,
        dilation=(rng.randint(1, 3), rng.randint(1, 2)),
        padding_mode=rng.choice(layers.PADDING_MODES),
    )


# ------------------------------------------------------------------ conv


CONV_CASES = {
    "defaults": dict(),
    "same with an even kernel": dict(height=6, width=7, kernel_size=2, padding="same"),
    "same, dilation 2, circular": dict(
        kernel_size=2, padding="same", dilation=2, padding_mode="circular"
    ),
    "valid": dict(height=4, width=6, kernel_size=(3, 2), padding="valid"),
    "pair padding, reflect, stride 2": dict(
        height=5, width=6, padding=(1, 2), stride=2, padding_mode="reflect"
    ),
    "replicate beyond the input size": dict(
        height=3, width=3, kernel_size=1, padding=4, padding_mode="replicate"
    ),  # fmt: skip
}


@pytest.mark.parametrize("kwargs", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv_shape_and_formula_agree_with_torch(kwargs):
    explorer = ConvExplorer(**kwargs)
    settings = explorer.settings
    layer = torch_conv(settings)
    expected = tuple(layer(torch.zeros(1, 1, settings["height"], settings["width"],
                                       dtype=torch.float64)).shape)  # fmt: skip
    assert explorer.output_shape == expected, explorer.describe()
    assert [f["value"] for f in explorer.state["formula"]] == list(expected[2:])
    assert explorer.state["pads"] == list(layer._reversed_padding_repeated_twice)
    assert f"output shape {expected}" in explorer.describe()


def test_conv_same_with_even_kernel_pads_bottom_right_and_says_so():
    state = ConvExplorer(height=4, width=4, kernel_size=2, padding="same").state
    assert state["pads"] == [0, 1, 0, 1]
    assert state["formula"][0]["text"] == "H_out = ⌊(4 + 0 + 1 − 1·(2 − 1) − 1) / 1⌋ + 1 = 4"


def test_conv_padding_holds_what_each_mode_copies_in():
    # the row of seed 003's table, [1, 2, 3, 4] padded by 2
    for mode, row in {
        "zeros": [0, 0, 1, 2, 3, 4, 0, 0],
        "reflect": [3, 2, 1, 2, 3, 4, 3, 2],
        "replicate": [1, 1, 1, 2, 3, 4, 4, 4],
        "circular": [3, 4, 1, 2, 3, 4, 1, 2],
    }.items():
        state = layers.conv_state(
            layers.conv_settings(1, 4, (1, 1), padding=(0, 2), padding_mode=mode)
        )
        assert state["padded"] == [[float(v) for v in row]], mode
        # the source map names the input cell each padded cell copies (-1: a zero)
        assert [v + 1 if v >= 0 else 0 for v in state["source"][0]] == row, mode


def test_conv_marked_cells_are_exactly_torchs_gradient_on_random_settings():
    rng = random.Random(14)
    checked = 0
    for case in range(60):
        settings = random_conv_settings(rng)
        state = layers.conv_state(settings)
        if not state["ok"]:
            continue
        layer = torch_conv(settings)
        _, _, h_out, w_out = state["output_shape"]
        for cell in {(0, 0), (h_out - 1, w_out - 1), (h_out // 2, w_out // 2)}:
            expected = gradient_support(layer, settings["height"], settings["width"], cell)
            got = layers.conv_feeding_cells(state, cell)
            assert got == expected, f"case {case}: {settings}, output cell {cell}"
            checked += 1
    print(f"{checked} output cells checked against torch's gradient")
    assert checked > 60


def test_conv_explorer_marks_wrapped_cells_for_circular_padding():
    explorer = ConvExplorer(kernel_size=2, padding="same", dilation=2, padding_mode="circular")
    # output (0, 0) reads padded rows/cols 0 and 2: the wrapped-in last row/column and (1, 1)
    assert explorer.feeding_cells((0, 0)) == {(1, 1), (1, 4), (4, 1), (4, 4)}
    assert explorer.feeding_cells((0, 0)) == gradient_support(
        torch_conv(explorer.settings), 5, 5, (0, 0)
    )


REFUSED_CONV = {
    "same with stride 2": (dict(padding="same", stride=2), dict(padding="same", stride=2)),
    "dilation 0 (seed 003)": (dict(dilation=0), dict(dilation=0)),
    "stride 0": (dict(stride=0), dict(stride=0)),
    "kernel larger than the input": (dict(kernel_size=7), dict(kernel_size=7)),
    "reflect padding = input size": (
        dict(padding=5, padding_mode="reflect"),
        dict(padding=5, padding_mode="reflect"),
    ),
    "circular padding wraps twice": (
        dict(height=2, width=2, kernel_size=1, padding=3, padding_mode="circular"),
        dict(padding=3, padding_mode="circular", kernel_size=1),
    ),
    "unknown padding string": (dict(padding="full"), dict(padding="full")),
}


@pytest.mark.parametrize("explorer_kwargs, torch_kwargs", REFUSED_CONV.values(), ids=REFUSED_CONV)
def test_conv_refused_setting_shows_torchs_message(explorer_kwargs, torch_kwargs):
    explorer = ConvExplorer(**explorer_kwargs)
    h, w = explorer.height, explorer.width
    kwargs = {"kernel_size": 3, **torch_kwargs}
    expected = torch_error(lambda: torch.nn.Conv2d(1, 1, **kwargs)(torch.zeros(1, 1, h, w)))
    assert explorer.output_shape is None and not explorer.state["limit"]
    assert explorer.error == expected
    assert expected in explorer.describe()


def test_conv_settings_changed_from_python_recompute_the_state():
    explorer = ConvExplorer()
    explorer.kernel_size = 2
    explorer.padding = "same"
    assert explorer.kernel_size == [2, 2] and explorer.output_shape == (1, 1, 5, 5)
    explorer.stride = (2, 1)
    assert "strided" in explorer.error
    with pytest.raises(Exception, match="kernel_size"):
        explorer.kernel_size = "big"
    with pytest.raises(ValueError, match="kernel_size must be an int or a pair"):
        ConvExplorer(kernel_size=(1, 2, 3))


def test_explorer_refuses_inputs_too_large_to_draw_before_torch_runs():
    explorer = ConvExplorer(height=40, width=5)
    assert explorer.output_shape is None and "1x1 to 16x16" in explorer.error
    # a typo in a number field must not make torch allocate a 10^9-wide padding
    explorer = ConvExplorer(padding=10**9)
    assert explorer.output_shape is None and "padding values up to 32" in explorer.error
    explorer = PoolExplorer(kernel_size=(2, 10**6))
    assert explorer.output_shape is None and "kernel_size values up to 32" in explorer.error
    # torch accepts it, but the padded input is too large to draw
    explorer = ConvExplorer(kernel_size=1, padding=(0, 12))
    assert explorer.output_shape is None and "torch accepts this" in explorer.error
    assert explorer.state["limit"] and explorer.state["output_shape"] == [1, 1, 5, 29]


# ------------------------------------------------------------------ pooling


def torch_pool(settings: dict):
    common = dict(
        kernel_size=tuple(settings["kernel_size"]),
        stride=None if settings["stride"] is None else tuple(settings["stride"]),
        padding=tuple(settings["padding"]),
        ceil_mode=settings["ceil_mode"],
    )
    if settings["op"] == "max":
        return torch.nn.MaxPool2d(dilation=tuple(settings["dilation"]), **common)
    return torch.nn.AvgPool2d(count_include_pad=settings["count_include_pad"], **common)


POOL_CASES = {
    "ceil_mode drops a window starting in the padding": dict(
        height=5, width=6, kernel_size=2, stride=2, padding=1, ceil_mode=True
    ),
    "ceil_mode keeps a window hanging over the edge": dict(
        height=5, width=5, kernel_size=2, stride=2, ceil_mode=True
    ),
    "default stride = kernel": dict(height=7, width=6, kernel_size=3),
    "dilation": dict(height=7, width=7, kernel_size=2, stride=1, dilation=(2, 3)),
    "avg, count_include_pad": dict(op="avg", height=5, width=5, kernel_size=3, stride=2, padding=1),
    "avg, ceil_mode, padding excluded": dict(
        op="avg",
        height=5,
        width=6,
        kernel_size=2,
        stride=2,
        padding=1,
        ceil_mode=True,
        count_include_pad=False,
    ),  # fmt: skip
}


@pytest.mark.parametrize("kwargs", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_pool_shape_winners_and_windows_agree_with_torch(kwargs):
    explorer = PoolExplorer(**kwargs)
    settings = explorer.settings
    layer = torch_pool(settings)
    h, w = settings["height"], settings["width"]
    x = torch.tensor(explorer.state["input"], dtype=torch.float64)[None, None]
    expected = layer(x)
    assert explorer.output_shape == tuple(expected.shape), explorer.describe()
    assert [f["value"] for f in explorer.state["formula"]] == list(expected.shape[2:])
    torch.testing.assert_close(
        torch.tensor(explorer.state["output"], dtype=torch.float64)[None, None], expected
    )
    for i in range(expected.shape[2]):
        for j in range(expected.shape[3]):
            support = gradient_support(layer, h, w, (i, j), x)
            if settings["op"] == "max":  # the gradient flows to the winner alone
                assert {explorer.winner((i, j))} == support, (kwargs, (i, j))
                assert explorer.winner((i, j)) in explorer.window_inputs((i, j))
            else:
                assert explorer.window_inputs((i, j)) == support, (kwargs, (i, j))


def test_pool_ceil_mode_names_the_dropped_window():
    state = PoolExplorer(
        height=5, width=6, kernel_size=2, stride=2, padding=1, ceil_mode=True
    ).state
    rows, cols = state["formula"]
    assert rows["value"] == 3 and rows["dropped"] == 6  # 4th window would start at padded row 6
    assert "torch drops it" in rows["text"]
    assert cols["value"] == 4 and cols["dropped"] is None
    assert state["grid"] == [8, 8]  # the drawing reaches the dropped window


def test_pool_avg_divisor_is_torchs():
    state = PoolExplorer(op="avg", height=5, width=6, kernel_size=2, stride=2, padding=1,
                         ceil_mode=True).state  # fmt: skip
    for sums, divisors, outputs in zip(state["sums"], state["divisor"], state["output"],
                                       strict=True):  # fmt: skip
        for s, d, o in zip(sums, divisors, outputs, strict=True):
            assert s / d == pytest.approx(o)
    assert state["divisor"][0][0] == 4  # count_include_pad counts the padding


def test_pool_negative_input_never_lets_the_padding_win():
    explorer = PoolExplorer(height=4, width=4, kernel_size=2, stride=2, padding=1, negative=True)
    for i in range(3):
        for j in range(3):
            r, c = explorer.winner((i, j))
            assert 0 <= r < 4 and 0 <= c < 4
    assert max(max(row) for row in explorer.state["output"]) < 0


REFUSED_POOL = {
    "padding more than half the kernel": dict(kernel_size=3, padding=2),
    "stride 0": dict(kernel_size=2, stride=0),
    "dilation 0": dict(kernel_size=2, dilation=0),
    "output smaller than 1": dict(kernel_size=7),
    "avg: padding more than half": dict(op="avg", kernel_size=2, padding=2),
}


@pytest.mark.parametrize("kwargs", REFUSED_POOL.values(), ids=REFUSED_POOL)
def test_pool_refused_setting_shows_torchs_message(kwargs):
    explorer = PoolExplorer(**kwargs)
    layer = torch_pool(explorer.settings)
    expected = torch_error(lambda: layer(torch.zeros(1, 1, 5, 5, dtype=torch.float64)))
    assert explorer.output_shape is None and not explorer.state["limit"]
    assert explorer.error == expected


# ------------------------------------------------------------------ without a front end


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize(
    "explorer",
    [
        lambda: ConvExplorer(kernel_size=2, padding="same", dilation=2, padding_mode="circular"),
        lambda: ConvExplorer(stride=2, padding="same"),  # refused: a picture of the message
        lambda: PoolExplorer(height=5, width=6, kernel_size=2, stride=2, padding=1, ceil_mode=True),
        lambda: PoolExplorer(op="avg", kernel_size=3, stride=1, padding=1),
        lambda: PoolExplorer(kernel_size=3, padding=2),
    ],
    ids=["conv", "conv-refused", "max-ceil", "avg", "pool-refused"],
)
def test_mime_bundle_carries_the_widget_and_a_static_png(explorer):
    widget = explorer()
    data, _ = widget._repr_mimebundle_()
    assert data[WIDGET_MIME]["model_id"] == widget.model_id
    width, height = _png_size(base64.b64decode(data["image/png"]))
    assert width > 300 and height > 80
    assert data["text/plain"] == widget.describe()


def _explorer_cells() -> list[str]:
    sources = []
    for assignment, name, cell_id in EXPLORER_CELLS:
        nb = nbformat.read(ROOT / "source" / assignment / f"{name}.ipynb", as_version=4)
        cell = next(c for c in nb.cells if c.get("id") == cell_id)
        assert "nbgrader" not in cell.metadata, f"{cell_id} must not be graded"
        sources.append(cell.source)
    return sources


def test_notebooks_show_each_explorer_after_its_static_picture():
    # 04: after the conv_arithmetic animation that ends "Pictures first"; 07: after show_pooling
    for (assignment, name, cell_id), figure_id in zip(
        EXPLORER_CELLS, ("1360a6ac", "p07-21"), strict=True
    ):
        for folder in ("source", "release"):
            nb = nbformat.read(ROOT / folder / assignment / f"{name}.ipynb", as_version=4)
            ids = [c.get("id") for c in nb.cells]
            assert ids.index(cell_id) == ids.index(figure_id) + 2, f"{folder}/{assignment}"
            assert nb.cells[ids.index(cell_id) - 1].cell_type == "markdown"


def test_explorer_cells_run_headless_in_nbclient_and_export_their_picture(tmp_path):
    from nbconvert import HTMLExporter

    from autograder.notebooks import execute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in _explorer_cells()])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    started = time.monotonic()
    executed = execute(nb, tmp_path, timeout=120)
    print(f"executed both explorer cells in {time.monotonic() - started:.1f} s")
    for cell in executed.cells:
        kinds = [o.output_type for o in cell.outputs]
        assert kinds == ["execute_result"], cell.outputs
        data = cell.outputs[0].data
        assert WIDGET_MIME in data and "image/png" in data
    # nbconvert shows the PNG where no widget state was saved (a notebook saved by JupyterLab,
    # nbgrader's feedback); nbclient saves it, and then nbconvert embeds the live widget.
    assert {m["model_name"] for m in executed.metadata.widgets[WIDGET_STATE]["state"].values()} >= {
        "AnyModel"
    }
    del executed.metadata["widgets"]
    html, _ = HTMLExporter().from_notebook_node(executed)
    assert html.count('src="data:image/png;base64,') == 2


def test_explorer_cells_run_in_the_grader_sandbox_and_keep_only_the_png(tmp_path):
    from autograder.execute import Sandbox
    from autograder.sandbox import Limits

    limits = Limits(cell_timeout=60, notebook_timeout=120, memory=2 * 2**30)
    with Sandbox(tmp_path, limits) as sandbox:
        for source in _explorer_cells():
            run = sandbox.run_cell(source)
            assert run.status == "ok", run.describe()
            shown = [
                (o["output_type"], sorted(o.get("data", {})), o.get("text", "")[:500])
                for o in run.outputs
            ]
            assert len(run.outputs) == 1, shown
            (output,) = run.outputs
            assert set(output["data"]) == {"text/plain", "image/png"}, output["data"].keys()
            _png_size(base64.b64decode(output["data"]["image/png"]))


# ------------------------------------------------------------------ the front end ships


def test_front_end_ships_in_the_package_without_network():
    import tomllib
    from importlib.resources import files

    widgets = files("course.widgets")
    js = (widgets / "explorer.js").read_text()
    assert "export default" in js and (widgets / "explorer.css").is_file()
    # no CDN, no remote import: the module loads offline
    assert "http://" not in js and "https://" not in js and "import " not in js.split("\n", 1)[0]
    assert not [line for line in js.splitlines() if line.lstrip().startswith("import ")]
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {"widgets/*.js", "widgets/*.css"} <= set(package_data["package-data"]["course"])


def test_anywidget_front_end_extension_is_installed_for_jupyterlab():
    import sys

    import anywidget

    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "anywidget"
    package = json.loads((extension / "package.json").read_text())
    assert package["version"] == anywidget.__version__
    assert (extension / package["jupyterlab"]["_build"]["load"]).is_file()


def test_padding_regions_of_the_conv_state_use_torchs_pad():
    state = layers.conv_state(layers.conv_settings(3, 4, 3, padding=(1, 2), padding_mode="reflect"))
    x = torch.arange(1.0, 13.0, dtype=torch.float64).reshape(1, 1, 3, 4)
    expected = F.pad(x, (2, 2, 1, 1), mode="reflect")[0, 0].tolist()
    assert state["padded"] == expected
