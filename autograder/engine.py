"""The execute stage's engine: Dask distributed, on this machine or on a cluster.

:class:`DaskEngine` runs :func:`autograder.task.grade_submission` for each task on Dask workers
and yields one :class:`~autograder.task.TaskOutcome` per attempt, as they complete. Without a
scheduler address it starts a ``LocalCluster`` of N worker processes (one thread each) on this
machine; with one (``tcp://host:8786``) it grades on that cluster. The same code runs both.

- **One warm sandbox per worker.** :class:`WarmUp`, a worker plugin registered once per
  cluster, starts the sandbox zygotes and imports torch (for the trusted scorer) when a worker
  starts, in a background thread, and they stay up for every task that worker runs.
- **The run travels once.** :class:`GradingRun`, a worker plugin named after the run, carries
  the :class:`~autograder.task.RunSpec` (source notebooks with hidden tests, limits) to every
  worker, including workers that join later; each task carries only one student's files. The
  plugin is removed when the run ends. A worker needs the pinned environment, not the course.
- **One submission at a time per worker process.** The trusted scorer redirects stdout and
  changes the working directory while a test cell runs (process-wide state), so tasks take a
  process-wide lock: a worker started with several threads grades correctly, one at a time.
- **Failures.** A worker that dies mid-task (kill -9, out of memory, a crash) is noticed by the
  scheduler, which reruns the task on another worker; after ``allowed-failures`` deaths Dask
  gives up (``KilledWorker``) and the submission is reported as an infrastructure failure. A
  task that comes back with *our* failure is resubmitted until ``max_attempts``. A task running
  longer than the run's ``worker_timeout`` makes its worker process exit (its thread cannot be
  stopped otherwise), which Dask treats as a death. The client sees every outcome once.
- **Back-pressure.** At most ``2 × threads`` tasks (at least 4) are out at a time, so neither
  the client nor the scheduler holds a whole class of notebooks in memory. Tasks wait in the
  scheduler's queue, not on a worker (``worker-saturation`` 1.0 on the local cluster).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from dask._task_spec import Task
from distributed import WorkerPlugin

from autograder.task import RunSpec, SubmissionTask, TaskOutcome, grade_submission

logger = logging.getLogger("autograder.engine")

#: Exit status of a worker process that gave up on a hung submission.
WORKER_HUNG = 75
PR_SET_PDEATHSIG = 1
#: Seconds a local cluster may have no worker at all before the run gives up (exit status 3).
NO_WORKERS_LIMIT = 300.0
#: One submission at a time per grader process (see the module docstring).
_GRADING_LOCK = threading.Lock()
_FOREVER = threading.Event()  # never set


class SchedulerUnreachable(Exception):
    """``--scheduler`` names no running scheduler (nothing is graded)."""


class Engine(Protocol):
    """Where the execute stage runs. ``grade`` yields one outcome per attempt, as they finish;
    an outcome with ``retrying`` set will be followed by another for the same student."""

    dashboard: str | None

    def describe(self) -> str: ...

    def grade(self, run: RunSpec, tasks: Iterable[SubmissionTask]) -> Iterator[TaskOutcome]: ...


# ---------------------------------------------------------------- on the workers


class WarmUp(WorkerPlugin):
    """When a worker starts: import the grader and start its sandbox zygotes, for all tasks."""

    idempotent = True  # registered by every run; a worker keeps the warm sandbox it has

    def __init__(self, sandbox: bool = True, die_with_parent: bool = False):
        self.sandbox = sandbox
        self.die_with_parent = die_with_parent  # a local cluster's worker: the client is its parent

    @property
    def name(self) -> str:
        return "autograder-warm-up" + ("" if self.sandbox else "-no-sandbox")

    def setup(self, worker) -> None:
        if self.die_with_parent:
            _die_with_parent()
        # in the background: the worker's event loop must keep answering the scheduler
        thread = threading.Thread(target=_warm_up, args=(self.sandbox,), name=self.name)
        thread.daemon = True
        thread.start()


def _die_with_parent() -> None:
    """Exit when the client that started this worker dies, even by SIGKILL (kill -9 of a run):
    Dask's own parent watch lets a busy worker finish its task first."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the client died before the line above
        os._exit(1)


async def dask_setup(worker) -> None:
    """``dask worker SCHEDULER --preload autograder.engine``: warm up as the worker starts
    (otherwise the first run's registration of :class:`WarmUp` does it)."""
    plugin = WarmUp()
    await worker.plugin_add(plugin, name=plugin.name)


