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

A function the student has not written yet (its body is still nbgrader's stub,
``raise NotImplementedError()``) is reported in two lines that name the function and say what to
do, never as a traceback through this module: checks raise :class:`NotWrittenYet`, and
:func:`install_unfinished_message` (run when ``course`` is imported in IPython) shortens the
traceback of a stub called directly from a cell. Cells that only draw or demonstrate wrap their
code in :func:`needs`, which prints "finish ... first" instead of raising.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import linecache
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
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


STUB_LINE = "raise NotImplementedError()"


class NotWrittenYet(NotImplementedError):
    """A function the student has not written yet: its body still raises NotImplementedError.

    ``name`` is the function's name (or None when it cannot be told, e.g. inside the grader).
    IPython shows it as two short lines instead of a traceback through the checks.
    """

    def __init__(self, name: str | None = None):
        self.name = name
        what = f"`{name}`" if name else "a function this check calls"
        super().__init__(f"{what} is not written yet (it still raises NotImplementedError)")

    def lines(self) -> list[str]:
        if self.name:
            return [
                f"NotImplementedError: `{self.name}` is not written yet.",
                f"Write its body in its cell (replace `{STUB_LINE}`), run it, then this cell.",
            ]
        return [
            "NotImplementedError: a function this check calls is not written yet.",
            f"Write the exercise above (replace `{STUB_LINE}`), run it, then this cell again.",
        ]

    def _render_traceback_(self) -> list[str]:
        return self.lines()


_COURSE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep  # the course package


def raising_stub(error: BaseException) -> tuple[str, str] | None:
    """(function name, file) of the nbgrader stub that raised ``error``, or None.

    Looks at the innermost frame of the traceback: it is a stub when the line that raised is
    ``raise NotImplementedError()`` outside the course package (a student's cell). The name is
    ``"<module>"`` when the stub is at the top level of a cell.
    """
    tb = error.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    if code.co_filename.startswith(_COURSE_DIR):
        return None
    line = linecache.getline(code.co_filename, tb.tb_lineno, tb.tb_frame.f_globals).strip()
    if line != STUB_LINE:
        return None
    return code.co_name, code.co_filename


def not_written(error: NotImplementedError, fallback: str | None = None) -> NotWrittenYet:
    """The :class:`NotWrittenYet` for a NotImplementedError a student's function raised.

    The name comes from the stub that raised (see :func:`raising_stub`), else ``fallback``.
    """
    if isinstance(error, NotWrittenYet):
        return error
    stub = raising_stub(error)
    name = stub[0] if stub and stub[0] not in ("<module>", "<lambda>") else None
    if name is None and fallback and not fallback.startswith("your "):
        name = fallback
    return NotWrittenYet(name)


def unfinished_lines(error: BaseException) -> list[str] | None:
    """The short message for an unfinished exercise, or None if ``error`` is something else."""
    if isinstance(error, NotWrittenYet):
        return error.lines()
    if not isinstance(error, NotImplementedError):
        return None
    stub = raising_stub(error)
    if stub is None:
        return None
    if stub[0] == "<module>":
        return [
            "NotImplementedError: this cell is not written yet.",
            f"Replace `{STUB_LINE}` with your code (the comment says what), then run it again.",
        ]
    return NotWrittenYet(stub[0]).lines()


def _show_unfinished(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset=None):
    # IPython custom exception handler: short lines for stubs, the usual traceback otherwise.
    lines = unfinished_lines(value)
    if lines is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    else:
        shell._showtraceback(etype, value, lines)
    return None


