"""Assignment 06 (vectorized conv2d in five graded steps): the notebook's solution, the
benchmark's faster variant of it, and wrong solutions each step's test cell must catch."""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch
import torch.nn.functional as F
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.notebooks import run_notebook_file
from course.checks.conv import check_conv2d, torch_conv2d

NOTEBOOK = ROOT / "source" / "06_conv2d_numpy" / "conv2d_numpy.ipynb"
STEPS = [
    "test_output_shape",
    "test_windows",
    "test_groups",
    "test_pad_input",
    "test_conv2d_errors",
    "test_conv2d_modules",
]

solution_source = functools.partial(nbs.solution_source, NOTEBOOK)
edited = functools.partial(nbs.edited_solution, NOTEBOOK)
sys.path.insert(0, str(ROOT / "benchmarks"))

import conv_reference  # noqa: E402
import reference_conv  # noqa: E402


def notebook_functions(monkeypatch) -> dict:
    """The notebook's numpy-only solution cells, run in order with torch unavailable (as the
    grader runs them); their namespace."""
    with monkeypatch.context() as blocked:
        blocked.setitem(sys.modules, "torch", None)
        return nbs.numpy_only_namespace(NOTEBOOK)


def notebook_conv2d(monkeypatch):
    return notebook_functions(monkeypatch)["conv2d"]


def test_graded_steps_each_have_a_test_cell_and_points():
    nb = nbs.load(NOTEBOOK)
    tests = [c for c in nb.cells if nbs.is_test_cell(c)]
    assert [nbs.grade_id(c) for c in tests] == STEPS
    assert [nbs.nbgrader_meta(c)["points"] for c in tests] == [2, 2, 2, 2, 2, 2]


def test_solution_cells_are_numpy_only_and_tagged():
    for cell in nbs.load(NOTEBOOK).cells:
        if nbs.is_solution_cell(cell):
            assert "numpy-only" in cell.metadata.get("tags", []), nbs.grade_id(cell)
            assert "import torch" not in cell.source and "from torch" not in cell.source


def test_notebook_solution_runs_without_torch_and_agrees_with_benchmark_variant(monkeypatch):
    rng = np.random.default_rng(0)
    conv = notebook_conv2d(monkeypatch)
    monkeypatch.setitem(sys.modules, "torch", None)  # calls, too, run without torch
    cases = [
        ((2, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)),
        ((3, 5, 5), (4, 3, 2, 2), dict(padding="same", padding_mode="reflect")),
        ((1, 4, 6, 6), (4, 1, 3, 3), dict(padding=2, groups=4, padding_mode="circular")),
        ((1, 2, 7, 6), (3, 2, 3, 3), dict(padding=(-1, 1), padding_mode="replicate")),
    ]
    for x_shape, w_shape, params in cases:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[0])
        print(x_shape, w_shape, params)
        np.testing.assert_allclose(
            conv(x, w, b, **params), reference_conv.conv2d(x, w, b, **params), atol=1e-12
        )


def test_notebook_solution_matches_torch_on_a_sweep(monkeypatch):
    conv = notebook_conv2d(monkeypatch)
    check_conv2d(conv, max_examples=60)


def test_reference_matches_torch_with_more_channels():
    """The sweep in check_conv2d uses <= 2 channels per group, which takes the reference's
    few-channels (NCHW) path; up to 6 channels per group also takes the channels-last path."""
    from course.checks.conv import conv_cases
    from course.checks.core import sweep

    sweep(reference_conv.conv2d, torch_conv2d, conv_cases(max_channels=6), max_examples=80)


def test_benchmark_reference_matches_torch_on_small_suite_shapes():
    """The benchmark's shapes, scaled down (batch 2, channels / 4, 12x12), float32 and float64."""
    rng = np.random.default_rng(1)
    for name, (x_shape, w_shape, params) in conv_reference.SUITE.items():
        n, c, _, _ = x_shape
        groups = params.get("groups", 1)
        c_small = max(groups // 4, 1) * 4 if groups > 1 else max(c // 4, 1)
        g_small = c_small if groups > 1 else 1
        o_small = c_small if groups > 1 else max(w_shape[0] // 4, 1)
        small = {**params}
        if groups > 1:
            small["groups"] = g_small
        x = rng.standard_normal((2, c_small, 12, 12))
        w = rng.standard_normal((o_small, c_small // g_small, *w_shape[2:]))
        b = rng.standard_normal(o_small)
        for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-4)):
            got = reference_conv.conv2d(x.astype(dtype), w.astype(dtype), b.astype(dtype), **small)
            expected = torch_conv2d(x, w, b, **small)
            print(name, x.shape, w.shape, small, dtype.__name__)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, expected, atol=tol, rtol=tol)


def test_benchmark_reference_matches_torch_on_full_cifar_case():
    x_shape, w_shape, params = conv_reference.SUITE["CIFAR batch 64x3x32x32 -> 6, k3"]
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32)
    expected = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), **params).numpy()
    np.testing.assert_allclose(reference_conv.conv2d(x, w, **params), expected, atol=1e-4)


