"""Helpers of the issue-10 tests: the grading CLI on the tiny course with the stand-in scorer."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from grading_fixtures import ASSIGNMENT, cli_env

FAKE = {"AUTOGRADER_TEST_SCORER": "grading_fixtures:fake_grade_notebook"}


def grade(course: Path, subs: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -m autograder grade ex SUBS` on the tiny course, with the stand-in scorer."""
    cmd = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(subs)]
    proc = subprocess.run(
        [*cmd, "--course", str(course), "--workers", "1", "--no-progress", *extra],
        env=cli_env(**FAKE),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=course,
    )
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def rows_of(out: Path) -> dict[str, dict]:
    with (out / "grades.csv").open(encoding="utf-8") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def graded_rows(course: Path, zip_path: Path, *extra: str):
    """(grades.csv rows by student, the process) of a run that must exit 0."""
    proc = grade(course, zip_path, *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return rows_of(course / "autograded" / ASSIGNMENT), proc
