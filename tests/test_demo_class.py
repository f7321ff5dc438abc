"""`make demo`'s class: honest students get their points, every cheater gets an honest score.

Graded on a 2-process Dask LocalCluster, the class's grades.csv must equal, byte for byte,
tests/golden/demo_class_grades.csv: the CSV the previous engine (its own worker pool) wrote for
the same class. If the course's 01 notebook or the validator's notes change on purpose, run
``python -m autograder demo-class --out /tmp/demo`` and copy ``/tmp/demo/autograded/grades.csv``
there (the honest-score check below still guards the scores).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT

GOLDEN = ROOT / "tests" / "golden" / "demo_class_grades.csv"


@pytest.mark.xdist_group("grader")
def test_demo_class_grades_every_student_as_an_honest_grader_would(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "demo-class",
            "--out",
            str(tmp_path),
            "--workers",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for student in ("reference", "blank", "partly_wrong", "cheat_hook", "cheat_eq", "cheat_skip"):
        assert student in proc.stdout
    assert "WRONG" not in proc.stdout
    grades = (tmp_path / "autograded" / "grades.csv").read_text()
    assert grades == GOLDEN.read_text(), f"grades.csv differs from {GOLDEN}:\n{grades}"
