"""What student code can see: the file-system view of the sandbox, and how it is enforced.

:func:`layout` lists, as plain data, the only paths of the machine a sandbox contains, all
read-only: the system's shared libraries and ``/usr/bin``, a few ``/etc`` files, the interpreter
and its standard library, the venv's site-packages and the directories of the ``course`` and
``autograder`` packages (public code; with an editable install they are bound at the paths the
``__editable__`` finder maps them to, never the course root around them). Every other
``site-packages``/``dist-packages`` directory inside those paths (the base interpreter's) is
covered by an empty read-only tmpfs, as are torch's packages in the numpy-only variant.

With namespaces, :func:`bwrap_command` turns the layout into a bubblewrap command line (the
boundary the zygote lives in) and :mod:`autograder.confine` builds each student's private root
from the same list. Without namespaces (a dedicated uid), :func:`lock_down` makes the course root
(all of it but what the layout needs), the grading run's folders and the base interpreter's
packages unreadable for the sandbox group with POSIX ACLs (``chmod o-rwx`` where the file system
has no ACLs). :func:`stage` hard-links what an unprivileged user must read but cannot reach
(e.g. an interpreter under ``/root``) into a folder it can: the standard library for the sandbox
uid without namespaces, the interpreter for the unprivileged zygote of the user-namespace mode.
"""

from __future__ import annotations

import errno
import glob
import importlib.util
import os
import shutil
import stat
import struct
import sys
import sysconfig
from pathlib import Path

#: Supplementary group of every no-namespace sandbox: ACLs deny it the course, the grader's files.
SANDBOX_GID = 9_999_990
#: Supplementary group of numpy-only sandboxes without namespaces: denied torch's packages too.
NUMPY_ONLY_GID = 9_999_991
#: uid and gid of the zygote and the student inside user namespaces (never 0: mapping a user
#: namespace's 0 onto ours would need CAP_SETFCAP).
INNER_ID = 1000
#: Packages hidden from numpy-only sandboxes (a read-only empty tmpfs over each).
TORCH_PACKAGES = ("torch", "torchvision", "torchvision.libs", "torchaudio", "functorch", "torchgen")
TORCH_PACKAGES += ("triton", "nvidia")
#: /etc files a Python process needs (never shadow, never the machine's secrets).
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "mime.types",
    "fonts",
    "alternatives",
)
#: Parts of the standard library a grading sandbox never needs (not staged).
STDLIB_SKIP = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo"}
STDLIB_SKIP |= {"ensurepip", "lib2to3"}


def _abs(path: str | os.PathLike) -> str:
    return os.path.abspath(os.fspath(path))


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _symlink_chain(path: str) -> list[tuple[str, str, str]]:
    """("symlink", link, target) for every link on the way from ``path`` to a real file."""
    out = []
    seen = set()
    while os.path.islink(path) and path not in seen:
        seen.add(path)
        target = os.readlink(path)
        out.append(("symlink", path, target))
        path = os.path.normpath(os.path.join(os.path.dirname(path), target))
    return out


def _system_paths() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(top):
            out.append(("symlink", top, os.readlink(top)))
        elif os.path.isdir(top) and top in ("/bin", "/lib", "/lib64"):
            out.append(("ro", top))  # a system without merged /usr
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for path in ("/usr/bin", "/usr/lib64", f"/usr/lib/{multiarch}", "/usr/lib/locale"):
        if multiarch or not path.endswith("/"):
            out.append(("ro", path))
    out.append(("ro", "/usr/share/zoneinfo"))
    out += [("ro", "/etc/" + name) for name in ETC_FILES]
    return out


