"""Intake: turn a folder or a zip of submissions into one clean folder per student.

The input is never modified: files are copied (or extracted) into a staging folder, one
subfolder per student, holding only that student's regular files. What is refused (and why) is
recorded per student, or globally when the entry cannot be attributed to a student.

Layouts understood (after a zip is extracted, the same rules apply to its content):

1. nbgrader: ``submitted/<student>/<assignment>/<files>`` (SUBMISSIONS may be the course folder
   holding ``submitted/``, or the ``submitted/`` folder itself). Students without an
   ``<assignment>`` folder there did not submit this assignment and are left out.
2. ``<student>/<assignment>/<files>`` and ``<student>/<files>``: every top-level folder is a
   student; if it holds a folder named like the assignment, that folder's content is used.
3. LMS-style top-level files, one per student:
   - Canvas: ``<student>_<digits>_<digits>_<file>`` (late ones:
     ``<student>_LATE_<digits>_<digits>_<file>``) → student ``<student>``, file ``<file>``;
   - anything else: ``<student>.<ext>`` → student = the file name without its extension, file
     kept under its own name (a notebook with the wrong name is matched later by its content).
   Moodle folders ``<Full Name>_<digits>_assignsubmission_file_`` become student ``<Full Name>``.

A zip whose only top-level entry is a folder named ``submitted``, like the assignment or like
the zip itself is unwrapped first. Student ids keep letters, digits, ``.``, ``_``, ``-`` and
``@``; any other character becomes ``_``. Files named ``.DS_Store``, ``__MACOSX/``,
``.ipynb_checkpoints/`` and ``timestamp.txt`` (nbgrader's, read as the submission time) are not
student files.

Refused with a reason, never extracted: entries with an absolute path or a drive letter, entries
with ``..`` components, symlinks (zip entries and folder entries alike), special files, files over
``max_file_bytes``, anything past ``max_total_bytes`` of uncompressed data (a zip bomb), and zips
with more than ``max_entries`` entries. Sizes are counted while copying, not taken from the zip's
own (forgeable) header.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
MAX_ENTRIES = 20_000

IGNORED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}
CANVAS = re.compile(r"^(?P<student>.+?)_(?:LATE_)?\d+_\d+_(?P<file>.+)$")
MOODLE = re.compile(r"^(?P<student>.+?)_\d+_assign(?:submission|feedback)_\w*$")


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


@dataclass
class IntakeResult:
    students: dict[str, StudentFiles]
    problems: list[str] = field(default_factory=list)  # not attributable to any student


def safe_student_id(name: str) -> str:
    sid = re.sub(r"[^A-Za-z0-9._@-]", "_", name.strip()).lstrip(".")
    return sid or "_"


class _Budget:
    def __init__(self, max_file: int, max_total: int):
        self.max_file = max_file
        self.max_total = max_total
        self.total = 0


def _copy_stream(src, dst_path: Path, budget: _Budget, what: str) -> str | None:
    """Copy at most the budget; on overflow delete the partial file and return a reason."""
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(dst_path, "wb") as out:
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


def _entry_problem(name: str) -> str | None:
    """Why a path (as written in a zip) may not be extracted, or None."""
    if "\x00" in name:
        return "refused, NUL in file name"
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "refused, absolute path"
    if any(part == ".." for part in norm.split("/")):
        return "refused, path escapes the submission folder ('..')"
    return None


def _ignored(parts: tuple[str, ...]) -> bool:
    return bool(parts) and (parts[-1] in IGNORED_NAMES or any(p in IGNORED_DIRS for p in parts))


def extract_zip(zip_path: Path, target: Path, budget: _Budget, max_entries: int) -> list[str]:
    """Extract safely into target; returns the refused entries with reasons."""
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntakeError(f"{zip_path.name}: not a readable zip file ({exc})") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise IntakeError(f"{zip_path.name}: {len(infos)} entries, more than {max_entries}")
        root = target.resolve()
        for info in infos:
            name = info.filename
            reason = _entry_problem(name)
            if reason:
                problems.append(f"{name}: {reason}")
                continue
            parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
            if not parts or _ignored(parts):
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                problems.append(f"{name}: refused, symbolic link")
                continue
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                problems.append(f"{name}: refused, not a regular file")
                continue
            dest = target.joinpath(*parts)
            if not dest.resolve().is_relative_to(root):  # belt and braces
                problems.append(f"{name}: refused, path escapes the submission folder")
                continue
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            if dest.exists() or dest.is_symlink():
                problems.append(f"{name}: refused, duplicate entry")
                continue
            try:
                with zf.open(info) as src:
                    why = _copy_stream(src, dest, budget, name)
            except IntakeError:
                raise
            except Exception as exc:  # corrupt member, unsupported compression, bad password
                if dest.exists():
                    dest.unlink()
                why = f"refused, cannot be extracted ({type(exc).__name__}: {exc})"
                why = f"{name}: {why}"
            if why:
                problems.append(why)
    return problems


def _copy_tree(src: Path, dst: Path, budget: _Budget, label: str) -> list[str]:
    """Copy regular files only, refusing symlinks and special files, never following links."""
    problems: list[str] = []
    dst.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        here = Path(dirpath)
        rel = here.relative_to(src)
        for d in list(dirnames):
            p = here / d
            if d in IGNORED_DIRS:
                dirnames.remove(d)
            elif p.is_symlink():
                problems.append(f"{label}/{(rel / d).as_posix()}: refused, symbolic link")
                dirnames.remove(d)
        for f in filenames:
            p = here / f
            relf = (rel / f).as_posix()
            if f in IGNORED_NAMES:
                continue
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                problems.append(f"{label}/{relf}: refused, symbolic link")
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{label}/{relf}: refused, not a regular file")
                continue
            with open(p, "rb") as fh:
                why = _copy_stream(fh, dst / rel / f, budget, f"{label}/{relf}")
            if why:
                problems.append(why)
    return problems


def _student_of_file(name: str) -> tuple[str, str]:
    m = CANVAS.match(name)
    if m:
        return m.group("student"), m.group("file")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return stem, name


def _student_of_folder(name: str) -> str:
    m = MOODLE.match(name)
    return m.group("student") if m else name


def _unwrap(base: Path, assignment: str, extra_names: tuple[str, ...] = ()) -> tuple[Path, bool]:
    """Descend into submitted/ or a single wrapping folder named like the assignment or zip.

    Returns (folder holding one entry per student, whether it is nbgrader's submitted/).
    """
    for _ in range(3):
        if base.name == "submitted":
            return base, True
        sub = base / "submitted"
        if sub.is_dir() and not sub.is_symlink():
            return sub, True
        entries = [e for e in base.iterdir() if e.name not in IGNORED_NAMES | IGNORED_DIRS]
        if (
            len(entries) == 1
            and entries[0].is_dir()
            and not entries[0].is_symlink()
            and entries[0].name in {"submitted", assignment, *extra_names}
        ):
            base = entries[0]
            continue
        break
    return base, False


def intake(
    submissions: Path,
    assignment: str,
    staging: Path,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    max_entries: int = MAX_ENTRIES,
) -> IntakeResult:
    """Stage SUBMISSIONS (folder or zip) into staging/<student>/; staging is emptied first."""
    submissions = Path(submissions)
    staging = Path(staging)
    if not submissions.exists():
        raise IntakeError(f"{submissions}: no such file or folder")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    budget = _Budget(max_file_bytes, max_total_bytes)
    result = IntakeResult(students={})

    if submissions.is_file():
        if not zipfile.is_zipfile(submissions):
            raise IntakeError(f"{submissions}: neither a folder nor a zip file")
        raw = staging / ".zip"
        raw.mkdir()
        result.problems += extract_zip(submissions, raw, budget, max_entries)
        base, nbgrader_layout = _unwrap(raw, assignment, (submissions.stem,))
        src_label = submissions.name
    else:
        raw = None
        base, nbgrader_layout = _unwrap(submissions, assignment)
        src_label = str(submissions)

    students_root = staging / "students"
    students_root.mkdir()

    def student(raw_name: str) -> StudentFiles:
        sid = safe_student_id(raw_name)
        if sid not in result.students:
            result.students[sid] = StudentFiles(sid, students_root / sid)
            (students_root / sid).mkdir()
        return result.students[sid]

    for entry in sorted(base.iterdir()):
        name = entry.name
        if name in IGNORED_NAMES or name in IGNORED_DIRS or name.startswith("."):
            continue
        label = f"{src_label}:{entry.relative_to(base).as_posix()}"
        if entry.is_symlink():
            (result.problems if raw is None else result.problems).append(
                f"{label}: refused, symbolic link"
            )
            continue
        if entry.is_dir():
            if nbgrader_layout and not (entry / assignment).is_dir():
                continue  # nbgrader's submitted/: this student did not submit this assignment
            st = student(_student_of_folder(name))
            content = entry / assignment if (entry / assignment).is_dir() else entry
            if content != entry and (entry / assignment).is_symlink():
                st.problems.append(f"{label}/{assignment}: refused, symbolic link")
                continue
            ts = content / "timestamp.txt"
            if ts.is_file() and not ts.is_symlink():
                st.timestamp = ts.read_text(errors="replace").strip()[:64] or None
            if raw is None:
                st.problems += _copy_tree(content, st.folder, budget, label)
            else:  # already extracted and checked: move, do not copy twice
                for child in content.iterdir():
                    if child.name == "timestamp.txt" and content == entry / assignment:
                        continue
                    shutil.move(str(child), st.folder / child.name)
            (st.folder / "timestamp.txt").unlink(missing_ok=True)
            st.origin.append(label)
        elif entry.is_file():
            raw_student, fname = _student_of_file(name)
            st = student(raw_student)
            dest = st.folder / fname
            if dest.exists():
                st.problems.append(f"{label}: refused, {fname} already present for {st.student_id}")
                continue
            if raw is None:
                with open(entry, "rb") as fh:
                    why = _copy_stream(fh, dest, budget, label)
                if why:
                    st.problems.append(why)
            else:
                shutil.move(str(entry), dest)
            st.origin.append(label)
        else:
            result.problems.append(f"{label}: refused, not a regular file")

    # Refused zip entries that name a student folder belong to that student.
    if raw is not None:
        still_global = []
        for prob in result.problems:
            first = prob.replace("\\", "/").split("/", 1)[0].split(":", 1)[0]
            sid = safe_student_id(_student_of_folder(first))
            if sid in result.students and "/" in prob.split(":", 1)[0]:
                result.students[sid].problems.append(prob)
            else:
                still_global.append(prob)
        result.problems = still_global
        shutil.rmtree(raw)
    return result
