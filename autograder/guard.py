"""Limits on the grader's own work for a student: a test cell running in the trusted process.

A test cell is instructor code, but what it chews on comes from the student (values returned by
the student's functions, files the student's code wrote), so its time and memory are bounded
like the student's own: :class:`TrustedCell` is the context a test cell runs in.

Mechanism, and why: a single watchdog thread per process samples every running cell every
:data:`TICK` seconds and, when one is over its limit, raises :class:`CellTimeLimit` or
:class:`CellMemoryLimit` *in the thread running that cell* with CPython's
``PyThreadState_SetAsyncExc``. Unlike ``SIGALRM`` (main thread only, one timer per process) this
works in any thread and for any number of cells at once, which grading in Dask worker threads
needs. The exceptions derive from ``BaseException``, so a check's ``except Exception`` cannot
swallow them, and they are raised again every second until the cell ends.

- **Time**: the CPU time of the cell's thread (``pthread_getcpuclockid``; robust to a loaded
  machine) may not exceed ``seconds``; its wall time may not exceed ``WALL_FACTOR`` times that.
  Time spent in calls into the student's sandbox is not counted here: those calls have their own
  limit (the sandbox's), and the watchdog never interrupts the grader mid-call.
- **Memory**: the growth of the process's resident memory while the cell runs (outside sandbox
  calls, whose decoded results are bounded by :mod:`autograder.proxy`) may not exceed ``memory``.

What an asynchronous exception cannot do is stop one long C call (a blocking ``read``, one huge
NumPy operation): it lands when the call returns. So the inputs are bounded where they enter:
decoded frames (:mod:`autograder.proxy`) and files, which the checks read only from a
regular-files-only, size-capped copy (:mod:`autograder.copyout`), never a FIFO or a device.

Process-wide state is per cell too: the working directory (a check resolves relative paths the
student's code was given) and ``sys.stdout``/``sys.stderr`` (routed per thread). Cells in
different threads take turns holding the working directory (a lock released during sandbox
calls, so students' code still runs in parallel).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import threading
import time
from pathlib import Path

#: Seconds between two looks of the watchdog.
TICK = 0.05
#: Wall-clock allowance of a cell, as a multiple of its CPU allowance.
WALL_FACTOR = 3.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


class CellLimitExceeded(BaseException):
    """A test cell ran past a limit of the grader's own (the student's failure: its data)."""


class CellTimeLimit(CellLimitExceeded):
    pass


class CellMemoryLimit(CellLimitExceeded):
    pass


def rss() -> int:
    """Resident memory of this process, in bytes."""
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * _PAGE


_set_async = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_clear_async = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


class _Run:
    """The accounting of one running cell (read and written under _WATCH_LOCK)."""

    def __init__(self, seconds: float, memory: int):
        self.thread = threading.get_ident()
        self.clock = time.pthread_getcpuclockid(self.thread)
        self.seconds = seconds
        self.memory = memory
        self.cpu_used = 0.0  # charged so far, before the current stretch
        self.wall_used = 0.0
        self.memory_used = 0
        self.paused = True
        self.stretch: tuple[float, float, int] = (0.0, 0.0, 0)  # cpu, wall, rss at resume
        self.tripped: type[CellLimitExceeded] | None = None
        self.last_raise = 0.0

    def resume(self) -> None:
        self.stretch = (time.clock_gettime(self.clock), time.monotonic(), rss())
        self.paused = False

    def pause(self) -> None:
        cpu, wall, memory = self.used()
        self.cpu_used, self.wall_used, self.memory_used = cpu, wall, memory
        self.paused = True

    def used(self) -> tuple[float, float, int]:
        if self.paused:
            return self.cpu_used, self.wall_used, self.memory_used
        cpu0, wall0, rss0 = self.stretch
        return (
            self.cpu_used + time.clock_gettime(self.clock) - cpu0,
            self.wall_used + time.monotonic() - wall0,
            self.memory_used + rss() - rss0,
        )

    def over(self) -> type[CellLimitExceeded] | None:
        cpu, wall, memory = self.used()
        if cpu > self.seconds or wall > self.seconds * WALL_FACTOR:
            return CellTimeLimit
        if memory > self.memory:
            return CellMemoryLimit
        return None


_WATCH_LOCK = threading.Lock()
_RUNS: dict[int, _Run] = {}
_WATCHDOG: threading.Thread | None = None
# Held by the cell whose working directory and code are current (released during sandbox calls).
_CELL_LOCK = threading.RLock()
# The working directory before the first of the cells now running: restored after each cell.
_HOME: list[str | None] = [None]


def _watch() -> None:
    while True:
        time.sleep(TICK)
        now = time.monotonic()
        with _WATCH_LOCK:
            for run in list(_RUNS.values()):
                if run.paused:
                    continue
                kind = run.tripped or run.over()
                if kind is not None and now - run.last_raise >= 1.0:
                    run.tripped, run.last_raise = kind, now
                    _set_async(run.thread, kind)


def _start_watchdog() -> None:
    global _WATCHDOG
    with _WATCH_LOCK:
        if _WATCHDOG is None or not _WATCHDOG.is_alive():
            _WATCHDOG = threading.Thread(target=_watch, name="autograder-guard", daemon=True)
            _WATCHDOG.start()


class _Router(io.TextIOBase):
    """sys.stdout/sys.stderr for all threads: a cell's thread writes to its own capture."""

    def __init__(self, fallback, targets: threading.local):
        self.fallback = fallback
        self.targets = targets

    def _target(self):
        return getattr(self.targets, "stream", None) or self.fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._target().flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self):  # noqa: D102 - as the stream it stands for
        return getattr(self.fallback, "encoding", "utf-8")


