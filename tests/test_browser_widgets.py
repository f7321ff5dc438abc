"""The explorers in a real JupyterLab (Debian's headless Chromium, via Playwright).

One JupyterLab (tests/lab_server.py, the `make lab` configuration) serves copies of the released
04 and 07 notebooks. Each test opens its notebook, runs the explorer cell as a student would
(Shift+Enter), then drives the explorer through its own controls and reads the page: the shape it
shows must be what torch computes here, in the test; the input cells it marks for an output cell
must be exactly those with a nonzero gradient of that output cell in torch; a setting torch
refuses must show torch's own error text.

Screenshots land in artifacts/browser/. With UPDATE_SCREENSHOT=1 the tests also rewrite
tests/screenshots/conv-explorer.png and pool-explorer.png, the pictures the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch
from lab_server import CHROMIUM, CHROMIUM_ARGS, open_notebook, running_lab
from student_notebooks import release_copy

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
SCREENSHOTS = ROOT / "tests" / "screenshots"
CONV = ("04_stride_padding", "stride_padding", "conv-explorer")
POOL = ("07_pooling", "pooling", "p07-21-explorer")
SYNC_TIMEOUT_MS = 60_000  # a round trip to the kernel, on a loaded 2-core machine

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} missing: install Debian's chromium (.ci/run does)",
    ),
    # the browser tests share one xdist worker (--dist loadgroup); one JupyterLab for this module
    pytest.mark.xdist_group("browser"),
]


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    """The release notebooks of 04 and 07, as a student gets them."""
    out = tmp_path_factory.mktemp("widgets")
    for assignment, _, _ in (CONV, POOL):
        shutil.copytree(release_copy(assignment, tmp_path_factory.mktemp("rel")), out / assignment)
    return out


@pytest.fixture(scope="module")
def lab(notebooks, tmp_path_factory):
    with running_lab(notebooks, tmp_path_factory.mktemp("lab_state")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda error: errors.append(str(error)))
    pg.errors = errors
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"))
    context.close()


# ------------------------------------------------------------------ driving the explorer


def render_explorer(page, lab, notebooks: Path, which):
    """Open the notebook, run its explorer cell with Shift+Enter; the explorer's root element."""
    assignment, name, cell_id = which
    nb = nbformat.read(notebooks / assignment / f"{name}.ipynb", as_version=4)
    index = [c.get("id") for c in nb.cells].index(cell_id)
    open_notebook(page, lab, f"{assignment}/{name}.ipynb")
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    root = cell.locator(".cx-root")
    root.wait_for(timeout=120_000)  # the kernel imports torch first
    wait_synced(page, root)
    return root


def wait_synced(page, root) -> None:
    """Until the drawing shows the kernel's answer for the settings the controls hold."""
    page.wait_for_function(
        "el => el.dataset.synced === 'true'",
        arg=root.element_handle(),
        timeout=SYNC_TIMEOUT_MS,
        polling=100,
    )


def set_controls(page, root, **values) -> None:
    """Set controls by their data-control name, as a student would, then wait for the kernel."""
    for name, value in values.items():
        control = root.locator(f'[data-control="{name}"]')
        tag = control.evaluate("el => el.tagName + ':' + el.type")
        if tag.startswith("SELECT"):
            control.select_option(str(value))
        elif tag.endswith(":checkbox"):
            control.set_checked(bool(value))
        else:
            control.fill(str(value))
    wait_synced(page, root)


def shown_shape(root) -> tuple[int, ...]:
    text = root.locator(".cx-shape-value").inner_text()
    return tuple(int(n) for n in re.findall(r"\d+", text))


def point_at(root, cell: tuple[int, int]) -> None:
    root.locator(f'.cx-out[data-i="{cell[0]}"][data-j="{cell[1]}"]').hover()


def marked(root, cls: str) -> set[tuple[int, int]]:
    """Input cells (row, col) of the drawing that carry class ``cls``."""
    pairs = root.locator(f".cx-input .{cls}[data-r]").evaluate_all(
        "nodes => nodes.map(n => [Number(n.dataset.r), Number(n.dataset.c)])"
    )
    return {tuple(p) for p in pairs}


def drawn_input(root, height: int, width: int) -> torch.Tensor:
    """The concrete input the explorer shows, read from the page: (1, 1, H, W)."""
    cells = root.locator(".cx-input .cx-inside").evaluate_all(
        "nodes => nodes.map(n => [Number(n.dataset.r), Number(n.dataset.c), Number(n.innerText)])"
    )
    x = torch.full((height, width), float("nan"), dtype=torch.float64)
    for r, c, value in cells:
        x[r, c] = value
    assert not torch.isnan(x).any(), "the page does not show every input cell"
    return x[None, None]


# ------------------------------------------------------------------ torch, in the test


def conv_layer(kernel_size, stride, padding, dilation, padding_mode) -> torch.nn.Conv2d:
    layer = torch.nn.Conv2d(
        1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation,
        padding_mode=padding_mode, bias=False, dtype=torch.float64,
    )  # fmt: skip
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return layer


def feeding(layer, x: torch.Tensor, cell: tuple[int, int]) -> set[tuple[int, int]]:
    """Input cells with a nonzero gradient of output ``cell`` (x positive, weights positive)."""
    x = x.clone().requires_grad_(True)
    out = layer(x)
    out[0, 0, cell[0], cell[1]].backward()
    return {(int(r), int(c)) for r, c in torch.nonzero(x.grad[0, 0])}


def torch_error(make) -> str:
    try:
        make()
    except Exception as error:  # noqa: BLE001
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
    raise AssertionError("torch accepted the setting")


