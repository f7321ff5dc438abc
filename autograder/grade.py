"""`python -m autograder grade ASSIGNMENT SUBMISSIONS`: grade a class, in parallel, resumably.

Stages: intake (autograder.intake) → per submission, in a worker process: validate
(autograder.validate), execute + score (autograder.score.grade_notebook) → in this process only:
record (autograder.record: gradebook, grades.csv, feedback.html, results.json).

``--workers N`` worker processes grade N submissions at once. A worker is reused for the next
submission (torch stays imported in the trusted grader and the sandbox zygote stays warm; every
student still gets a freshly forked sandbox) and replaced after any failure.

Output folder (default ``<course>/autograded/<ASSIGNMENT>/``)::

    grades.csv                                one row per student
    intake.txt                                every refused input entry, with its reason
    students/<student>/feedback.html          per-test pass/fail, message, points
    students/<student>/results.json           Gradescope format
    students/<student>/grading.log            what the worker did
    students/<student>/<notebook>.ipynb       the executed notebook (outputs, plots; sanitized)
    students/<student>/result.json            the full result; "done" (a rerun skips it)

Without ``--db`` (scores go to the course's own gradebook) the executed notebooks are also
copied to nbgrader's ``<course>/autograded/<student>/<assignment>/``, so formgrader lists the
submission as autograded and opens it.

A worker killed (kill -9, crash, our bug) is detected by its parent (the answer pipe closes):
the submission is retried once on a new worker, then reported as "infrastructure failure" —
never recorded as a zero, and regraded by the next run. Killing the whole run and rerunning
grades each remaining submission once: a finished worker's result is recorded without
regrading, and recording is idempotent.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import dataclasses
import fcntl
import importlib
import json
import os
import select
import shutil
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from autograder.results import (
    InfrastructureError,
    NotebookResult,
    SubmissionResult,
    TestResult,
    Ungradable,
)

RESULT = "result.json"
WORKER_RESULT = ".worker_result.json"
WORKER_FAILED = 3
#: Tries of one submission per run when our side fails (then: infrastructure failure, no score).
MAX_ATTEMPTS = 2
# Tests may point the grader at a stand-in scorer while the sandbox is not needed (module:function).
SCORER_ENV = "AUTOGRADER_TEST_SCORER"


# ---------------------------------------------------------------- arguments


def add_grade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help="assignment name, a folder of source/ (e.g. 01_anatomy)")
    parser.add_argument(
        "submissions",
        help="folder (nbgrader submitted/<student>/<assignment>/, <student>/...) or LMS zip",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="submissions graded at once"
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
        "--worker-timeout",
        type=float,
        default=3600.0,
        help="seconds after which a worker is presumed hung (infrastructure failure)",
    )
    parser.add_argument("--max-file-mb", type=float, default=20.0, help="largest accepted file")
    parser.add_argument(
        "--max-total-mb", type=float, default=500.0, help="cap on all submissions uncompressed"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--similarity",
        action="store_true",
        help="then write similarity.csv/.html for the same submissions (status 4 if that fails)",
    )
    from autograder.similarity import add_report_options

    add_report_options(parser, prefix="similarity-")


# ---------------------------------------------------------------- the worker (one submission)


def _scorer():
    spec = os.environ.get(SCORER_ENV)
    if spec:
        mod, fn = spec.split(":")
        return getattr(importlib.import_module(mod), fn)
    from autograder.score import grade_notebook

    return grade_notebook


def _limits(spec: dict):
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


def _test_cells(source_nb) -> list[TestResult]:
    from autograder.validate import HIDDEN_BEGIN, grade_id, is_test_cell

    out = []
    for cell in source_nb.cells:
        if is_test_cell(cell):
            pts = float(cell.metadata.nbgrader.get("points", 0))
            out.append(
                TestResult(grade_id(cell), 0.0, pts, False, "", hidden=HIDDEN_BEGIN in cell.source)
            )
    return out


def max_score(sources: dict) -> float:
    return sum(t.max_points for nb in sources.values() for t in _test_cells(nb))


def _zero_notebook(name: str, source_nb, why: str) -> NotebookResult:
    tests = _test_cells(source_nb)
    for t in tests:
        t.message = f"not run: {why}"
    return NotebookResult(notebook=name, tests=tests, notes=[why])


def _keep_sanitized(executed: Path, kept: Path) -> None:
    """The executed notebook for feedback and formgrader, its student output sanitized."""
    import nbformat

    from autograder.sanitize import clean_notebook

    nb = nbformat.read(str(executed), as_version=4)
    nbformat.write(clean_notebook(nb), str(kept))


def grade_one(job: dict, log=print) -> SubmissionResult:
    """Validate, execute and score one student's submission. Raises InfrastructureError."""
    from autograder.validate import load_notebook, validate_submission

    start = time.monotonic()
    sources = {name: load_notebook(Path(p)) for name, p in job["sources"].items()}
    base = dict(
        student_id=job["student_id"],
        assignment=job["assignment"],
        max_score_expected=max_score(sources),
        timestamp=job.get("timestamp"),
    )
    problems = list(job.get("problems", []))
    folder = Path(job["folder"])
    out_dir = Path(job["out_dir"])
    for p in problems:
        log(f"intake: {p}")
    try:
        val = validate_submission(folder, sources, problems)
    except Ungradable as exc:
        log(f"ungradable: {exc}")
        return SubmissionResult(status="ungradable", reason=str(exc), **base)

    grade_notebook = _scorer()
    limits = _limits(job.get("limits", {}))
    results: list[NotebookResult] = []
    for v in val.notebooks:
        if v.student_nb is None:
            log(f"{v.name}: {v.problem}")
            results.append(_zero_notebook(v.name, v.source_nb, v.problem))
            continue
        for note in v.notes:
            log(f"{v.name}: {note}")
        workdir = Path(job["work_dir"]) / v.name
        if workdir.exists():
            shutil.rmtree(workdir)
        shutil.copytree(folder, workdir, symlinks=True)
        for stale in workdir.rglob("*.ipynb"):  # the notebook under grading is handed over as nb
            stale.unlink()
        try:
            res = grade_notebook(v.source_nb, v.student_nb, workdir, limits, v.name, log=log)
        except Ungradable as exc:
            log(f"{v.name}: ungradable: {exc}")
            res = _zero_notebook(v.name, v.source_nb, f"ungradable: {exc}")
        res.notes = [*v.notes, *res.notes]
        if res.executed_path and Path(res.executed_path).is_file():
            kept = out_dir / f"{v.name}.ipynb"
            _keep_sanitized(Path(res.executed_path), kept)
            res.executed_path = str(kept)
        results.append(res)
    if results:
        results[0].notes = [*results[0].notes, *val.notes, *(f"intake: {p}" for p in problems)]
    shutil.rmtree(job["work_dir"], ignore_errors=True)
    return SubmissionResult(
        status="graded", notebooks=results, seconds=time.monotonic() - start, **base
    )


