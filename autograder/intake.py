"""Intake: turn a folder or a zip of submissions into one clean folder per student.

The input is never modified: files are copied (or extracted) into a staging folder, one
subfolder per student, holding only that student's regular files. Every entry of the input ends
as a staged file or as a refusal with a reason: recorded for its student, or globally when the
entry cannot be attributed to one. Only an input that cannot be read at all (missing, not a zip,
a corrupt zip directory, an empty input, too many entries, a zip bomb) raises
:class:`IntakeError`, and then the staging folder is removed: nothing is half-written.

Layouts understood (a zip's entries are read by name, the same rules apply to them):

1. nbgrader: ``submitted/<student>/<assignment>/<files>`` (SUBMISSIONS may be the course folder
   holding ``submitted/``, or the ``submitted/`` folder itself). Students without an
   ``<assignment>`` folder there did not submit this assignment and are left out.
2. ``<student>/<assignment>/<files>`` and ``<student>/<files>``: every top-level folder is a
   student; if it holds a folder named like the assignment, that folder's content is used (the
   rest is reported as not graded).
3. LMS-style top-level files, one per student:
   - Canvas: ``<student>_<digits>_<digits>_<file>`` (late ones:
     ``<student>_LATE_<digits>_<digits>_<file>``) → student ``<student>``, file ``<file>``;
   - anything else: ``<student>.<ext>`` → student = the file name without its extension, file
     kept under its own name (a notebook with the wrong name is matched later by its content).
   Moodle folders ``<Full Name>_<digits>_assignsubmission_file_`` become student ``<Full Name>``.

A zip whose only top-level entry is a folder named ``submitted``, like the assignment or like
the zip itself is unwrapped first. Files named ``.DS_Store``, ``__MACOSX/``,
``.ipynb_checkpoints/`` and ``timestamp.txt`` (nbgrader's, read as the submission time) are not
student files.

**Student ids** (:func:`assign_ids`) keep the name as the LMS wrote it, NFC-normalized: Unicode
letters, digits and marks, ``.``, ``_``, ``-`` and ``@`` are kept, any other character becomes
``_``, leading dots are dropped. Two submissions are the same student only when their names are
canonically equal (and, for Canvas and Moodle, their LMS user ids agree). The mapping is
injective: when different students would get the same id (``al!ce`` and ``al?ce``), each of them
whose name is not exactly that id gets a stable suffix ``~<8 hex of a hash of the name>``, and a
note says so. Ids longer than :data:`MAX_ID_BYTES` (UTF-8) are shortened with the same kind of
suffix. ``~`` never survives in a plain id, so a suffixed id cannot equal another student's plain
one. File and folder names inside a submission are kept, except that over-long components are
shortened the same way and control characters become ``_``.

Refused with a reason, never extracted: entries with an absolute path or a drive letter, entries
with ``..`` components, symlinks (zip entries and folder entries alike), special files, files over
``max_file_bytes``, anything past ``max_total_bytes`` of uncompressed data (a zip bomb), and zips
with more than ``max_entries`` entries. Sizes are counted while copying, not taken from the zip's
own (forgeable) header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_ENTRIES = 20_000
#: Longest student id (UTF-8 bytes): a path component, an nbgrader id (String(128)), a CSV cell.
MAX_ID_BYTES = 96
#: Longest file or folder name kept inside a submission (UTF-8 bytes; Linux allows 255).
MAX_COMPONENT_BYTES = 200
SUFFIX = "~"

IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
CANVAS = re.compile(r"^(?P<student>.+?)_(?:LATE_)?(?P<uid>\d+)_\d+_(?P<file>.+)$", re.S)
MOODLE = re.compile(r"^(?P<student>.+?)_(?P<uid>\d+)_assign(?:submission|feedback)_\w*$", re.S)


class IntakeError(Exception):
    """SUBMISSIONS as a whole cannot be read (missing, not a zip, a zip bomb, too many entries)."""


@dataclass
class StudentFiles:
    """One student's staged files."""

    student_id: str
    folder: Path  # staging folder: holds only this student's regular files
    problems: list[str] = field(default_factory=list)  # refused entries, with reasons
    timestamp: str | None = None  # from nbgrader's timestamp.txt, if any
    origin: list[str] = field(default_factory=list)  # where the files came from, for the log
    notes: list[str] = field(default_factory=list)  # about the id (collision, shortened)
    name: str = ""  # the student's name as the input wrote it


@dataclass
class IntakeResult:
    students: dict[str, StudentFiles]
    problems: list[str] = field(default_factory=list)  # not attributable to any student


