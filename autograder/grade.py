"""`python -m autograder grade ASSIGNMENT SUBMISSIONS`: grade a class, in parallel, resumably.

The run is a pipeline of stages; only *execute* leaves this process:

1. **intake** (:mod:`autograder.intake`, here) — the zip or folder, staged one clean folder per
   student;
2. **validate → execute → score** — per submission, on a Dask worker
   (:mod:`autograder.engine` runs :func:`autograder.task.grade_submission`): the student's
   notebooks are matched and checked against the source, run in the sandbox, and the source's
   test cells scored by the trusted grader. A task carries one student's files; the results
   (scores, messages, executed notebooks, log) come back as data;
3. **record** (:mod:`autograder.ledger`, :mod:`autograder.record`, here) — gradebook,
   ``grades.csv``, feedback, Gradescope JSON. Workers never write any of these.

Without ``--scheduler`` the grader starts a Dask ``LocalCluster`` of ``--workers N`` processes;
with ``--scheduler tcp://HOST:8786`` it grades on that cluster. Either way each worker keeps a
warm sandbox (torch imported, zygote running) for all its tasks, while every student still gets
a freshly forked sandbox.

Output folder (default ``<course>/autograded/<ASSIGNMENT>/``)::

    grades.csv                                one row per student
    intake.txt                                every refused input entry, with its reason
    students/<student>/feedback.html          per-test pass/fail, message, points
    students/<student>/results.json           Gradescope format
    students/<student>/grading.log            every attempt of the workers, with stage timings
    students/<student>/<notebook>.ipynb       the executed notebook (outputs, plots; sanitized)
    students/<student>/result.json            the full result; "done" (a rerun skips it)

Without ``--db`` (scores go to the course's own gradebook) the executed notebooks are also
copied to nbgrader's ``<course>/autograded/<student>/<assignment>/``, so formgrader lists the
submission as autograded and opens it.

Our failures are never a student's zero. A worker killed mid-task is replaced and the task rerun
elsewhere; a submission during which workers keep dying, or whose grading keeps failing, is
reported as "infrastructure failure" after ``--max-attempts`` tries, with an empty score, and
regraded by the next run (exit status 3). Killing the whole run and rerunning grades each
remaining submission once: a result that came back is recorded without regrading, and
recording is idempotent.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from autograder.results import SubmissionResult
from autograder.task import SCORER_ENV, limits_from_spec, max_score


class UsageError(Exception):
    """The run cannot start (bad arguments, no submissions...): exit status 2."""


# ---------------------------------------------------------------- arguments


def add_grade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help="assignment name, a folder of source/ (e.g. 01_anatomy)")
    parser.add_argument(
        "submissions",
        help="folder (nbgrader submitted/<student>/<assignment>/, <student>/...) or LMS zip",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on this running Dask cluster (e.g. tcp://10.0.0.5:8786) instead of a local one",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes of the local cluster (without --scheduler); default: all cores",
    )
    parser.add_argument("--out", help="output folder (default: <course>/autograded/<assignment>)")
    parser.add_argument("--db", help="gradebook (sqlite file or URL; default: nbgrader_config.py)")
    parser.add_argument("--course", help="course root holding source/ (default: this checkout)")
    parser.add_argument("--force", action="store_true", help="regrade finished submissions too")
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="sandbox limit (a field of autograder.sandbox.Limits), e.g. --limit cell_timeout=60",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=2,
        help="tries per submission when our side fails (a worker dies, the grader errs) before "
        "it is reported as an infrastructure failure (on --scheduler clusters, worker deaths "
        "are bounded by the scheduler's distributed.scheduler.allowed-failures)",
    )
    parser.add_argument(
        "--worker-timeout",
        type=float,
        default=3600.0,
        help="seconds after which a worker grading one submission is presumed hung and restarted",
    )
    parser.add_argument("--max-file-mb", type=float, default=20.0, help="largest accepted file")
    parser.add_argument(
        "--max-total-mb", type=float, default=500.0, help="cap on all submissions uncompressed"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run student code without isolation when this machine allows none (not root, no "
        "user namespaces): only for submissions you trust",
    )
    parser.add_argument(
        "--similarity",
        action="store_true",
        help="then write similarity.csv/.html for the same submissions (status 4 if that fails)",
    )
    from autograder.similarity import add_report_options

    add_report_options(parser, prefix="similarity-")


# ---------------------------------------------------------------- the plan


@dataclass
class Plan:
    """Everything the run needs to know before it touches a submission."""

    root: Path  # the course
    assignment: str
    sources: dict[str, Path]  # notebook name -> source/<assignment>/<name>.ipynb
    out: Path
    db_url: str
    course_id: str
    limits: dict[str, str]
    nbgrader_autograded: Path | None  # nbgrader's autograded/ to fill, or None (with --db)


def plan_run(args: argparse.Namespace) -> Plan:
    from autograder import record
    from autograder.course import course_root

    root = Path(args.course).resolve() if args.course else course_root()
    src_dir = root / "source" / args.assignment
    nb_paths = sorted(src_dir.glob("*.ipynb")) if src_dir.is_dir() else []
    if not nb_paths:
        raise UsageError(f"no notebooks in {src_dir}")
    db_url, course_id = _course_settings(root)
    out = Path(args.out).resolve() if args.out else root / "autograded" / args.assignment
    return Plan(
        root=root,
        assignment=args.assignment,
        sources={p.stem: p for p in nb_paths},
        out=out,
        db_url=record.db_url_for(args.db) if args.db else db_url,
        course_id=course_id,
        limits=_limit_options(args.limit),
        nbgrader_autograded=None if args.db else root / "autograded",
    )


def _limit_options(items: list[str]) -> dict[str, str]:
    spec = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--limit wants NAME=VALUE, got {item!r}")
        spec[name.strip()] = value.strip()
    try:
        limits_from_spec(spec)  # fail now, not on every worker
    except SystemExit as exc:
        raise UsageError(str(exc).removeprefix("error: ")) from None
    return spec


def _course_settings(root: Path) -> tuple[str, str]:
    """(db_url, course_id) from the course's nbgrader_config.py."""
    db_url = "sqlite:///" + str(root / "gradebook.db")
    course_id = "default_course"
    cfg_file = root / "nbgrader_config.py"
    if cfg_file.is_file():
        from traitlets.config.loader import PyFileConfigLoader

        cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        cd = cfg.get("CourseDirectory", {})
        if cd.get("course_id"):
            course_id = str(cd["course_id"])
        if cd.get("db_url") and Path(str(cd.get("root", root))).resolve() == root.resolve():
            db_url = str(cd["db_url"])
    return db_url, course_id