def worker_main(job_path: str) -> int:
    """Grade one job file; exit status 0 when its result was written."""
    job = json.loads(Path(job_path).read_text())
    out_dir = Path(job["out_dir"])
    with open(out_dir / "grading.log", "a", buffering=1, encoding="utf-8") as log_file:

        def log(*parts) -> None:
            log_file.write(" ".join(str(p) for p in parts) + "\n")

        log(f"--- grading {job['student_id']} / {job['assignment']} (pid {os.getpid()})")
        try:
            result = grade_one(job, log=log)
        except InfrastructureError as exc:
            log(f"INFRASTRUCTURE ERROR: {exc}")
            return WORKER_FAILED
        except Exception:
            log("INFRASTRUCTURE ERROR (grader bug):\n" + traceback.format_exc())
            return WORKER_FAILED
        result.write(out_dir / WORKER_RESULT)
        log(f"--- done: {result.status} {result.score:g}/{result.max_score:g}")
    return 0


def _prewarm() -> None:
    """Start the sandbox zygotes and import torch while the first job is on its way.

    Only a head start: anything that fails here is done again, lazily, by the scorer.
    """

    def zygote(torch: bool) -> None:
        with contextlib.suppress(Exception):
            from autograder.sandbox import Zygote

            z = Zygote.get(torch)
            with z.lock:
                if z.process is None or z.process.poll() is not None:
                    z._start()

    threads = [threading.Thread(target=zygote, args=(t,), daemon=True) for t in (True, False)]
    for t in threads:
        t.start()
    with contextlib.suppress(Exception):
        import torch  # noqa: F401  (the trusted grader's test cells compare with torch)

        import autograder.score  # noqa: F401