# ---------------------------------------------------------------- names


def printable(name: str) -> str:
    """``name`` safe to print and store: lone surrogates (undecodable bytes) become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _shorten(text: str, max_bytes: int, key: str) -> str:
    """``text`` cut at a character boundary to fit ``max_bytes`` with a hash suffix of ``key``."""
    suffix = SUFFIX + _digest(key)
    room = max_bytes - len(suffix)
    out = text
    while _utf8_len(out) > room:
        out = out[: max(0, len(out) - max(1, (_utf8_len(out) - room) // 4))]
    return out + suffix


def id_candidate(name: str) -> str:
    """The plain student id for a name: NFC, letters/digits/marks and ``._-@`` kept."""
    text = unicodedata.normalize("NFC", printable(name).strip())
    chars = [ch if ch in "._-@" or unicodedata.category(ch)[0] in "LNM" else "_" for ch in text]
    return "".join(chars).lstrip(".") or "_"


def safe_student_id(name: str) -> str:
    """The id a lone student of this name gets (no collision): see :func:`assign_ids`."""
    return assign_ids({name: name})[0][name]


def assign_ids(names: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Injective ids for students: ``names`` maps a student key to the name shown.

    Returns (key -> id, key -> notes). Deterministic and independent of the order of ``names``.
    """
    plain = {key: id_candidate(shown) for key, shown in names.items()}
    groups: dict[str, list[str]] = {}
    for key, cand in plain.items():
        groups.setdefault(cand, []).append(key)
    ids: dict[str, str] = {}
    notes: dict[str, list[str]] = {key: [] for key in names}
    for cand, keys in groups.items():
        exact = [k for k in keys if _nfc(names[k]) == cand]
        if len(keys) == 1:
            keeper = keys[0]
        else:  # the plain id goes to the one student whose name it is exactly, if there is one
            keeper = exact[0] if len(exact) == 1 else None
        for key in keys:
            sid = cand if key == keeper else _shorten(cand, MAX_ID_BYTES, key)
            if _utf8_len(sid) > MAX_ID_BYTES:
                sid = _shorten(cand, MAX_ID_BYTES, key)
                notes[key].append(
                    f"student id shortened to {sid!r}: the name {_describe(key, names[key])} "
                    f"is longer than {MAX_ID_BYTES} bytes"
                )
            ids[key] = sid
        if len(keys) > 1:
            shown = ", ".join(sorted(_describe(k, names[k]) for k in keys))
            for key in keys:
                notes[key].append(
                    f"student id {ids[key]!r}: {len(keys)} submissions ({shown}) would all be "
                    f"{cand!r}; a suffix keeps them apart"
                )
    # A hash suffix could still meet another id (or two hashes could collide): lengthen it.
    seen: dict[str, str] = {}
    for key in sorted(ids):
        sid, n = ids[key], 0
        while sid in seen:
            n += 1
            sid = _shorten(plain[key], MAX_ID_BYTES, f"{key}\0{n}")
        seen[sid] = key
        ids[key] = sid
    return ids, notes


def _describe(key: str, shown: str) -> str:
    """A student's name for a note, with the LMS user id when there is one."""
    text = printable(shown)
    text = repr(text if len(text) <= 60 else text[:60] + "…")
    _, _, lms = key.partition("\0")
    return f"{text} ({lms.replace(':', ' user ')})" if lms else text


def safe_component(name: str) -> str:
    """A file or folder name inside a submission, as staged."""
    text = unicodedata.normalize("NFC", printable(name))
    text = "".join(
        "_" if unicodedata.category(ch) in ("Cc", "Cs") or ch in "/\\" else ch for ch in text
    )
    if text in ("", ".", ".."):
        text = "_"
    if _utf8_len(text) > MAX_COMPONENT_BYTES:
        stem, dot, ext = text.rpartition(".")
        keep_ext = dot and 0 < _utf8_len(ext) <= 16
        base = stem if keep_ext else text
        text = _shorten(base, MAX_COMPONENT_BYTES - (_utf8_len(ext) + 1 if keep_ext else 0), name)
        if keep_ext:
            text += "." + ext
    return text


def _student_of_file(name: str) -> tuple[str, str, str]:
    """(key, shown name, file name) of a top-level file."""
    m = CANVAS.match(name)
    if m:
        student = m.group("student")
        return f"{_nfc(student)}\0canvas:{m.group('uid')}", student, m.group("file")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return _nfc(stem), stem, name


