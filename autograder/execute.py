"""Run the student's cells in a sandboxed kernel and keep it alive for scoring.

:class:`Sandbox` is the grader's handle on one sandbox (see :mod:`autograder.sandbox`): it copies
the student's folder into the zygote's spool (regular files only; the copy is the only folder the
sandbox can write), has the zygote fork the sandbox, holds a pidfd for its kernel, runs cells
(collecting nbformat outputs, capped), looks names up and calls the student's functions, all with
time limits. Everything the sandbox sends is untrusted: frames are size-checked JSON, values go
through :func:`autograder.proxy.decode`, and a sandbox that breaks the protocol, runs out of time
or memory, or dies is killed and reported as dead; later cells and calls then fail with that
reason (the student's failure, not ours). :meth:`Sandbox.close` returns only once every process
of the sandbox is verified gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autograder import boundary, confine, proxy, sanitize
from autograder.results import InfrastructureError
from autograder.sandbox import (
    UID_BASE,
    Limits,
    SandboxProcess,
    Zygote,
    clean_uid_files,
    hand_over,
    uid_processes,
    zygote_user,
)

#: Seconds a sandbox may take from fork to "ready" before we call it our failure.
STARTUP_TIMEOUT = 60.0
#: Seconds an interrupted cell gets to stop before the sandbox is killed.
INTERRUPT_GRACE = 2.0


@dataclass
class CellRun:
    """What happened when one cell ran in the sandbox."""

    status: str  # "ok", "error", "timeout", "dead"
    outputs: list[dict] = field(default_factory=list)
    ename: str = ""
    evalue: str = ""
    execution_count: int | None = None

    @property
    def failed(self) -> bool:
        return self.status != "ok"

    def describe(self) -> str:
        if self.status == "ok":
            return "ok"
        return f"{self.ename}: {self.evalue}" if self.ename else self.status


class Sandbox:
    """One sandboxed kernel for one notebook (or for its numpy-only functions)."""

    def __init__(
        self,
        workdir: Path,
        limits: Limits,
        *,
        numpy_only: bool = False,
        deadline: float | None = None,
        preload: Iterable[str] = (),
    ):
        self.limits = limits
        self.numpy_only = numpy_only
        self.deadline = deadline if deadline is not None else time.monotonic() + 1e9
        self.dead_reason: str | None = None
        self.next_id = 1
        self.buffer = bytearray()
        self.frames: list[dict] = []
        self.output_left = limits.output
        self.truncated = False
        self.last_watch = 0.0
        self.proc: SandboxProcess | None = None
        self.workdir: Path | None = None
        self.sock: socket.socket | None = None
        self.paused = False
        self.dropped_outputs = 0  # outputs of calls made with show_output=False
        self.pid = 0
        self.uid: int | None = None
        zygote = Zygote.get(torch=not numpy_only)
        #: seconds spent starting the zygote first (0 when it was warm)
        self.zygote_seconds = zygote.ensure_started()
        #: seconds the zygote spent importing ``preload`` first (the numpy-only one does not:
        #: it cannot import torch's world anyway)
        self.preload_seconds = 0.0 if numpy_only else zygote.preload(preload)
        started = time.monotonic()
        self.mode = zygote.mode
        self.workdir = Path(zygote.new_folder(workdir))
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = parent
        request = {"limits": asdict(limits), "numpy_only": numpy_only}
        try:
            try:
                zygote.fork(child.fileno(), request)
            finally:
                child.close()
            self._take_over(started + STARTUP_TIMEOUT, numpy_only)
            ready = self._next_frame(started + STARTUP_TIMEOUT)
            if ready is None or ready.get("type") != "ready":
                reason = (ready or {}).get("error") or self.dead_reason or "no ready message"
                raise InfrastructureError(f"the sandbox did not start: {reason}")
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - started

    def _take_over(self, until: float, numpy_only: bool) -> None:
        """Receive the kernel's pidfd, give it a uid and its folder, and tell it to begin."""
        fds: list[int] = []
        try:
            while not self.frames and self.dead_reason is None:  # the first frame, maybe in parts
                self.sock.settimeout(max(0.1, until - time.monotonic()))
                data, more, _flags, _addr = socket.recv_fds(self.sock, 65536, 1)
                fds += more
                if not data:
                    break
                self.buffer += data
                self._parse()
        except (OSError, TimeoutError) as error:
            raise InfrastructureError(f"the sandbox did not start: {error}") from error
        finally:
            self.sock.settimeout(None)
        spawned = self.frames.pop(0) if self.frames else {}
        if spawned.get("type") != "spawned" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise InfrastructureError(
                f"the sandbox did not start: {spawned.get('error') or 'no pidfd from the zygote'}"
            )
        self.proc = SandboxProcess(fds[0], self.mode)
        self.pid = self.proc.pid
        if self.mode in ("namespaces", "uid"):
            uid = gid = UID_BASE + self.pid
            # without namespaces a killed earlier grader may have left processes of this uid
            # (with them, a sandbox's processes die with its namespace)
            for stale in uid_processes(uid) if self.mode == "uid" else []:
                with contextlib.suppress(OSError):
                    os.kill(stale, signal.SIGKILL)
            hand_over(str(self.workdir), uid, gid)
        elif self.mode == "user-namespaces":
            uid = gid = confine.INNER_ID  # inside its user namespace; outside, the zygote's
            owner = zygote_user(self.mode)
            if owner is not None:
                hand_over(str(self.workdir), owner, owner)
        else:
            uid, gid = os.getuid(), os.getgid()
        self.uid = uid
        self.proc.uid = uid if self.mode in ("namespaces", "uid") else None
        groups = []
        if self.mode == "uid":
            groups = [boundary.SANDBOX_GID] + ([boundary.NUMPY_ONLY_GID] if numpy_only else [])
        self._send({"workdir": str(self.workdir), "uid": uid, "gid": gid, "groups": groups})

    # -- frames ---------------------------------------------------------------------------------

    def _die(self, reason: str) -> None:
        if self.dead_reason is None:
            self.dead_reason = reason
        if self.proc is not None:
            self.proc.kill()

    def _watch(self) -> None:
        """Notice a dead kernel or a sandbox over its memory limit (all of its processes)."""
        if self.proc is None:
            return
        if not self.proc.alive():
            self._die("the kernel died (the process exited or was killed)")
            return
        now = time.monotonic()
        if now - self.last_watch > 0.5 and self.mode != "unsafe":
            self.last_watch = now
            # per-process RLIMIT_AS stops one big allocation; this bounds all processes together
            baseline = 0.5 * 1024**3
            if self.proc.rss() > self.limits.memory + baseline:
                self._die(
                    f"killed: the memory limit ({self.limits.memory // 2**20} MiB) was exceeded"
                )

    def _next_frame(self, until: float) -> dict | None:
        """The next frame, or None at ``until`` or when the sandbox is dead."""
        while True:
            if self.frames:
                return self.frames.pop(0)
            if self.dead_reason is not None:
                return None
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self.sock], [], [], min(remaining, 0.25))
            if not readable:
                self._watch()
                continue
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self._die("the kernel died (its connection closed)")
                continue
            self.buffer += chunk
            self._parse()

    def _parse(self) -> None:
        while len(self.buffer) >= 4:
            (size,) = struct.unpack(">I", self.buffer[:4])
            if size > proxy.MAX_FRAME:
                self._die("killed: the sandbox sent an oversized message")
                return
            if len(self.buffer) < 4 + size:
                return
            body = bytes(self.buffer[4 : 4 + size])
            del self.buffer[: 4 + size]
            try:
                self.frames.append(proxy.unpack_body(body))
            except proxy.FrameTooComplex as error:
                self._die(f"killed: the sandbox sent a message too large to decode ({error})")
                return
            except (ValueError, UnicodeDecodeError, RecursionError, MemoryError):
                self._die("killed: the sandbox broke the protocol")
                return

    def _send(self, message: dict) -> bool:
        if self.dead_reason is not None:
            return False
        try:
            self.sock.sendall(proxy.pack_frame(message))
            return True
        except OSError:
            self._die("the kernel died (its connection closed)")
            return False

    def _request(self, message: dict, timeout: float, on_output) -> tuple[str, dict]:
        """Send a request; feed its outputs to ``on_output``; return (status, done frame)."""
        until = min(time.monotonic() + timeout, self.deadline)
        request_id = self.next_id
        self.next_id += 1
        if not self._send(dict(message, id=request_id)):
            return "dead", {}
        interrupted = False
        while True:
            frame = self._next_frame(until)
            if frame is None:
                if self.dead_reason is not None:
                    return "dead", {}
                if interrupted:
                    self._die("killed: it did not stop after the time limit")
                    return "timeout", {}
                interrupted = True
                if self.proc is not None:
                    self.proc.signal(signal.SIGINT)
                until = time.monotonic() + INTERRUPT_GRACE
                continue
            if frame.get("id") != request_id:
                continue  # a late frame of an earlier, timed-out request
            kind = frame.get("type")
            if kind == "output":
                on_output(frame.get("output"))
            elif kind == "done":
                return ("timeout" if interrupted else "done"), frame
            elif kind == "toolarge":
                return "done", {"status": "error", "ename": "OutputTooLarge", "evalue": ""}

    # -- outputs --------------------------------------------------------------------------------

    def _clean_output(self, output: Any) -> dict | None:
        """An nbformat output built from the child's data, within the output budget.

        Built by :func:`autograder.sanitize.clean_output`: valid nbformat, HTML sanitized,
        images checked, scripts and other MIME types dropped (feedback and formgrader render it).
        """
        if type(output) is not dict:
            return None
        try:
            size = len(json.dumps(output))
        except (TypeError, ValueError, RecursionError):
            return None
        if size > self.output_left:
            if not self.truncated:
                self.truncated = True
                return {
                    "output_type": "stream",
                    "name": "stderr",
                    "text": "[output truncated: the notebook's output limit was reached]\n",
                }
            return None
        self.output_left -= size
        return sanitize.clean_output(output)

    # -- operations -----------------------------------------------------------------------------

    def run_cell(self, code: str) -> CellRun:
        """Run one cell like a kernel (IPython syntax, magics, plots), within the cell limit."""
        run = CellRun(status="ok")
        if self.dead_reason is not None:
            return CellRun(status="dead", ename="KernelDied", evalue=self.dead_reason)
        if time.monotonic() >= self.deadline:
            return CellRun(status="timeout", ename="Timeout", evalue=self._notebook_timeout_text())

        def collect(output: Any) -> None:
            cleaned = self._clean_output(output)
            if cleaned is None:
                return
            if (
                cleaned["output_type"] == "stream"
                and run.outputs
                and run.outputs[-1]["output_type"] == "stream"
                and run.outputs[-1]["name"] == cleaned["name"]
            ):
                run.outputs[-1]["text"] += cleaned["text"]
            else:
                run.outputs.append(cleaned)

        status, done = self._request({"op": "run", "code": code}, self.limits.cell_timeout, collect)
        count = done.get("execution_count")
        run.execution_count = count if type(count) is int else None
        if status == "dead":
            run.status, run.ename, run.evalue = "dead", "KernelDied", str(self.dead_reason)
        elif status == "timeout" or done.get("status") == "interrupted":
            run.status, run.ename = "timeout", "Timeout"
            run.evalue = self._timeout_text()
            if self.dead_reason is not None:
                run.evalue += f"; {self.dead_reason}"
        elif done.get("status") == "ok":
            run.status = "ok"
        else:
            run.status = "error"
            run.ename = str(done.get("ename", "Error"))[:200]
            run.evalue = str(done.get("evalue", ""))[:4000]
        shown = any(o["output_type"] == "error" for o in run.outputs)
        if run.status in ("dead", "timeout") or (run.status == "error" and not shown):
            run.outputs.append(
                {"output_type": "error", "ename": run.ename, "evalue": run.evalue, "traceback": []}
            )
        return run

    def _timeout_text(self) -> str:
        if time.monotonic() >= self.deadline - 0.01:
            return self._notebook_timeout_text()
        return f"the cell ran longer than the {self.limits.cell_timeout:g} s limit"

    def _notebook_timeout_text(self) -> str:
        return f"the notebook ran longer than the {self.limits.notebook_timeout:g} s limit"

    def lookup(self, name: str, timeout: float) -> tuple[str, Any]:
        """("function"|"value"|"missing"|"notplain"|"dead", value or message)."""
        status, done = self._request({"op": "lookup", "name": name}, timeout, lambda out: None)
        if status != "done":
            return "dead", self.dead_reason or "the sandbox did not answer in time"
        kind = done.get("status")
        if kind == "value":
            try:
                return "value", proxy.decode(done.get("value"))
            except (proxy.NotPlainData, ValueError, TypeError) as problem:
                return "notplain", f"{name!r} is not plain data: {problem}"
        if kind in ("function", "missing"):
            return kind, None
        if kind == "notplain":
            return "notplain", str(done.get("evalue", ""))[:2000]
        return "dead", f"lookup of {name!r} failed: {done.get('ename')}: {done.get('evalue')}"

    def call(
        self, name: str, args: Any, kwargs: Any, until: float, *, show_output: bool = True
    ) -> Any:
        """Call the student's ``name`` in the sandbox; the result decoded, or an exception.

        ``show_output=False`` (a hidden test is running) drops what the student's code prints.
        """
        message = {"op": "call", "name": name, "args": args, "kwargs": kwargs}
        timeout = self._time_left(name, until)
        status, done = self._request(message, timeout, self._forwarder(show_output))
        ok, value = self._outcome(name, status, done)
        if ok:
            return value
        raise value

    def call_each(
        self, name: str, calls: list, until: float, *, show_output: bool = True
    ) -> list[tuple[bool, Any]]:
        """``call`` for each ``[args, kwargs]`` of ``calls``, in order, in as few round trips as
        the replies' size allows: [(True, result) or (False, the exception call would raise)].

        Raises what :meth:`call` raises when the sandbox times out, dies or breaks the protocol.
        """
        outcomes: list[tuple[bool, Any]] = []
        while len(outcomes) < len(calls):
            timeout = self._time_left(name, until)
            todo = calls[len(outcomes) :]
            message = {"op": "call_each", "name": name, "calls": todo}
            status, done = self._request(message, timeout, self._forwarder(show_output))
            results = done.get("results")
            if status == "done" and done.get("status") == "each" and type(results) is list:
                if not results or len(results) > len(todo):
                    raise proxy.SandboxError(f"{name}: the sandbox broke the protocol")
                outcomes += [self._outcome(name, status, r) for r in results]
                continue
            self._outcome(name, status, done)  # raises: timeout, death, protocol
            raise proxy.SandboxError(f"{name}: {done.get('ename')}: {done.get('evalue')}")
        return outcomes

    def _time_left(self, name: str, until: float) -> float:
        """Seconds left for a call of ``name``; raises when it cannot be made."""
        if self.dead_reason is not None:
            raise proxy.SandboxError(f"cannot call {name}: {self.dead_reason}")
        timeout = until - time.monotonic()
        if timeout <= 0:
            raise proxy.SandboxTimeout(f"{name} was not called: the test cell's time is up")
        return timeout

    def _forwarder(self, show_output: bool):
        def forward(output: Any) -> None:
            if not show_output:
                self.dropped_outputs += 1
                return
            cleaned = self._clean_output(output)
            if cleaned and cleaned["output_type"] == "stream":
                print(cleaned["text"], end="", file=sys.stdout)

        return forward

    def _outcome(self, name: str, status: str, done: Any) -> tuple[bool, Any]:
        """One call's reply as (True, value) or (False, exception); raises for our side."""
        if type(done) is not dict:
            raise proxy.SandboxError(f"{name}: the sandbox broke the protocol")
        if status == "dead":
            raise proxy.SandboxError(f"{name} could not finish: {self.dead_reason}")
        if status == "timeout" or done.get("status") == "interrupted":
            raise proxy.SandboxTimeout(
                f"{name} ran past the time limit ({self.limits.cell_timeout:g} s per test cell)"
                + (f"; {self.dead_reason}" if self.dead_reason else "")
            )
        kind = done.get("status")
        if kind == "ok":
            try:
                return True, proxy.decode(done.get("value"))
            except (proxy.NotPlainData, ValueError, TypeError) as problem:
                return False, proxy.NotPlainData(f"{name} returned malformed data: {problem}")
        if kind == "raised":
            return False, proxy.rebuild_exception(done.get("ename"), done.get("evalue"), name)
        if kind == "notplain":
            return False, proxy.NotPlainData(str(done.get("evalue", ""))[:2000])
        if kind == "missing":
            return False, NameError(f"name {name!r} is not defined in your notebook")
        raise proxy.SandboxError(f"{name}: {done.get('ename')}: {done.get('evalue')}")

    def pause(self) -> None:
        """Stop every process of this sandbox (SIGSTOP, verified) until :meth:`resume`."""
        if self.paused or self.proc is None or self.dead_reason is not None:
            return
        self.paused = True
        if not self.proc.stop_all():
            self._die("killed: its processes could not be paused while another sandbox ran")

    def resume(self) -> None:
        if self.paused and self.proc is not None and self.dead_reason is None:
            self.proc.continue_all()
        self.paused = False

    @contextlib.contextmanager
    def frozen(self):
        """This sandbox paused for the duration of the block."""
        was_paused = self.paused
        self.pause()
        try:
            yield
        finally:
            if not was_paused:
                self.resume()

    def close(self) -> None:
        """Kill the sandbox, verify none of its processes is left, remove its folder."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        if self.proc is not None:
            self.proc.kill()  # raises InfrastructureError if something survives
            if self.mode == "uid" and self.uid is not None:
                clean_uid_files(self.uid)
            self.proc.close()
            self.proc = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
