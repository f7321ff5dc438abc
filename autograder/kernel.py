"""The student's side of the sandbox: an IPython shell that runs cells and answers calls.

Runs inside the isolated child process (see :mod:`autograder.sandbox`), after the privileges
are dropped. Nothing here is trusted by the grader: the student's code shares this process and
may replace any of it. The grader only believes plain-data frames, decoded on its side.

The IPython shell is made once in the zygote (:func:`prepare`, ~0.1 s) before any fork, so every
sandbox starts with a pristine copy of it; its display hooks write to the channel of whichever
sandbox the process became (:func:`serve`).

Requests (grader -> sandbox), one JSON frame each, with an ``id``:
  ``{"op": "run", "code": str}``           run a cell like a kernel; streams ``output`` frames
  ``{"op": "lookup", "name": str}``        what the name is: function / value / missing
  ``{"op": "call", "name", "args", "kwargs"}``  call a function with plain-data arguments
Replies: ``{"id", "type": "output", "output": {...nbformat output...}}`` then
``{"id", "type": "done", ...}``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import traceback

from autograder import proxy

_current_id = 0
#: The grader's channel of this sandbox (set by serve) and the shell prepared in the zygote.
_channel: Channel | None = None
_shell = None


class Channel:
    """Blocking frame I/O on the socket to the grader (student side)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def send(self, message: dict) -> None:
        try:
            self.sock.sendall(proxy.pack_frame(message))
        except proxy.NotPlainData:
            self.sock.sendall(proxy.pack_frame({"id": message.get("id"), "type": "toolarge"}))

    def recv(self) -> dict | None:
        header = self._read(4)
        if header is None:
            return None
        (size,) = struct.unpack(">I", header)
        body = self._read(size)
        return None if body is None else proxy.unpack_body(body)

    def _read(self, size: int) -> bytes | None:
        chunks, got = [], 0
        while got < size:
            chunk = self.sock.recv(min(size - got, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)


class CappedStream:
    """sys.stdout/stderr replacement: forwards text to the grader, stops after ``cap`` bytes."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, channel: Channel, name: str, budget: list[int]):
        self.channel = channel
        self.name = name
        self.budget = budget  # shared [remaining bytes] for stdout+stderr
        self.pending: list[str] = []
        self.pending_size = 0
        self.truncated = False

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            text = str(text)
        if self.budget[0] <= 0:
            if not self.truncated:
                self.truncated = True
                self.pending.append(
                    "\n[output truncated: the notebook's output limit was reached]\n"
                )
                self.flush()
            return len(text)
        piece = text[: self.budget[0]]
        self.budget[0] -= len(piece)
        self.pending.append(piece)
        self.pending_size += len(piece)
        if self.pending_size >= 65536:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.pending:
            text = "".join(self.pending)
            self.pending, self.pending_size = [], 0
            self.channel.send(
                {
                    "id": _current_id,
                    "type": "output",
                    "output": {"output_type": "stream", "name": self.name, "text": text},
                }
            )

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("no file descriptor in the grading sandbox")


def _send(message: dict) -> None:
    if _channel is not None:
        _channel.send(message)


def _make_shell():
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
            sys.stdout.flush()
            sys.stderr.flush()
            output = {"output_type": "display_data", "data": data, "metadata": metadata or {}}
            _send({"id": _current_id, "type": "output", "output": output})

        def clear_output(self, wait=False):
            pass

    class Hook(DisplayHook):
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            sys.stdout.flush()
            output = {
                "output_type": "execute_result",
                "execution_count": self.shell.execution_count,
                "data": format_dict,
                "metadata": md_dict or {},
            }
            _send({"id": _current_id, "type": "output", "output": output})

        def finish_displayhook(self):
            pass

    class Shell(InteractiveShell):
        def _showtraceback(self, etype, evalue, stb):
            sys.stdout.flush()
            sys.stderr.flush()
            output = {
                "output_type": "error",
                "ename": getattr(etype, "__name__", str(etype)),
                "evalue": str(evalue)[:10000],
                "traceback": [str(line)[:10000] for line in stb][:200],
            }
            _send({"id": _current_id, "type": "output", "output": output})

    config = Config()
    config.HistoryManager.enabled = False  # no history thread, no sqlite file
    config.InteractiveShell.colors = "NoColor"
    config.InteractiveShell.autocall = 0
    shell = Shell.instance(config=config, display_pub_class=Publisher, displayhook_class=Hook)
    shell.display_pub = Publisher(shell=shell, parent=shell)
    shell.displayhook = Hook(shell=shell, cache_size=0, parent=shell)
    sys.displayhook = shell.displayhook
    try:
        shell.enable_matplotlib("inline")
    except Exception:  # noqa: BLE001 - plots are a nicety; grading goes on without them
        pass
    return shell


def prepare() -> None:
    """Make the shell now (in the zygote), so that each sandbox forks with one ready."""
    global _shell
    if _shell is None:
        _shell = _make_shell()


def serve(sock: socket.socket, output_cap: int) -> None:
    """Answer the grader's requests until it hangs up. Never returns normally."""
    global _current_id, _channel
    channel = _channel = Channel(sock)
    budget = [output_cap]
    out = CappedStream(channel, "stdout", budget)
    err = CappedStream(channel, "stderr", budget)
    sys.stdout, sys.stderr = out, err
    signal.signal(signal.SIGINT, signal.default_int_handler)
    prepare()
    shell = _shell
    channel.send({"id": 0, "type": "ready", "pid": os.getpid(), "uid": os.getuid()})
    while True:
        try:
            request = channel.recv()
        except KeyboardInterrupt:
            continue
        if request is None:
            os._exit(0)
        _current_id = request.get("id", 0)
        op = request.get("op")
        try:
            if op == "run":
                reply = _run(shell, request.get("code", ""))
            elif op == "lookup":
                reply = _lookup(shell, request.get("name", ""))
            elif op == "call":
                reply = _call(shell, request)
            elif op == "call_each":
                reply = _call_each(shell, request)
            else:
                reply = {"status": "error", "ename": "ProtocolError", "evalue": str(op)}
        except KeyboardInterrupt:
            reply = {"status": "interrupted"}
        except BaseException as error:  # noqa: BLE001 - reported to the grader as data
            reply = {"status": "error", "ename": type(error).__name__, "evalue": str(error)[:4000]}
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        reply.update({"id": _current_id, "type": "done"})
        channel.send(reply)


def _run(shell, code: str) -> dict:
    result = shell.run_cell(code, store_history=True, silent=False)
    error = result.error_before_exec or result.error_in_exec
    if error is None:
        return {"status": "ok", "execution_count": shell.execution_count - 1}
    return {
        "status": "error",
        "ename": type(error).__name__,
        "evalue": str(error)[:4000],
        "execution_count": shell.execution_count - 1,
    }


def _lookup(shell, name: str) -> dict:
    if name not in shell.user_ns or name in shell.user_ns_hidden:
        return {"status": "missing"}
    value = shell.user_ns[name]
    if callable(value):
        return {"status": "function"}
    try:
        return {"status": "value", "value": proxy.encode(value, f"the value of {name!r}")}
    except proxy.NotPlainData as problem:
        return {"status": "notplain", "evalue": str(problem)}


def _call(shell, request: dict) -> dict:
    name = request.get("name", "")
    function = shell.user_ns.get(name)
    if function is None or not callable(function):
        return {"status": "missing"}
    try:
        args = proxy.decode(request.get("args"))
        kwargs = proxy.decode(request.get("kwargs"))
    except proxy.NotPlainData as problem:
        return {"status": "error", "ename": "TypeError", "evalue": str(problem)}
    try:
        value = function(*args, **kwargs)
    except KeyboardInterrupt:
        return {"status": "interrupted"}
    except BaseException as error:  # noqa: BLE001 - the student's exception, as data
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        return {
            "status": "raised",
            "ename": proxy.builtin_base_name(error),
            "evalue": str(error)[:4000],
            "text": text[:4000],
        }
    try:
        return {"status": "ok", "value": proxy.encode(value, f"the result of {name}")}
    except proxy.NotPlainData as problem:
        return {"status": "notplain", "evalue": str(problem)}


#: Bytes of encoded results one ``call_each`` reply carries at most (the rest: the next request).
CALL_EACH_BYTES = 8 * 1024 * 1024


def _call_each(shell, request: dict) -> dict:
    """``_call`` for each (args, kwargs) of ``calls`` in order: one reply for the lot.

    Stops early (the grader asks again for the rest) once the results pass CALL_EACH_BYTES;
    an interrupt (the time limit) ends the whole request as interrupted.
    """
    calls = request.get("calls")
    if type(calls) is not list:
        return {"status": "error", "ename": "ProtocolError", "evalue": "calls"}
    results, size = [], 0
    for pair in calls:
        if type(pair) is not list or len(pair) != 2:
            return {"status": "error", "ename": "ProtocolError", "evalue": "call"}
        reply = _call(shell, {"name": request.get("name", ""), "args": pair[0], "kwargs": pair[1]})
        if reply.get("status") == "interrupted":
            return reply
        results.append(reply)
        size += len(json.dumps(reply, separators=(",", ":")))
        if size > CALL_EACH_BYTES:
            break
    return {"status": "each", "results": results}
