"""The student path in a real browser: JupyterLab and Debian's headless Chromium, via Playwright.

One JupyterLab (the `make lab` configuration, see tests/lab_server.py) serves a temporary copy of
the release notebooks for every case here. For each kind of notebook (a conv exercise and the
TensorBoard one) the test writes, beside the student's blank notebook, a copy whose solution cells
hold the reference answers from source/, opens it in the browser, runs all cells through the Run
menu and reads the page: every code cell ran, no visible test cell shows an error, a figure was
drawn. Then the blank notebook: the student sees, in at most three lines, which function is not
written yet and what to do — no traceback. Then a wrong answer: the student sees the check's
readable diagnosis ("... fails for <case>").

Screenshots land in artifacts/browser/ (gitignored). With UPDATE_SCREENSHOT=1 the tests also
rewrite tests/screenshots/student-view.png and tests/screenshots/not-written.png, the pictures
the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from lab_server import running_lab
from student_notebooks import answer_stub, filled, release_copy, source_notebook

from autograder.course import ignore_pattern
from autograder.notebooks import grade_id, is_solution_cell, is_test_cell

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts" / "browser"
README_SCREENSHOT = ROOT / "tests" / "screenshots" / "student-view.png"
NOT_WRITTEN_SCREENSHOT = ROOT / "tests" / "screenshots" / "not-written.png"

# The notebooks under test, by name (assignment folder, notebook name without .ipynb).
CONV_EXERCISE = ("01_anatomy", "anatomy")
TENSORBOARD = ("08_tensorboard", "tensorboard")

# A wrong answer for the conv exercise, typed into the stub: it forgets that groups divide the
# input channels.
WRONG_GRADE_ID = "conv2d_param_count"
WRONG_BODY = """
if isinstance(kernel_size, (tuple, list)):
    kh, kw = kernel_size
else:
    kh = kw = kernel_size