def _warm_up(sandbox: bool) -> None:
    """Only a head start: whatever fails here is done again, lazily, by the first task."""
    with contextlib.suppress(Exception):
        import autograder.validate  # noqa: F401  (nbgrader, nbformat)
    if not sandbox:
        return
    try:
        from autograder import sandbox as sandboxes

        sandboxes.prewarm()
    except Exception:  # noqa: BLE001
        logger.warning("could not start the sandbox zygotes ahead of time", exc_info=True)
    try:
        import torch  # the trusted scorer's test cells compare with torch

        torch.set_num_threads(1)  # one submission per worker thread: no oversubscription
        import autograder.score  # noqa: F401
    except Exception:  # noqa: BLE001
        logger.warning("could not import the trusted scorer ahead of time", exc_info=True)
    # A child's PR_SET_PDEATHSIG (bubblewrap's --die-with-parent) fires when the *thread* that
    # started it ends: this thread started the zygotes, so it lives as long as the worker.
    _FOREVER.wait()


class GradingRun(WorkerPlugin):
    """The run's shared data (source notebooks, limits), held by every worker once."""

    def __init__(self, run: RunSpec):
        self.run = run

    @staticmethod
    def name_for(run_id: str) -> str:
        return f"autograder-run-{run_id}"


def run_task(run_id: str, task: SubmissionTask) -> TaskOutcome:
    """The Dask task: grade one submission with the run's data held by this worker."""
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(GradingRun.name_for(run_id))
    if plugin is None:
        raise RuntimeError(f"grading run {run_id} is not registered on worker {worker.address}")
    with _GRADING_LOCK, _watchdog(plugin.run.worker_timeout, task.student_id):
        return grade_submission(plugin.run, task, Path(worker.local_directory))


@contextlib.contextmanager
def _watchdog(seconds: float, student_id: str):
    timer = threading.Timer(seconds, _give_up, args=(seconds, student_id))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _give_up(seconds: float, student_id: str) -> None:
    logger.error(
        "grading %s took more than %g s: presumed hung; this worker process exits so that Dask "
        "retries the submission elsewhere",
        student_id,
        seconds,
    )
    os._exit(WORKER_HUNG)  # the sandbox zygotes see their channel close and kill their children


# ---------------------------------------------------------------- on the client


class DaskEngine:
    """Grade on a Dask cluster: a LocalCluster of ``workers`` processes, or ``scheduler``'s."""

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int = 1,
        max_attempts: int = 2,
        warm: bool = True,
    ):
        self.scheduler = scheduler
        self.workers = max(1, workers)
        self.max_attempts = max(1, max_attempts)
        self.warm = warm
        self.cluster = None
        self.client = None
        self.dashboard: str | None = None
        self.run_id = ""

    # -- the cluster ----------------------------------------------------------------------------

    def __enter__(self) -> DaskEngine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> DaskEngine:
        from distributed import Client

        if self.scheduler:
            try:  # waits distributed.comm.timeouts.connect (30 s) for the scheduler to answer
                self.client = Client(self.scheduler)
            except (OSError, ValueError) as exc:
                raise SchedulerUnreachable(
                    f"cannot reach the Dask scheduler at {self.scheduler}: {exc}"
                ) from exc
        else:
            warm_up = WarmUp(self.warm, die_with_parent=True)
            self.cluster = _local_cluster(self.workers, self.max_attempts, warm_up)
            self.client = Client(self.cluster)
        if self.scheduler or _has_bokeh():  # a local cluster without bokeh has no dashboard
            self.dashboard = _dashboard_link(self.client)
        return self

    def close(self) -> None:
        for closing in (self.client, self.cluster):
            if closing is not None:
                with contextlib.suppress(Exception):
                    closing.close(timeout=30)
        self.client = self.cluster = None

    def threads(self) -> int:
        return sum(self.client.nthreads().values())

    def describe(self) -> str:
        workers = self.client.nthreads()
        where = f"Dask cluster {self.scheduler}" if self.scheduler else "a local Dask cluster"
        return f"{where}: {len(workers)} worker(s), {sum(workers.values())} thread(s)"

    # -- a run ----------------------------------------------------------------------------------

    def grade(self, run: RunSpec, tasks: Iterable[SubmissionTask]) -> Iterator[TaskOutcome]:
        from distributed import as_completed

        warm_up = WarmUp(sandbox=self.warm)
        self.client.register_plugin(warm_up, name=warm_up.name)
        self.run_id = run.run_id
        plugin = GradingRun.name_for(run.run_id)
        self.client.register_plugin(GradingRun(run), name=plugin)
        todo = iter(tasks)
        out: dict = {}  # future -> task
        done = as_completed()
        try:

            def submit(task: SubmissionTask) -> None:
                key = f"grade-{run.run_id}-{task.student_id}-{task.attempt}"
                # a "data producer" is queued on the scheduler until a worker thread is free
                # (worker-saturation), never parked behind a running task on a worker that may
                # die: only the submission that was running is blamed for a worker's death
                graph = {key: Task(key, run_task, run.run_id, task, _data_producer=True)}
                (future,) = self.client.get(graph, [key], sync=False)
                out[future] = task
                done.add(future)

            def top_up() -> None:
                window = max(4, 2 * self.threads())
                while len(out) < window and (task := next(todo, None)) is not None:
                    submit(task)

            top_up()
            watch = _WorkerWatch(self)
            while out:
                batch = done.next_batch(block=False) if done.has_ready() else []
                if not batch:
                    watch.wait()  # raises NoWorkers rather than wait forever on a dead cluster
                    continue
                for future in batch:
                    task = out.pop(future)
                    outcome, retry = self._outcome(future, task)
                    future.release()
                    if retry and task.attempt < self.max_attempts:
                        outcome.retrying = True
                        submit(dataclasses.replace(task, attempt=task.attempt + 1))
                    yield outcome
                top_up()
        finally:
            for future in out:
                future.cancel()
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(plugin)

    def _outcome(self, future, task: SubmissionTask) -> tuple[TaskOutcome, bool]:
        """(outcome, whether a new attempt may help)."""
        from distributed.scheduler import KilledWorker

        try:
            outcome = future.result()
        except KilledWorker as exc:
            tries = exc.allowed_failures + 1
            why = (
                f"a grader process died while grading it (tried {tries} "
                f"time{'s' if tries != 1 else ''}: killed, out of memory, hung past "
                "--worker-timeout, or crashed); see the Dask workers' logs"
            )
            return _failed(self.run_id, task, why), False
        except Exception as exc:  # noqa: BLE001 - lost or cancelled task, failed unpickling...
            why = f"the Dask task failed: {type(exc).__name__}: {exc}"
            return _failed(self.run_id, task, why), True
        return outcome, bool(outcome.failure)


