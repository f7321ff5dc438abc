"""A real Dask cluster on 127.0.0.1 for tests: `dask scheduler` and `dask worker` processes.

Started as a grader would start them by hand (README, "Grading past one machine"), with the
scheduler settings the README recommends. The workers run in an environment that has the
installed packages but no course checkout: their working directory is an empty folder and
their ``sys.path`` holds a copy of the ``autograder`` and ``course`` packages (what
``pip install`` puts in site-packages), not this repository.

Every process is started through a launcher that asks the kernel to SIGKILL it when the test
process dies (PR_SET_PDEATHSIG survives exec), in a session of its own that
:meth:`DaskCluster.stop` kills whole; the workers also exit when the scheduler goes away
(``--death-timeout``). So no Dask process outlives the tests, even if pytest is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASK = str(Path(sys.executable).parent / "dask")
# Recommended for grading in the README: one queued task per worker thread, two tries.
SCHEDULER_ENV = {
    "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
}
LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installed_copy(target: Path) -> Path:
    """The grader's packages as pip would install them, outside this checkout."""
    site = target / "site-packages"
    for package in ("autograder", "course"):
        shutil.copytree(
            ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return site


class DaskCluster:
    """``dask scheduler`` plus ``workers`` ``dask worker`` processes (nanny, one thread each)."""

    def __init__(self, base: Path, workers: int = 2, dashboard: bool = True):
        self.base = base
        self.port = free_port()
        self.dashboard_port = free_port() if dashboard else None
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.logs = base / "logs"
        self.logs.mkdir(parents=True)
        self.worker_cwd = base / "worker-cwd"
        self.worker_cwd.mkdir()
        self.site = installed_copy(base / "env")
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._start("scheduler", self._scheduler_cmd(), SCHEDULER_ENV)
        for i in range(workers):
            self.add_worker(f"w{i}")

    def _scheduler_cmd(self) -> list[str]:
        cmd = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.dashboard_port:
            return [*cmd, "--dashboard-address", f"127.0.0.1:{self.dashboard_port}"]
        return [*cmd, "--no-dashboard"]

    def worker_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_ROOT")}
        env["PYTHONPATH"] = str(self.site)
        env["COURSE_ROOT"] = str(self.worker_cwd)  # nothing there: the course comes as data
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env.pop("AUTOGRADER_TEST_SCORER", None)
        env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] = "False"  # as the README says
        return env

    def add_worker(self, name: str) -> subprocess.Popen:
        cmd = [DASK, "worker", self.address, "--name", name, "--nthreads", "1"]
        cmd += ["--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60"]
        cmd += ["--preload", "autograder.engine"]  # the warm sandbox starts with the worker
        return self._start(name, cmd, None, env=self.worker_env(), cwd=self.worker_cwd)

    def _start(self, name, cmd, extra_env, env=None, cwd=None) -> subprocess.Popen:
        env = dict(env or os.environ, **(extra_env or {}))
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, *cmd],
            env=env,
            cwd=cwd or self.base,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log = log
        self.procs.append(proc)
        return proc

    def client(self, workers: int, timeout: float = 300):
        """A Client once ``workers`` workers have joined (generous: the machine may be loaded)."""
        from distributed import Client

        deadline = time.monotonic() + timeout
        while True:
            try:
                client = Client(self.address, timeout="10s")
                break
            except OSError:
                if time.monotonic() > deadline or self.scheduler.poll() is not None:
                    why = "the scheduler did not start:\n" + self.log("scheduler")
                    raise RuntimeError(why) from None
                time.sleep(0.5)
        client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
        return client

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first: they leave the scheduler cleanly
            _kill_session(proc, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _kill_session(proc, signal.SIGKILL)  # whatever is left of the session, children too
            proc.wait()
            proc.log.close()


def _kill_session(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
