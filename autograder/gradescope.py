"""`python -m autograder gradescope ASSIGNMENT`: a Gradescope autograder bundle for one assignment.

The zip follows Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): Gradescope unpacks it into
``/autograder/source``, runs ``setup.sh`` once when it builds the image, then, for every
submission, runs ``/autograder/run_autograder`` (a copy of ours) with the student's files in
``/autograder/submission`` and reads ``/autograder/results/results.json``.

The bundle holds what the trusted grader needs and nothing else::

    setup.sh  run_autograder  gradescope.json (the assignment's name)
    pyproject.toml  README.md  nbgrader_config.py  course/  autograder/  source/<ASSIGNMENT>/
    .autograder-secret (the course's secret: hidden sweeps draw the same cases as at home)

``setup.sh`` installs bubblewrap (the sandbox's boundary where the image allows namespaces;
elsewhere the grader falls back to a private uid, see :mod:`autograder.sandbox`), makes a
Python 3.11/3.12 venv (the image's Python, apt's or deadsnakes') in
``/autograder/venv`` and installs the course package with its pinned dependencies (CPU-only
torch wheels). ``run_autograder`` grades the one submission with ``python -m autograder grade``
(the same sandbox and scoring as for a whole class) and copies that student's Gradescope
``results.json`` into place. Tests that hold hidden checks are marked
``"visibility": "after_published"``. If *our* side fails, no results.json is written:
Gradescope then shows "autograder failed" to staff (who can rerun it) instead of a zero.

Paths are overridable for testing: ``AUTOGRADER_ROOT`` (default ``/autograder``),
``AUTOGRADER_VENV`` (default ``$AUTOGRADER_ROOT/venv``) or ``AUTOGRADER_PYTHON`` (an existing
interpreter to use instead of the venv's); ``AUTOGRADER_SKIP_SETUP=1`` makes ``setup.sh`` a no-op.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from autograder import record
from autograder.course import course_root
from autograder.secret import SECRET_FILE, course_secret

MANIFEST = "gradescope.json"
STUDENT = "student"  # the one student of a Gradescope run
# Files copied from the course root into the bundle (besides source/<assignment>/).
ROOT_FILES = ("pyproject.toml", "README.md", "nbgrader_config.py")
PACKAGES = ("course", "autograder")
SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints", ".hypothesis", ".pytest_cache", ".DS_Store"}
SKIP_SUFFIXES = (".pyc", ".pyo")
# Zip entries get a fixed date so the same course gives the same bundle bytes.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, while building the autograder image (network available).
# It installs Python 3.11 (or 3.12) and the course package with its pinned dependencies.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
VENV="${AUTOGRADER_VENV:-$ROOT/venv}"
if [ "${AUTOGRADER_SKIP_SETUP:-0}" = "1" ]; then
    echo "setup.sh: AUTOGRADER_SKIP_SETUP=1, nothing installed"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
supported() {
    "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null
}
apt-get update -qq
# The sandbox's boundary; Gradescope's containers may forbid namespaces, then the grader runs
# student code under a private uid instead (see README, "What the sandbox protects").
apt-get install -y -qq bubblewrap >/dev/null || echo "setup.sh: bubblewrap not installed"
PY=""
for cand in python3.11 python3.12 python3; do
    if command -v "$cand" >/dev/null && supported "$cand"; then PY="$cand"; break; fi
done
if [ -z "$PY" ] && apt-get install -y -qq python3.11 >/dev/null 2>&1 && supported python3.11; then
    PY=python3.11
fi
if [ -z "$PY" ]; then
    # Older Ubuntu images: Python 3.11 from the deadsnakes archive.
    apt-get install -y -qq software-properties-common >/dev/null
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update -qq
    apt-get install -y -qq python3.11 >/dev/null
    PY=python3.11
fi
echo "setup.sh: using $("$PY" --version) ($PY)"
if ! "$PY" -m venv "$VENV"; then
    # Debian/Ubuntu ship the venv module's pip separately (python3.X-venv).
    rm -rf "$VENV"
    VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    apt-get install -y -qq "python$VERSION-venv"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The pins come from pyproject.toml; torch and torchvision as CPU-only wheels (PyPI's default
# Linux wheels pull gigabytes of CUDA libraries that grading never uses).
"$VENV/bin/python" -m pip install --quiet \
    --extra-index-url https://download.pytorch.org/whl/cpu -e "$SRC"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 \
    --display-name "Python 3 (ipykernel)" >/dev/null
"$VENV/bin/python" -c "import torch, nbgrader, course, autograder.grade; print('setup ok')"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: /autograder/submission in,
# /autograder/results/results.json out. The grading itself is `python -m autograder grade`.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
VENV="${AUTOGRADER_VENV:-$ROOT/venv}"
PYTHON="${AUTOGRADER_PYTHON:-$VENV/bin/python}"
export COURSE_ROOT="$SRC"
export COURSE_OFFLINE=1
export PATH="$(dirname "$PYTHON"):$PATH"
# Run from the bundle so its own `autograder` and `course` packages are the ones imported.
cd "$SRC"
exec "$PYTHON" -m autograder.gradescope run --root "$ROOT"
"""


# ---------------------------------------------------------------- building the bundle