class NoWorkers(OSError):
    """The local cluster has had no worker for too long (its processes cannot start)."""


class _WorkerWatch:
    """Between completions: a local cluster whose workers all died and did not come back within
    NO_WORKERS_LIMIT seconds fails the run (rerun grades the rest) instead of hanging it. A
    remote cluster may be scaling up from zero: there we only wait."""

    def __init__(self, engine: DaskEngine):
        self.engine = engine
        self.last_seen = time.monotonic()
        self.next_check = 0.0

    def wait(self) -> None:
        time.sleep(0.05)
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + 5.0
        if self.engine.client.nthreads():
            self.last_seen = now
        elif not self.engine.scheduler and now - self.last_seen > NO_WORKERS_LIMIT:
            raise NoWorkers(
                f"no Dask worker for {NO_WORKERS_LIMIT:g} s: the local cluster's worker "
                "processes died and could not be restarted"
            )


def _failed(run_id: str, task: SubmissionTask, why: str) -> TaskOutcome:
    log = (
        f"--- grading {task.student_id} (run {run_id}, attempt {task.attempt})\n"
        f"INFRASTRUCTURE ERROR: {why}\n"
    )
    return TaskOutcome(task.student_id, task.attempt, None, failure=why, log=log)


def _local_cluster(workers: int, max_attempts: int, warm_up: WarmUp):
    import dask
    from distributed import LocalCluster

    config = {
        # a worker that died while grading a submission counts against that submission
        "distributed.scheduler.allowed-failures": max_attempts - 1,
        # one task per worker thread: a queued bystander is not blamed for its worker's death
        "distributed.scheduler.worker-saturation": 1.0,
        # the statistical profiler samples the grading thread every 10 ms: it competes for the
        # GIL with a grader that waits on hundreds of sandbox round trips per notebook
        "distributed.worker.profile.enabled": False,
    }
    with dask.config.set(config):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",  # its HTTP server runs anyway: loopback only
            worker_dashboard_address=None,
            silence_logs=logging.ERROR,
            plugins=(warm_up,),  # warm up while the cluster starts, and on every restart
        )


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _dashboard_link(client) -> str | None:
    try:
        return client.dashboard_link
    except (KeyError, AttributeError, TypeError):  # the scheduler runs no dashboard
        return None