def install_unfinished_message() -> bool:
    """In IPython, show a stub's NotImplementedError as two lines naming the function.

    Installs an IPython custom exception handler for NotImplementedError, unless another one is
    installed already. Returns True when the handler is (now) active. Outside IPython it does
    nothing. Only the display changes: the cell still fails, so "Run All" stops there.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    if getattr(shell, "_course_unfinished_message", False):
        return True
    if shell.custom_exceptions:
        return False  # someone else's handler: leave it alone
    shell.set_custom_exc((NotImplementedError,), _show_unfinished)
    shell._course_unfinished_message = True
    return True


@contextlib.contextmanager
def needs(*names: str) -> Iterator[None]:
    """For cells that draw or demonstrate with the student's functions ``names``.

    If one of them is not written yet, print "Finish `name` above first ..." and carry on
    instead of raising; any other error propagates as usual.
    """
    try:
        yield
    except NotImplementedError as error:
        stub = raising_stub(error)
        if isinstance(error, NotWrittenYet) and error.name:
            which = [error.name]
        elif stub and stub[0] not in ("<module>", "<lambda>"):
            which = [stub[0]]
        else:
            which = list(names)
        listed = " and ".join(f"`{n}`" for n in which) or "the exercises above"
        them = "them" if len(which) > 1 else "it"
        print(f"Finish {listed} above first (this cell uses {them}), then run this cell again.")


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
    got: Any,
    expected: Any,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    what: str = "output",
    reference: str = "torch",
) -> str | None:
    """None when ``got`` matches ``expected`` (shape and values), else the reason, in words.

    reference: what ``expected`` comes from, as the message names it ("torch", "the numerical
    gradient", ...).
    """
    got_array = as_plain_array(got, f"your {what}")
    expected_array = torch_to_numpy(expected)
    if got_array.shape != expected_array.shape:
        return (
            f"{what} shape {tuple(got_array.shape)} but {reference} gives "
            f"{tuple(expected_array.shape)}"
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
        f"{what} differs from {reference} at {wrong} of {got_f.size} positions; "
        f"max error {float(error[worst]):.4g} at {_where(worst)} "
        f"(yours {got_f[worst]:.6g}, {reference} {expected_f[worst]:.6g})"
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


#: Errors of torch's that mean "torch rejects this case" (the student must raise there too).
REFERENCE_ERRORS = (ValueError, RuntimeError, TypeError, IndexError)

_answers: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "course_reference_answers", default=None
)
#: Most answers one store keeps (then it starts afresh): a bound on the grader's memory.
MAX_STORED_ANSWERS = 200_000


def pure_reference(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn`` (a torch reference) as a pure function of its plain arguments.

    Only marked references are ever answered from a store (:func:`reference_answers`): one that
    draws from :func:`case_rng`, reads a file or keeps state must not be marked.
    """
    fn.pure_reference = True  # type: ignore[attr-defined]
    return fn


@contextlib.contextmanager
def reference_answers(store: dict) -> Iterator[None]:
    """Inside the block, marked references answer a case they already answered from ``store``.

    Only the trusted grader enters this (one store per grader process): torch computes the
    expected value of a case once, however many students get that case. Which cases a student
    gets, and what their function is compared with, do not change.
    """
    if len(store) > MAX_STORED_ANSWERS:
        store.clear()
    token = _answers.set(store)
    try:
        yield
    finally:
        _answers.reset(token)


def _plain_key(value: Any) -> Any:
    """A hashable key that tells 1, 1.0 and True apart; None for anything but plain scalars and
    tuples/lists of them (an array's repr is abridged: never a key)."""
    cls = type(value)
    if cls in (int, float, str, bool, type(None)):
        return (cls.__name__, value)
    if cls in (tuple, list):
        items = tuple(_plain_key(v) for v in value)
        return None if None in items else (cls.__name__, items)
    return None


def reference_call(reference_fn: Callable[..., Any], case: dict[str, Any]) -> Callable[[], Any]:
    """``lambda: reference_fn(**case)``, answered from the grader's store when it may be."""
    store = _answers.get()
    if store is None or not getattr(reference_fn, "pure_reference", False):
        return lambda: reference_fn(**case)
    items = tuple(sorted((k, _plain_key(v)) for k, v in case.items()))
    if any(v is None for _, v in items):
        return lambda: reference_fn(**case)
    key = (reference_fn.__module__, reference_fn.__qualname__, items)

    def answer() -> Any:
        found = store.get(key)
        if found is None:
            try:
                found = (True, reference_fn(**case))
            except REFERENCE_ERRORS as err:
                found = (False, err)
            store[key] = found
        ok, value = found
        if not ok:
            raise value.with_traceback(None)
        return value

    return answer


def run_reference(reference: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Call torch's side; return (result, None) or (None, the error torch raised)."""
    try:
        with one_thread():
            return reference(), None
    except REFERENCE_ERRORS as err:
        return None, err


def compare_call(
    student: Callable[[], Any],
    reference: Callable[[], Any],
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    what: str = "output",
    compare: Callable[[Any, Any], str | None] | None = None,
    name: str | None = None,
) -> str | None:
    """Run both sides of one case; None when they agree, else the disagreement in words.

    Where torch raises, the student must raise ValueError or RuntimeError; where torch returns,
    the student must return an equal result. A NotImplementedError is never turned into a
    disagreement: it is raised as :class:`NotWrittenYet` (naming the unfinished function, or
    ``name``), so an unfinished exercise reads as unfinished, in two lines.
    """
    expected, torch_error = run_reference(reference)
    try:
        got = student()
    except NotImplementedError as err:
        raise not_written(err, name) from None
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
    against: str = "torch",
) -> int:
    """Check ``student_fn(**case) == reference_fn(**case)`` for each case; return the count.

    The first disagreement raises :class:`CheckFailure` with the case's parameters.
    against: what the reference is, for the "ok: ... matches <against>" line.
    """
    __tracebackhide__ = True  # IPython and pytest show the student the message, not our frames
    count = 0
    for case in cases:
        problem = compare_call(
            lambda case=case: student_fn(**case),
            reference_call(reference_fn, case),
            atol=atol,
            rtol=rtol,
            compare=compare,
            name=name,
        )
        if problem is not None:
            raise CheckFailure(f"{name} fails for {describe_case(**case)}:\n  {problem}")
        count += 1
    if not quiet:
        print(f"ok: {name} matches {against} on {count} case(s)")
    return count


#: Calls a sweep may spend shrinking a failing case (deterministic, unlike a time limit: the same
#: code gives the same message on every run).
SHRINK_BUDGET = 300


def search_settings(max_examples: int, *, derandomize: bool = True):
    """hypothesis settings for every search of the course's checks.

    No example database (nothing written next to the notebook), no deadline (a loaded machine),
    no health checks (strategies of arrays are slow to draw), and no "explain" phase: after a
    failure it line-traces every later call (``sys.settrace``), which made a single shrink take
    minutes in a long-lived process, and ``find()`` never shows its explanation anyway.
    """
    from hypothesis import HealthCheck, Phase, settings

    return settings(
        database=None,
        derandomize=derandomize,
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    )


def _case_key(case: dict[str, Any]) -> str:
    """A digest of one drawn case (arrays by dtype, shape and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(case):
        value = case[name]
        if isinstance(value, np.ndarray):
            digest.update(f"{name}:{value.dtype}:{value.shape}:".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        else:
            digest.update(f"{name}={value!r};".encode())
    return digest.hexdigest()


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
    against: str = "torch",
) -> int:
    """Randomized check over ``strategy`` (a hypothesis strategy of keyword dicts).

    Searches ``max_examples`` cases with a fixed seed; in the grader's hidden tests the cases
    are drawn from the instructor's secret instead (see :func:`hidden_cases` and
    :func:`_hidden_sweep`). When one fails, hypothesis shrinks it to a minimal failing case and
    the raised :class:`CheckFailure` names that case.
    Returns the number of cases checked when every case agrees.
    """
    __tracebackhide__ = True  # IPython and pytest show the student the message, not our frames
    compared = dict(atol=atol, rtol=rtol, compare=compare, name=name)
    hidden = _hidden.get()
    if hidden is None:
        checked = _public_sweep(student_fn, reference_fn, strategy, max_examples, compared)
    else:
        seed = hidden.next_seed()
        checked = _hidden_sweep(student_fn, reference_fn, strategy, max_examples, seed, compared)
    if not quiet:
        print(f"ok: {name} matches {against} on {checked} random case(s) ({seeding()})")
    return checked


def seeding() -> str:
    """Where a sweep's cases come from now, for its "ok" line: "fixed seed" or "hidden cases"."""
    return "fixed seed" if _hidden.get() is None else "hidden cases"