def serve(job_fd: int, result_fd: int) -> int:
    """A long-lived worker: read job paths (one per line), answer "0"/"3" per job.

    Reusing the worker across submissions keeps torch imported and the sandbox zygote warm;
    every student still gets a fresh sandbox child. EOF on the job pipe ends the worker.
    """
    jobs = os.fdopen(job_fd, "r", buffering=1)
    answers = os.fdopen(result_fd, "w", buffering=1)
    if not os.environ.get(SCORER_ENV):  # a stand-in scorer (tests) needs no sandbox or torch
        threading.Thread(target=_prewarm, daemon=True).start()
    try:
        for line in jobs:
            path = line.strip()
            if path:
                rc = worker_main(path)
                answers.write(f"{rc}\n")
                if rc != 0:
                    return rc  # a failed sandbox may leave state behind: start afresh
    finally:
        with contextlib.suppress(Exception):
            from autograder.sandbox import Zygote

            Zygote.shutdown_all()
    return 0


# ---------------------------------------------------------------- the parent


class Worker:
    """A worker process owned by one thread of the pool; replaced when it dies or fails."""

    def __init__(self, log_path: Path):
        job_r, self.job_w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.log = open(log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.grade", "--serve", str(job_r), str(res_w)],
            pass_fds=(job_r, res_w),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        os.close(job_r)
        os.close(res_w)
        self.buffer = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, job_path: Path, timeout: float) -> int:
        """Send one job, wait for its answer; InfrastructureError if the worker dies or hangs."""
        try:
            os.write(self.job_w, (str(job_path) + "\n").encode())
        except OSError as exc:
            raise InfrastructureError(f"worker gone ({exc})") from exc
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close(kill=True)
                raise InfrastructureError(f"worker hung for more than {timeout:g} s; killed")
            ready, _, _ = select.select([self.res_r], [], [], min(left, 5.0))
            if ready:
                chunk = os.read(self.res_r, 64)
                if not chunk:
                    rc = self.proc.wait()
                    how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
                    self.close()
                    raise InfrastructureError(f"worker died ({how}); see grading.log")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return int(line or b"1")

    def close(self, kill: bool = False) -> None:
        with contextlib.suppress(OSError):
            os.close(self.job_w)
        if kill:
            with contextlib.suppress(OSError):
                self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=30)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.res_r)
        self.log.close()


