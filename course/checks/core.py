"""The comparison machinery every student-facing check is built on.

A check calls the student's function with plain data (NumPy arrays, numbers, strings, tuples),
calls torch on the same case, and compares the two. The grader may run the student's function in
another process, so a check never calls a method of an object the student returned: it converts
the result to a NumPy array first and refuses anything that is not plain data.

When a randomized sweep finds a failing case, hypothesis shrinks it to a minimal one (database off,
derandomized, so the same code gives the same message on every run) and the message names it.

Hidden tests are the exception: while the trusted grader runs a ``### BEGIN HIDDEN TESTS`` block it
enters :func:`hidden_cases` with a key derived from the instructor's secret (see
``autograder/secret.py``), and every sweep (and :func:`case_rng`) inside draws its cases from that
key instead of from the public code, so a student cannot compute them in advance. Outside the
grader (in a student's kernel, in stock nbgrader) there is no key and everything stays
derandomized.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

#: Exceptions a student's function may raise where torch raises. The notebooks document this.
ALLOWED_ERRORS = (ValueError, RuntimeError)


class _HiddenSeeds:
    """Seeds for the randomized cases of one hidden block: the n-th draw gets HMAC(key, n)."""

    def __init__(self, key: bytes):
        self.key = key
        self.count = 0

    def next_seed(self) -> int:
        self.count += 1
        mac = hmac.new(self.key, f"draw {self.count}".encode(), hashlib.sha256).digest()
        return int.from_bytes(mac[:8], "big")


_hidden: contextvars.ContextVar[_HiddenSeeds | None] = contextvars.ContextVar(
    "course_hidden_seeds", default=None
)


@contextlib.contextmanager
def hidden_cases(key: bytes) -> Iterator[None]:
    """Inside the block, sweeps and :func:`case_rng` draw from ``key`` (the grader's secret).

    Only the trusted grader enters this, around the hidden part of a test cell; the same key
    gives the same cases (a regrade gives the same grade).
    """
    token = _hidden.set(_HiddenSeeds(bytes(key)))
    try:
        yield
    finally:
        _hidden.reset(token)


def case_rng(seed: int) -> np.random.Generator:
    """``np.random.default_rng(seed)``, or one seeded from the grader's secret in hidden tests."""
    hidden = _hidden.get()
    return np.random.default_rng(hidden.next_seed() if hidden is not None else seed)


class CheckFailure(AssertionError):
    """A student's function disagrees with torch. The message is written for the student."""

    def _render_traceback_(self) -> list[str]:
        # IPython's hook for showing an exception: the student needs the failing case, not a
        # traceback through the course's comparison code.
        return [f"CheckFailure: {self}"]


def describe_value(value: Any) -> str:
    """Short text for one parameter: arrays by shape, strings quoted, tuples as written."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return str(tuple(int(n) for n in value.shape)).replace(" ", "")
    if isinstance(value, str):
        return repr(value)
    return str(value)


def describe_case(**params: Any) -> str:
    """``describe_case(x=np.zeros((1,1,3,3)), padding=1)`` -> ``"x (1,1,3,3), padding=1"``."""
    parts = []
    for name, value in params.items():
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            parts.append(f"{name} {describe_value(value)}")
        else:
            parts.append(f"{name}={describe_value(value)}")
    return ", ".join(parts)


def as_plain_array(value: Any, what: str = "your function's result") -> np.ndarray:
    """Convert a student's result to a NumPy array of numbers, or explain why it can't be.

    Accepts NumPy arrays of a numeric or bool dtype, Python/NumPy numbers, and (nested)
    lists/tuples of numbers. Refuses torch tensors and arbitrary objects with a message.
    """
    if type(value).__module__.startswith("torch"):
        raise CheckFailure(
            f"{what} is a {type(value).__module__}.{type(value).__name__}; "
            "return a NumPy array (e.g. tensor.detach().numpy()), not a torch object"
        )
    if type(value) is np.ndarray:
        array = value
    elif isinstance(value, (bool, int, float, np.number, np.bool_)):
        array = np.asarray(value)
    elif isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
        except ValueError as err:
            raise CheckFailure(f"{what} is a ragged list/tuple: {err}") from None
    else:
        raise CheckFailure(
            f"{what} has type {type(value).__name__}; expected a NumPy array or numbers"
        )
    if array.dtype.kind not in "biuf":
        raise CheckFailure(f"{what} has dtype {array.dtype}; expected numbers")
    return array


def torch_to_numpy(value: Any) -> np.ndarray:
    """The reference side of a comparison as a NumPy array (tensors detached, on the CPU)."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _where(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def compare_arrays(
    got: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4, what: str = "output"
) -> str | None:
    """None when ``got`` matches ``expected`` (shape and values), else the reason, in words."""
    got_array = as_plain_array(got, f"your {what}")
    expected_array = torch_to_numpy(expected)
    if got_array.shape != expected_array.shape:
        return (
            f"{what} shape {tuple(got_array.shape)} but torch gives {tuple(expected_array.shape)}"
        )
    if got_array.size == 0:
        return None
    got_f = got_array.astype(np.float64)
    expected_f = expected_array.astype(np.float64)
    if np.allclose(got_f, expected_f, atol=atol, rtol=rtol, equal_nan=True):
        return None
    error = np.abs(got_f - expected_f)
    error = np.where(np.isnan(error), np.inf, error)
    worst = np.unravel_index(int(np.argmax(error)), error.shape)
    wrong = int(np.count_nonzero(~np.isclose(got_f, expected_f, atol=atol, rtol=rtol)))
    return (
        f"{what} differs from torch at {wrong} of {got_f.size} positions; "
        f"max error {float(error[worst]):.4g} at {_where(worst)} "
        f"(yours {got_f[worst]:.6g}, torch {expected_f[worst]:.6g})"
    )