class _Disagreement:
    """hypothesis's condition for a sweep: does the student's function disagree on a case?

    Counts the cases checked before the first disagreement; after it (shrinking) spends at
    most SHRINK_BUDGET calls, and answers from memory for a case already seen to fail, so the
    final replay agrees with the shrinker whatever the student's function does the second time.
    """

    def __init__(self, student_fn, reference_fn, compared: dict):
        self.student_fn = student_fn
        self.reference_fn = reference_fn
        self.compared = compared
        self.checked = 0
        self.failing: set[str] = set()  # keys of the cases seen to fail
        self.shrinking = False
        self.shrink_calls = 0

    def __call__(self, case: dict[str, Any]) -> bool:
        key = _case_key(case)
        if self.shrinking:  # bounded, so a failing check answers in seconds, not minutes
            if key in self.failing:
                return True
            self.shrink_calls += 1
            if self.shrink_calls > SHRINK_BUDGET:
                return False
        else:
            self.checked += 1
        if self.problem(case) is None:
            return False
        self.failing.add(key)
        self.shrinking = True
        return True

    def problem(self, case: dict[str, Any]) -> str | None:
        return compare_call(
            lambda: self.student_fn(**case),
            reference_call(self.reference_fn, case),
            **self.compared,
        )

    def failure(self, minimal: dict[str, Any]) -> CheckFailure:
        return CheckFailure(
            f"{self.compared['name']} fails for {describe_case(**minimal)} (minimal failing "
            f"case, shrunk by hypothesis):\n  {self.problem(minimal)}"
        )


