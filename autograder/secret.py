"""The instructor's secret, and the keys hidden test cases are drawn from.

Hidden sweeps (the randomized checks inside ``### BEGIN HIDDEN TESTS`` blocks) must use cases a
student cannot know in advance: the course package is public, so cases derived only from its code
(a fixed seed) can be computed at home and hard-coded. The trusted grader therefore seeds hidden
sweeps from a secret that only the instructor's course holds:

- ``<course root>/.autograder-secret`` (next to ``nbgrader_config.py``; 32 random bytes in hex,
  mode 0600), created on first use. It is not under ``source/``, so nbgrader never copies it into
  ``release/``; the sandbox never sees the course root; ``.gitignore`` keeps it out of git; the
  Gradescope bundle carries it. Keep it with the course: a regrade on another machine without it
  draws other hidden cases.
- :func:`assignment_key`: ``HMAC(secret, assignment)``, handed to graders of that assignment.
- :func:`notebook_key`: ``HMAC(assignment key, notebook + digest of the submission)``. The
  submission's digest (its code cells and files) is part of the key, so a regrade of the same
  submission draws the same cases (the same grade), while a resubmission that hard-codes answers
  leaked from an earlier grading draws new ones.

Visible checks never use any of this: they stay derandomized, so a student sees the same message
on every run. Stock nbgrader (``nbgrader autograde``, ``make check``) runs hidden tests inside the
student's own kernel, where nothing can be secret; there they stay derandomized too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = ".autograder-secret"


def secret_path(root: Path) -> Path:
    return Path(root) / SECRET_FILE


def course_secret(root: Path) -> bytes:
    """The course's secret; created (0600, atomically) when the course has none yet."""
    path = secret_path(root)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another grader created it first: use theirs
            text = path.read_text().strip()
        else:
            with os.fdopen(fd, "w") as out:
                out.write(text + "\n")
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) < 16:
        raise SystemExit(f"error: {path} is not a course secret (expected 64 hex digits)")
    return value


def _mac(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "\0".join(parts).encode(), hashlib.sha256).digest()


def assignment_key(root: Path, assignment: str) -> str:
    """Hex key for one assignment's hidden cases (what a grading job carries)."""
    return _mac(course_secret(root), "hidden-cases", assignment).hex()


def submission_digest(notebook, folder: Path | None = None) -> str:
    """sha256 of the student's code cells and of the regular files in ``folder``."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            digest.update(b"cell\0" + str(cell.get("source", "")).encode() + b"\0")
    if folder is not None and Path(folder).is_dir():
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                digest.update(b"file\0" + str(path.relative_to(folder)).encode() + b"\0")
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
    return digest.hexdigest()


def notebook_key(assignment_key_hex: str, notebook_name: str, digest: str) -> bytes:
    """The key one submission's notebook draws its hidden cases from."""
    return _mac(bytes.fromhex(assignment_key_hex), notebook_name, digest)


def cell_key(key: bytes, grade_id: str) -> bytes:
    """The key of one test cell (each cell's hidden sweeps draw their own cases)."""
    return _mac(key, "test", grade_id)
