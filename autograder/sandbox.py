"""Sandboxes for student code: the isolation mode, the warm zygote, and control of one sandbox.

**The boundary.** A *zygote* is a long-lived process (one per grader process and variant) that
imports numpy, IPython, matplotlib (and, for the full variant, torch and the course; then, before
an assignment's first sandbox, what its notebooks import) once, makes the IPython shell, and then
forks one sandbox per notebook. With namespaces the zygote
runs inside **bubblewrap** (``bwrap --die-with-parent --new-session``, no network, its own PID,
IPC, UTS and mount namespaces), whose file system holds only :func:`autograder.boundary.layout`
(system libraries, the interpreter and its standard library, the venv's site-packages, the
``course`` and ``autograder`` packages; all read-only) plus a private *spool* directory in which
the grader puts each student's folder. Not the course root, ``source/``, the gradebook, the
output folder, other students, or the base interpreter's site-packages. The numpy-only variant
has its own zygote, boundary and spool, with torch's packages covered.

**One sandbox** (:mod:`autograder.confine`): a zygote child makes new PID, mount, network, IPC and
UTS namespaces and forks the student's kernel as PID 1 of the new PID namespace; the grader holds
a pidfd for it. The kernel builds a private root with only its own folder (a copy made by the
grader, regular files only) writable, ``pivot_root``s, drops to a private uid, drops every
capability and sets ``no_new_privs``. Ending a sandbox means SIGKILL to that pidfd: the kernel of
the machine kills everything in the namespace. No helper process of the sandbox's uid ever runs.

**Modes** (:func:`isolation`), probed once per process:

- ``namespaces`` (root with CAP_SYS_ADMIN): bubblewrap without a user namespace keeps the
  capabilities the zygote's children need; a student gets a host uid of its own
  (``UID_BASE + pid``) and a fresh ``/proc`` of its PID namespace.
- ``user-namespaces`` (root without CAP_SYS_ADMIN, as in a container, or a user with user
  namespaces): bubblewrap in a user namespace (as root: run by the unprivileged
  :data:`ZYGOTE_UID`, with what that uid cannot read staged); each sandbox adds a user namespace
  mapping one private uid, and gets no ``/proc`` at all (a new one cannot be mounted there).
- ``uid`` (root without namespaces, or ``AUTOGRADER_ISOLATION=off``): no bubblewrap; the kernel
  switches to a private uid whose groups POSIX ACLs deny the course root, the grader's folders
  and the base interpreter's packages (:func:`autograder.boundary.lock_down`); every process of
  that uid is killed and verified gone when the sandbox ends.
- ``unsafe`` (no root, no user namespaces): student code would run as the grader's own user.
  Refused unless explicitly allowed (``--unsafe-no-sandbox``, :data:`UNSAFE_ENV`).

A numpy-only sandbox never runs while its torch sandbox does: before the grader uses one it stops
every process of the other (SIGSTOP, verified: :meth:`SandboxProcess.stop_all`), so no channel
between them, not even a covert one through a shared file's lock or inotify events, can carry an
answer while the numpy-only code runs.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import functools
import gc
import glob
import itertools
import json
import os
import queue
import re
import secrets
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass

from autograder import boundary, confine
from autograder.results import InfrastructureError

#: Sandbox uids are UID_BASE + the kernel's host pid: unique among live sandboxes, owned by nobody.
UID_BASE = 10_000_000
#: Host uid of the zygote (and so of every student) in user-namespace mode when we are root: an
#: unprivileged uid, so RLIMIT_NPROC applies and no student process is, outside, root.
ZYGOTE_UID = UID_BASE - 1
#: ``off`` forces the no-namespace mode (``uid`` as root).
MODE_ENV = "AUTOGRADER_ISOLATION"
#: ``1`` allows running student code without any isolation (``--unsafe-no-sandbox``).
UNSAFE_ENV = "AUTOGRADER_UNSAFE_NO_SANDBOX"
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "TORCH_NUM_THREADS": "1",
}
#: Seconds a zygote may take to import torch & co. on a loaded machine.
ZYGOTE_START_TIMEOUT = 300.0


@dataclass
class Limits:
    """Resource limits for one student notebook. All configurable; defaults suit the course."""

    cell_timeout: float = 60.0  # seconds per student cell and per test cell
    notebook_timeout: float = 600.0  # seconds for the whole notebook (cells + tests)
    memory: int = 3 * 1024**3  # bytes of address space beyond the pre-imported libraries
    processes: int = 64  # processes + threads of the sandbox's uid (RLIMIT_NPROC)
    output: int = 1024 * 1024  # bytes of printed/displayed output kept per notebook
    file_size: int = 512 * 1024**2  # largest file the student may write (RLIMIT_FSIZE)
    open_files: int = 256

    def to_json(self) -> str:
        return json.dumps(asdict(self))


# -- which isolation this machine allows --------------------------------------------------------


@dataclass(frozen=True)
class Isolation:
    mode: str  # "namespaces" | "user-namespaces" | "uid" | "unsafe"
    why: str  # how it was decided, for logs and error messages
    bwrap: str | None = None


def _probe(bwrap: str, mode: str) -> str | None:
    """None when a sandbox of ``mode`` works here, else what went wrong."""
    entries = boundary.layout(numpy_only=False)
    user = zygote_user(mode)
    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as spool:
        os.chmod(spool, 0o711)
        try:
            sources = bwrap_sources(entries, mode)
        except OSError as error:
            return f"cannot stage the interpreter for an unprivileged zygote: {error}"
        env = {"PATH": "/usr/bin:/bin"}
        cmd = boundary.bwrap_command(bwrap, entries, spool, mode == "user-namespaces", env, sources)
        cmd += [sys.executable, "-I", "-m", "autograder.confine", mode]
        ids = {} if user is None else {"user": user, "group": user, "extra_groups": []}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **ids)
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]


_isolation_lock = threading.Lock()


#: The probe's verdict, inherited by the worker processes of a grader (with the conditions it
#: held under: a process with other ids or capabilities, e.g. under setpriv, probes again).
DECIDED_ENV = "AUTOGRADER_ISOLATION_DECIDED"


def _conditions() -> str:
    caps = ""
    for line in (_read("/proc/self/status") or "").splitlines():
        if line.startswith(("CapEff:", "CapBnd:")):
            caps += line.split()[1]
    return f"{os.geteuid()}:{caps}:{os.environ.get(MODE_ENV, '')}:{shutil.which('bwrap')}"


def isolation() -> Isolation:
    """The strongest isolation this machine allows (probed once per process tree)."""
    with _isolation_lock:
        try:
            inherited = json.loads(os.environ.get(DECIDED_ENV, "null"))
        except ValueError:
            inherited = None
        if type(inherited) is dict and inherited.get("conditions") == _conditions():
            return Isolation(inherited["mode"], inherited["why"], inherited.get("bwrap"))
        info = _isolation()
        decided = {"conditions": _conditions(), **asdict(info)}
        os.environ[DECIDED_ENV] = json.dumps(decided)
        return info


@functools.lru_cache(maxsize=1)
def _isolation() -> Isolation:
    root = os.geteuid() == 0
    if os.environ.get(MODE_ENV, "").lower() in ("off", "0", "no", "uid"):
        if root:
            return Isolation("uid", f"{MODE_ENV}=off: a private uid, no namespaces")
        return Isolation("unsafe", f"{MODE_ENV}=off and not root: no private uid either")
    if not sys.platform.startswith("linux"):
        return Isolation("unsafe", "not Linux: no namespaces, no private uids")
    bwrap = shutil.which("bwrap")
    problems = []
    if bwrap is None:
        problems.append("bubblewrap (bwrap) is not installed (apt-get install bubblewrap)")
    else:
        for mode in ("namespaces", "user-namespaces") if root else ("user-namespaces",):
            problem = _probe(bwrap, mode)
            if problem is None:
                return Isolation(mode, f"bubblewrap ({mode})", bwrap)
            problems.append(f"{mode}: {problem}")
    if root:
        return Isolation("uid", "no namespaces (" + "; ".join(problems) + "): a private uid")
    return Isolation("unsafe", "not root and no user namespaces (" + "; ".join(problems) + ")")


def isolation_mode() -> str:
    return isolation().mode


def isolation_available() -> bool:
    """True when student code runs isolated from the grader (any mode but ``unsafe``)."""
    return isolation().mode != "unsafe"


def unsafe_allowed() -> bool:
    return os.environ.get(UNSAFE_ENV) == "1"


def allow_unsafe() -> None:
    """Permit the ``unsafe`` mode in this process and the workers it starts."""
    os.environ[UNSAFE_ENV] = "1"


def refusal() -> str | None:
    """Why student code may not run here (None when it may)."""
    info = isolation()
    if info.mode != "unsafe" or unsafe_allowed():
        return None
    return (
        f"cannot isolate student code on this machine: {info.why}. Student code would run as "
        "your own user and could read the course's solutions and hidden tests, change files and "
        "reach the network. Install bubblewrap and allow user namespaces, or run the grader as "
        "root (a container is enough), or pass --unsafe-no-sandbox if you trust every submission"
    )


# -- what the no-namespace mode must keep from the sandbox --------------------------------------

#: Folders no sandbox may read, os.pathsep-separated (inherited by worker processes).
PROTECT_ENV = "AUTOGRADER_PROTECTED"
_protect_lock = threading.Lock()


def protect(*paths) -> None:
    """Folders no sandbox may read (without namespaces: ACLs; with them they are never bound).

    The course root is always protected; the grader adds its output and submissions folders.
    Recorded in the environment, so that the workers this process starts inherit them.
    """
    with _protect_lock:
        known = [p for p in os.environ.get(PROTECT_ENV, "").split(os.pathsep) if p]
        for path in paths:
            if path is not None and os.path.realpath(path) not in known:
                known.append(os.path.realpath(path))
        os.environ[PROTECT_ENV] = os.pathsep.join(known)


def _protected_paths() -> list[str]:
    from autograder.course import course_root

    protect(course_root())
    return [p for p in os.environ[PROTECT_ENV].split(os.pathsep) if p]


# -- the zygote ---------------------------------------------------------------------------------

PRELOAD_BASE = ["numpy", "IPython", "matplotlib", "matplotlib.pyplot", "matplotlib_inline"]
#: What the torch zygote imports before it says ready. Anything else an assignment's notebooks
#: import (torchvision, the tensorboard writer, course.data...) is imported when its first
#: submission is graded (:meth:`Zygote.preload`): torchvision alone is 1.2 s of every worker's
#: start, wasted on an assignment that never imports it.
PRELOAD_TORCH = ["torch", "course", "course.checks"]
#: A module name a preload request may hold (dotted identifiers, nothing else).
MODULE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _import_each(modules: list[str]) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs speed
            pass
    _settle_matplotlib()


def _settle_matplotlib() -> None:
    """Leave nothing of matplotlib's in the zygote that a forked sandbox must not inherit.

    - No open figure: the inline backend would show it after the student's first cell.
    - No font object: each reads its font file through a file descriptor, and a sandbox puts
      every descriptor it inherits on /dev/null, so a font opened here fails in the sandbox (a
      plot with ``$...$`` in it came out as an error; before, when they were closed, a stale
      font's close callback closed a file the sandbox had opened since). matplotlib drops its
      own font cache at fork; mathtext's parse cache keeps fonts too. Closed here, while their
      descriptors are open; a sandbox opens its own on first use.
    """
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        try:
            plt.close("all")
        except Exception:  # noqa: BLE001
            pass
    mathtext = sys.modules.get("matplotlib.mathtext")
    if mathtext is not None:
        mathtext.MathTextParser._parse_cached.cache_clear()
    font_manager = sys.modules.get("matplotlib.font_manager")
    if font_manager is not None:
        font_manager._get_font.cache_clear()
    gc.collect()


def _preload(modules: list[str]) -> None:
    import matplotlib

    matplotlib.use("module://matplotlib_inline.backend_inline")
    _import_each(modules)
    from autograder import kernel

    kernel.prepare()
    _warm_rendering()


def _warm_rendering() -> None:
    """Draw one throw-away figure the way the inline backend shows a student's plot.

    The first figure a process renders loads the font (and its glyph cache), the Agg renderer,
    the tick and legend machinery and the PNG writer: 0.3-0.4 s, which every forked sandbox
    would otherwise pay again for the notebook's first plot. Nothing of a student's is involved.
    """
    try:
        import io

        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(4, 2))
        for ax in (left, right):
            ax.plot([1, 2, 3], [3, 1, 2], "o-", label="k=1")
            ax.imshow([[0.0, 1.0], [1.0, 0.0]], cmap="viridis")
            ax.set(xlabel="stride", ylabel="output height", title="warm-up $x^2$")
            ax.legend()
            ax.grid(True)
        fig.colorbar(right.images[0], ax=right)
        fig.tight_layout()
        fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
        from IPython.core.pylabtools import print_figure

        print_figure(fig, "png", bbox_inches="tight")  # the inline backend's own path
    except Exception:  # noqa: BLE001 - only costs speed
        pass
    finally:
        _settle_matplotlib()


def zygote_main(control_fd: int) -> None:
    """Loop: receive (request, channel fd), fork a sandbox, reply; exit when the grader goes."""
    control = socket.socket(fileno=control_fd)
    config = json.loads(control.makefile("rb").readline())
    os.environ.update(THREAD_ENV)
    _preload(PRELOAD_BASE + (PRELOAD_TORCH if config["torch"] else []))
    if config["torch"]:
        import torch

        torch.set_num_threads(1)
    confine.use_staged_paths(config.get("staged") or {})
    if config["mode"] in ("uid", "unsafe"):
        confine._libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come back to us
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control.sendall(b'{"ready": true}\n')
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 65536, 4)
        except InterruptedError:
            continue
        except OSError:
            message, fds = b"", []
        if not message:  # the grader is gone: so must be everything it started
            if config["mode"] in ("uid", "unsafe"):
                _kill_descendants(os.getpid())
            os._exit(0)
        request = json.loads(message)
        if "preload" in request and not fds:  # before any sandbox of a new assignment forks
            _import_each([m for m in request["preload"] if MODULE_NAME_RE.fullmatch(str(m))])
            control.sendall(b'{"preloaded": true}\n')
            continue
        if not fds:
            control.sendall(b'{"error": "no channel fd"}\n')
            continue
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                control.close()
                _child(fds[0], request, config)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        control.sendall(json.dumps({"forked": pid}).encode() + b"\n")


def _child(channel_fd: int, request: dict, config: dict) -> None:
    """The spawner: namespaces, then the kernel (see :mod:`autograder.confine`)."""
    from autograder import kernel, proxy

    sock = socket.socket(fileno=channel_fd)

    def fail(error: BaseException) -> None:
        message = {"id": 0, "type": "isolation_failed", "error": f"{type(error).__name__}: {error}"}
        try:
            sock.sendall(proxy.pack_frame(message))
        except OSError:
            pass
        os._exit(71)

    def kernel_main() -> None:
        limits = Limits(**request["limits"])
        try:
            sock.settimeout(30)
            setup = kernel.Channel(sock).recv()
            sock.settimeout(None)
            if not setup or type(setup.get("workdir")) is not str:
                raise RuntimeError("no setup received from the grader")
            confine.enter(config, setup, limits, sock.fileno())
            if request.get("numpy_only"):
                install_torch_blocker()
        except BaseException as error:  # noqa: BLE001 - reported as an infrastructure failure
            fail(error)
        kernel.serve(sock, limits.output)
        os._exit(0)

    try:
        confine.spawn(sock, config["mode"], kernel_main)
    except BaseException as error:  # noqa: BLE001
        fail(error)
    os._exit(0)


class _TorchBlocker:
    """Meta-path finder refusing torch in numpy-only exercises (its files are not there either)."""

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top in ("torch", "torchvision", "torchaudio", "functorch", "torchgen"):
            raise ModuleNotFoundError(
                f"{top} is not available in this exercise: the grader runs this function with "
                "NumPy only (from scratch), so write it without torch",
                name=fullname,
            )
        return None


def install_torch_blocker() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in ("torch", "torchvision", "functorch", "torchgen"):
            del sys.modules[name]
    sys.meta_path.insert(0, _TorchBlocker())


class _Launcher:
    """Starts zygotes from one thread that lives as long as the process.

    bubblewrap's ``--die-with-parent`` (PR_SET_PDEATHSIG) fires when the *thread* that started
    it ends, not the process: a zygote started from a short-lived thread (a Dask task, a prewarm
    thread) would be killed with it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None

    def popen(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._serve, name="autograder-zygote-launcher", daemon=True
                )
                self.thread.start()
        done: concurrent.futures.Future = concurrent.futures.Future()
        self.requests.put((cmd, kwargs, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            cmd, kwargs, done = self.requests.get()
            try:
                done.set_result(subprocess.Popen(cmd, **kwargs))
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                done.set_exception(error)


_launcher = _Launcher()


class Zygote:
    """Client handle to a zygote process (one per grader process and variant, started lazily).

    ``Zygote.get(torch).ensure_started()`` (or :func:`prewarm`) starts it ahead of time; any
    thread may use it (forks are serialized by ``lock``).
    """

    _instances: dict[bool, Zygote] = {}
    _class_lock = threading.Lock()

    def __init__(self, torch: bool):
        self.torch = torch
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.reader = None
        self.spool: str | None = None
        self.mode = ""
        self.counter = itertools.count(1)
        self.preloaded: set[str] = set()  # modules imported since the zygote started

    @classmethod
    def get(cls, torch: bool) -> Zygote:
        with cls._class_lock:
            if torch not in cls._instances:
                cls._instances[torch] = Zygote(torch)
            return cls._instances[torch]

    @classmethod
    def shutdown_all(cls) -> None:
        with cls._class_lock:
            for zygote in cls._instances.values():
                zygote.stop()
            cls._instances.clear()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_started(self) -> float:
        """Start the zygote unless it runs; the seconds that took (0.0 when it was warm)."""
        with self.lock:
            if self.alive():
                return 0.0
            started = time.monotonic()
            self._start()
            return time.monotonic() - started

    def preload(self, modules) -> float:
        """Have the running zygote import ``modules`` (once each), so that every sandbox it forks
        from now on starts with them; the seconds that took. Only speed depends on it."""
        wanted = sorted({m for m in modules if MODULE_NAME_RE.fullmatch(m)} - self.preloaded)
        if not wanted:
            return 0.0
        with self.lock:
            if not self.alive():
                return 0.0
            started = time.monotonic()
            try:
                self.control.sendall(json.dumps({"preload": wanted}).encode())
                self.control.settimeout(ZYGOTE_START_TIMEOUT)
                reply = json.loads(self.reader.readline())
                self.control.settimeout(None)
                if not reply.get("preloaded"):
                    raise ValueError(reply)
            except (OSError, ValueError, AttributeError):
                self._stop_process()  # out of step: the next sandbox starts a fresh zygote
                return time.monotonic() - started
            self.preloaded.update(wanted)
            return time.monotonic() - started

    def _config(self, info: Isolation) -> dict:
        entries = boundary.layout(numpy_only=not self.torch)
        config = {"mode": info.mode, "torch": self.torch, "layout": entries, "staged": {}}
        if info.mode == "uid":
            py = boundary.python_paths()
            needed = boundary.readable_paths(entries)
            hidden = [e[1] for e in entries if e[0] == "cover" and e[1] not in py["base_site"]]
            boundary.lock_down(_protected_paths(), needed, hidden)
            writable = boundary.world_writable(py["packages"])
            if writable:
                raise InfrastructureError(
                    f"the sandbox could change the grader's code: {writable[:5]} are writable "
                    "by every user (chmod o-w them)"
                )
            staging = staging_dir()
            config["staged"] = boundary.stage(boundary.unreachable(py["stdlib"]), staging)
        return config

    def _start(self) -> None:
        info = isolation()
        if info.mode == "unsafe" and not unsafe_allowed():
            raise InfrastructureError(refusal())
        self._stop_process()
        self.mode = info.mode
        self.preloaded = set()
        if self.spool is None:  # kept across restarts: folders in it may be about to be used
            _remove_stale(SPOOL_PREFIX)
            self.spool = tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-")
            os.chmod(self.spool, 0o711)  # sandboxes pass through; none can list the others
        config = self._config(info)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ")}
        env.update(THREAD_ENV, HOME="/tmp", MPLBACKEND="agg", MPLCONFIGDIR="/tmp/.matplotlib")
        env.update(PATH="/usr/bin:/bin", PYTHONDONTWRITEBYTECODE="1")
        if os.environ.get("COURSE_OFFLINE"):
            env["COURSE_OFFLINE"] = os.environ["COURSE_OFFLINE"]
        code = f"from autograder.sandbox import zygote_main; zygote_main({child.fileno()})"
        extra_path = boundary.package_roots()
        if extra_path:  # -I: no PYTHONPATH, no current folder; our packages may be there
            code = f"import sys; sys.path[:0] = {extra_path!r}; " + code
        cmd = [sys.executable, "-I", "-c", code]
        user = zygote_user(info.mode)
        if info.mode in confine.MODES_WITH_NAMESPACES:
            user_ns = info.mode == "user-namespaces"
            sources = bwrap_sources(config["layout"], info.mode)
            cmd = (
                boundary.bwrap_command(
                    info.bwrap, config["layout"], self.spool, user_ns, env, sources
                )
                + cmd
            )
        ids = {} if user is None else {"user": user, "group": user, "extra_groups": []}
        self.process = _launcher.popen(
            cmd,
            pass_fds=[child.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **ids,
        )
        child.close()
        self.control = parent
        self.reader = parent.makefile("rb")
        parent.sendall(json.dumps(config).encode() + b"\n")
        parent.settimeout(ZYGOTE_START_TIMEOUT)
        try:
            line = self.reader.readline()
        except OSError:
            line = b""
        parent.settimeout(None)
        if not line.startswith(b'{"ready"'):
            self._stop_process()
            raise InfrastructureError(f"the sandbox zygote did not start ({info.why})")

    def new_folder(self, workdir) -> str:
        """A fresh folder in the spool holding a copy of ``workdir``'s regular files."""
        if self.spool is None:
            raise InfrastructureError("the sandbox zygote is not running")
        name = f"{next(self.counter)}-{secrets.token_hex(4)}"
        folder = os.path.join(self.spool, name)
        os.mkdir(folder, 0o700)
        _copy_regular_files(os.fspath(workdir), folder)
        return folder

    def fork(self, channel_fd: int, request: dict) -> None:
        """Have the zygote start one sandbox on ``channel_fd`` (it answers there)."""
        with self.lock:
            for attempt in range(2):
                try:
                    if not self.alive():
                        raise OSError("the zygote is not running")
                    socket.send_fds(self.control, [json.dumps(request).encode()], [channel_fd])
                    self.control.settimeout(60)
                    reply = json.loads(self.reader.readline())
                    self.control.settimeout(None)
                    if "forked" not in reply:
                        raise ValueError(reply)
                    return
                except (OSError, ValueError, KeyError) as error:
                    if attempt:
                        self._stop_process()
                        raise InfrastructureError(f"sandbox zygote failed: {error}") from error
                    self._start()

    def stop(self) -> None:
        """Stop the zygote (its sandboxes die with it) and remove its spool."""
        self._stop_process()
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)
            self.spool = None

    def _stop_process(self) -> None:
        if self.reader is not None:  # (its reference would keep the socket open: no EOF)
            self.reader.close()
            self.reader = None
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None:
            try:
                self.process.wait(5)  # it exits on EOF, taking its sandboxes with it
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


SPOOL_PREFIX = "autograder-sandboxes-"
STAGING_PREFIX = "autograder-staging-"
_staging_lock = threading.Lock()
_staging_dir: list[str] = []


def staging_dir() -> str:
    """This process's folder of staged interpreter files (readable by everyone, removed at exit)."""
    with _staging_lock:
        if not _staging_dir:
            _remove_stale(STAGING_PREFIX)
            path = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-")
            os.chmod(path, 0o755)
            _staging_dir.append(path)
            atexit.register(shutil.rmtree, path, True)
        return _staging_dir[0]


def zygote_user(mode: str) -> int | None:
    """The unprivileged host uid the zygote runs as (None: ours)."""
    return ZYGOTE_UID if mode == "user-namespaces" and os.geteuid() == 0 else None


def bwrap_sources(entries: list, mode: str) -> dict[str, str]:
    """Staged copies of what the zygote's unprivileged user could not bind."""
    if zygote_user(mode) is None:
        return {}
    return boundary.stage(boundary.unreachable(boundary.readable_paths(entries)), staging_dir())


def _remove_stale(prefix: str) -> None:
    """Folders left by graders that were killed (their name holds the grader's pid)."""
    for path in glob.glob(os.path.join(tempfile.gettempdir(), prefix + "*-*")):
        pid = os.path.basename(path)[len(prefix) :].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            if os.stat(path).st_uid == os.geteuid():
                shutil.rmtree(path, ignore_errors=True)


atexit.register(Zygote.shutdown_all)


def prewarm(variants=(True, False)) -> None:
    """Start the zygotes now (e.g. in a worker while its first job is on the way)."""
    for torch in variants:
        Zygote.get(torch).ensure_started()


def _copy_regular_files(src: str, dst: str) -> None:
    """Directories and regular files only: no symlink, FIFO, socket or device crosses over."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target_dir = dst if rel == "." else os.path.join(dst, rel)
        for name in dirnames:
            if os.path.isdir(os.path.join(dirpath, name)) and not os.path.islink(
                os.path.join(dirpath, name)
            ):
                os.mkdir(os.path.join(target_dir, name), 0o755)
        dirnames[:] = [n for n in dirnames if not os.path.islink(os.path.join(dirpath, n))]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                shutil.copyfile(path, os.path.join(target_dir, name), follow_symlinks=False)


def hand_over(folder: str, uid: int, gid: int) -> None:
    """Make ``folder`` (the grader's own copy, nothing of the student's yet) the sandbox's."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(name, uid, gid)


# -- one sandbox's processes, seen from the grader ----------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text.rsplit(")", 1)[1].split()


def process_state(pid: int) -> str | None:
    """'R', 'S', 'T', 'Z'... or None when the process is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _children(pid: int) -> list[int]:
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        text = _read(f"/proc/{pid}/task/{tid}/children")
        if text:
            out += [int(p) for p in text.split()]
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (orphans of a PID namespace stay below its PID 1)."""
    seen, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current not in seen and process_state(current) not in (None, "Z", "X"):
            seen.append(current)
            todo += _children(current)
    return seen


def uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid and process_state(int(entry)) not in (
                    None,
                    "Z",
                    "X",
                ):
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _uid_of(pid: int) -> int | None:
    text = _read(f"/proc/{pid}/status")
    for line in (text or "").splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def _ppid_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _kill_descendants(pid: int) -> None:
    for _ in range(50):
        victims = [p for p in descendants(pid) if p != pid]
        if not victims:
            return
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


class SandboxProcess:
    """The grader's hold on one sandbox: a pidfd for its kernel, and how to find the rest."""

    def __init__(self, pidfd: int, mode: str):
        self.pidfd = pidfd
        self.mode = mode
        self.pid = self._host_pid()
        self.uid: int | None = None

    def _host_pid(self) -> int:
        text = _read(f"/proc/self/fdinfo/{self.pidfd}") or ""
        for line in text.splitlines():
            if line.startswith("Pid:"):
                return int(line.split()[1])
        raise InfrastructureError("cannot tell the sandbox's pid from its pidfd")

    def alive(self) -> bool:
        readable, _, _ = select.select([self.pidfd], [], [], 0)
        return not readable

    def signal(self, sig: int) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def members(self) -> list[int]:
        """Live processes of the sandbox (host pids)."""
        if self.mode == "uid" and self.uid is not None:
            found = uid_processes(self.uid)
            return found if self.pid in found or not self.alive() else [self.pid, *found]
        return descendants(self.pid) if self.alive() else []

    def _is_member(self, pid: int, members: set[int]) -> bool:
        if self.mode == "uid" and self.uid is not None:
            return _uid_of(pid) == self.uid
        return pid == self.pid or _ppid_of(pid) in members

    def _send_each(self, sig: int, pids: list[int]) -> None:
        """Signal ``pids`` without ever hitting a process that merely reused a pid."""
        members = set(pids)
        for pid in pids:
            if pid == self.pid:
                self.signal(sig)
                continue
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if self._is_member(pid, members):
                    signal.pidfd_send_signal(fd, sig)
            except OSError:
                pass
            finally:
                os.close(fd)

    def rss(self) -> int:
        """Proportional resident memory (bytes) of all the sandbox's processes."""
        total = 0
        for pid in self.members():
            text = _read(f"/proc/{pid}/smaps_rollup") or ""
            for line in text.splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        return total

    def stop_all(self, timeout: float = 10.0) -> bool:
        """SIGSTOP every process of the sandbox; True once all are verified stopped."""
        previous: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            members = self.members()
            running = [p for p in members if process_state(p) not in ("T", "t", "Z", "X", None)]
            if not running and set(members) <= previous:
                return True
            previous = set(members)
            self._send_each(signal.SIGSTOP, running)
            time.sleep(0.002)
        return False

    def continue_all(self) -> None:
        self._send_each(signal.SIGCONT, self.members())

    def kill(self) -> None:
        """End the sandbox; returns once none of its processes is left (else raises)."""
        self.signal(signal.SIGKILL)
        select.select([self.pidfd], [], [], 30)
        deadline = time.monotonic() + 30
        while True:
            left = self._leftovers()
            if not left:
                return
            if time.monotonic() > deadline:
                raise InfrastructureError(f"sandbox processes {left[:10]} could not be killed")
            self._send_each(signal.SIGKILL, left)
            time.sleep(0.02)

    def _leftovers(self) -> list[int]:
        if self.mode in ("namespaces", "uid") and self.uid is not None:
            return uid_processes(self.uid)  # a uid of its own: nothing of it may remain
        return [p for p in descendants(self.pid) if process_state(p) not in (None, "Z")]

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def clean_uid_files(uid: int) -> None:
    """Without namespaces: remove what the sandbox uid left in the machine's shared temp dirs."""
    for top in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


if __name__ == "__main__":  # pragma: no cover - `python -m autograder.sandbox`: this machine
    info = isolation()
    print(json.dumps({"mode": info.mode, "why": info.why, "bwrap": info.bwrap}, indent=1))
    for entry in boundary.layout(numpy_only=False):
        print(" ".join(entry))