return out_channels * in_channels * kh * kw + (out_channels if bias else 0)
"""
# What the visible test must tell the student about it: the check's name and the failing case.
WRONG_DIAGNOSIS = re.compile(r"conv2d_param_count fails for .*groups=")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
RUN_TIMEOUT_MS = 150_000  # one Run All of a notebook, on a loaded 2-core machine

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} missing: install Debian's chromium (.ci/run does)",
    ),
    # one JupyterLab for the module: keep its tests on one xdist worker (--dist loadgroup)
    pytest.mark.xdist_group("browser"),
]


# ------------------------------------------------------------------ the notebooks on disk


VARIANTS = ("blank", "solved", "wrong")


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    """Copies of release/<assignment>/ under blank/ (as released), solved/ (reference answers
    from source/) and wrong/ (the wrong answer above; conv exercise only)."""
    out = tmp_path_factory.mktemp("release")
    for assignment, name in (CONV_EXERCISE, TENSORBOARD):
        source = ROOT / "source" / assignment / f"{name}.ipynb"
        assert source.is_file(), f"{source} is missing"
        variants = VARIANTS if (assignment, name) == CONV_EXERCISE else ("blank", "solved")
        released = release_copy(assignment, tmp_path_factory.mktemp("released"))
        folders = {v: out / v / assignment for v in variants}
        for folder in folders.values():
            shutil.copytree(released, folder)
        blank = nbformat.read(folders["blank"] / f"{name}.ipynb", as_version=4)
        src = source_notebook(assignment, name)
        nbformat.write(filled(blank, src), folders["solved"] / f"{name}.ipynb")
        if "wrong" in folders:
            wrong = filled(
                blank, src, {WRONG_GRADE_ID: answer_stub(blank, WRONG_GRADE_ID, WRONG_BODY)}
            )
            nbformat.write(wrong, folders["wrong"] / f"{name}.ipynb")
    return out


@pytest.fixture(scope="module")
def lab(notebooks, tmp_path_factory):
    with running_lab(notebooks, tmp_path_factory.mktemp("lab_state")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Playwright gives the browser a fresh temporary profile (user-data-dir) of its own.
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"))
    context.close()


# ------------------------------------------------------------------ driving JupyterLab


def open_notebook(page, lab, relpath: str) -> None:
    """Open a notebook in JupyterLab and wait until its kernel is connected and idle.

    Each opening uses a workspace of its own, so tabs of earlier cases are not restored.
    """
    workspace = "t" + re.sub(r"\W", "", relpath)
    page.goto(f"{lab.url}lab/workspaces/{workspace}/tree/{relpath}?reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
    page.wait_for_function(STATUS_IDLE, timeout=90_000, polling=250)


# The status bar names the current notebook's kernel and its state: "Python 3 (ipykernel) | Idle".
STATUS_IDLE = """() => {
    const bar = document.querySelector('#jp-main-statusbar');
    return !!bar && /\\|\\s*Idle/.test(bar.innerText);
}"""


def run_all_cells(page) -> None:
    """Run > Run All Cells, as a student would, then wait for the kernel to finish."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    # Queued cells show [*]; done when none does and the kernel is idle again.
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                  .some(p => p.textContent.includes('*') || /\\d/.test(p.textContent))""",
        timeout=30_000,
    )
    page.wait_for_function(
        """() => {
            const busy = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                .some(p => p.textContent.includes('*'));
            const bar = document.querySelector('#jp-main-statusbar');
            return !busy && !!bar && /\\|\\s*Idle/.test(bar.innerText);
        }""",
        timeout=RUN_TIMEOUT_MS,
        polling=500,
    )


def page_cells(page) -> list[dict]:
    """What the page shows per cell, in notebook order: type, prompt, outputs, rendered images."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')]
            .map(cell => ({
                code: cell.classList.contains('jp-CodeCell'),
                prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
                outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
                    mime: o.dataset.mimeType || '',
                    text: o.innerText,
                })),
                images: [...cell.querySelectorAll('.jp-OutputArea-output img')]
                    .filter(img => img.complete && img.naturalWidth > 0).length,
            }))"""
    )


def _executed(cell: dict) -> bool:
    return bool(re.search(r"\[\d+\]", cell["prompt"]))


def _errors(cell: dict) -> list[str]:
    """Error and stderr outputs, minus the warnings nbgrader's IgnorePattern forgives."""
    pattern = ignore_pattern()
    return [
        o["text"]
        for o in cell["outputs"]
        if o["mime"] == "application/vnd.jupyter.stderr"
        and not (pattern and re.search(pattern, o["text"]) and "Traceback" not in o["text"])
    ]


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _notebook_file(notebooks: Path, variant: str, assignment: str, name: str):
    return nbformat.read(notebooks / variant / assignment / f"{name}.ipynb", as_version=4)


# ------------------------------------------------------------------ the cases


@pytest.mark.parametrize("which", [CONV_EXERCISE, TENSORBOARD], ids=lambda w: w[0])
def test_reference_answers_pass_visible_tests_and_draw_a_figure(page, lab, notebooks, which):
    assignment, name = which
    nb = _notebook_file(notebooks, "solved", assignment, name)
    open_notebook(page, lab, f"solved/{assignment}/{name}.ipynb")
    run_all_cells(page)
    cells = page_cells(page)
    assert len(cells) == len(nb.cells), "the page does not show every cell of the notebook"

    not_run = [
        i
        for i, (c, d) in enumerate(zip(nb.cells, cells, strict=True))
        if c.cell_type == "code" and not _executed(d)
    ]
    assert not not_run, f"Run All stopped: code cells {not_run} did not run"
    tests = [(grade_id(c), d) for c, d in zip(nb.cells, cells, strict=True) if is_test_cell(c)]
    assert tests, "no test cell in the notebook"
    failed = {gid: _errors(d) for gid, d in tests if _errors(d)}
    assert not failed, f"visible tests show errors in the browser: {failed}"
    printed = [gid for gid, d in tests if any(o["text"].strip() for o in d["outputs"])]
    assert printed, "no test cell printed what it checked"
    images = sum(d["images"] for d in cells)
    assert images >= 1, "no figure rendered in any output area"
    print(f"{assignment}: {len(tests)} test cells passed, {images} figure(s) rendered")

    first_img = page.locator(".jp-OutputArea-output img").first
    first_img.scroll_into_view_if_needed()
    _shot(page, f"{assignment}-solved-figure")


