"""What the student's code wrote on disk, copied out as plain data before any check reads it.

The sandbox writes into the student's folder; a check running in the trusted grader (e.g. the
TensorBoard check, reading the event files the student's ``log_feature_maps`` wrote) must never
open what is there in place: a FIFO blocks the reader forever, a symlink points at the grader's
secrets, a device or a growing file never ends. :class:`Mirror` keeps a private copy of the
folder, made of **regular files only**, and the checks run with that copy as their working
directory. Every sync walks the student's folder through directory file descriptors
(``O_NOFOLLOW``: a folder swapped for a symlink mid-walk is not followed), opens each file with
``O_NOFOLLOW | O_NONBLOCK`` and checks ``fstat`` on the open descriptor (what is read is what was
checked), and copies at most ``max_file_bytes`` per file, ``max_total_bytes`` and ``max_entries``
in all. Everything else is skipped and named in :attr:`Mirror.skipped` (the test's message shows
it). The copy is refreshed before each test cell and after each call into the sandbox; files the
check writes itself are left alone, and files it deletes are deleted in the student's folder too
(:meth:`Mirror.push_deletions`).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_DEPTH = 32

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class Mirror:
    """A private, regular-files-only copy of ``source`` (the student's folder)."""

    def __init__(
        self,
        source: Path,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
        max_entries: int = MAX_ENTRIES,
    ):
        self.source = Path(source)
        self.root = Path(tempfile.mkdtemp(prefix="autograder-check-"))
        self.max_file = max_file_bytes
        self.max_total = max_total_bytes
        self.max_entries = max_entries
        self.copied: dict[str, tuple] = {}  # relative path -> (ino, size, mtime_ns, ctime_ns)
        self.skipped: dict[str, str] = {}  # relative path -> why it was not copied

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- syncing --------------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the copy up to date with the student's folder (within the limits)."""
        self._seen: set[str] = set()
        self._entries = 0
        self._total = 0
        try:
            fd = os.open(self.source, _DIR_FLAGS)
        except OSError as error:
            self.skipped["."] = f"the folder cannot be read ({error.strerror})"
            return
        try:
            self._walk(fd, "", 0)
        finally:
            os.close(fd)
        for rel in [r for r in self.copied if r not in self._seen]:
            self.copied.pop(rel)
            target = self.root / rel
            if target.is_file() and not target.is_symlink():
                target.unlink()

    def _walk(self, dir_fd: int, prefix: str, depth: int) -> None:
        with os.scandir(dir_fd) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            rel = prefix + name
            self._entries += 1
            if self._entries > self.max_entries:
                self.skipped[rel] = f"past the first {self.max_entries} files and folders"
                return
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISDIR(st.st_mode):
                if depth >= MAX_DEPTH:
                    self.skipped[rel] = f"nested deeper than {MAX_DEPTH} folders"
                    continue
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    self.skipped[rel] = "a folder that cannot be opened (or was swapped)"
                    continue
                try:
                    target = self.root / rel
                    if target.is_symlink() or (target.exists() and not target.is_dir()):
                        target.unlink()  # was a file of the student's: now it is a folder
                    target.mkdir(parents=True, exist_ok=True)
                    self._walk(sub, rel + "/", depth + 1)
                except OSError as error:
                    self.skipped[rel] = f"could not be copied ({error.strerror})"
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                self._copy(dir_fd, name, rel)
            else:
                self.skipped[rel] = _kind(st.st_mode)

    def _copy(self, dir_fd: int, name: str, rel: str) -> None:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as error:
            self.skipped[rel] = f"cannot be opened ({error.strerror})"
            return
        with os.fdopen(fd, "rb") as src:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # swapped between the stat and the open
                self.skipped[rel] = _kind(st.st_mode)
                return
            if st.st_size > self.max_file:
                self.skipped[rel] = f"larger than {self.max_file} bytes"
                return
            if self._total + st.st_size > self.max_total:
                self.skipped[rel] = f"past {self.max_total} bytes of files in all"
                return
            self._seen.add(rel)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            target = self.root / rel
            if self.copied.get(rel) == signature and target.is_file():
                self._total += st.st_size
                return
            data = src.read(self.max_file + 1)  # the file may still grow: never past the cap
        if len(data) > self.max_file:
            self._seen.discard(rel)
            self.skipped[rel] = f"larger than {self.max_file} bytes"
            return
        self._total += len(data)
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)  # was a folder: now it is a file
            tmp = target.with_name(target.name + ".autograder-tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError as error:
            self._seen.discard(rel)
            self.skipped[rel] = f"could not be copied ({error.strerror})"
            return
        self.copied[rel] = signature
        self.skipped.pop(rel, None)

    def push_deletions(self) -> None:
        """What the check deleted in the copy (of files copied from the student's folder) is
        deleted there too, e.g. the log folder a check removes when it is done.

        Through directory descriptors opened with ``O_NOFOLLOW``: nothing outside the student's
        folder can be reached by a symlink planted on the way.
        """
        gone = sorted(rel for rel in self.copied if not os.path.lexists(self.root / rel))
        folders: set[str] = set()
        for rel in gone:
            self.copied.pop(rel)
            parts = rel.split("/")
            folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            self._in_source(parts[:-1], lambda fd, name=parts[-1]: os.unlink(name, dir_fd=fd))
        for folder in sorted(folders, key=lambda f: -f.count("/")):
            if not os.path.lexists(self.root / folder):
                parts = folder.split("/")
                self._in_source(parts[:-1], lambda fd, name=parts[-1]: os.rmdir(name, dir_fd=fd))

    def _in_source(self, parents: list[str], action) -> None:
        fds = []
        try:
            fds.append(os.open(self.source, _DIR_FLAGS))
            for name in parents:
                fds.append(os.open(name, _DIR_FLAGS, dir_fd=fds[-1]))
            action(fds[-1])
        except OSError:
            pass  # gone already, not empty (the student's own files), or swapped: left alone
        finally:
            for fd in fds:
                os.close(fd)

    def describe_skipped(self, limit: int = 10) -> str:
        """The files not copied, for a test's message ('' when none)."""
        if not self.skipped:
            return ""
        items = sorted(self.skipped.items())
        text = "; ".join(f"{rel}: {why}" for rel, why in items[:limit])
        more = f"; and {len(items) - limit} more" if len(items) > limit else ""
        return f"Files your code wrote that the checks do not read: {text}{more}"
