"""`make demo`'s class: honest students get their points, every cheater gets an honest score."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.xdist_group("grader")
def test_demo_class_grades_every_student_as_an_honest_grader_would(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "demo-class", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for student in ("reference", "blank", "partly_wrong", "cheat_hook", "cheat_eq", "cheat_skip"):
        assert student in proc.stdout
    assert "WRONG" not in proc.stdout
    assert (tmp_path / "autograded" / "grades.csv").exists()
