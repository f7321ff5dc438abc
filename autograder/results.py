"""What grading produces, as plain data: one record per test cell, notebook and submission.

The stages hand these to each other: `score` fills TestResults, `grade` assembles a
SubmissionResult per student, `record` writes them to the gradebook, CSV, feedback and JSON.
A SubmissionResult round-trips through JSON so a worker process can hand it to the parent and a
rerun can skip what is already graded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Ungradable(Exception):
    """The submission itself prevents grading (no notebook, corrupt JSON...). Recorded as a row."""


class InfrastructureError(Exception):
    """Our side failed (a bug, a killed worker). Never recorded as a score: reported and retried."""


@dataclass
class TestResult:
    """One graded test cell of one notebook."""

    grade_id: str
    points: float  # awarded
    max_points: float
    passed: bool
    message: str = ""  # student-facing: why it failed, or what the check printed
    hidden: bool = False  # the cell holds hidden tests: feedback must not show its source


@dataclass
class NotebookResult:
    """The tests of one notebook, plus what validation noticed about it."""

    notebook: str  # notebook name without .ipynb, as in source/<assignment>/
    tests: list[TestResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "test cell 'x' was edited: source used"
    executed_path: str | None = None  # executed student notebook (with outputs), for feedback

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_points for t in self.tests)


@dataclass
class SubmissionResult:
    """Everything graded for one student and one assignment."""

    student_id: str
    assignment: str
    status: str  # "graded" or "ungradable"
    reason: str = ""  # why ungradable
    notebooks: list[NotebookResult] = field(default_factory=list)
    seconds: float = 0.0
    max_score_expected: float = 0.0  # the assignment's total, so an ungradable row has one too
    timestamp: str | None = None  # submission time (nbgrader's timestamp.txt), if known

    @property
    def score(self) -> float:
        return sum(nb.score for nb in self.notebooks)

    @property
    def max_score(self) -> float:
        return self.max_score_expected or sum(nb.max_score for nb in self.notebooks)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SubmissionResult:
        data: dict[str, Any] = json.loads(text)
        notebooks = [
            NotebookResult(
                notebook=nb["notebook"],
                tests=[TestResult(**t) for t in nb["tests"]],
                notes=list(nb.get("notes", [])),
                executed_path=nb.get("executed_path"),
            )
            for nb in data.pop("notebooks", [])
        ]
        return cls(notebooks=notebooks, **data)

    def write(self, path: Path) -> None:
        """Write atomically: a run killed mid-write leaves no half file to be mistaken for done."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
