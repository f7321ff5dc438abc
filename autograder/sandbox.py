"""Process isolation for student code: limits, namespaces, an unprivileged user, a zygote.

A *zygote* is a long-lived helper process (started once per grader process) that imports
numpy, IPython, matplotlib (and, for the full sandbox, torch and torchvision) once and then forks
one child per notebook. Each child, before any student code runs:

1. leaves the zygote's sockets behind and keeps only its own channel to the grader;
2. enters new mount, network, IPC and UTS namespaces (``unshare``): the network namespace has
   no interface but a downed loopback, so there is no network at all;
3. builds a new root file system on a tmpfs holding read-only binds of the system (/usr, /etc),
   the Python installation, the venv and the ``course`` package, plus the student's scratch
   folder read-write, and ``chroot``s into it. The course root, ``source/``, the gradebook,
   other students' folders and the rest of the disk are simply not there. In the
   ``numpy_only`` variant the torch/torchvision package folders are also covered by empty
   tmpfs mounts and an import hook refuses ``torch`` with a clear message;
4. sets rlimits (address space = the zygote's own mappings + ``Limits.memory``, processes,
   file size, no core dumps), drops to a uid of its own (``UID_BASE + pid``; no groups;
   no_new_privs), so RLIMIT_NPROC bounds a fork bomb per student and students cannot signal or
   ptrace each other;
5. serves the grader over the channel (:mod:`autograder.kernel`).

The grader kills a sandbox by killing every process of its uid (``kill -9 -1`` as that uid),
which also reaps anything the student forked. Without root (a developer's laptop) the child
falls back to limits only (no namespaces, no chroot, no uid switch); ``isolation_available()``
says which mode is active.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder.results import InfrastructureError

#: Sandbox uids are UID_BASE + the child's pid: unique among live sandboxes, owned by nobody.
UID_BASE = 10_000_000
#: Mount point (empty dir) each child mounts its private root on, inside its own namespace.
ROOT_MOUNTPOINT = "/tmp/.autograder-sandbox-root"
#: Packages hidden from numpy-only sandboxes.
TORCH_PACKAGES = ("torch", "torchvision", "torchaudio", "functorch", "torchgen", "torchvision.libs")
THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "TORCH_NUM_THREADS": "1",
}


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


_PROBE = """
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
# CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET, then a private tmpfs mount.
if libc.unshare(ctypes.c_int(0x20000 | 0x4000000 | 0x8000000 | 0x40000000)) != 0:
    sys.exit(1)
if libc.mount(b"none", b"/", None, ctypes.c_ulong(16384 | (1 << 18)), None) != 0:
    sys.exit(2)
if libc.mount(b"tmpfs", b"/mnt", b"tmpfs", ctypes.c_ulong(0), None) != 0:
    sys.exit(3)
