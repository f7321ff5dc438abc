"""One submission as a unit of work: what travels to a grader process and what comes back.

A grading run is a :class:`RunSpec` (the assignment's source notebooks, hidden tests included,
as bytes; the sandbox limits), shipped to each grader process once, and one
:class:`SubmissionTask` per student (the student's staged files as bytes). A grader process
turns a task into a :class:`TaskOutcome` with :func:`grade_submission`: validate
(:mod:`autograder.validate`), then execute + score each notebook
(:func:`autograder.score.grade_notebook`, student code in the sandbox), in a scratch folder of
its own that it deletes afterwards. The outcome is plain data: the
:class:`~autograder.results.SubmissionResult` as JSON, the executed notebooks as bytes, the
log, the stage timings. Nothing here reads the course folder or writes the output folder: the
instructor's process does intake and record (:mod:`autograder.grade`, :mod:`autograder.ledger`).
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import os
import shutil
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.results import (
    InfrastructureError,
    NotebookResult,
    SubmissionResult,
    TestResult,
    Ungradable,
)

#: Tests may point the grader at a stand-in scorer (module:function) when no sandbox is needed.
SCORER_ENV = "AUTOGRADER_TEST_SCORER"
#: Stage timings reported per submission (seconds), summed over its notebooks.
STAGES = ("validate", "sandbox_start", "student_cells", "tests", "tests_in_sandbox", "round_trips")
#: Stages that are counts, not seconds.
COUNTS = ("round_trips",)


def format_stages(timings: dict[str, float]) -> str:
    """``validate 0.01 s, ..., round trips 612 x`` (the ``stages:`` line of grading.log)."""
    return ", ".join(
        f"{k.replace('_', ' ')} {v:.0f} x" if k in COUNTS else f"{k.replace('_', ' ')} {v:.2f} s"
        for k, v in timings.items()
    )


@dataclass(frozen=True)
class RunSpec:
    """What every task of one grading run shares; sent to each grader process once."""

    run_id: str  # unique per run: names the run's plugin on a shared cluster
    assignment: str
    sources: dict[str, bytes]  # notebook name (no .ipynb) -> source notebook, hidden tests in
    limits: dict[str, str] = field(default_factory=dict)  # --limit NAME=VALUE, as given
    scorer: str = ""  # "module:function" standing in for the real scorer (tests only)
    worker_timeout: float = 3600.0  # seconds after which a grader process is presumed hung
    # the assignment's hidden-case key (autograder.secret.assignment_key): workers never read
    # the course's secret, and with the key every worker draws the same cases for a submission
    hidden_key: str = ""

    def source_notebooks(self) -> dict[str, NotebookNode]:
        return {
            name: nbformat.reads(data.decode("utf-8"), as_version=4)
            for name, data in self.sources.items()
        }


@dataclass
class SubmissionTask:
    """One student's submission, as staged by intake."""

    student_id: str
    files: dict[str, bytes]  # path relative to the student's folder -> content
    timestamp: str | None = None
    problems: list[str] = field(default_factory=list)  # what intake refused, with reasons
    attempt: int = 1

    @classmethod
    def from_folder(
        cls, student_id: str, folder: Path, timestamp: str | None, problems: list[str]
    ) -> SubmissionTask:
        """Read a staged folder (regular files only: intake leaves nothing else there)."""
        folder = Path(folder)
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }
        return cls(student_id, files, timestamp, list(problems))


@dataclass
class TaskOutcome:
    """What a grader process hands back for one task."""

    student_id: str
    attempt: int
    result_json: str | None  # the SubmissionResult; None when our side failed
    failure: str = ""  # our failure (never the student's): why
    executed: dict[str, bytes] = field(default_factory=dict)  # notebook name -> executed .ipynb
    log: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    where: str = ""  # host and pid of the grader process
    retrying: bool = False  # set by the engine: another attempt follows

    @property
    def result(self) -> SubmissionResult | None:
        return None if self.result_json is None else SubmissionResult.from_json(self.result_json)


# ---------------------------------------------------------------- helpers the client uses too


def limits_from_spec(spec: dict):
    """``--limit NAME=VALUE`` pairs as :class:`autograder.sandbox.Limits`; SystemExit if unknown."""
    from autograder.sandbox import Limits

    if not spec:
        return Limits()
    fields = (
        {f.name: f for f in dataclasses.fields(Limits)} if dataclasses.is_dataclass(Limits) else {}
    )
    kwargs = {}
    for name, value in spec.items():
        if fields and name not in fields:
            raise SystemExit(f"error: unknown limit {name!r}; known: {', '.join(fields)}")
        default = getattr(Limits(), name, None)
        if isinstance(default, bool):
            kwargs[name] = str(value).lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int):
            kwargs[name] = int(float(value))
        elif isinstance(default, float):
            kwargs[name] = float(value)
        else:
            kwargs[name] = value
    return Limits(**kwargs)


def test_cells(source_nb: NotebookNode) -> list[TestResult]:
    """The graded test cells of a source notebook, each at 0 points."""
    from autograder.validate import HIDDEN_BEGIN, grade_id, is_test_cell

    out = []
    for cell in source_nb.cells:
        if is_test_cell(cell):
            pts = float(cell.metadata.nbgrader.get("points", 0))
            out.append(
                TestResult(grade_id(cell), 0.0, pts, False, "", hidden=HIDDEN_BEGIN in cell.source)
            )
    return out


def max_score(sources: dict[str, NotebookNode]) -> float:
    return sum(t.max_points for nb in sources.values() for t in test_cells(nb))


def _zero_notebook(name: str, source_nb: NotebookNode, why: str) -> NotebookResult:
    tests = test_cells(source_nb)
    for t in tests:
        t.message = f"not run: {why}"
    return NotebookResult(notebook=name, tests=tests, notes=[why])


