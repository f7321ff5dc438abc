"""The record stage's bookkeeping: one run's output folder, kept by the client alone.

Per student, in ``<out>/students/<student>/`` (:func:`autograder.record.student_dir`):

- ``result.json``: the recorded result; its presence means *done* (a rerun skips it);
- ``.unrecorded.json``: a result that came back from a worker but is not yet in the gradebook
  (a run killed in between leaves it; the next run records it without regrading);
- ``grading.log``: every attempt's log, appended; ``<notebook>.ipynb``: the executed notebooks;
  ``feedback.html`` and ``results.json``, written by :mod:`autograder.record`.

Recording an outcome is ordered so that a kill at any point loses nothing and duplicates
nothing: executed notebooks, then ``.unrecorded.json`` (result + log), then the log (appended
once: its header line names the run and attempt), then the gradebook and the student's files
(both idempotent), then ``result.json``. ``grades.csv`` is rewritten from the results as they
come in (at most every few seconds, and at the end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from autograder import record
from autograder.results import SubmissionResult
from autograder.task import TaskOutcome

RESULT = "result.json"
UNRECORDED = ".unrecorded.json"
LOG = "grading.log"
CSV_EVERY = 2.0  # seconds between rewrites of grades.csv while grading


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class Ledger:
    """What is graded and recorded for one assignment in one output folder."""

    def __init__(
        self,
        out: Path,
        assignment: str,
        db_url: str,
        course_id: str,
        notebooks: list[str],
        nbgrader_autograded: Path | None = None,
        notes: dict[str, list[str]] | None = None,
    ):
        self.out = out
        self.assignment = assignment
        self.db_url = db_url
        self.course_id = course_id
        self.notebooks = notebooks
        # recording into the course's own gradebook: also fill nbgrader's autograded/<student>/
        # <assignment>/ so formgrader counts the submission as autograded and can open it
        self.nbgrader_autograded = nbgrader_autograded
        self.notes = notes or {}  # intake's notes per student (an id collision, a shortened name)
        self.students: list[str] = []
        self.final: dict[str, SubmissionResult] = {}
        self.not_recorded: list[str] = []
        self.timings: list[dict[str, float]] = []
        self._csv_written = 0.0
        self._open_gradebook = None  # nbgrader.api.Gradebook, while recording

    def folder(self, student_id: str) -> Path:
        return record.student_dir(self.out, student_id)

    # -- before grading -------------------------------------------------------------------------

    def resume(self, students: Iterable[str], force: bool) -> tuple[list[str], int]:
        """Record what a killed run left unrecorded; return (students to grade, how many done)."""
        self.students = list(students)
        todo, skipped = [], 0
        for sid in self.students:
            sdir = self.folder(sid)
            sdir.mkdir(parents=True, exist_ok=True)
            if force:
                for name in (RESULT, UNRECORDED):
                    (sdir / name).unlink(missing_ok=True)
            done = _read_result(sdir / RESULT)
            if done is not None:
                self.final[sid] = done
                skipped += 1
                continue
            if self._record_unrecorded(sid):
                continue
            todo.append(sid)
        return todo, skipped

    def _record_unrecorded(self, sid: str) -> bool:
        path = self.folder(sid) / UNRECORDED
        try:
            kept = json.loads(path.read_text())
            result = SubmissionResult.from_json(kept["result"])
            log = str(kept.get("log", ""))
        except (OSError, ValueError, TypeError, KeyError):
            path.unlink(missing_ok=True)
            return False
        self._append_log(sid, log)
        self.record(result)
        return True

    # -- while grading --------------------------------------------------------------------------

    def keep(self, outcome: TaskOutcome) -> SubmissionResult:
        """A graded outcome: its files on disk, then recorded (see the module docstring)."""
        started = time.monotonic()
        result = outcome.result
        sdir = self.folder(result.student_id)
        for nb in result.notebooks:
            data = outcome.executed.get(nb.notebook)
            if data is not None:
                kept = sdir / f"{nb.notebook}.ipynb"
                _atomic_write(kept, data)  # sanitized by the scorer
                nb.executed_path = str(kept)
        pending = {"result": result.to_json(), "log": outcome.log}
        _atomic_write(sdir / UNRECORDED, json.dumps(pending).encode())
        self._append_log(result.student_id, outcome.log)
        self.record(result)
        took = time.monotonic() - started
        self._append_log(result.student_id, f"recorded in {took:.2f} s\n")
        if outcome.timings:
            self.timings.append({**outcome.timings, "record": took})
        return result

    def log_attempt(self, outcome: TaskOutcome) -> None:
        """A failed attempt that will be retried: only its log is kept."""
        self._append_log(outcome.student_id, outcome.log)

    def report_failure(self, outcome: TaskOutcome, max_score: float) -> SubmissionResult:
        """Our failure, after the last attempt: reported, never recorded as a score."""
        self._append_log(outcome.student_id, outcome.log)
        result = SubmissionResult(
            student_id=outcome.student_id,
            assignment=self.assignment,
            status=record.INFRA,
            reason=outcome.failure,
            max_score_expected=max_score,
        )
        record.write_student_files(self.folder(outcome.student_id), result)
        self.final[outcome.student_id] = result
        return result

    def record(self, result: SubmissionResult) -> None:
        sdir = self.folder(result.student_id)
        try:
            record.record_submission(self.db_url, self.course_id, result, self._gradebook())
            record.write_student_files(sdir, result)
        except Exception as exc:  # e.g. the gradebook is locked: keep the result, record later
            self.close()  # a fresh connection for the next one
            self.not_recorded.append(result.student_id)
            print(
                f"{result.student_id}: graded but not recorded ({type(exc).__name__}: {exc}); "
                "rerun to record it",
                file=sys.stderr,
            )
            self.final[result.student_id] = dataclasses.replace(
                result, status=record.INFRA, reason=f"not recorded: {exc}"
            )
            return
        if self.nbgrader_autograded is not None:
            _nbgrader_copy(self.nbgrader_autograded, self.assignment, result)
        result.write(sdir / RESULT)
        (sdir / UNRECORDED).unlink(missing_ok=True)
        self.final[result.student_id] = result

    def _gradebook(self):
        """The run's connection to the gradebook, opened on first use (see :meth:`close`)."""
        if self._open_gradebook is None:
            from nbgrader.api import Gradebook

            self._open_gradebook = Gradebook(self.db_url, course_id=self.course_id)
        return self._open_gradebook

    def close(self) -> None:
        """Close the gradebook connection (the ledger opens another if it records again)."""
        if self._open_gradebook is not None:
            with contextlib.suppress(Exception):
                self._open_gradebook.close()
            self._open_gradebook = None

    def _append_log(self, sid: str, text: str) -> None:
        if not text:
            return
        path = self.folder(sid) / LOG
        header = text.splitlines()[0]
        try:
            if header.startswith("--- grading") and header in path.read_text(errors="replace"):
                return  # appended before a kill: once is enough
        except OSError:
            pass
        with open(path, "a", encoding="utf-8") as log:
            log.write(text if text.endswith("\n") else text + "\n")

    # -- grades.csv -----------------------------------------------------------------------------

    def results(self) -> list[SubmissionResult]:
        return [self.final[s] for s in self.students if s in self.final]

    def write_csv(self, *, now: bool = True) -> None:
        if not now and time.monotonic() - self._csv_written < CSV_EVERY:
            return
        record.write_grades_csv(self.out / "grades.csv", self.results(), self.notebooks, self.notes)
        self._csv_written = time.monotonic()

    def stage_means(self) -> dict[str, float]:
        """Mean seconds per graded submission of each stage timed by the workers."""
        if not self.timings:
            return {}
        stages = dict.fromkeys(k for t in self.timings for k in t)
        return {k: sum(t.get(k, 0.0) for t in self.timings) / len(self.timings) for k in stages}


def needs_grading(out: Path, students: Iterable[str], force: bool) -> int:
    """How many of ``students`` a run will likely grade (an estimate made before the gradebook
    is open: those without a result, or all with ``force``); :meth:`Ledger.resume` decides."""
    students = list(students)
    if force:
        return len(students)
    return sum(not (record.student_dir(out, sid) / RESULT).is_file() for sid in students)


def _read_result(path: Path) -> SubmissionResult | None:
    if not path.is_file():
        return None
    try:
        return SubmissionResult.from_json(path.read_text())
    except (ValueError, TypeError, KeyError):
        path.unlink()
        return None


def _nbgrader_copy(autograded: Path, assignment: str, result: SubmissionResult) -> None:
    """The executed notebooks (and timestamp.txt) where nbgrader keeps autograded ones."""
    if result.status not in ("graded", "ungradable"):
        return
    dest = autograded / result.student_id / assignment
    dest.mkdir(parents=True, exist_ok=True)
    for nb in result.notebooks:
        if nb.executed_path and Path(nb.executed_path).is_file():
            shutil.copyfile(nb.executed_path, dest / f"{nb.notebook}.ipynb")
    if result.timestamp:
        (dest / "timestamp.txt").write_text(result.timestamp)