def _public_sweep(student_fn, reference_fn, strategy, max_examples: int, compared: dict) -> int:
    """The derandomized search (the same cases on every run, in a student's kernel too)."""
    __tracebackhide__ = True
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    search = search_settings(max_examples)
    batch_found = None  # a case the batch saw disagree (kept if the rerun agrees throughout)
    if callable(getattr(student_fn, "call_each", None)):
        agreed, batch_found = _sweep_each(student_fn, reference_fn, strategy, search, compared)
        if agreed is not None:
            return agreed
    disagrees = _Disagreement(student_fn, reference_fn, compared)
    try:
        minimal = find(strategy, disagrees, settings=search)
    except NoSuchExample:
        if batch_found is not None:  # a function that answers differently the second time
            case, problem = batch_found
            raise _plain_failure(compared["name"], case, problem) from None
        return disagrees.checked
    raise disagrees.failure(minimal)


def _plain_failure(name: str, case: dict[str, Any], problem: str) -> CheckFailure:
    return CheckFailure(f"{name} fails for {describe_case(**case)}:\n  {problem}")


#: Cases of a batched sweep compared one call at a time first (an unwritten or plainly wrong
#: function fails there, as it would unbatched, without generating the rest).
LIVE_CASES = 8


def _sweep_each(student_fn, reference_fn, strategy, search, compared) -> tuple:
    """The public sweep's cases in a few round trips, when the student's function is a grader
    proxy.

    Hypothesis draws exactly the cases it would draw against a function that agrees on every
    one (its choices depend on the answers only once one disagrees): the first LIVE_CASES are
    compared one call at a time, as unbatched; the rest are recorded, then called in order in
    one batch and compared. Returns (number of cases, None) when every one agrees; (None, None
    or (case, problem) the batch saw) when any case disagrees, raises or could not be called:
    the caller then runs the sweep unbatched from the start (the same cases, the same minimal
    failing case, the same message).
    """
    from hypothesis import find
    from hypothesis.errors import NoSuchExample

    recorded: list[dict[str, Any]] = []
    live = [0, False]  # cases compared one at a time; whether one disagreed

    def disagrees(case: dict[str, Any]) -> bool:
        if live[1] or live[0] >= LIVE_CASES:
            recorded.append(case)
            return False
        live[0] += 1
        problem = compare_call(
            lambda: student_fn(**case), reference_call(reference_fn, case), **compared
        )
        live[1] = problem is not None
        return live[1]

    try:
        find(strategy, disagrees, settings=search)
        return None, None  # a live case disagreed
    except NoSuchExample:
        pass
    except Exception:  # noqa: BLE001 - e.g. NotWrittenYet: the unbatched sweep says it again
        return None, None
    problems = _batch_problems(student_fn, reference_fn, recorded, compared)
    if problems is None:
        return None, None
    for case, problem in zip(recorded, problems, strict=True):
        if problem is not None:
            return None, (case, problem)
    return live[0] + len(recorded), None


def _batch_problems(student_fn, reference_fn, cases: list, compared: dict) -> list | None:
    """Call ``student_fn`` on every case in one batch (``call_each``); each case's problem (None
    when it agrees), or None when the batch cannot be trusted to stand for one call per case
    (NotWrittenYet, a time limit, a wrong number of outcomes): the caller then calls one by one.
    """
    try:
        outcomes = student_fn.call_each(cases)
        if len(outcomes) != len(cases):
            return None
        return [
            _replay(ok, value, reference_fn, case, compared)
            for case, (ok, value) in zip(cases, outcomes, strict=True)
        ]
    except Exception:  # noqa: BLE001 - any doubt: one call per case
        return None


# -- hidden sweeps: cases drawn from the grader's secret ------------------------------------------