def _loaded_library_dirs() -> list[str]:
    """Directories of the shared libraries this process has loaded (outside Python's own:
    libpython is listed file by file, the packages' folders are bound anyway)."""
    dirs = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6 and ".so" in parts[5] and parts[5].startswith("/"):
                    dirs.add(os.path.dirname(os.path.realpath(parts[5].strip())))
    except OSError:
        pass
    own = {_abs(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    return sorted(d for d in dirs if "-packages" not in d and not any(_inside(d, o) for o in own))


def python_paths() -> dict[str, list[str]]:
    """The interpreter's files a sandbox needs, by role (all absolute)."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    stdlib = {_abs(sysconfig.get_path(k, vars=base)) for k in ("stdlib", "platstdlib")}
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    libpython = sorted(glob.glob(os.path.join(libdir, "libpython*.so*"))) if libdir else []
    venv_site = []
    if sys.prefix != sys.base_prefix:
        venv_site = sorted(
            {_abs(sysconfig.get_path(k)) for k in ("purelib", "platlib")}
            | {_abs(p) for p in sys.path if p and _inside(_abs(p), _abs(sys.prefix))}
        )
        venv_site = [p for p in venv_site if p.endswith("-packages") and os.path.isdir(p)]
    packages = []
    for name in ("course", "autograder"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            packages += [os.path.realpath(p) for p in spec.submodule_search_locations]
    base_site = {_abs(sysconfig.get_path(k, vars=base)) for k in ("purelib", "platlib")}
    base_site |= {_abs(p) for d in stdlib for p in glob.glob(os.path.join(d, "*-packages"))}
    import site

    base_site.add(_abs(site.getusersitepackages()))
    base_site -= set(venv_site)
    return {
        "stdlib": sorted(stdlib),
        "libpython": libpython,
        "venv_site": venv_site,
        "packages": sorted(set(packages)),
        "base_site": sorted(p for p in base_site if os.path.isdir(p)),
    }


def package_roots() -> list[str]:
    """The folders ``course`` and ``autograder`` are imported from, where the venv is not.

    The zygote runs with ``-I`` (no PYTHONPATH, no current directory on ``sys.path``): when our
    packages come from PYTHONPATH (a Dask worker) or from the current directory (the Gradescope
    bundle runs ``python -m autograder`` in its source folder) it must be told where they are.
    Only those folders' ``course`` and ``autograder`` are bound into the sandbox.
    """
    venv_site = set(python_paths()["venv_site"])
    roots = []
    for name in ("course", "autograder"):
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            parent = os.path.dirname(os.path.realpath(location))
            if parent not in venv_site and parent not in roots:
                roots.append(parent)
    return roots


def layout(numpy_only: bool) -> list[tuple[str, ...]]:
    """The sandbox's view: ("ro", path) | ("symlink", path, target) | ("cover", path), in order.

    Sources and destinations are the same paths. A ("cover", p) hides ``p`` under an empty
    read-only tmpfs; it always lies inside an earlier ("ro", ...) entry.
    """
    py = python_paths()
    entries: list[tuple[str, ...]] = _system_paths()
    entries += [("ro", d) for d in _loaded_library_dirs()]
    entries += _symlink_chain(sys.executable)
    entries.append(("ro", os.path.realpath(sys.executable)))
    for lib in py["libpython"]:
        entries += _symlink_chain(lib) or [("ro", lib)]
    entries += [("ro", d) for d in py["stdlib"]]
    if sys.prefix != sys.base_prefix:
        venv = _abs(sys.prefix)
        entries.append(("ro", os.path.join(venv, "pyvenv.cfg")))
        for name in ("lib64",):
            entries += _symlink_chain(os.path.join(venv, name))
        for name in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
            entries += _symlink_chain(os.path.join(venv, "bin", name))
        entries += [("ro", d) for d in py["venv_site"]]
    entries += [("ro", d) for d in py["packages"]]
    ro = _dedupe([e[1] for e in entries if e[0] == "ro" and os.path.lexists(e[1])])
    symlinks = {}
    for entry in entries:
        if entry[0] == "symlink" and not any(_inside(entry[1], d) for d in ro):
            symlinks[entry[1]] = entry
    covers = [d for d in py["base_site"] if any(_inside(d, r) and d != r for r in ro)]
    if numpy_only:
        for site_dir in py["venv_site"]:
            covers += [os.path.join(site_dir, n) for n in TORCH_PACKAGES]
    covers = [c for c in covers if os.path.isdir(c)]
    ordered = sorted([("ro", p) for p in ro] + list(symlinks.values()), key=lambda e: e[1])
    return ordered + [("cover", c) for c in sorted(set(covers))]


def _dedupe(paths: list[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(_inside(path, k) for k in kept):
            kept.append(path)
    return kept


def readable_paths(entries: list[tuple[str, ...]]) -> list[str]:
    return [e[1] for e in entries if e[0] == "ro"]


# -- bubblewrap ---------------------------------------------------------------------------------

#: Capabilities the zygote keeps (real root, no user namespace): each child needs them to make
#: its own namespaces and root, then drops them all before any student code runs.
ZYGOTE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


def bwrap_command(
    bwrap: str,
    entries: list[tuple[str, ...]],
    spool: str,
    user_namespace: bool,
    env: dict,
    sources: dict[str, str] | None = None,
) -> list[str]:
    """bubblewrap arguments for a zygote: no network, own PID/IPC/UTS/mount view, dies with us.

    ``sources``: staged copies to bind instead of originals bubblewrap's user cannot read.
    """
    sources = sources or {}
    cmd = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc"]
    cmd += ["--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if user_namespace:
        cmd += ["--unshare-user", "--uid", str(INNER_ID), "--gid", str(INNER_ID)]
        cmd += ["--cap-drop", "ALL"]
    else:
        cmd += ["--cap-drop", "ALL"]
        for cap in ZYGOTE_CAPS:
            cmd += ["--cap-add", cap]
    # the fresh /proc, /dev and /tmp first: a bind below /tmp (a venv or a package folder that
    # lives there, e.g. a clone in /tmp) must land on the tmpfs, not be hidden by it
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for entry in entries:
        if entry[0] == "ro":
            cmd += ["--ro-bind", sources.get(entry[1], entry[1]), entry[1]]
        elif entry[0] == "symlink":
            cmd += ["--symlink", entry[2], entry[1]]
    for entry in entries:
        if entry[0] == "cover":
            cmd += ["--perms", "0555", "--tmpfs", entry[1], "--remount-ro", entry[1]]
    cmd += ["--bind", spool, spool]
    cmd += ["--chdir", "/", "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd


# -- without namespaces: ACLs -------------------------------------------------------------------

_ACL_XATTR = "system.posix_acl_access"
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_UNDEFINED = 0xFFFFFFFF


def _read_acl(path: str, mode: int) -> list[list[int]]:
    try:
        raw = os.getxattr(path, _ACL_XATTR, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA)):
            raise
        raw = b""
    if len(raw) >= 4 and (len(raw) - 4) % 8 == 0:
        return [
            list(struct.unpack_from("<HHI", raw, 4 + 8 * i)) for i in range((len(raw) - 4) // 8)
        ]
    return [
        [_USER_OBJ, (mode >> 6) & 7, _UNDEFINED],
        [_GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED],
        [_OTHER, mode & 7, _UNDEFINED],
    ]


def set_group_access(path: str, gid: int, perms: int) -> None:
    """Give group ``gid`` exactly ``perms`` (rwx bits) on ``path`` with a POSIX ACL entry.

    Raises OSError(ENOTSUP) where the file system has no ACLs.
    """
    mode = os.lstat(path).st_mode
    entries = [e for e in _read_acl(path, mode) if not (e[0] == _GROUP and e[2] == gid)]
    entries.append([_GROUP, perms, gid])
    if not any(e[0] == _MASK for e in entries):
        group_class = [e[1] for e in entries if e[0] in (_GROUP_OBJ, _GROUP, _USER)]
        entries.append([_MASK, max(group_class) | (mode >> 3) & 7, _UNDEFINED])
    entries.sort(key=lambda e: (e[0], e[2]))
    raw = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
    os.setxattr(path, _ACL_XATTR, raw, follow_symlinks=False)


def _deny(path: str, gid: int, *, traverse: bool = False) -> None:
    """No access for ``gid`` to ``path`` (``traverse``: only passing through a directory)."""
    try:
        set_group_access(path, gid, 1 if traverse else 0)
    except OSError as error:
        if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if gid != SANDBOX_GID:
            raise OSError(
                error.errno,
                f"{path}: this file system has no POSIX ACLs, which hiding torch "
                "from numpy-only sandboxes needs without namespaces",
            ) from error
        mode = os.lstat(path).st_mode
        os.chmod(path, (mode & ~0o007) | (0o001 if traverse else 0))


def lock_down(protected: list[str], needed: list[str], numpy_hidden: list[str]) -> list[str]:
    """Deny the sandbox groups what they must not read; returns what was done (for the log).

    ``protected``: trees nothing of which may be read (the course root, the run's output and
    submissions) except the ``needed`` paths inside them, which stay reachable (traverse-only
    on the way). ``numpy_hidden``: denied to numpy-only sandboxes as well.
    """
    done = []
    needed = [_abs(n) for n in needed]
    for root in protected:
        root = os.path.realpath(root)
        if os.path.lexists(root):
            done += _deny_tree(root, needed)
    for path in python_paths()["base_site"] + other_site_packages():
        if _reachable_by_others(path):
            _deny(path, SANDBOX_GID)
            done.append(f"denied {path}")
    for path in numpy_hidden:
        if os.path.isdir(path):
            _deny(path, NUMPY_ONLY_GID)
            done.append(f"denied {path} to numpy-only sandboxes")
    return done


def _deny_tree(path: str, needed: list[str]) -> list[str]:
    if any(_inside(path, n) for n in needed):
        return []
    if not any(_inside(n, path) for n in needed):
        _deny(path, SANDBOX_GID)
        return [f"denied {path}"]
    done = [f"traverse-only {path}"]
    _deny(path, SANDBOX_GID, traverse=True)
    for entry in os.scandir(path):
        if not entry.is_symlink():
            done += _deny_tree(entry.path, needed)
            continue
        # never walk through a link (it may point at /usr); deny where it leads, unless the
        # sandbox needs something there
        target = os.path.realpath(entry.path)
        related = any(_inside(target, n) or _inside(n, target) for n in needed)
        if os.path.exists(target) and not related:
            _deny(target, SANDBOX_GID)
            done.append(f"denied {target} (via {entry.path})")
    return done


def other_site_packages() -> list[str]:
    """Package folders of the machine's other Pythons (same ABI: importable by the sandbox)."""
    found = []
    for pattern in ("/usr/lib/python3*/*-packages", "/usr/local/lib/python3*/*-packages"):
        found += glob.glob(pattern)
    return sorted(p for p in found if os.path.isdir(p))


def _reachable_by_others(path: str) -> bool:
    """Whether a user with no special rights can read ``path`` (mode bits only)."""
    path = _abs(path)
    parts = Path(path).parents
    try:
        for parent in reversed(list(parts)):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def world_writable(paths: list[str]) -> list[str]:
    """Files and directories under ``paths`` any user could change (must be none)."""
    found = []
    for top in paths:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames]:
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_IWOTH:
                    if not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
                        found.append(full)
    return found


def unreachable(paths: list[str]) -> list[str]:
    """Those of ``paths`` a user with no special rights cannot read."""
    return [p for p in paths if os.path.lexists(p) and not _reachable_by_others(p)]


def stage(paths: list[str], staging: str) -> dict[str, str]:
    """Hard-link (or copy) ``paths`` into ``staging`` (readable by all); {original: copy}.

    For an interpreter in a private home (e.g. pyenv under /root): the sandbox's unprivileged
    user must read it, and nothing else of that home. Directories keep empty folders in place of
    :data:`STDLIB_SKIP` (the base site-packages among them), so covers still have a mountpoint.
    """
    staged = {}
    for path in paths:
        target = os.path.join(staging, path.strip("/").replace("/", "__"))
        staged[path] = target
        if os.path.lexists(target):
            continue
        partial = target + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        if os.path.isdir(path):

            def skip(directory: str, names: list[str], top: str = path) -> set[str]:
                return set(names) & STDLIB_SKIP if directory == top else set()

            shutil.copytree(path, partial, symlinks=True, ignore=skip, copy_function=_link)
            for name in STDLIB_SKIP:
                if os.path.isdir(os.path.join(path, name)):
                    os.mkdir(os.path.join(partial, name), 0o555)
            os.chmod(partial, 0o755)
        else:
            _link(path, partial)
        os.rename(partial, target)
    return staged


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
