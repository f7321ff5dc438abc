"""Turn a freshly forked zygote child into one student's sandbox (runs inside the boundary).

Two processes per sandbox, both forked from the zygote (:mod:`autograder.sandbox`):

- the *spawner* (:func:`spawn`) makes the new namespaces (PID, mount, network, IPC, UTS, and in
  user-namespace mode a user namespace mapping one private uid), forks the kernel, hands the
  grader a pidfd for it over the student's channel and exits;
- the *kernel* is PID 1 of its own PID namespace, so killing it makes the kernel of the machine
  kill everything the student started. Before any student code it (:func:`enter`) builds a
  private root (an empty tmpfs with the layout's read-only binds, its own folder writable, a
  private /tmp and /dev/shm, a fresh /proc where allowed), ``pivot_root``s into it, sets rlimits,
  drops to its private uid, drops every capability (bounding set included), sets
  ``no_new_privs`` and closes every file descriptor but its channel.

Without namespaces (``uid`` mode) the kernel only switches to its private uid (with the sandbox
groups the ACLs of :func:`autograder.boundary.lock_down` deny) and works in its folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import platform
import resource
import signal
import socket
import sys

from autograder import boundary

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_NOATIME, MS_NODIRATIME, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "ppc64le": 203, "s390x": 217}.get(
    platform.machine(), 155
)
SYS_CAPSET = {"x86_64": 126, "aarch64": 91, "ppc64le": 184, "s390x": 185}.get(
    platform.machine(), 126
)
#: uid and gid of the student inside its user namespace (user-namespace mode).
INNER_ID = boundary.INNER_ID
#: Where each kernel assembles its new root (inside its own mount namespace only).
NEWROOT = "/tmp/.sandbox-root"
DEVICES = ("null", "zero", "full", "random", "urandom")

MODES_WITH_NAMESPACES = ("namespaces", "user-namespaces")


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None):
    encode = lambda s: None if s is None else s.encode()  # noqa: E731
    result = _libc.mount(
        encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)
    )
    _check(result, f"mount {source or fstype} on {target}")


def _flags_of(path: str) -> int:
    """The mount flags a remount must keep (a user namespace may not clear locked ones)."""
    f = os.statvfs(path).f_flag
    out = 0
    for bit, flag in (
        (os.ST_NOSUID, MS_NOSUID),
        (os.ST_NODEV, MS_NODEV),
        (os.ST_NOEXEC, MS_NOEXEC),
        (os.ST_NOATIME, MS_NOATIME),
        (os.ST_NODIRATIME, MS_NODIRATIME),
        (getattr(os, "ST_RELATIME", 4096), MS_RELATIME),
    ):
        if f & bit:
            out |= flag
    return out


def _mountpoint(path: str, like: str) -> None:
    if os.path.isdir(like):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.lexists(path):
            with open(path, "w"):
                pass


def bind(source: str, target: str, *, writable: bool = False) -> None:
    _mountpoint(target, source)
    mount(source, target, None, MS_BIND | MS_REC, None)
    flags = _flags_of(target) | MS_NOSUID | MS_NODEV | (0 if writable else MS_RDONLY)
    mount(None, target, None, MS_REMOUNT | MS_BIND | flags, None)


# -- the spawner --------------------------------------------------------------------------------


def namespace_flags(mode: str) -> int:
    if mode not in MODES_WITH_NAMESPACES:
        return 0
    flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    return flags | (CLONE_NEWUSER if mode == "user-namespaces" else 0)


def _map_private_id() -> None:
    """In a new user namespace, map one private id onto ours (all an unprivileged user may)."""
    uid, gid = os.geteuid(), os.getegid()
    unshare(namespace_flags("user-namespaces"))
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{INNER_ID} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{INNER_ID} {gid} 1")


def spawn(sock: socket.socket, mode: str, kernel_main) -> None:
    """In a zygote child: make the namespaces, fork the kernel, send the grader its pidfd."""
    from autograder import proxy

    if mode == "user-namespaces":
        _map_private_id()
    elif namespace_flags(mode):
        unshare(namespace_flags(mode))
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_w)
        os.read(ready_r, 1)  # until the grader holds our pidfd (EOF: the spawner is gone)
        os.close(ready_r)
        try:
            kernel_main()
        finally:
            os._exit(70)
    os.close(ready_r)
    pidfd = os.pidfd_open(pid)
    socket.send_fds(sock, [proxy.pack_frame({"id": 0, "type": "spawned"})], [pidfd])
    os.close(pidfd)
    os.close(ready_w)


# -- the kernel: a private root -----------------------------------------------------------------


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def build_root(entries: list, folder: str, *, proc: bool, uid: int, gid: int) -> None:
    """Assemble the sandbox's root at NEWROOT: the layout read-only, ``folder`` writable."""
    mount(None, "/", None, MS_REC | MS_PRIVATE, None)
    os.makedirs(NEWROOT, exist_ok=True)
    mount("sandbox", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=755")
    # the private /tmp first: what the layout binds below /tmp (a venv in a clone there) must
    # land on it, not be hidden by it
    for sub, size in (("/tmp", "64m"), ("/dev/shm", "64m")):
        os.makedirs(NEWROOT + sub, exist_ok=True)
        mount("sandbox", NEWROOT + sub, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for entry in entries:
        target = NEWROOT + entry[1]
        if entry[0] == "ro":
            if os.path.lexists(entry[1]):
                bind(entry[1], target)
        elif entry[0] == "symlink":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.lexists(target):
                os.symlink(entry[2], target)
        # ("cover", ...) mounts come along with their parent's recursive bind
    for name in DEVICES:
        _mountpoint(NEWROOT + "/dev/" + name, "/dev/" + name)
        mount("/dev/" + name, NEWROOT + "/dev/" + name, None, MS_BIND, None)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, f"{NEWROOT}/dev/{name}")
    os.symlink("/proc/self/fd/1", f"{NEWROOT}/dev/stdout")
    os.symlink("/proc/self/fd/2", f"{NEWROOT}/dev/stderr")
    _write(f"{NEWROOT}/etc/passwd", f"student:x:{uid}:{gid}:student:/tmp/home:/bin/sh\n")
    _write(f"{NEWROOT}/etc/group", f"student:x:{gid}:\n")
    bind(folder, NEWROOT + folder, writable=True)
    os.makedirs(NEWROOT + "/proc", exist_ok=True)
    if proc:  # a procfs of this PID namespace: it lists the student's own processes only
        mount("proc", NEWROOT + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    os.chdir(NEWROOT)
    _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)


# -- the kernel: privileges ---------------------------------------------------------------------


def drop_bounding_set() -> None:
    """No capability can ever be gained again, not even by a setuid program (needs CAP_SETPCAP)."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability this kernel knows


def drop_capabilities() -> None:
    """Empty the ambient, inheritable, permitted and effective capability sets."""
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.syscall(SYS_CAPSET, header, data), "capset")


def set_limits(limits, baseline: int, own_uid: bool) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (baseline + limits.memory,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files,) * 2)
    if own_uid:  # counted per uid (per user namespace): only for a uid of the sandbox's own
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes,) * 2)


def vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def environment(folder: str, private_tmp: bool) -> dict[str, str]:
    from autograder.sandbox import THREAD_ENV

    home = "/tmp/home" if private_tmp else os.path.join(folder, ".home")
    tmp = "/tmp" if private_tmp else os.path.join(folder, ".tmp")
    env = {
        "HOME": home,
        "TMPDIR": tmp,
        "USER": "student",
        "LOGNAME": "student",
        "MPLCONFIGDIR": os.path.join(home, ".matplotlib"),
        "IPYTHONDIR": os.path.join(home, ".ipython"),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        **THREAD_ENV,
    }
    if os.environ.get("COURSE_OFFLINE"):
        env["COURSE_OFFLINE"] = os.environ["COURSE_OFFLINE"]
    return env


def enter(config: dict, setup: dict, limits, keep_fd: int) -> None:
    """Become the sandbox described by the zygote ``config`` and the grader's ``setup``."""
    mode = config["mode"]
    folder = setup["workdir"]
    uid, gid = int(setup["uid"]), int(setup["gid"])
    baseline = vm_size()
    inherited = _open_fds()  # while /proc is the zygote's (the sandbox's root may have none)
    namespaces = mode in MODES_WITH_NAMESPACES
    if namespaces:
        build_root(config["layout"], folder, proc=mode == "namespaces", uid=uid, gid=gid)
    env = environment(folder, private_tmp=namespaces)
    os.environ.clear()
    os.environ.update(env)
    set_limits(limits, baseline, own_uid=mode != "unsafe")
    if mode != "unsafe":
        drop_bounding_set()
    if mode in ("namespaces", "uid"):
        os.setgroups([int(g) for g in setup.get("groups", [])])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # from root: clears every capability
    if mode != "unsafe":
        drop_capabilities()
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the student's own tools may inspect its processes
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for path in (env["HOME"], env["TMPDIR"]):
        os.makedirs(path, mode=0o700, exist_ok=True)
    os.chdir(folder)
    _close_fds_except(keep_fd, inherited)


def use_staged_paths(staged: dict[str, str]) -> None:
    """Import from the staged copies of directories the sandbox uid cannot reach.

    Done once in the zygote (rewriting every loaded package's ``__path__`` in each child would
    cost a page fault per module), so every sandbox forks with it done.
    """
    if not staged:
        return

    def moved(entry: str) -> str:
        for original, copy in staged.items():
            if entry == original or entry.startswith(original + "/"):
                return copy + entry[len(original) :]
        return entry

    sys.path[:] = [moved(entry) for entry in sys.path]
    for module in list(sys.modules.values()):  # packages imported already (encodings, ...)
        path = getattr(module, "__path__", None)
        if type(path) is list:
            path[:] = [moved(entry) for entry in path]
    sys.path_importer_cache.clear()


def _open_fds() -> list[int]:
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return []


def _close_fds_except(keep: int, inherited: list[int]) -> None:
    """Every inherited descriptor but ``keep`` ends up on /dev/null, stdin/out/err included.

    Overwritten rather than closed: an object the zygote made (a font file matplotlib opened, a
    file a module keeps) may close or read "its" descriptor later, and a closed number would by
    then name a file the sandbox opened since (a font's close callback closed the font file a
    plot was reading). On /dev/null such an object reads nothing and closes nothing that matters.
    """
    devnull = os.open("/dev/null", os.O_RDWR)
    reserved = {0, 1, 2, *inherited} - {keep}
    for fd in reserved - {devnull}:
        os.dup2(devnull, fd, inheritable=fd in (0, 1, 2))
    top = max(reserved | {keep, devnull}) + 1
    for fd in set(range(3, top)) - reserved - {keep, devnull}:
        with contextlib.suppress(OSError):  # opened after the listing (or not open at all)
            os.close(fd)
    os.closerange(top, 65536)
    if devnull not in reserved:
        os.close(devnull)


# -- probing what this machine allows -----------------------------------------------------------


def probe(mode: str) -> None:
    """Exit 0 when a sandbox of ``mode`` can be made here (run inside bubblewrap)."""
    if mode == "user-namespaces":
        _map_private_id()
    else:
        unshare(namespace_flags(mode))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            mount(None, "/", None, MS_REC | MS_PRIVATE, None)
            os.makedirs(NEWROOT, exist_ok=True)
            mount("probe", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k")
            bind("/usr", NEWROOT + "/usr")
            os.makedirs(NEWROOT + "/proc")
            if mode == "namespaces":
                mount("proc", NEWROOT + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
            os.chdir(NEWROOT)
            _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
            _check(_libc.umount2(b".", MNT_DETACH), "umount the old root")
            drop_bounding_set()
            drop_capabilities()
            code = 0 if os.getpid() == 1 else 3
        except OSError as error:
            print(f"probe {mode}: {error}", file=sys.stderr)
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":  # pragma: no cover - `python -m autograder.confine MODE` (the probe)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    probe(sys.argv[1] if len(sys.argv) > 1 else "namespaces")