"""


@functools.lru_cache(maxsize=1)
def isolation_available() -> bool:
    """True when we can use namespaces, chroot and a separate uid.

    Being root is not enough: a container without CAP_SYS_ADMIN (e.g. a default Docker or a
    Gradescope image) refuses unshare and mount. A throwaway child tries both, so such a machine
    falls back to limits only instead of failing every submission. AUTOGRADER_ISOLATION=off
    forces the fallback.
    """
    if os.environ.get("AUTOGRADER_ISOLATION", "").lower() in ("off", "0", "no"):
        return False
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


# -- inside the child ---------------------------------------------------------------------------

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 1, 2, 4, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE, PR_SET_PDEATHSIG = 38, 4, 1
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x40000000


def _unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None):
    result = _libc.mount(
        None if source is None else source.encode(),
        target.encode(),
        None if fstype is None else fstype.encode(),
        ctypes.c_ulong(flags),
        None if data is None else data.encode(),
    )
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} -> {target}: {os.strerror(errno)}")


def _bind(source: str, newroot: str, *, writable: bool = False) -> None:
    source = os.path.abspath(source)
    target = newroot + source
    if os.path.islink(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(source), target)
        return
    if not os.path.exists(source):
        return
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()
    flags = MS_BIND | MS_REC
    _mount(source, target, None, flags, None)
    if not writable:
        _mount(None, target, None, flags | MS_REMOUNT | MS_RDONLY | MS_NOSUID, None)


def visible_paths() -> list[str]:
    """System and Python paths the sandbox may read (read-only)."""
    import importlib.util

    paths = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc"]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths.append(prefix)
    paths.append(os.path.dirname(os.path.realpath(sys.executable)))
    spec = importlib.util.find_spec("course")
    if spec is not None and spec.submodule_search_locations:
        paths.extend(os.path.realpath(p) for p in spec.submodule_search_locations)
    for entry in sys.path:
        if entry and os.path.isdir(entry) and "site-packages" in entry:
            paths.append(os.path.realpath(entry))
    out: list[str] = []
    for path in sorted(set(map(os.path.abspath, paths)), key=len):
        if not any(os.path.commonpath([path, kept]) == kept for kept in out if kept != "/"):
            out.append(path)
    return out


def _hidden_torch_dirs() -> list[str]:
    out = []
    for entry in sys.path:
        if entry and "site-packages" in entry:
            for name in TORCH_PACKAGES:
                candidate = os.path.join(os.path.realpath(entry), name)
                if os.path.isdir(candidate):
                    out.append(candidate)
    return out


def _build_root(workdir: str, numpy_only: bool) -> None:
    newroot = ROOT_MOUNTPOINT
    _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    _mount("sandbox", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=755")
    # scratch tmpfs first, so that a workdir under /tmp is bound on top of them, not hidden
    for sub, size in (("/dev/shm", "64m"), ("/tmp", "64m")):
        os.makedirs(newroot + sub, exist_ok=True)
        _mount("sandbox", newroot + sub, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for dev in ("null", "zero", "full", "random", "urandom"):
        _bind("/dev/" + dev, newroot, writable=True)
    for path in visible_paths():
        _bind(path, newroot)
    _bind(workdir, newroot, writable=not numpy_only)
    os.makedirs(newroot + "/proc", exist_ok=True)
    try:  # a procfs of our own that shows only the sandbox uid's processes
        _mount("proc", newroot + "/proc", "proc", MS_NOSUID | MS_NODEV, "hidepid=invisible")
    except OSError:
        _mount("/proc", newroot + "/proc", None, MS_BIND | MS_REC, None)
    if numpy_only:
        for path in _hidden_torch_dirs():
            if os.path.isdir(newroot + path):
                _mount("hidden", newroot + path, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=755")
    os.chroot(newroot)


def isolate(workdir: str, limits: Limits, numpy_only: bool, zygote_pid: int) -> int:
    """Turn the current (forked) process into a sandbox for ``workdir``. Returns its uid."""
    uid = UID_BASE + os.getpid()
    workdir = os.path.realpath(workdir)
    root = isolation_available()
    # The numpy-only sandbox shares the folder read-only (the main sandbox owns it) and keeps
    # its HOME/TMPDIR on the private /tmp tmpfs of its new root.
    private = numpy_only and root
    home = "/tmp/.home" if private else os.path.join(workdir, ".home")
    tmp = "/tmp/.tmp" if private else os.path.join(workdir, ".tmp")
    env = {
        "HOME": home,
        "TMPDIR": tmp,
        "MPLCONFIGDIR": os.path.join(home, ".matplotlib"),
        "IPYTHONDIR": os.path.join(home, ".ipython"),
        "PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        **THREAD_ENV,
    }
    if os.environ.get("COURSE_OFFLINE"):
        env["COURSE_OFFLINE"] = os.environ["COURSE_OFFLINE"]
    os.environ.clear()
    os.environ.update(env)
    if not private:
        for path in (home, tmp):
            os.makedirs(path, exist_ok=True)
    if root:
        if not private:
            for dirpath, dirnames, filenames in os.walk(workdir):
                for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                    os.lchown(name, uid, uid)
        _unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
        _build_root(workdir, numpy_only)
        if private:
            for path in (home, tmp):
                os.makedirs(path, exist_ok=True)
                os.chown(path, uid, uid)
    os.chdir(workdir)
    baseline = _vm_size()
    resource.setrlimit(resource.RLIMIT_AS, (baseline + limits.memory,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files,) * 2)
    if root:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes,) * 2)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    # die with the zygote (set after the uid change, which clears it); the zygote in turn
    # kills its sandboxes' uids and exits when the grader goes away
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != zygote_pid:
        os._exit(72)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    if numpy_only:
        install_torch_blocker()
    return uid if root else os.getuid()


def _vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


class _TorchBlocker:
    """Meta-path finder refusing torch in numpy-only exercises (the files are hidden as well)."""

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


# -- zygote -------------------------------------------------------------------------------------

PRELOAD_BASE = ["numpy", "IPython", "matplotlib", "matplotlib.pyplot", "matplotlib_inline"]
PRELOAD_TORCH = ["torch", "torchvision", "course", "course.checks"]


def _preload(modules: list[str]) -> None:
    import importlib

    import matplotlib

    matplotlib.use("module://matplotlib_inline.backend_inline")
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs speed
            pass
    import IPython.core.interactiveshell  # noqa: F401

    import autograder.kernel  # noqa: F401 - the child's server, loaded before any fork


def zygote_main(control_fd: int, torch: bool) -> None:
    """Loop: receive (request, channel fd), fork a sandbox child, reply with its pid."""
    os.environ.update(THREAD_ENV)
    _preload(PRELOAD_BASE + (PRELOAD_TORCH if torch else []))
    if torch:
        import torch as _torch

        _torch.set_num_threads(1)
    os.makedirs(ROOT_MOUNTPOINT, mode=0o755, exist_ok=True)
    control = socket.socket(fileno=control_fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control.sendall(b'{"ready": true}\n')
    children: set[int] = set()
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 65536, 4)
        except InterruptedError:
            continue
        except OSError:
            message, fds = b"", []
        if not message:  # the grader is gone: so must be everything it started
            for pid in children:
                if process_state(pid) not in (None, "Z"):
                    kill_uid(UID_BASE + pid, pid)
            os._exit(0)
        children = {pid for pid in children if process_state(pid) not in (None, "Z")}
        request = json.loads(message)
        if not fds:
            control.sendall(json.dumps({"error": "no channel fd"}).encode() + b"\n")
            continue
        channel_fd = fds[0]
        zygote_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                control.close()
                _child(channel_fd, request, zygote_pid)
            finally:
                os._exit(70)
        children.add(pid)
        os.close(channel_fd)
        control.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _child(channel_fd: int, request: dict, zygote_pid: int) -> None:
    from autograder import kernel

    sock = socket.socket(fileno=channel_fd)
    limits = Limits(**request["limits"])
    try:
        # the workdir comes over the channel, never through the zygote, so no zygote memory
        # (copied into every later child) holds another student's folder name
        sock.settimeout(30)
        first = kernel.Channel(sock).recv()
        sock.settimeout(None)
        if not first or type(first.get("workdir")) is not str:
            raise RuntimeError("no workdir received")
        isolate(first["workdir"], limits, bool(request.get("numpy_only")), zygote_pid)
    except BaseException as error:  # noqa: BLE001 - reported as an infrastructure failure
        from autograder import proxy

        message = {"id": 0, "type": "isolation_failed", "error": f"{type(error).__name__}: {error}"}
        sock.sendall(proxy.pack_frame(message))
        os._exit(71)
    kernel.serve(sock, limits.output)
    os._exit(0)


class Zygote:
    """Client handle to a zygote process (one per grader process and variant, started lazily)."""

    _instances: dict[bool, Zygote] = {}
    _class_lock = threading.Lock()

    def __init__(self, torch: bool):
        self.torch = torch
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.reader = None

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

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # a minimal environment: /proc/<pid>/environ of every sandbox shows the zygote's
        keep = ("PATH", "LANG", "LC_ALL", "COURSE_OFFLINE", "PYTHONPATH", "TZ")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(THREAD_ENV, HOME="/nonexistent", MPLBACKEND="agg")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from autograder.sandbox import zygote_main; "
                f"zygote_main({child.fileno()}, {self.torch})",
            ],
            pass_fds=[child.fileno()],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child.close()
        self.control = parent
        self.reader = parent.makefile("rb")
        parent.settimeout(120)
        line = self.reader.readline()
        parent.settimeout(None)
        if not line.startswith(b'{"ready"'):
            self.stop()
            raise InfrastructureError("the sandbox zygote did not start")

    def fork(self, channel_fd: int, request: dict) -> int:
        """Start one sandbox child serving ``channel_fd``; returns its pid."""
        with self.lock:
            for attempt in range(2):
                try:
                    if self.process is None or self.process.poll() is not None:
                        self._start()
                    socket.send_fds(self.control, [json.dumps(request).encode()], [channel_fd])
                    self.control.settimeout(30)
                    line = self.reader.readline()
                    self.control.settimeout(None)
                    reply = json.loads(line)
                    return int(reply["pid"])
                except (OSError, ValueError, KeyError) as error:
                    self.stop()
                    if attempt:
                        raise InfrastructureError(f"sandbox zygote failed: {error}") from error
        raise InfrastructureError("sandbox zygote failed")

    def stop(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None:
            try:
                self.process.kill()
                self.process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.process = None


def prewarm(variants=(True, False)) -> None:
    """Start the zygotes now (e.g. in a worker while its first job is on the way)."""
    for torch in variants:
        zygote = Zygote.get(torch)
        with zygote.lock:
            if zygote.process is None or zygote.process.poll() is not None:
                zygote._start()


def kill_uid(uid: int, pid: int) -> None:
    """SIGKILL the sandbox: as root every process of its private uid, else its main pid.

    Never signals a pid that may have been reused by an unrelated process: as root only
    processes of the sandbox's own uid are hit; without root only a zygote child.
    """
    if not isolation_available() or uid < UID_BASE:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"zygote_main" in cmdline.read():
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        return
    kill = shutil.which("kill") or "/bin/kill"
    for _ in range(5):
        if not os.path.exists(kill):  # no kill(1): one by one (a fork bomb may need rounds)
            for victim in uid_processes(uid):
                try:
                    os.kill(victim, signal.SIGKILL)
                except OSError:
                    pass
        else:
            # kill(-1) as the sandbox uid reaches all of its processes (not ours, not others')
            subprocess.run(
                [kill, "-9", "-1"],
                user=uid,
                group=uid,
                extra_groups=[],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        if not uid_processes(uid):
            return
        time.sleep(0.05)


def uid_processes(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid and process_state(int(entry)) != "Z":
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def uid_rss(uid: int) -> int:
    """Proportional resident memory (bytes) of ``uid``'s processes (the memory watchdog)."""
    total = 0
    for pid in uid_processes(uid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, IndexError, ValueError):
            pass
    return total


def process_state(pid: int) -> str | None:
    """'R', 'S', 'Z'... or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


if __name__ == "__main__":  # pragma: no cover - manual check of what this machine supports
    print(json.dumps({"isolation": isolation_available(), "visible": visible_paths()}, indent=1))
    print(Path(ROOT_MOUNTPOINT))