def shot(root, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        root.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        print(f"wrote {SCREENSHOTS / name}.png")


# ------------------------------------------------------------------ the cases


def test_conv_explorer_matches_torch_through_its_controls(page, lab, notebooks):
    root = render_explorer(page, lab, notebooks, CONV)
    assert shown_shape(root) == (1, 1, 3, 3)  # the cell's call: 5x5, kernel 3, stride 2, pad 1
    positive = torch.rand(1, 1, 6, 7, dtype=torch.float64) + 0.5

    # 'same' with an even kernel: the extra row/column of padding goes bottom/right
    set_controls(page, root, height=6, width=7, kernel_size_h=2, kernel_size_w=2,
                 stride_h=1, stride_w=1, padding_kind="same")  # fmt: skip
    layer = conv_layer(2, 1, "same", 1, "zeros")
    assert shown_shape(root) == tuple(layer(positive).shape) == (1, 1, 6, 7)
    assert "(0, 1, 0, 1)" in root.locator(".cx-shape").inner_text()
    point_at(root, (5, 6))
    assert marked(root, "cx-feeds") == feeding(layer, positive, (5, 6)) == {(5, 6)}

    # dilation 2: the taps are two apart, a hole between them
    set_controls(page, root, dilation_h=2, dilation_w=2)
    layer = conv_layer(2, 1, "same", 2, "zeros")
    assert shown_shape(root) == tuple(layer(positive).shape)
    point_at(root, (2, 3))
    assert marked(root, "cx-feeds") == feeding(layer, positive, (2, 3))
    assert root.locator(".cx-input .cx-hole").count() == 5  # 3x3 span minus 4 taps

    # circular padding: the corner output reads the far edges
    set_controls(page, root, padding_mode="circular")
    layer = conv_layer(2, 1, "same", 2, "circular")
    assert shown_shape(root) == tuple(layer(positive).shape)
    point_at(root, (0, 0))
    expected = feeding(layer, positive, (0, 0))
    assert marked(root, "cx-feeds") == expected
    assert (5, 6) in expected and (1, 1) in expected  # (5, 6) wrapped in from the far corner
    shot(root, "conv-explorer")

    # a setting torch refuses: 'same' with a stride
    set_controls(page, root, stride_h=2)
    message = torch_error(lambda: conv_layer(2, (2, 1), "same", 2, "circular"))
    assert root.locator(".cx-error").inner_text().strip() == message
    assert "not supported for strided convolutions" in message
    assert root.locator(".cx-input").count() == 0, "a picture is drawn for a refused setting"

    # a pair of paddings with reflect, and another refusal: reflect padding >= the input size
    set_controls(page, root, stride_h=1, padding_kind="numbers", padding_h=1, padding_w=2,
                 dilation_h=1, dilation_w=1, kernel_size_h=3, padding_mode="reflect")  # fmt: skip
    layer = conv_layer((3, 2), 1, (1, 2), 1, "reflect")
    assert shown_shape(root) == tuple(layer(positive).shape)
    point_at(root, (0, 0))
    assert marked(root, "cx-feeds") == feeding(layer, positive, (0, 0))
    set_controls(page, root, padding_h=6)
    message = torch_error(lambda: conv_layer((3, 2), 1, (6, 2), 1, "reflect")(positive))
    assert root.locator(".cx-error").inner_text().strip() == message
    assert not page.errors, f"JavaScript errors: {page.errors}"


def test_pool_explorer_matches_torch_through_its_controls(page, lab, notebooks):
    root = render_explorer(page, lab, notebooks, POOL)

    # ceil_mode: 8 rows, kernel 3, stride 2, padding 1: a 5th row of windows, past the padding
    set_controls(page, root, height=8, width=5, kernel_size_h=3, kernel_size_w=3,
                 stride_default=False, stride_h=2, stride_w=2, padding_h=1, padding_w=1,
                 ceil_mode=True)  # fmt: skip
    x = drawn_input(root, 8, 5)
    layer = torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    assert shown_shape(root) == tuple(layer(x).shape) == (1, 1, 5, 3)
    assert root.locator(".cx-input .cx-pad").first.inner_text() == "−∞"
    _, _, h_out, w_out = layer(x).shape
    for cell in [(h_out - 1, w_out - 1), (0, 1)]:
        point_at(root, cell)
        assert marked(root, "cx-winner") == feeding(layer, x, cell), cell

    # the window ceil_mode would add in the padding is dropped: 5 rows, kernel 2, stride 2, pad 1
    set_controls(page, root, height=5, width=6, kernel_size_h=2, kernel_size_w=2, padding_h=1,
                 padding_w=1)  # fmt: skip
    x = drawn_input(root, 5, 6)
    layer = torch.nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True)
    assert shown_shape(root) == tuple(layer(x).shape) == (1, 1, 3, 4)
    assert "torch drops it" in root.locator(".cx-formula").inner_text()
    assert root.locator(".cx-input .cx-dropped").count() > 0
    point_at(root, (2, 3))
    assert marked(root, "cx-winner") == feeding(layer, x, (2, 3))
    shot(root, "pool-explorer")

    # average pooling: every input cell of the window feeds the output
    set_controls(page, root, op="avg")
    layer = torch.nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True)
    assert shown_shape(root) == tuple(layer(x).shape)
    point_at(root, (2, 3))
    assert marked(root, "cx-feeds") == feeding(layer, x, (2, 3))

    # a setting torch refuses: padding more than half the kernel
    set_controls(page, root, op="max", padding_h=2)
    message = torch_error(
        lambda: torch.nn.MaxPool2d(2, stride=2, padding=(2, 1), ceil_mode=True)(x)
    )
    assert root.locator(".cx-error").inner_text().strip() == message
    assert "pad should be at most half" in message
    assert not page.errors, f"JavaScript errors: {page.errors}"
