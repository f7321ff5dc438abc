"""Assignment 05 (groups): wrong solutions the graded test cells must catch."""

from __future__ import annotations

import functools
import sys

import numpy as np
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.notebooks import run_notebook_file

NOTEBOOK = ROOT / "source" / "05_groups" / "groups.ipynb"

solution_source = functools.partial(nbs.solution_source, NOTEBOOK)


def test_solutions_run_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    namespace = nbs.numpy_only_namespace(NOTEBOOK)
    counts = [namespace["param_count"](6, 12, 3, groups=g) for g in (1, 2, 3, 6)]
    assert counts == [660, 336, 228, 120]
    assert namespace["connectivity"](4, 2, 2).tolist() == [[True, True, False, False]] + [
        [False, False, True, True]
    ]
    x = np.zeros((1, 2, 3, 3))
    x[0, 1] = 1.0
    out = namespace["conv2d"](x, np.ones((2, 1, 3, 3)), groups=2)
    np.testing.assert_array_equal(out[0, :, 0, 0], [0.0, 9.0])


# Every group reads the input channels of group 0 ("groups ignored" on the input side).
GROUPS_IGNORED = solution_source("conv2d_groups").replace(
    "win = win.reshape(n, groups, c_g, h_out, w_out, kh, kw)",
    "win = np.broadcast_to(win[:, None, :c_g], (n, groups, c_g, h_out, w_out, kh, kw))",
)
# The parameter count without groups.
COUNT_WITHOUT_GROUPS = solution_source("param_count").replace(
    "out_channels * (in_channels // groups) * kh * kw", "out_channels * in_channels * kh * kw"
)


def test_wrong_solutions_are_real_edits():
    assert GROUPS_IGNORED != solution_source("conv2d_groups")
    assert COUNT_WITHOUT_GROUPS != solution_source("param_count")


def test_groups_ignored_is_caught_with_a_grouped_case():
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"conv2d_groups": GROUPS_IGNORED}, stop_after="test_conv2d_groups"
    )
    outcome = outcomes["test_conv2d_groups"]
    print(outcome.error)
    assert not outcome.passed and outcome.points == 0
    assert "conv2d fails for" in outcome.error and "groups=" in outcome.error


def test_param_count_without_groups_is_caught():
    outcomes = run_notebook_file(
        NOTEBOOK, replace={"param_count": COUNT_WITHOUT_GROUPS}, stop_after="test_param_count"
    )
    outcome = outcomes["test_param_count"]
    print(outcome.error)
    assert not outcome.passed
    assert "param_count(6, 12, 3, groups=2) = 660, torch counts 336" in outcome.error
