"""Timing helpers for the notebooks' speed comparisons: one thread for everybody, fastest runs.

A fair comparison of a NumPy implementation with torch runs both on one thread: torch's own
thread pool (``torch.set_num_threads``) and the BLAS library behind NumPy's matrix products
(OpenBLAS, limited through ``threadpoolctl``). On a shared machine the fastest of a few repeats is
far more stable than one measurement. These numbers are for reading, never for tests.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch and NumPy's BLAS on one thread inside the block; restore both afterwards."""
    from threadpoolctl import threadpool_limits

    from course.checks.core import one_thread

    with one_thread(), threadpool_limits(limits=1):
        yield


def seconds_per_call(
    fn: Callable[[], Any], *, repeats: int = 5, min_seconds: float = 0.02, max_calls: int = 1000
) -> float:
    """The fastest of ``repeats`` measurements of one call of ``fn()``, in seconds.

    Each measurement calls ``fn`` as often as it takes to last at least ``min_seconds`` (at most
    ``max_calls`` times) and divides, so fast functions are not timed below the clock's
    resolution. One call before the measurements warms caches up. The fastest run is the one
    least disturbed by other programs on a shared machine.
    """
    fn()
    calls = 1
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds or calls >= max_calls:
            break
        calls = min(max_calls, calls * 2)
    samples = [elapsed / calls]
    for _ in range(repeats - 1):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - started) / calls)
    return min(samples)


def format_seconds(seconds: float) -> str:
    """``0.000123`` -> ``"123 µs"``, ``0.0456`` -> ``"45.6 ms"``, ``2.5`` -> ``"2.5 s"``
    (three significant digits)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            return f"{seconds / scale:.3g} {unit}"
    raise AssertionError("unreachable")
