"""Source is formatted and linted: ruff on the packages, nbqa + ruff on the instructor notebooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

BIN = Path(sys.executable).parent
PY_TARGETS = ["course", "autograder", "tests", "benchmarks", "nbgrader_config.py"]


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(
    "cmd",
    [
        [str(BIN / "ruff"), "check", *PY_TARGETS],
        [str(BIN / "ruff"), "format", "--check", *PY_TARGETS],
        [str(BIN / "nbqa"), "ruff", "source"],
        [str(BIN / "nbqa"), "ruff format --check", "source"],
    ],
    ids=["ruff-check", "ruff-format", "nbqa-ruff-check", "nbqa-ruff-format"],
)
def test_lint(cmd):
    proc = run(*cmd)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}"