# ---------------------------------------------------------------- in the grader process


def scorer(spec: str = "") -> Callable:
    """The notebook scorer: the real sandboxed one, or a stand-in named by the run (tests)."""
    spec = spec or os.environ.get(SCORER_ENV, "")
    if spec:
        mod, fn = spec.split(":")
        return getattr(importlib.import_module(mod), fn)
    from autograder.score import grade_notebook

    return grade_notebook


class _Log:
    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def __call__(self, *parts) -> None:
        self.buffer.write(" ".join(str(p) for p in parts) + "\n")

    def text(self) -> str:
        return self.buffer.getvalue()


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    root = folder.resolve()
    for rel, data in files.items():
        dest = (folder / rel).resolve()
        if not dest.is_relative_to(root):  # intake never stages such a path; belt and braces
            raise InfrastructureError(f"task file {rel!r} escapes the submission folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)


def _scratch_copy(folder: Path, workdir: Path) -> Path:
    """The student's folder for one notebook's sandbox, without notebooks (handed over as nb)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(folder, workdir, symlinks=True)
    for stale in workdir.rglob("*.ipynb"):
        stale.unlink()
    return workdir


def _score_notebooks(
    validation, grade_notebook, limits, scratch: Path, log, timings: dict[str, float], extra: dict
) -> tuple[list[NotebookResult], dict[str, bytes]]:
    # the real scorer leaves its stage times in its module's LAST_TIMINGS (a stand-in may not)
    last_timings = getattr(importlib.import_module(grade_notebook.__module__), "LAST_TIMINGS", {})
    results: list[NotebookResult] = []
    executed: dict[str, bytes] = {}
    for v in validation.notebooks:
        if v.student_nb is None:
            log(f"{v.name}: {v.problem}")
            results.append(_zero_notebook(v.name, v.source_nb, v.problem))
            continue
        for note in v.notes:
            log(f"{v.name}: {note}")
        workdir = _scratch_copy(scratch / "files", scratch / "work" / v.name)
        try:
            res = grade_notebook(
                v.source_nb, v.student_nb, workdir, limits, v.name, log=log, **extra
            )
        except Ungradable as exc:
            log(f"{v.name}: ungradable: {exc}")
            res = _zero_notebook(v.name, v.source_nb, f"ungradable: {exc}")
        for stage in STAGES:
            if stage in last_timings:
                timings[stage] = timings.get(stage, 0.0) + last_timings[stage]
        res.notes = [*v.notes, *res.notes]
        if res.executed_path and Path(res.executed_path).is_file():
            executed[v.name] = Path(res.executed_path).read_bytes()
        res.executed_path = None  # a path in this process's scratch: the client sets its own
        results.append(res)
    return results, executed


def grade_submission(
    run: RunSpec,
    task: SubmissionTask,
    scratch_root: Path | None = None,
    sources: dict[str, NotebookNode] | None = None,
) -> TaskOutcome:
    """Validate, execute and score one submission; never raises for a student's doing.

    Our own failures (InfrastructureError, a bug) come back as ``failure`` with the traceback
    in the log, for the client to retry and, failing that, report: never as a zero.
    """
    log = _Log()
    where = f"{socket.gethostname()} pid {os.getpid()}"
    log(
        f"--- grading {task.student_id} / {run.assignment} "
        f"(run {run.run_id}, attempt {task.attempt}, {where})"
    )
    outcome = TaskOutcome(task.student_id, task.attempt, None, where=where)
    scratch = Path(tempfile.mkdtemp(prefix="grading-", dir=scratch_root))
    try:
        result = _grade(run, task, scratch, log, outcome, sources)
        log("stages: " + format_stages(outcome.timings))
        log(f"--- done: {result.status} {result.score:g}/{result.max_score:g}")
        outcome.result_json = result.to_json()
    except InfrastructureError as exc:
        outcome.failure = str(exc)
        log(f"INFRASTRUCTURE ERROR: {exc}")
    except Exception as exc:  # noqa: BLE001 - a bug of ours must not become a student's zero
        outcome.failure = f"grader bug: {type(exc).__name__}: {exc}"
        log("INFRASTRUCTURE ERROR (grader bug):\n" + traceback.format_exc())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    outcome.log = log.text()
    return outcome


def _grade(run, task, scratch: Path, log, outcome: TaskOutcome, sources) -> SubmissionResult:
    from autograder.validate import validate_submission

    started = time.monotonic()
    sources = sources if sources is not None else run.source_notebooks()
    base = dict(
        student_id=task.student_id,
        assignment=run.assignment,
        max_score_expected=max_score(sources),
        timestamp=task.timestamp,
    )
    for p in task.problems:
        log(f"intake: {p}")
    folder = scratch / "files"
    folder.mkdir()
    _write_files(folder, task.files)
    try:
        validation = validate_submission(folder, sources, list(task.problems))
    except Ungradable as exc:
        log(f"ungradable: {exc}")
        return SubmissionResult(status="ungradable", reason=str(exc), **base)
    finally:
        outcome.timings["validate"] = time.monotonic() - started
    results, outcome.executed = _score_notebooks(
        validation,
        scorer(run.scorer),
        limits_from_spec(run.limits),
        scratch,
        log,
        outcome.timings,
        {"hidden_key": run.hidden_key} if run.hidden_key else {},
    )
    if results:
        notes = [*validation.notes, *(f"intake: {p}" for p in task.problems)]
        results[0].notes = [*results[0].notes, *notes]
    outcome.timings["total"] = time.monotonic() - started
    return SubmissionResult(
        status="graded", notebooks=results, seconds=time.monotonic() - started, **base
    )
