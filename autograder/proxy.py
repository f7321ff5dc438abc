"""Plain data across the sandbox boundary, without pickle, and proxies for the student's functions.

Only plain data crosses between the trusted grader and the student's sandbox:

- ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``;
- NumPy arrays (and NumPy scalars) of a bool, integer, unsigned, float or complex dtype;
- ``tuple``, ``list`` and ``dict`` of those (dict keys: str, int, float, bool, None, tuple).

Encoding is JSON; arrays travel as ``np.save(allow_pickle=False)`` bytes in base64 and are read
back with ``np.load(allow_pickle=False)``. Decoding builds fresh builtin objects and plain
``np.ndarray``s only, so nothing the student sends can run code in the grader or carry a
custom ``__eq__``. Every check is by exact type, never ``isinstance``: a subclass of ``int``,
``tuple`` or ``np.ndarray`` is refused, not silently converted.

Frames on the wire are a 4-byte big-endian length followed by UTF-8 JSON.

Decoding is bounded per frame, not only in bytes: a frame of more than :data:`MAX_VALUES` JSON
values (containers and items, counted before anything is built) or whose arrays hold more than
:data:`MAX_ARRAY_ELEMENTS` elements in all (read from the ``.npy`` headers before any array is
allocated) is refused with :class:`FrameTooComplex`. 64 MB of ``[[],[],...]`` would otherwise
become ~20 million Python lists (gigabytes) in the grader.
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

#: Largest frame either side accepts (a message is refused, not buffered, beyond this).
MAX_FRAME = 64 * 1024 * 1024
#: Deepest nesting of tuples/lists/dicts accepted.
MAX_DEPTH = 32
#: Most JSON values (containers and their items) one frame may hold.
MAX_VALUES = 2_000_000
#: Most array elements one decoded value may hold, all arrays together.
MAX_ARRAY_ELEMENTS = 32 * 1024 * 1024
_ARRAY_KINDS = "biufc"
_SCALARS = (type(None), bool, int, float, str)


class NotPlainData(Exception):
    """A value that may not cross the sandbox boundary (the message says which and why)."""


class FrameTooComplex(ValueError):
    """A frame (or file) holds more values or array elements than the grader decodes."""


class SandboxError(Exception):
    """The student's sandbox could not answer: it timed out, died, or broke the protocol.

    Deliberately not a ValueError/RuntimeError, so a check never mistakes it for the student's
    function correctly rejecting a case.
    """


class SandboxTimeout(SandboxError):
    """A call into the sandbox ran past its time limit."""


def describe_type(value: Any) -> str:
    cls = type(value)
    module = getattr(cls, "__module__", "?")
    name = getattr(cls, "__qualname__", getattr(cls, "__name__", "?"))
    return name if module == "builtins" else f"{module}.{name}"


def _array_to_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _array_from_b64(text: str, budget: list[int] | None = None) -> np.ndarray:
    """The array in an ``__ndarray__`` payload; ``budget`` = [array elements still allowed]."""
    if type(text) is not str:
        raise NotPlainData("malformed array payload")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        header = io.BytesIO(raw)
        version = np.lib.format.read_magic(header)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(header)
    except Exception as error:  # noqa: BLE001 - any malformed payload is the sender's
        raise NotPlainData(f"malformed array payload ({type(error).__name__})") from None
    if dtype.hasobject:
        raise ValueError(f"array of dtype {dtype} refused: decoding never unpickles")
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise NotPlainData(f"array of dtype {dtype} is not plain data")
    count = math.prod(shape)
    if budget is not None:
        budget[0] -= count
        if budget[0] < 0:
            raise FrameTooComplex(
                f"arrays of more than {MAX_ARRAY_ELEMENTS} elements in one value are refused"
            )
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as error:  # noqa: BLE001 - truncated data, bad header...
        raise NotPlainData(f"malformed array payload ({type(error).__name__})") from None
    if type(array) is not np.ndarray or array.dtype.kind not in _ARRAY_KINDS:
        raise NotPlainData(f"array of dtype {array.dtype} is not plain data")
    return array


def encode(value: Any, what: str = "value", _depth: int = 0) -> Any:
    """``value`` as a JSON-able tree, or :class:`NotPlainData` naming what is wrong."""
    if _depth > MAX_DEPTH:
        raise NotPlainData(f"{what} is nested deeper than {MAX_DEPTH} levels")
    cls = type(value)
    if cls in _SCALARS:
        if cls is float and not math.isfinite(value):
            return {"__float__": repr(value)}
        return value
    if cls is complex:
        return {"__complex__": [encode(value.real), encode(value.imag)]}
    if cls is np.ndarray:
        if value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
            raise NotPlainData(
                f"{what} is a NumPy array of dtype {value.dtype}; only arrays of numbers or "
                "bools may be passed"
            )
        return {"__ndarray__": _array_to_b64(np.ascontiguousarray(value))}
    if isinstance(value, np.generic) and cls.__module__ == "numpy":
        if value.dtype.kind not in _ARRAY_KINDS:
            raise NotPlainData(f"{what} is a NumPy {value.dtype} scalar; expected a number")
        return {"__npscalar__": _array_to_b64(np.asarray(value))}
    if cls is tuple:
        return {"__tuple__": [encode(v, what, _depth + 1) for v in value]}
    if cls is list:
        return [encode(v, what, _depth + 1) for v in value]
    if cls is dict:
        return {
            "__dict__": [
                [encode(k, what, _depth + 1), encode(v, what, _depth + 1)] for k, v in value.items()
            ]
        }
    hint = ""
    if cls.__module__.split(".")[0] == "torch":
        hint = " (return a NumPy array, e.g. tensor.detach().numpy(), not a torch object)"
    raise NotPlainData(
        f"{what} is a {describe_type(value)}, which is not plain data: only NumPy arrays of "
        f"numbers, numbers, str, bool, None and tuples/lists/dicts of those are accepted{hint}"
    )


def decode(tree: Any, _depth: int = 0, _budget: list[int] | None = None) -> Any:
    """Inverse of :func:`encode`; builds builtin objects and plain arrays only.

    At most :data:`MAX_ARRAY_ELEMENTS` array elements in all (else :class:`FrameTooComplex`).
    """
    if _budget is None:
        _budget = [MAX_ARRAY_ELEMENTS]
    if _depth > MAX_DEPTH + 2:
        raise NotPlainData(f"value nested deeper than {MAX_DEPTH} levels")
    cls = type(tree)
    if cls in _SCALARS:
        return tree
    if cls is list:
        return [decode(v, _depth + 1, _budget) for v in tree]
    if cls is dict and len(tree) == 1:
        ((tag, payload),) = tree.items()
        if tag == "__float__" and payload in ("nan", "inf", "-inf"):
            return float(payload)
        if tag == "__complex__" and type(payload) is list and len(payload) == 2:
            re, im = (decode(p, _depth + 1, _budget) for p in payload)
            if type(re) is float and type(im) is float:
                return complex(re, im)
        if tag == "__ndarray__":
            return _array_from_b64(payload, _budget)
        if tag == "__npscalar__":
            array = _array_from_b64(payload, _budget)
            if array.shape != ():
                raise NotPlainData("malformed NumPy scalar")
            return array[()]
        if tag == "__tuple__" and type(payload) is list:
            return tuple(decode(v, _depth + 1, _budget) for v in payload)
        if tag == "__dict__" and type(payload) is list:
            out = {}
            for pair in payload:
                if type(pair) is not list or len(pair) != 2:
                    raise NotPlainData("malformed dict")
                key = decode(pair[0], _depth + 1, _budget)
                try:
                    hash(key)
                except TypeError:
                    raise NotPlainData("dict key is not hashable") from None
                out[key] = decode(pair[1], _depth + 1, _budget)
            return out
    raise NotPlainData(f"malformed plain-data payload ({cls.__name__})")


# -- frames -------------------------------------------------------------------------------------


def pack_frame(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise NotPlainData(f"message of {len(body)} bytes exceeds the {MAX_FRAME}-byte limit")
    return struct.pack(">I", len(body)) + body


#: Every byte but the JSON structure characters that start a value or separate items, and '"'.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b',[{"')


def json_value_count(data: bytes) -> int:
    """How many JSON values (containers and items) ``data`` holds, give or take one per container.

    Counts ``,``, ``[`` and ``{`` outside strings, without building anything: first in the
    raw bytes (an upper bound, enough for nearly every message), and only when that is large,
    exactly (escapes removed, then strings skipped by quote parity, 1 MiB at a time).
    """
    quick = data.count(b",") + data.count(b"[") + data.count(b"{")
    if quick <= MAX_VALUES or b'"' not in data:
        return quick
    structure = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    codes = np.frombuffer(structure, dtype=np.uint8)
    count, parity, step = 0, 0, 1 << 20
    for start in range(0, len(codes), step):
        chunk = codes[start : start + step]
        quote = chunk == ord('"')
        in_string = (np.cumsum(quote, dtype=np.uint8) + parity) & 1
        count += int(np.count_nonzero(~quote & (in_string == 0)))
        parity = (parity + int(np.count_nonzero(quote))) & 1
    return count


def loads_bounded(data: bytes, max_values: int = MAX_VALUES, what: str = "message") -> Any:
    """``json.loads`` that refuses (FrameTooComplex) more than ``max_values`` values first."""
    count = json_value_count(data)
    if count > max_values:
        raise FrameTooComplex(f"the {what} holds {count} values, more than {max_values}")
    return json.loads(data.decode("utf-8"))


def unpack_body(body: bytes) -> dict:
    """A frame's JSON object; FrameTooComplex (a ValueError) when it holds too many values."""
    message = loads_bounded(body)
    if type(message) is not dict:
        raise ValueError("frame is not a JSON object")
    return message


# -- exceptions across the boundary -------------------------------------------------------------

#: Exception types a student's function may raise that the grader re-raises as the same type
#: (so ``except ValueError`` in a check behaves as in the student's kernel). Everything else
#: arrives as :class:`StudentException`.
REPLAYABLE_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        ValueError,
        RuntimeError,
        TypeError,
        IndexError,
        KeyError,
        AssertionError,
        NotImplementedError,
        ZeroDivisionError,
        ArithmeticError,
        OverflowError,
        FloatingPointError,
        AttributeError,
        NameError,
        UnboundLocalError,
        LookupError,
        ImportError,
        ModuleNotFoundError,
        MemoryError,
        RecursionError,
    )
}