_TARGETS = threading.local()


def _route_output() -> None:
    for name in ("stdout", "stderr"):
        current = getattr(sys, name)
        if not isinstance(current, _Router):
            setattr(sys, name, _Router(current, _TARGETS))


class TrustedCell:
    """Run a test cell's code with limits, in ``cwd``, printing into ``output``.

    ``with TrustedCell(...) as cell: exec(...)``; wrap each call into the sandbox in
    ``with cell.outside():``. A limit raises :class:`CellLimitExceeded` in the cell's code.
    """

    def __init__(self, cwd: Path, seconds: float, memory: int, output: io.TextIOBase):
        self.cwd = Path(cwd)
        self.run = _Run(seconds, memory)
        self.output = output

    def _enter_turn(self) -> None:
        _CELL_LOCK.acquire()
        _route_output()
        os.chdir(self.cwd)

    def __enter__(self) -> TrustedCell:
        _start_watchdog()
        _CELL_LOCK.acquire()
        if not _RUNS:
            with contextlib.suppress(OSError):
                _HOME[0] = os.getcwd()
        _CELL_LOCK.release()
        self._enter_turn()
        _TARGETS.stream = self.output
        with _WATCH_LOCK:
            _RUNS[self.run.thread] = self.run
            self.run.resume()
        return self

    def __exit__(self, *exc) -> None:
        while True:  # a last asynchronous exception may land here: absorb it, then clear
            try:
                with _WATCH_LOCK:
                    _RUNS.pop(self.run.thread, None)
                    _clear_async(self.run.thread, None)
                break
            except CellLimitExceeded:
                continue
        _TARGETS.stream = None
        if _HOME[0] is not None:
            with contextlib.suppress(OSError):
                os.chdir(_HOME[0])
        _CELL_LOCK.release()

    @contextlib.contextmanager
    def outside(self):
        """A call into the sandbox: not charged, not interrupted, other cells may run."""
        with _WATCH_LOCK:
            self.run.pause()
        _CELL_LOCK.release()
        try:
            yield
        finally:
            self._enter_turn()
            with _WATCH_LOCK:
                self.run.resume()

    def describe(self, kind: type[CellLimitExceeded]) -> str:
        if kind is CellMemoryLimit:
            return (
                f"the test used more than {self.run.memory // 2**20} MiB in the grader "
                "(on data from your code)"
            )
        return (
            f"the test ran longer than {self.run.seconds:g} s in the grader "
            "(on data from your code)"
        )