def add_gradescope_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help="assignment name, a folder of source/ (e.g. 01_anatomy)")
    parser.add_argument(
        "--out", help="zip to write (default: build/gradescope/<assignment>.zip in the course)"
    )
    parser.add_argument("--course", help="course root holding source/ (default: this checkout)")


def _wanted(path: Path) -> bool:
    return not (set(path.parts) & SKIP_NAMES) and not path.name.endswith(SKIP_SUFFIXES)


def _add_file(
    zf: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False, mode: int = 0o644
) -> None:
    info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else mode
    info.external_attr = (stat.S_IFREG | mode) << 16
    zf.writestr(info, data)


def _add_tree(zf: zipfile.ZipFile, root: Path, rel: str) -> int:
    count = 0
    base = root / rel
    for path in sorted(base.rglob("*")):
        relpath = path.relative_to(root)
        if path.is_symlink() or not path.is_file() or not _wanted(relpath):
            continue
        _add_file(zf, relpath.as_posix(), path.read_bytes())
        count += 1
    return count


def build_bundle(assignment: str, root: Path, out: Path) -> Path:
    """Write the Gradescope zip for ``assignment`` of the course at ``root`` to ``out``."""
    src = root / "source" / assignment
    if not any(src.glob("*.ipynb")):
        raise SystemExit(f"error: no notebooks in {src}")
    missing = [f for f in (*ROOT_FILES, *PACKAGES) if not (root / f).exists()]
    if missing:
        raise SystemExit(f"error: {root} lacks {', '.join(missing)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        _add_file(zf, "setup.sh", SETUP_SH.encode(), executable=True)
        _add_file(zf, "run_autograder", RUN_AUTOGRADER.encode(), executable=True)
        manifest = {
            "assignment": assignment,
            "notebooks": sorted(p.stem for p in src.glob("*.ipynb")),
        }
        _add_file(zf, MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
        for name in ROOT_FILES:
            _add_file(zf, name, (root / name).read_bytes())
        course_secret(root)  # created on first use: the bundle grades as the course does
        _add_file(zf, SECRET_FILE, (root / SECRET_FILE).read_bytes(), mode=0o600)
        for package in PACKAGES:
            _add_tree(zf, root, package)
        _add_tree(zf, root, f"source/{assignment}")
    tmp.replace(out)
    return out


def run_gradescope(args: argparse.Namespace) -> int:
    root = Path(args.course).resolve() if args.course else course_root()
    out = Path(args.out) if args.out else root / "build" / "gradescope" / f"{args.assignment}.zip"
    path = build_bundle(args.assignment, root, out.resolve())
    with zipfile.ZipFile(path) as zf:
        count = len(zf.namelist())
    print(f"wrote {path} ({count} files, {path.stat().st_size / 1e6:.1f} MB)")
    print(
        "upload it as the assignment's autograder on Gradescope (Configure Autograder > Zip file)"
    )
    return 0


# ---------------------------------------------------------------- inside Gradescope


def _copy_submission(submission: Path, target: Path) -> None:
    """The student's files as ``<target>/<STUDENT>/``: the grader's intake then vets them."""
    dest = target / STUDENT
    if submission.is_dir():
        # symlinks copied as links: the intake refuses them with a reason
        shutil.copytree(submission, dest, symlinks=True)
    else:
        dest.mkdir(parents=True)


def _write_results(results_dir: Path, data: dict) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "results.json"
    tmp = path.with_name("results.json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    return path


def run_submission(root: Path) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json`` (Gradescope's layout)."""
    start = time.monotonic()
    src = root / "source"
    manifest = json.loads((src / MANIFEST).read_text())
    assignment = manifest["assignment"]
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmpdir:
        work = Path(tmpdir)
        _copy_submission(root / "submission", work / "submissions")
        out = work / "graded"
        cmd = [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            assignment,
            str(work / "submissions"),
            "--course",
            str(src),
            "--out",
            str(out),
            "--db",
            str(work / "gradebook.db"),
            "--workers",
            "1",
            "--no-progress",
        ]
        env = dict(os.environ, COURSE_ROOT=str(src), COURSE_OFFLINE="1")
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        print("$", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=src, env=env)
        student = record.student_dir(out, STUDENT)
        log = student / "grading.log"
        if log.is_file():
            print(log.read_text(errors="replace")[-20000:])
        results = student / "results.json"
        full = student / "result.json"  # present only when the submission was really graded
        if proc.returncode != 0 or not results.is_file() or not full.is_file():
            print(
                f"autograder failed (status {proc.returncode}); no results written, so "
                "Gradescope reports a failure to staff instead of a zero",
                file=sys.stderr,
            )
            return 1
        data = json.loads(results.read_text())
    data["execution_time"] = round(time.monotonic() - start, 1)
    # The grader's log above is for staff; students see the per-test results.
    data["stdout_visibility"] = "hidden"
    path = _write_results(root / "results", data)
    print(f"wrote {path}: {data.get('score')} / {data.get('max_score')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "build", help="write the bundle (same as `python -m autograder gradescope`)"
    )
    add_gradescope_arguments(p)
    p.set_defaults(run=run_gradescope)
    p = commands.add_parser("run", help="grade one submission inside Gradescope's layout")
    p.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    p.set_defaults(run=lambda a: run_submission(Path(a.root).resolve()))
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