def _student_of_folder(name: str) -> tuple[str, str]:
    """(key, shown name) of a top-level folder."""
    m = MOODLE.match(name)
    if m:
        return f"{_nfc(m.group('student'))}\0moodle:{m.group('uid')}", m.group("student")
    return _nfc(name), name


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", printable(text))


# ---------------------------------------------------------------- reading the input


@dataclass
class _Entry:
    """One entry of the input, by path (zip entries and folder entries alike)."""

    parts: tuple[str, ...]
    kind: str  # "file", "dir" or "refused"
    label: str  # how messages name it
    opener: Callable[[], BinaryIO] | None = None
    reason: str = ""  # why refused
    unsafe_path: bool = False  # refused because the path itself escapes


class _Budget:
    def __init__(self, max_file: int, max_total: int):
        self.max_file = max_file
        self.max_total = max_total
        self.total = 0


def _copy_stream(src, dst_path: Path, budget: _Budget, what: str) -> str | None:
    """Copy at most the budget; on overflow delete the partial file and return a reason."""
    written = 0
    with open(dst_path, "xb") as out:
        while True:
            chunk = src.read(1 << 16)
            if not chunk:
                break
            written += len(chunk)
            if written > budget.max_file:
                out.close()
                dst_path.unlink()
                budget.total += written
                return f"{what}: refused, larger than {budget.max_file} bytes"
            if budget.total + written > budget.max_total:
                out.close()
                dst_path.unlink()
                raise IntakeError(
                    f"{what}: the submissions exceed {budget.max_total} bytes uncompressed "
                    "(zip bomb?); nothing graded"
                )
            out.write(chunk)
    budget.total += written
    return None


def _path_problem(name: str) -> str | None:
    """Why a path (as written in a zip) may not be extracted, or None."""
    if "\x00" in name:
        return "refused, NUL in file name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "refused, absolute path"
    if any(part == ".." for part in norm.split("/")):
        return "refused, path escapes the submission folder ('..')"
    return None


def _split(name: str) -> tuple[str, ...]:
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _ignored(parts: tuple[str, ...]) -> bool:
    return bool(parts) and (parts[-1] in IGNORED_NAMES or any(p in IGNORED_DIRS for p in parts))


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The entry's name; UTF-8 names written without the UTF-8 flag are read as UTF-8."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def _zip_entries(zf: zipfile.ZipFile, label: str, max_entries: int) -> list[_Entry]:
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise IntakeError(f"{label}: {len(infos)} entries, more than {max_entries}")
    entries = []
    for info in infos:
        name = _zip_name(info)
        shown = f"{label}:{printable(name)}"
        reason = _path_problem(name)
        parts = _split(name)
        if reason:
            entries.append(_Entry(parts, "refused", shown, reason=reason, unsafe_path=True))
            continue
        if not parts or _ignored(parts):
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            entries.append(_Entry(parts, "refused", shown, reason="refused, symbolic link"))
        elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            entries.append(_Entry(parts, "refused", shown, reason="refused, not a regular file"))
        elif info.is_dir():
            entries.append(_Entry(parts, "dir", shown))
        else:
            entries.append(_Entry(parts, "file", shown, opener=lambda i=info: zf.open(i)))
    return entries


