"""Where the course lives: its root, its assignments and notebooks, its nbgrader settings.

The root is the folder holding `nbgrader_config.py`: this checkout, unless COURSE_ROOT says
otherwise. Settings are read from that one file so the grader and nbgrader never disagree.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def course_root() -> Path:
    return Path(os.environ.get("COURSE_ROOT", PACKAGE_ROOT)).resolve()


@functools.lru_cache(maxsize=4)
def _config(root: str):
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=root).load_config()


def nbgrader_config():
    """The traitlets Config from the course root's nbgrader_config.py."""
    return _config(str(course_root()))


def ignore_pattern() -> str:
    """The stderr pattern nbgrader's IgnorePattern uses (torch/NumPy warnings)."""
    cfg = nbgrader_config()
    return str(cfg.IgnorePattern.pattern) if cfg.IgnorePattern.get("enabled") else ""


def skip_tag() -> str:
    """The cell tag that skips execution: configured so that no student can guess it."""
    return str(nbgrader_config().Execute.skip_cells_with_tag)


def source_dir(root: Path | None = None) -> Path:
    return (root or course_root()) / "source"


def release_dir(root: Path | None = None) -> Path:
    return (root or course_root()) / "release"


def assignments(root: Path | None = None) -> list[str]:
    """Assignment names: the folders under source/ that hold notebooks, in course order."""
    base = source_dir(root)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def notebooks(assignment: str, root: Path | None = None, release: bool = False) -> list[Path]:
    """The notebooks of one assignment, in source/ (default) or release/."""
    base = (release_dir(root) if release else source_dir(root)) / assignment
    return sorted(p for p in base.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def resolve_assignments(names: list[str] | None, root: Path | None = None) -> list[str]:
    """The assignments a command should act on; an unknown name is an error naming it."""
    known = assignments(root)
    if not names:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(
            f"error: unknown assignment(s) {', '.join(unknown)}; "
            f"source/ holds: {', '.join(known) or 'nothing'}"
        )
    return list(names)