def _hidden_sweep(student_fn, reference_fn, strategy, max_examples: int, seed: int, compared):
    """The hidden sweep: ``max_examples`` distinct cases drawn from ``seed`` (see
    :func:`drawn_cases`), compared in order; the first that disagrees is shrunk by hypothesis.

    hypothesis's search engine is not needed to find a disagreement among cases fixed in
    advance, and it costs several times the drawing itself: a hidden sweep runs for every
    submission (its seed depends on the submission), so only a failing one pays for shrinking.
    A grader proxy gets the first LIVE_CASES one call at a time, the rest in one batch (one call
    per case when the batch is in doubt: the same cases, the same verdict).
    """
    __tracebackhide__ = True
    cases = drawn_cases(strategy, max_examples, seed)
    disagrees = _Disagreement(student_fn, reference_fn, compared)
    batched = callable(getattr(student_fn, "call_each", None))
    live = cases if not batched else cases[:LIVE_CASES]
    rest = [] if not batched else cases[LIVE_CASES:]
    for case, choices in live:
        problem = disagrees.problem(case)
        if problem is not None:
            raise _shrunk_failure(disagrees, strategy, case, choices, problem)
    problems = (
        _batch_problems(student_fn, reference_fn, [c for c, _ in rest], compared) if rest else []
    )
    for index, (case, choices) in enumerate(rest):
        problem = disagrees.problem(case) if problems is None else problems[index]
        if problem is not None:
            raise _shrunk_failure(disagrees, strategy, case, choices, problem)
    return len(cases)


#: Draws a hidden sweep may spend per case it asks for (a strategy with fewer distinct cases
#: than ``max_examples``, or one that rejects most draws, ends with fewer cases).
DRAW_ATTEMPTS = 10


def drawn_cases(strategy: Any, count: int, seed: int) -> list[tuple[dict[str, Any], tuple]]:
    """``count`` distinct cases of ``strategy`` drawn from ``seed``, each with hypothesis's
    choice sequence (from which hypothesis can replay and shrink it).

    Each case is one draw of hypothesis's own data generation (the same strategy, the same
    distribution of each value, edge values included), without its search engine: no mutation
    of earlier cases, no simplest case first; duplicates are drawn again. Deterministic: the
    same seed gives the same cases.
    """
    from hypothesis.control import BuildContext
    from hypothesis.errors import StopTest, UnsatisfiedAssumption
    from hypothesis.internal.conjecture.data import ConjectureData
    from hypothesis.internal.entropy import deterministic_PRNG

    draws = random.Random(seed)
    cases: list[tuple[dict[str, Any], tuple]] = []
    seen: set[str] = set()
    with deterministic_PRNG(seed % 2**32):  # a strategy using the global random: the same too
        for _ in range(DRAW_ATTEMPTS * count):
            if len(cases) == count:
                break
            data = ConjectureData(random=draws)
            try:
                with BuildContext(data, wrapped_test=None):
                    case = data.draw(strategy)
            except (StopTest, UnsatisfiedAssumption):  # too long, filtered out, assume() failed
                continue
            finally:
                data.freeze()
            key = _case_key(case)
            if key not in seen:
                seen.add(key)
                cases.append((case, data.choices))
    return cases


def _shrunk_failure(disagrees, strategy, case, choices, problem) -> CheckFailure:
    """The failure to raise for a hidden case that disagrees: hypothesis shrinks it (replayed
    from its choices) to a minimal failing case; if the replay agrees (a function that answers
    differently the second time), the case as it failed."""
    from hypothesis import Phase, find, settings
    from hypothesis.database import InMemoryExampleDatabase, choices_to_bytes
    from hypothesis.errors import NoSuchExample

    # hypothesis replays a database's examples, then shrinks the ones that still fail; an
    # example under the key itself counts as shrunk already, one under "<key>.secondary" not
    key = b"course.checks.core.hidden-sweep"
    failed = InMemoryExampleDatabase()
    failed.save(key + b".secondary", choices_to_bytes(choices))
    shrink_only = settings(search_settings(1), database=failed, phases=[Phase.reuse, Phase.shrink])
    disagrees.shrinking = True  # the replay too: a function may answer differently this time
    try:
        minimal = find(strategy, disagrees, settings=shrink_only, database_key=key)
    except NoSuchExample:
        return _plain_failure(disagrees.compared["name"], case, problem)
    return disagrees.failure(minimal)


def _replay(ok: bool, value: Any, reference_fn, case, compared) -> str | None:
    """compare_call on the outcome a batched call had."""

    def replay() -> Any:
        if not ok:
            raise value
        return value

    return compare_call(replay, reference_call(reference_fn, case), **compared)


def assert_close_number(got: Any, expected: float, *, case: str = "", tol: float = 1e-9) -> None:
    """Scalar version of :func:`assert_matches_torch` for counts and sizes."""
    __tracebackhide__ = True  # IPython and pytest show the student the message, not our frames
    value = as_plain_array(got, "your result")
    if value.shape != () or not math.isclose(float(value), float(expected), abs_tol=tol):
        raise CheckFailure(
            f"got {got!r}, expected {expected!r}" + (f"\n  case: {case}" if case else "")
        )