def _open_regular(path: str) -> BinaryIO:
    """Open a file of the input without following a symlink or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError("not a regular file")
    return os.fdopen(fd, "rb")


def _folder_entries(folder: Path, label: str, max_entries: int) -> list[_Entry]:
    entries: list[_Entry] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        rel = here.relative_to(folder).parts
        for name in sorted(dirnames + filenames):
            parts = (*rel, name)
            if _ignored(parts):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            shown = f"{label}:{printable('/'.join(parts))}"
            try:
                st = os.lstat(here / name)
            except OSError as exc:
                entries.append(
                    _Entry(parts, "refused", shown, reason=f"refused, unreadable ({exc})")
                )
                continue
            if stat.S_ISLNK(st.st_mode):
                entries.append(_Entry(parts, "refused", shown, reason="refused, symbolic link"))
                if name in dirnames:
                    dirnames.remove(name)
            elif stat.S_ISDIR(st.st_mode):
                entries.append(_Entry(parts, "dir", shown))
            elif stat.S_ISREG(st.st_mode):
                path = str(here / name)
                entries.append(_Entry(parts, "file", shown, opener=lambda p=path: _open_regular(p)))
            else:
                entries.append(
                    _Entry(parts, "refused", shown, reason="refused, not a regular file")
                )
            if len(entries) > max_entries:
                raise IntakeError(f"{label}: more than {max_entries} entries")
        dirnames.sort()
    return entries


# ---------------------------------------------------------------- the layout


class _Tree:
    """Children and kinds of every path of the input (parents of files are folders)."""

    def __init__(self, entries: list[_Entry]):
        self.kind: dict[tuple[str, ...], str] = {}
        self.children: dict[tuple[str, ...], set[str]] = {}
        for e in entries:
            if e.unsafe_path:
                continue
            for i in range(len(e.parts)):
                self.children.setdefault(e.parts[:i], set()).add(e.parts[i])
                if i < len(e.parts) - 1:
                    self.kind[e.parts[: i + 1]] = "dir"
            if self.kind.get(e.parts) != "dir":
                self.kind[e.parts] = e.kind

    def is_dir(self, path: tuple[str, ...]) -> bool:
        return self.kind.get(path) == "dir"

    def listing(self, path: tuple[str, ...]) -> list[tuple[str, bool]]:
        return [(c, self.is_dir((*path, c))) for c in sorted(self.children.get(path, ()))]


def _folder_listing(root: Path) -> Callable[[tuple[str, ...]], list[tuple[str, bool]]]:
    def listing(path: tuple[str, ...]) -> list[tuple[str, bool]]:
        try:
            with os.scandir(root.joinpath(*path)) as it:
                return sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
        except OSError:
            return []

    return listing


def _unwrap(listing, assignment: str, extra: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """Descend into submitted/ or a single wrapping folder named like the assignment or zip.

    Returns (the path holding one entry per student, whether it is nbgrader's submitted/).
    """
    base: tuple[str, ...] = ()
    for _ in range(3):
        children = [(n, d) for n, d in listing(base) if n not in IGNORED_NAMES | IGNORED_DIRS]
        if ("submitted", True) in children:
            return (*base, "submitted"), True
        if len(children) == 1 and children[0][1] and children[0][0] in {assignment, *extra}:
            base = (*base, children[0][0])
            continue
        break
    return base, False


@dataclass
class _Planned:
    """Where an entry goes: a student (by key) and a path inside its folder, or a refusal."""

    key: str
    entry: _Entry
    rel: tuple[str, ...]  # inside the student's folder
    refusal: str = ""  # set: the entry is not staged, this is why


class _Planner:
    """Attributes each entry to a student (by key) or to the global problems."""

    def __init__(self, tree: _Tree, nbgrader: bool, assignment: str):
        self.tree = tree
        self.nbgrader = nbgrader
        self.assignment = assignment
        self.plans: list[_Planned] = []
        self.names: dict[str, str] = {}  # student key -> name as written
        self.stamps: dict[str, _Entry] = {}
        self.problems: list[str] = []
        self.hidden: set[str] = set()

    def folder_student(self, top: str) -> str | None:
        """The key of the student of top-level folder ``top`` (None: not a submission)."""
        if not self.tree.is_dir((top,)):
            return None
        if self.nbgrader and not self.tree.is_dir((top, self.assignment)):
            return None  # nbgrader's submitted/: this student did not submit this assignment
        key, shown = _student_of_folder(top)
        self.names.setdefault(key, shown)
        return key

    def refuse(self, key: str | None, e: _Entry, why: str) -> None:
        if key is None:
            self.problems.append(f"{e.label}: {why}")
        else:
            self.plans.append(_Planned(key, e, (), f"{e.label}: {why}"))

    def add(self, e: _Entry) -> None:
        if e.unsafe_path:  # its path is not to be trusted; it may still name a student
            self.refuse(self.folder_student(e.parts[0]) if e.parts else None, e, e.reason)
            return
        top, inner = e.parts[0], e.parts[1:]
        if top.startswith("."):
            if top not in self.hidden:
                self.hidden.add(top)
                self.problems.append(f"{e.label}: refused, hidden file or folder (not a student)")
            return
        if not inner and not self.tree.is_dir((top,)):
            if e.kind == "refused":
                self.refuse(None, e, e.reason)
                return
            key, shown, fname = _student_of_file(top)
            self.names.setdefault(key, shown)
            self.plans.append(_Planned(key, e, (safe_component(fname),)))
            return
        key = self.folder_student(top)
        if key is None:
            return
        if self.tree.is_dir((top, self.assignment)):
            if not inner or inner[0] != self.assignment:
                if inner and e.kind != "dir" and not self.nbgrader:
                    self.refuse(key, e, f"not graded, outside {self.assignment}/")
                return
            inner = inner[1:]
        if not inner:
            if e.kind != "dir":
                self.refuse(key, e, "refused, a file and a folder of the same name")
            return
        if e.kind == "refused":
            self.refuse(key, e, e.reason)
        elif inner == ("timestamp.txt",) and e.kind == "file":
            self.stamps[key] = e
        elif e.kind == "file":
            self.plans.append(_Planned(key, e, tuple(safe_component(p) for p in inner)))


def _read_timestamp(entry: _Entry) -> str | None:
    try:
        with entry.opener() as fh:
            text = fh.read(256).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - an unreadable timestamp is just no timestamp
        return None
    return "".join(ch for ch in text.strip() if ch.isprintable())[:64] or None


def _stage_file(plan: _Planned, st: StudentFiles, budget: _Budget) -> None:
    e = plan.entry
    dest = st.folder.joinpath(*plan.rel)
    try:
        for i in range(1, len(plan.rel)):
            parent = st.folder.joinpath(*plan.rel[:i])
            if parent.exists() and not parent.is_dir():
                raise FileExistsError(f"{'/'.join(plan.rel[:i])} is a file")
            parent.mkdir(exist_ok=True)
        if dest.exists():
            st.problems.append(
                f"{e.label}: refused, {'/'.join(plan.rel)} already present for {st.student_id}"
            )
            return
        with e.opener() as src:
            why = _copy_stream(src, dest, budget, e.label)
    except IntakeError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt member, bad password, odd name...
        if dest.is_file() and not dest.is_symlink():
            dest.unlink()
        why = f"{e.label}: refused, cannot be read ({type(exc).__name__}: {printable(str(exc))})"
    if why:
        st.problems.append(why)
    else:
        st.origin.append(e.label)


def intake(
    submissions: Path,
    assignment: str,
    staging: Path,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_entries: int = MAX_ENTRIES,
) -> IntakeResult:
    """Stage SUBMISSIONS (folder or zip) into staging/students/<id>/; staging is emptied first.

    Raises IntakeError when SUBMISSIONS cannot be read; staging is then removed.
    """
    submissions = Path(submissions).absolute()
    staging = Path(staging).absolute()
    if not submissions.exists():
        raise IntakeError(f"{submissions}: no such file or folder")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    budget = _Budget(max_file_bytes, max_total_bytes)
    try:
        if submissions.is_dir():
            return _intake_folder(submissions, assignment, staging, budget, max_entries)
        return _intake_zip(submissions, assignment, staging, budget, max_entries)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _intake_folder(folder: Path, assignment, staging, budget, max_entries) -> IntakeResult:
    if folder.name == "submitted":
        base, nbgrader = (), True
    else:
        base, nbgrader = _unwrap(_folder_listing(folder), assignment, ())
    entries = _folder_entries(folder.joinpath(*base), str(folder), max_entries)
    return _stage(entries, nbgrader, assignment, staging, budget, folder)


def _intake_zip(path: Path, assignment, staging, budget, max_entries) -> IntakeResult:
    if not zipfile.is_zipfile(path):
        raise IntakeError(f"{path}: neither a folder nor a zip file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise IntakeError(f"{path.name}: not a readable zip file ({exc})") from exc
    with zf:
        entries = _zip_entries(zf, path.name, max_entries)
        base, nbgrader = _unwrap(_Tree(entries).listing, assignment, (path.stem,))
        inside, outside = [], []
        for e in entries:
            if e.parts[: len(base)] == base and (len(e.parts) > len(base) or e.unsafe_path):
                inside.append(dataclasses.replace(e, parts=e.parts[len(base) :]))
            elif e.kind == "refused":
                outside.append(f"{e.label}: {e.reason}")
        return _stage(inside, nbgrader, assignment, staging, budget, path, outside)


def _stage(
    entries, nbgrader, assignment, staging, budget, submissions, problems=()
) -> IntakeResult:
    if not entries and not problems:
        raise IntakeError(f"{submissions}: empty, no submissions in it")
    planner = _Planner(_Tree(entries), nbgrader, assignment)
    for e in entries:
        planner.add(e)
    ids, notes = assign_ids(planner.names)
    students_root = staging / "students"
    students_root.mkdir()
    result = IntakeResult(students={}, problems=[*problems, *planner.problems])
    for key in sorted(planner.names, key=lambda k: ids[k]):
        sid = ids[key]
        folder = students_root / sid
        folder.mkdir()
        result.students[sid] = StudentFiles(
            sid, folder, notes=notes[key], name=printable(planner.names[key])
        )
    for key, entry in planner.stamps.items():
        result.students[ids[key]].timestamp = _read_timestamp(entry)
    for plan in planner.plans:
        st = result.students[ids[plan.key]]
        if plan.refusal:
            st.problems.append(plan.refusal)
        else:
            _stage_file(plan, st, budget)
    return result
