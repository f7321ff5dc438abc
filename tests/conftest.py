"""Shared fixtures: the course's notebooks, found once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import Phase, settings

ROOT = Path(__file__).resolve().parent.parent
# nbgrader and jupyter are called by name: the venv's bin must be first on PATH in every test.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("COURSE_OFFLINE", "1")

# The tests' own @given searches: no "explain" phase, whose line tracer after a failure makes a
# shrink take minutes in a long-lived worker (course.checks.core.search_settings does the same)
settings.register_profile(
    "course-tests",
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
settings.load_profile("course-tests")


def source_notebooks() -> list[Path]:
    return sorted((ROOT / "source").glob("*/*.ipynb"))


def notebook_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