@contextlib.contextmanager
def _exclusive(out: Path):
    """Hold ``out/.lock`` for the run: two runs must not grade into one folder."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"another grading run is using {out}") from None
        yield


# ---------------------------------------------------------------- stage 1: intake


def intake_stage(args: argparse.Namespace, plan: Plan):
    from autograder.intake import IntakeError, intake

    try:
        staged = intake(
            Path(args.submissions),
            plan.assignment,
            plan.out / ".intake",
            max_file_bytes=int(args.max_file_mb * 1024 * 1024),
            max_total_bytes=int(args.max_total_mb * 1024 * 1024),
        )
    except IntakeError as exc:
        raise UsageError(str(exc)) from exc
    from autograder import record

    for problem in staged.problems:
        print(f"intake: {problem}", file=sys.stderr)
    record.write_intake_report(
        plan.out / "intake.txt",
        staged.problems,
        {sid: st.problems for sid, st in staged.students.items()},
    )
    if not staged.students:  # a readable input without this assignment: an empty class
        print("no submissions of this assignment found in the input", file=sys.stderr)
    return staged


def open_ledger(plan: Plan, source_nbs: dict, staged):
    from autograder import record
    from autograder.ledger import Ledger

    try:
        record.prepare_gradebook(plan.db_url, plan.course_id, plan.assignment, source_nbs)
    except RuntimeError as exc:
        raise UsageError(f"gradebook: {exc}") from exc
    return Ledger(
        plan.out,
        plan.assignment,
        plan.db_url,
        plan.course_id,
        list(plan.sources),
        plan.nbgrader_autograded,
        notes={sid: st.notes for sid, st in staged.students.items()},
    )


# ---------------------------------------------------------------- stages 2-4: on the engine


def closing_engine(args, count: int):
    """The engine for ``count`` submissions, started (its workers warm up their sandboxes and
    torch in the background), as a context manager that closes it."""
    from autograder.engine import DaskEngine, SchedulerUnreachable

    engine = DaskEngine(
        scheduler=args.scheduler,
        workers=min(args.workers, max(1, count)),
        max_attempts=args.max_attempts,
        warm=not os.environ.get(SCORER_ENV),  # a stand-in scorer (tests) needs no sandbox
    )
    try:
        engine.start()
    except SchedulerUnreachable as exc:
        raise UsageError(str(exc)) from exc
    return contextlib.closing(engine)


def execute_stage(args, plan: Plan, staged, todo: list[str], ledger, total: float, engine) -> int:
    """Grade ``todo`` on the engine, recording each result as it arrives; returns failures."""
    from tqdm import tqdm

    from autograder.secret import assignment_key
    from autograder.task import RunSpec, SubmissionTask

    run = RunSpec(
        run_id=uuid.uuid4().hex[:12],
        assignment=plan.assignment,
        sources={name: path.read_bytes() for name, path in plan.sources.items()},
        limits=plan.limits,
        scorer=os.environ.get(SCORER_ENV, ""),
        worker_timeout=args.worker_timeout,
        hidden_key=assignment_key(plan.root, plan.assignment),
    )
    tasks = (  # read lazily: the engine asks for a task when a worker can take it
        SubmissionTask.from_folder(sid, st.folder, st.timestamp, st.problems)
        for sid, st in ((sid, staged.students[sid]) for sid in todo)
    )
    failures = 0
    _announce(engine, len(todo))
    bar = tqdm(
        total=len(todo), unit="sub", desc=f"grading {plan.assignment}", disable=args.no_progress
    )
    with bar:
        for outcome in engine.grade(run, tasks):
            failures += _record_outcome(outcome, ledger, total, bar)
            ledger.write_csv(now=False)
    return failures


def _announce(engine, count: int) -> None:
    print(f"grading {count} submission(s) on {engine.describe()}", file=sys.stderr)
    if engine.dashboard:
        print(f"Dask dashboard: {engine.dashboard}", file=sys.stderr)


def _record_outcome(outcome, ledger, total: float, bar) -> int:
    """Keep one outcome; 1 if it is a final infrastructure failure."""
    from autograder import record

    sid = outcome.student_id
    if outcome.retrying:
        ledger.log_attempt(outcome)
        bar.write(f"{sid}: {outcome.failure}; retrying", file=sys.stderr)
        return 0
    bar.update(1)
    if outcome.failure:
        ledger.report_failure(outcome, total)
        bar.write(f"{sid}: {record.INFRA}: {outcome.failure}", file=sys.stderr)
        return 1
    ledger.keep(outcome)
    return 0


# ---------------------------------------------------------------- the pipeline


def run_grade(args: argparse.Namespace) -> int:
    _put_own_bin_on_path()
    for stream in (sys.stdout, sys.stderr):  # student names must never crash a print
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    try:
        plan = plan_run(args)
        _require_isolation(args, plan)
        with _exclusive(plan.out):
            return _grade_class(args, plan)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _require_isolation(args: argparse.Namespace, plan: Plan) -> None:
    """Refuse to run student code where nothing can isolate it, unless told to; lock down."""
    if os.environ.get(SCORER_ENV):  # a stand-in scorer (tests) runs no student code
        return
    from autograder import sandbox

    if args.unsafe_no_sandbox:
        sandbox.allow_unsafe()  # inherited by the grader processes this run starts
    refused = sandbox.refusal()
    if refused:
        raise UsageError(refused)
    # without namespaces the sandbox's uid must not read these (with them they are never bound)
    sandbox.protect(plan.root, plan.out, Path(args.submissions))


def _grade_class(args: argparse.Namespace, plan: Plan) -> int:
    from autograder.ledger import needs_grading
    from autograder.validate import load_notebook

    started = time.monotonic()
    staged = intake_stage(args, plan)
    failures = 0
    with contextlib.ExitStack() as stack:
        engine = None
        pending = needs_grading(plan.out, staged.students, args.force)
        try:  # first: the workers warm up while the gradebook is prepared
            engine = stack.enter_context(closing_engine(args, pending)) if pending else None
        except OSError as exc:
            return _cluster_failed(exc, None)
        source_nbs = {name: load_notebook(path) for name, path in plan.sources.items()}
        ledger = open_ledger(plan, source_nbs, staged)
        stack.callback(ledger.close)
        todo, skipped = ledger.resume(sorted(staged.students), args.force)
        if skipped:
            print(
                f"{skipped} submission(s) already graded (use --force to regrade)", file=sys.stderr
            )
        if todo:
            try:
                engine = engine or stack.enter_context(closing_engine(args, len(todo)))
                total = max_score(source_nbs)
                failures = execute_stage(args, plan, staged, todo, ledger, total, engine)
            except OSError as exc:  # the cluster could not be reached, or went away mid-run
                return _cluster_failed(exc, ledger)
    ledger.write_csv()
    status = _summary(plan, ledger, failures, time.monotonic() - started)
    if args.similarity:  # the similarity report of the same submissions, in its own process
        from autograder import similarity

        if similarity.after_grading(args, plan.root, plan.out) != 0 and status == 0:
            return 4
    return status


def _cluster_failed(exc: OSError, ledger) -> int:
    if ledger is not None:
        ledger.write_csv()
    print(
        f"error: the Dask cluster failed ({type(exc).__name__}: {exc}); what was graded is "
        "recorded: rerun to grade the rest",
        file=sys.stderr,
    )
    return 3


def _summary(plan: Plan, ledger, failures: int, seconds: float) -> int:
    _print_table(ledger.results())
    print(f"\ngrades: {plan.out / 'grades.csv'}\ngradebook: {plan.db_url}", flush=True)
    means = ledger.stage_means()
    if means:
        from autograder.task import format_stages

        stages = format_stages(means)
        print(f"{len(ledger.timings)} graded in {seconds:.1f} s; mean per submission: {stages}")
    failures += len(ledger.not_recorded)
    if failures:
        print(
            f"{failures} submission(s) hit an infrastructure failure (not recorded); "
            "rerun to retry",
            file=sys.stderr,
        )
        return 3
    return 0


def _put_own_bin_on_path() -> None:
    # nbgrader's Gradebook shells out to `alembic`: this interpreter's bin must be on PATH
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _print_table(results: list[SubmissionResult]) -> None:
    width = max([7, *(len(r.student_id) for r in results)])
    print(f"{'student':<{width}}  {'score':>11}  status")
    for r in sorted(results, key=lambda r: r.student_id):
        score = (
            f"{r.score:g}/{r.max_score:g}"
            if r.status == "graded"
            else (f"0/{r.max_score:g}" if r.status == "ungradable" else f"-/{r.max_score:g}")
        )
        why = f": {r.reason}" if r.reason else ""
        print(f"{r.student_id:<{width}}  {score:>11}  {r.status}{why}")