class StudentException(Exception):
    """The student's function raised an exception of a type the grader does not replay."""


def builtin_base_name(error: BaseException) -> str:
    """Name of the nearest builtin exception class of ``error`` (student side)."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return "Exception"


def rebuild_exception(name: Any, text: Any, function: str) -> Exception:
    """The grader-side exception for an error the student's function reported."""
    text = str(text)[:4000]
    cls = REPLAYABLE_ERRORS.get(name) if type(name) is str else None
    if cls is None:
        error: Exception = StudentException(f"{function} raised {str(name)[:100]}: {text}")
    else:
        error = cls(text)
    error.from_sandbox = True  # type: ignore[attr-defined]  # (not the grader's own failure)
    return error


class StudentFunction:
    """A callable standing for a function the student defined; each call runs in the sandbox.

    ``invoke(name, args_tree, kwargs_tree)`` is supplied by the sandbox client and returns the
    decoded result or raises. Arguments must be plain data (the test-cell contract).
    """

    def __init__(
        self,
        name: str,
        invoke: Callable[[str, Any, Any], Any],
        where: str = "sandbox",
        invoke_each: Callable[[str, list], list] | None = None,
    ):
        self.__name__ = name
        self.__qualname__ = name
        self._invoke = invoke
        self._invoke_each = invoke_each
        self._where = where

    def call_each(self, cases: list[dict[str, Any]]) -> list[tuple[bool, Any]]:
        """``self(**case)`` for each case, in order, in as few round trips as may be:
        [(True, result) or (False, the exception that call raised)]. Raises when the sandbox
        could not answer (time limit, death): then no outcome is known for sure."""
        if self._invoke_each is None:
            outcomes: list[tuple[bool, Any]] = []
            for case in cases:
                try:
                    outcomes.append((True, self(**case)))
                except Exception as error:  # noqa: BLE001 - the call's outcome, as data
                    outcomes.append((False, error))
            return outcomes
        calls = [
            [encode((), f"an argument passed to {self.__name__}"), encode(dict(case), "a case")]
            for case in cases
        ]
        return self._invoke_each(self.__name__, calls)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args_tree = encode(tuple(args), f"an argument passed to {self.__name__}")
        kwargs_tree = encode(dict(kwargs), f"an argument passed to {self.__name__}")
        return self._invoke(self.__name__, args_tree, kwargs_tree)

    def __repr__(self) -> str:
        return f"<student function {self.__name__} (runs in the {self._where})>"