def assert_matches_torch(
    got: Any,
    expected: Any,
    *,
    case: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    what: str = "output",
) -> None:
    """Raise :class:`CheckFailure` naming ``case`` unless ``got`` equals torch's ``expected``.

    got: the student's result (NumPy array, number or nested tuple/list of numbers).
    expected: torch's result for the same case (tensor, array or number).
    """
    __tracebackhide__ = True  # IPython and pytest show the student the message, not our frames
    problem = compare_arrays(got, expected, atol=atol, rtol=rtol, what=what)
    if problem is not None:
        raise CheckFailure(f"{problem}\n  case: {case}" if case else problem)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the previous setting.

    The references are tiny convolutions: on a busy machine torch's thread pool makes each one
    ~50x slower (about 3 ms instead of 0.05 ms), which would dominate a sweep.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_reference(reference: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Call torch's side; return (result, None) or (None, the error torch raised)."""
    try:
        with one_thread():
            return reference(), None
    except (ValueError, RuntimeError, TypeError, IndexError) as err:
        return None, err


def compare_call(
    student: Callable[[], Any],
    reference: Callable[[], Any],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    what: str = "output",
    compare: Callable[[Any, Any], str | None] | None = None,
) -> str | None:
    """Run both sides of one case; None when they agree, else the disagreement in words.

    Where torch raises, the student must raise ValueError or RuntimeError; where torch returns,
    the student must return an equal result. NotImplementedError is never turned into a message:
    it propagates so an unfinished exercise reads as unfinished.
    """
    expected, torch_error = run_reference(reference)
    try:
        got = student()
    except NotImplementedError:
        raise
    except ALLOWED_ERRORS as err:
        if torch_error is not None:
            return None
        return f"your function raised {type(err).__name__}: {err}, but torch accepts this case"
    except Exception as err:  # noqa: BLE001 - any crash in student code is a finding to report
        if torch_error is not None:
            return (
                f"torch raises here ({type(torch_error).__name__}: {_first_line(torch_error)}); "
                f"yours raised {type(err).__name__}, expected ValueError or RuntimeError"
            )
        return f"your function raised {type(err).__name__}: {err}"
    if torch_error is not None:
        return (
            f"torch raises {type(torch_error).__name__} here ({_first_line(torch_error)}), "
            "but your function returned a result; raise ValueError or RuntimeError"
        )
    if compare is not None:
        return compare(got, expected)
    return compare_arrays(got, expected, atol=atol, rtol=rtol, what=what)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:160] if text else ""


