"""Assignment 06 (vectorized conv2d): the notebook's solution, the benchmark's copy of it, and
wrong solutions the graded test cells must catch."""

from __future__ import annotations

import functools
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.notebooks import run_notebook_file
from course.checks.conv import check_conv2d, torch_conv2d

NOTEBOOK = ROOT / "source" / "06_conv2d_numpy" / "conv2d_numpy.ipynb"

solution_source = functools.partial(nbs.solution_source, NOTEBOOK)
sys.path.insert(0, str(ROOT / "benchmarks"))

import conv_reference  # noqa: E402
import reference_conv  # noqa: E402


def notebook_conv2d(monkeypatch):
    """The notebook's solution cell, executed with torch unavailable (as the grader runs it)."""
    namespace: dict = {}
    with monkeypatch.context() as blocked:
        blocked.setitem(sys.modules, "torch", None)
        exec(compile(solution_source("conv2d_numpy"), "conv2d_numpy", "exec"), namespace)
    return namespace["conv2d"]


def test_solution_cell_is_numpy_only_and_tagged():
    for cell in nbs.load(NOTEBOOK).cells:
        if nbs.grade_id(cell) == "conv2d_numpy":
            assert "numpy-only" in cell.metadata.get("tags", [])
            assert "import torch" not in cell.source and "from torch" not in cell.source
            return
    pytest.fail("no conv2d_numpy solution cell")


def test_notebook_solution_runs_without_torch_and_equals_benchmark_reference(monkeypatch):
    rng = np.random.default_rng(0)
    conv = notebook_conv2d(monkeypatch)
    monkeypatch.setitem(sys.modules, "torch", None)  # calls, too, run without torch
    cases = [
        ((2, 4, 7, 6), (6, 2, 3, 2), dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)),
        ((3, 5, 5), (4, 3, 2, 2), dict(padding="same", padding_mode="reflect")),
        ((1, 4, 6, 6), (4, 1, 3, 3), dict(padding=2, groups=4, padding_mode="circular")),
    ]
    for x_shape, w_shape, params in cases:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[0])
        print(x_shape, w_shape, params)
        np.testing.assert_array_equal(
            conv(x, w, b, **params), reference_conv.conv2d(x, w, b, **params)
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


WRONG_SAME = solution_source("conv2d_numpy").replace(
    "top, left = (span_h - 1) // 2, (span_w - 1) // 2", "top, left = span_h // 2, span_w // 2"
)
WRONG_GROUPS = solution_source("conv2d_numpy").replace(
    "cols[:, g] @ wmat[g]", "cols[:, 0] @ wmat[g]"
)


def test_wrong_solutions_are_real_edits():
    assert WRONG_SAME != solution_source("conv2d_numpy")
    assert WRONG_GROUPS != solution_source("conv2d_numpy")


def test_same_padding_on_top_left_is_caught_with_its_case():
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"conv2d_numpy": WRONG_SAME}, stop_after="test_conv2d_modes_errors"
    )
    assert outcomes["test_conv2d_basic"].passed is False
    outcome = outcomes["test_conv2d_modes_errors"]
    print(outcome.error)
    assert not outcome.passed and outcome.points == 0
    assert "padding='same'" in outcome.error and "weight (1,1," in outcome.error


def test_groups_using_the_first_weight_block_is_caught():
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"conv2d_numpy": WRONG_GROUPS}, stop_after="test_conv2d_groups_modules"
    )
    outcome = outcomes["test_conv2d_groups_modules"]
    print(outcome.error)
    assert not outcome.passed
    assert "groups=" in outcome.error