def test_benchmark_main_prints_ratios(capsys, monkeypatch):
    tiny = {"tiny 2x3x8x8 -> 4, k3": ((2, 3, 8, 8), (4, 3, 3, 3), {"padding": 1})}
    monkeypatch.setattr(conv_reference, "SUITE", tiny)
    geo = conv_reference.main(["--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert "tiny 2x3x8x8" in out and "geometric mean" in out and geo > 0
    # the notebook's own step-by-step solution, timed the same way
    assert conv_reference.main(["--repeats", "1", "--threads", "1", "--notebook"]) > 0


# One wrong solution per step (steps 1-4), all in one run: each step's cell tests its own function,
# so each must fail with feedback about its own mistake.
WRONG_STEPS = {
    # 'same' with an odd total: the extra row counted on both sides instead of once
    **edited(
        "conv2d_output_shape",
        "h_out = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1",
        "h_out = (h + 2 * bottom - dh * (kh - 1) - 1) // sh + 1",
    ),
    # dilation ignored inside the window: adjacent taps
    **edited("conv_windows", "[:, :, ::sh, ::sw, ::dh, ::dw]", "[:, :, ::sh, ::sw, :kh, :kw]"),
    # every group multiplied by the weights of group 0
    **edited("grouped_correlation", "weight[g * o_g : (g + 1) * o_g]", "weight[:o_g]"),
    # negative amounts treated as 0: no crop
    **edited("pad_input", "cropped = x[", "cropped = x  # ["),
}
# Step 5: negative padding with padding_mode='zeros' goes on to crop instead of raising.
NO_ZEROS_ERROR = edited(
    "conv2d_numpy",
    'if min(pads) < 0 and padding_mode == "zeros":',
    'if min(pads) < 0 and padding_mode == "never":',
)


def test_each_step_catches_its_own_mistake_with_feedback():
    outcomes = run_notebook_file(NOTEBOOK, replace=WRONG_STEPS, stop_after="test_conv2d_modules")
    for gid, outcome in outcomes.items():
        print(gid, outcome.passed, outcome.error)
    assert nbs.failing(outcomes) == set(STEPS)  # step 5 uses the wrong parts too
    shape = outcomes["test_output_shape"].error
    assert "conv2d_output_shape fails for x_shape=(2, 3, 6, 5), weight_shape=(4, 3, 2, 2)" in shape
    assert "padding='same'" in shape and "torch gives (2, 4, 6, 5)" in shape
    windows = outcomes["test_windows"].error
    assert "conv_windows fails for xp (1,1,7,7), kernel_size=3, dilation=2" in windows
    assert "torch gives (1, 1, 3, 3, 3, 3)" in windows or "differs from torch" in windows
    groups = outcomes["test_groups"].error
    assert "grouped_correlation fails for windows (1,4," in groups and "groups=2" in groups
    assert "differs from torch" in groups
    pad = outcomes["test_pad_input"].error
    assert "pad_input fails for x (1,1,6,6), pads=(-1, -1, -1, -1), mode='zeros'" in pad
    assert "shape (1, 1, 6, 6) but torch gives (1, 1, 4, 4)" in pad


def test_step_five_demands_the_error_for_negative_zeros_padding():
    outcomes = run_notebook_file(NOTEBOOK, replace=NO_ZEROS_ERROR, stop_after="test_conv2d_modules")
    assert nbs.failing(outcomes) == {"test_conv2d_errors"}
    error = outcomes["test_conv2d_errors"].error
    print(error)
    assert "conv2d fails for x (1,1,6,6), weight (1,1,3,3), padding=-1:" in error
    assert "torch raises RuntimeError here (negative padding is not supported)" in error