def check_cases(
    student_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]],
    *,
    name: str = "your function",
    atol: float = 1e-5,
    rtol: float = 1e-4,
    compare: Callable[[Any, Any], str | None] | None = None,
    quiet: bool = False,
) -> int:
    """Check ``student_fn(**case) == reference_fn(**case)`` for each case; return the count.

    The first disagreement raises :class:`CheckFailure` with the case's parameters.
    """
    __tracebackhide__ = True  # IPython and pytest show the student the message, not our frames
    count = 0
    for case in cases:
        problem = compare_call(
            lambda case=case: student_fn(**case),
            lambda case=case: reference_fn(**case),
            atol=atol,
            rtol=rtol,
            compare=compare,
        )
        if problem is not None:
            raise CheckFailure(f"{name} fails for {describe_case(**case)}:\n  {problem}")
        count += 1
    if not quiet:
        print(f"ok: {name} matches torch on {count} case(s)")
    return count


def sweep(
    student_fn: Callable[..., Any],
    reference_fn: Callable[..., Any],
    strategy: Any,
    *,
    name: str = "your function",
    max_examples: int = 100,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    compare: Callable[[Any, Any], str | None] | None = None,
    quiet: bool = False,
) -> int:
    """Randomized check over ``strategy`` (a hypothesis strategy of keyword dicts).

    Searches ``max_examples`` cases with a fixed seed (in the grader's hidden tests: a seed from
    the instructor's secret, see :func:`hidden_cases`); when one fails, hypothesis shrinks it to a
    minimal failing case and the raised :class:`CheckFailure` names that case.
    Returns the number of cases checked when every case agrees.
    """
    __tracebackhide__ = True  # IPython and pytest show the student the message, not our frames
    from hypothesis import HealthCheck, find, settings
    from hypothesis.errors import NoSuchExample

    checked = 0

    def disagrees(case: dict[str, Any]) -> bool:
        nonlocal checked
        checked += 1
        problem = compare_call(
            lambda: student_fn(**case),
            lambda: reference_fn(**case),
            atol=atol,
            rtol=rtol,
            compare=compare,
        )
        return problem is not None

    hidden = _hidden.get()
    search = settings(
        database=None,
        derandomize=hidden is None,
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    draws = None if hidden is None else random.Random(hidden.next_seed())
    try:
        minimal = find(strategy, disagrees, settings=search, random=draws)
    except NoSuchExample:
        if not quiet:
            seeded = "fixed seed" if hidden is None else "hidden cases"
            print(f"ok: {name} matches torch on {checked} random case(s) ({seeded})")
        return checked
    problem = compare_call(
        lambda: student_fn(**minimal),
        lambda: reference_fn(**minimal),
        atol=atol,
        rtol=rtol,
        compare=compare,
    )
    raise CheckFailure(
        f"{name} fails for {describe_case(**minimal)} (minimal failing case, shrunk by hypothesis)"
        f":\n  {problem}"
    )


def assert_close_number(got: Any, expected: float, *, case: str = "", tol: float = 1e-9) -> None:
    """Scalar version of :func:`assert_matches_torch` for counts and sizes."""
    __tracebackhide__ = True  # IPython and pytest show the student the message, not our frames
    value = as_plain_array(got, "your result")
    if value.shape != () or not math.isclose(float(value), float(expected), abs_tol=tol):
        raise CheckFailure(
            f"got {got!r}, expected {expected!r}" + (f"\n  case: {case}" if case else "")
        )
