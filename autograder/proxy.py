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
_ARRAY_KINDS = "biufc"
_SCALARS = (type(None), bool, int, float, str)


class NotPlainData(Exception):
    """A value that may not cross the sandbox boundary (the message says which and why)."""


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


def _array_from_b64(text: str) -> np.ndarray:
    if type(text) is not str:
        raise NotPlainData("malformed array payload")
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    array = np.load(io.BytesIO(raw), allow_pickle=False)
    if type(array) is not np.ndarray or array.dtype.kind not in _ARRAY_KINDS:
        raise NotPlainData(f"array of dtype {array.dtype} is not plain data")
    if array.dtype.fields is not None or array.dtype.subdtype is not None:
        raise NotPlainData("structured arrays are not plain data")
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


def decode(tree: Any, _depth: int = 0) -> Any:
    """Inverse of :func:`encode`; builds builtin objects and plain arrays only."""
    if _depth > MAX_DEPTH + 2:
        raise NotPlainData(f"value nested deeper than {MAX_DEPTH} levels")
    cls = type(tree)
    if cls in _SCALARS:
        return tree
    if cls is list:
        return [decode(v, _depth + 1) for v in tree]
    if cls is dict and len(tree) == 1:
        ((tag, payload),) = tree.items()
        if tag == "__float__" and payload in ("nan", "inf", "-inf"):
            return float(payload)
        if tag == "__complex__" and type(payload) is list and len(payload) == 2:
            re, im = (decode(p, _depth + 1) for p in payload)
            if type(re) is float and type(im) is float:
                return complex(re, im)
        if tag == "__ndarray__":
            return _array_from_b64(payload)
        if tag == "__npscalar__":
            array = _array_from_b64(payload)
            if array.shape != ():
                raise NotPlainData("malformed NumPy scalar")
            return array[()]
        if tag == "__tuple__" and type(payload) is list:
            return tuple(decode(v, _depth + 1) for v in payload)
        if tag == "__dict__" and type(payload) is list:
            out = {}
            for pair in payload:
                if type(pair) is not list or len(pair) != 2:
                    raise NotPlainData("malformed dict")
                key = decode(pair[0], _depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise NotPlainData("dict key is not hashable") from None
                out[key] = decode(pair[1], _depth + 1)
            return out
    raise NotPlainData(f"malformed plain-data payload ({cls.__name__})")


# -- frames -------------------------------------------------------------------------------------


def pack_frame(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise NotPlainData(f"message of {len(body)} bytes exceeds the {MAX_FRAME}-byte limit")
    return struct.pack(">I", len(body)) + body


def unpack_body(body: bytes) -> dict:
    message = json.loads(body.decode("utf-8"))
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

    def __init__(self, name: str, invoke: Callable[[str, Any, Any], Any], where: str = "sandbox"):
        self.__name__ = name
        self.__qualname__ = name
        self._invoke = invoke
        self._where = where

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args_tree = encode(tuple(args), f"an argument passed to {self.__name__}")
        kwargs_tree = encode(dict(kwargs), f"an argument passed to {self.__name__}")
        return self._invoke(self.__name__, args_tree, kwargs_tree)

    def __repr__(self) -> str:
        return f"<student function {self.__name__} (runs in the {self._where})>"
