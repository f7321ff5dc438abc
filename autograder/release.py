"""Generate the student version of assignments with nbgrader: source/ -> release/.

nbgrader's generate_assignment strips solutions and hidden tests, locks cells and records
checksums. We run it as nbgrader's own CLI (with the venv's bin on PATH, since nbgrader calls
its helpers by name) so the release is exactly what `nbgrader generate_assignment` makes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from autograder.course import course_root, release_dir, resolve_assignments


def nbgrader_env() -> dict[str, str]:
    """The environment nbgrader needs: this interpreter's bin first on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def generate(assignment: str, root: Path, out: Path) -> list[Path]:
    """Write the student version of ``assignment`` into ``out/<assignment>/``."""
    target = out / assignment
    if target.exists():
        # A notebook removed from source/ must disappear from the release too.
        shutil.rmtree(target)
    cmd = [
        sys.executable,
        "-m",
        "nbgrader",
        "generate_assignment",
        assignment,
        "--force",
        "--no-db",
        f"--CourseDirectory.root={root}",
        f"--CourseDirectory.release_directory={out}",
        "--log-level=WARN",
    ]
    proc = subprocess.run(cmd, cwd=root, env=nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(
            f"error: nbgrader generate_assignment {assignment} failed:\n{proc.stdout}{proc.stderr}"
        )
    return sorted(target.glob("*.ipynb"))


def release(names: list[str] | None = None, out: Path | None = None) -> dict[str, list[Path]]:
    """Regenerate the given assignments (all by default) into ``out`` (default: release/)."""
    root = course_root()
    out = (out or release_dir(root)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for assignment in resolve_assignments(names, root):
        done[assignment] = generate(assignment, root, out)
        print(f"released {assignment}: {len(done[assignment])} notebook(s) -> {out / assignment}")
    return done