class WorkerPool:
    """One Worker per grading thread, started lazily, replaced after a failure."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.local = threading.local()
        self.all: list[Worker] = []
        self.lock = threading.Lock()
        self.count = 0

    def run(self, job_path: Path, out_dir: Path, timeout: float) -> SubmissionResult:
        (out_dir / WORKER_RESULT).unlink(missing_ok=True)
        worker = getattr(self.local, "worker", None)
        if worker is None or not worker.alive():
            with self.lock:
                self.count += 1
                n = self.count
            self.log_dir.mkdir(parents=True, exist_ok=True)
            worker = Worker(self.log_dir / f"worker-{n}.log")
            self.local.worker = worker
            with self.lock:
                self.all.append(worker)
        (out_dir / "worker.pid").write_text(str(worker.proc.pid))
        try:
            rc = worker.run(job_path, timeout)
        except InfrastructureError:
            self.local.worker = None
            raise
        finally:
            (out_dir / "worker.pid").unlink(missing_ok=True)
        if rc != 0:
            worker.close()
            self.local.worker = None
            raise InfrastructureError(f"the grader failed (status {rc}); see grading.log")
        try:
            return SubmissionResult.from_json((out_dir / WORKER_RESULT).read_text())
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InfrastructureError(f"worker left no readable result ({exc})") from exc

    def close(self) -> None:
        for w in self.all:
            with contextlib.suppress(Exception):
                w.close()


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


def run_grade(args: argparse.Namespace) -> int:
    from autograder import record, similarity
    from autograder.course import course_root
    from autograder.intake import IntakeError, intake

    for stream in (sys.stdout, sys.stderr):  # student names must never crash a print
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    # nbgrader's Gradebook shells out to `alembic`: this interpreter's bin must be on PATH.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    root = Path(args.course).resolve() if args.course else course_root()
    assignment = args.assignment
    src_dir = root / "source" / assignment
    nb_paths = sorted(p for p in src_dir.glob("*.ipynb")) if src_dir.is_dir() else []
    if not nb_paths:
        print(f"error: no notebooks in {src_dir}", file=sys.stderr)
        return 2
    sources = {p.stem: str(p) for p in nb_paths}
    out = Path(args.out).resolve() if args.out else root / "autograded" / assignment
    out.mkdir(parents=True, exist_ok=True)
    db_url, course_id = _course_settings(root)
    if args.db:
        db_url = record.db_url_for(args.db)
    limits_spec = {}
    for item in args.limit:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"error: --limit wants NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        limits_spec[name.strip()] = value.strip()
    if limits_spec:
        _limits(limits_spec)  # fail now, not in every worker

    lock = open(out / ".lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"error: another grading run is using {out}", file=sys.stderr)
        return 2

    try:
        staged = intake(
            Path(args.submissions),
            assignment,
            out / ".intake",
            max_file_bytes=int(args.max_file_mb * 1024 * 1024),
            max_total_bytes=int(args.max_total_mb * 1024 * 1024),
        )
    except IntakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in staged.problems:
        print(f"intake: {p}", file=sys.stderr)
    record.write_intake_report(
        out / "intake.txt", staged.problems, {s: st.problems for s, st in staged.students.items()}
    )
    if not staged.students:
        print("no submissions of this assignment found in the input", file=sys.stderr)

    from autograder.validate import load_notebook

    source_nbs = {name: load_notebook(Path(p)) for name, p in sources.items()}
    total = max_score(source_nbs)
    try:
        record.prepare_gradebook(db_url, course_id, assignment, source_nbs)
    except RuntimeError as exc:
        print(f"error: gradebook: {exc}", file=sys.stderr)
        return 2

    final: dict[str, SubmissionResult] = {}
    todo: list[dict] = []
    pending_record: list[SubmissionResult] = []
    for sid, st in sorted(staged.students.items()):
        sdir = record.student_dir(out, sid)
        sdir.mkdir(parents=True, exist_ok=True)
        if args.force:
            for f in (RESULT, WORKER_RESULT):
                (sdir / f).unlink(missing_ok=True)
        done = sdir / RESULT
        if done.is_file():
            try:
                final[sid] = SubmissionResult.from_json(done.read_text())
                continue
            except (ValueError, TypeError, KeyError):
                done.unlink()
        if (sdir / WORKER_RESULT).is_file():
            try:  # graded by a run that was killed before recording it: record, don't regrade
                pending_record.append(
                    SubmissionResult.from_json((sdir / WORKER_RESULT).read_text())
                )
                continue
            except (ValueError, TypeError, KeyError):
                pass
        job = {
            "student_id": sid,
            "assignment": assignment,
            "folder": str(st.folder),
            "sources": sources,
            "out_dir": str(sdir),
            "work_dir": str(out / ".work" / sid),
            "limits": limits_spec,
            "timestamp": st.timestamp,
            "problems": st.problems,
        }
        job_path = sdir / ".job.json"
        job_path.write_text(json.dumps(job))
        todo.append(job)

    record_failures = []
    # Recording into the course's own gradebook: also fill nbgrader's autograded/<student>/
    # <assignment>/ so formgrader counts the submission as autograded and can open it.
    nbgrader_autograded = None if args.db else root / "autograded"

    def finish(result: SubmissionResult) -> None:
        sdir = record.student_dir(out, result.student_id)
        try:
            record.record_submission(db_url, course_id, result)
            record.write_student_files(sdir, result)
        except Exception as exc:  # e.g. the gradebook is locked: keep the result, record later
            record_failures.append(result.student_id)
            print(
                f"{result.student_id}: graded but not recorded ({type(exc).__name__}: {exc}); "
                "rerun to record it",
                file=sys.stderr,
            )
            final[result.student_id] = dataclasses.replace(
                result, status=record.INFRA, reason=f"not recorded: {exc}"
            )
            return
        if nbgrader_autograded is not None:
            _nbgrader_copy(nbgrader_autograded, assignment, result)
        result.write(sdir / RESULT)
        (sdir / WORKER_RESULT).unlink(missing_ok=True)
        final[result.student_id] = result

    def write_csv() -> None:
        rows = [final[s] for s in staged.students if s in final]
        notes = {sid: st.notes for sid, st in staged.students.items()}
        record.write_grades_csv(out / "grades.csv", rows, list(sources), notes)

    for result in pending_record:
        finish(result)

    skipped = len(final) - len(pending_record)
    if skipped:
        print(f"{skipped} submission(s) already graded (use --force to regrade)", file=sys.stderr)

    failures = 0
    if todo:
        from tqdm import tqdm

        bar = tqdm(
            total=len(todo), unit="sub", desc=f"grading {assignment}", disable=args.no_progress
        )
        workers = max(1, min(args.workers, len(todo)))
        attempts: dict[str, int] = {}
        workers_pool = WorkerPool(out / ".workers")
        with contextlib.ExitStack() as stack, cf.ThreadPoolExecutor(workers) as pool:
            stack.callback(workers_pool.close)
            futures = {}

            def submit(job: dict) -> None:
                attempts[job["student_id"]] = attempts.get(job["student_id"], 0) + 1
                fut = pool.submit(
                    workers_pool.run,
                    record.student_dir(out, job["student_id"]) / ".job.json",
                    record.student_dir(out, job["student_id"]),
                    args.worker_timeout,
                )
                futures[fut] = job

            for job in todo:
                submit(job)
            while futures:
                finished, _ = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    job = futures.pop(fut)
                    sid = job["student_id"]
                    try:
                        result = fut.result()
                    except InfrastructureError as exc:
                        if attempts[sid] < MAX_ATTEMPTS:
                            bar.write(f"{sid}: {exc}; retrying", file=sys.stderr)
                            submit(job)
                            continue
                        failures += 1
                        bar.write(f"{sid}: {record.INFRA}: {exc}", file=sys.stderr)
                        result = SubmissionResult(
                            student_id=sid,
                            assignment=assignment,
                            status=record.INFRA,
                            reason=str(exc),
                            max_score_expected=total,
                        )
                        final[sid] = result
                        record.write_student_files(record.student_dir(out, sid), result)
                        bar.update(1)
                        write_csv()
                        continue
                    finish(result)
                    bar.update(1)
                    write_csv()
        bar.close()

    write_csv()
    with contextlib.suppress(OSError):
        shutil.rmtree(out / ".work")
    _print_table([final[s] for s in staged.students if s in final])
    print(f"\ngrades: {out / 'grades.csv'}\ngradebook: {db_url}", flush=True)
    # --similarity: the similarity report of the same submissions, in its own process
    similarity_failed = args.similarity and similarity.after_grading(args, root, out) != 0
    failures += len(record_failures)
    if failures:
        print(
            f"{failures} submission(s) hit an infrastructure failure (not recorded); "
            "rerun to retry",
            file=sys.stderr,
        )
        return 3
    return 4 if similarity_failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2]))
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        sys.exit(serve(int(sys.argv[2]), int(sys.argv[3])))
    sys.exit("usage: python -m autograder grade ASSIGNMENT SUBMISSIONS (see --help)")