def test_blank_notebook_shows_not_implemented_error(page, lab, notebooks):
    assignment, name = CONV_EXERCISE
    nb = _notebook_file(notebooks, "blank", assignment, name)
    open_notebook(page, lab, f"blank/{assignment}/{name}.ipynb")
    run_all_cells(page)
    cells = page_cells(page)
    assert len(cells) == len(nb.cells)

    erring = [i for i, d in enumerate(cells) if _errors(d)]
    assert erring, "running the blank notebook showed no error"
    first = erring[0]
    text = "\n".join(_errors(cells[first]))
    assert "NotImplementedError" in text, f"cell {first} shows {text[:500]!r}"
    # Short and friendly: which function, what to do; no traceback through the checks.
    assert "`conv2d_param_count` is not written yet" in text, text[:500]
    assert "raise NotImplementedError()" in text and "Traceback" not in text, text[:500]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) <= 3, f"the student reads {len(lines)} lines: {text[:800]!r}"
    # The error comes from the first exercise: its stub cell or the test cell right after it.
    first_solution = next(i for i, c in enumerate(nb.cells) if is_solution_cell(c))
    first_test = next(i for i, c in enumerate(nb.cells) if is_test_cell(c))
    assert first in (first_solution, first_test), (first, first_solution, first_test)
    # Run All stops at the error: nothing below it ran.
    later = [i for i in range(first + 1, len(cells)) if cells[i]["code"] and _executed(cells[i])]
    assert not later, f"cells {later} ran after the error"

    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(first)
    cell.scroll_into_view_if_needed()
    _shot(page, f"{assignment}-blank-not-implemented")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        # The README's picture: the test cell and the two lines it shows for the stub.
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        page.wait_for_timeout(500)
        page.evaluate("el => el.scrollIntoView({block: 'center'})", cell.element_handle())
        NOT_WRITTEN_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(NOT_WRITTEN_SCREENSHOT))
        print(f"wrote {NOT_WRITTEN_SCREENSHOT}")


def test_wrong_answer_shows_readable_diagnosis(page, lab, notebooks):
    assignment, name = CONV_EXERCISE
    nb = _notebook_file(notebooks, "wrong", assignment, name)
    open_notebook(page, lab, f"wrong/{assignment}/{name}.ipynb")
    run_all_cells(page)
    cells = page_cells(page)
    assert len(cells) == len(nb.cells)

    erring = [i for i, d in enumerate(cells) if _errors(d)]
    assert erring, "the wrong answer passed every visible test"
    first = erring[0]
    assert is_test_cell(nb.cells[first]), f"cell {first} is not a test cell"
    text = "\n".join(_errors(cells[first]))
    assert WRONG_DIAGNOSIS.search(text), f"no readable diagnosis in {text[:800]!r}"
    print(f"the student sees: {WRONG_DIAGNOSIS.search(text).group(0)!r}")

    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(first)
    cell.scroll_into_view_if_needed()
    _shot(page, f"{assignment}-wrong-diagnosis")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        # The README's picture: the exercise, the student's (wrong) code and the diagnosis,
        # with the file browser folded away.
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        page.wait_for_timeout(500)
        page.evaluate(
            "el => el.scrollIntoView({block: 'end'})",
            cell.element_handle(),
        )
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SCREENSHOT))
        print(f"wrote {README_SCREENSHOT}")
