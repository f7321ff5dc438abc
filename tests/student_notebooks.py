"""Student notebooks for the end-to-end tests: the release version, filled like a student would.

A student's submission is the *release* notebook (solutions stubbed, hidden tests removed) with
answers typed into the solution cells. ``filled`` builds exactly that from the reference answers
in source/, optionally with some answers replaced (a wrong solution).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.notebooks import grade_id, is_solution_cell

ROOT = Path(__file__).resolve().parent.parent


def release_copy(assignment: str, out: Path) -> Path:
    """Copy release/<assignment>/ into ``out``; generate it from source/ if not released yet."""
    committed = ROOT / "release" / assignment
    if any(committed.glob("*.ipynb")):
        shutil.copytree(committed, out / assignment)
    else:
        from autograder.release import generate

        generate(assignment, ROOT, out)
    return out / assignment


def source_notebook(assignment: str, name: str) -> NotebookNode:
    return nbformat.read(ROOT / "source" / assignment / f"{name}.ipynb", as_version=4)


def filled(
    release_nb: NotebookNode, source_nb: NotebookNode, override: dict[str, str] | None = None
) -> NotebookNode:
    """The student's notebook with each solution cell holding the reference answer (or override)."""
    answers = {grade_id(c): c.source for c in source_nb.cells if is_solution_cell(c)}
    answers.update(override or {})
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    done = set()
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_solution_cell(cell) and gid in answers:
            cell.source = answers[gid]
            done.add(gid)
    assert done == set(answers), f"solution cells missing in the release: {set(answers) - done}"
    return nb


def answer_stub(release_nb: NotebookNode, solution_id: str, body: str) -> str:
    """The solution cell ``solution_id`` as a student would answer it: the released signature and
    docstring kept, ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` replaced by ``body``
    (written without indentation; indented like the stub)."""
    cell = next(c for c in release_nb.cells if grade_id(c) == solution_id)
    stub = r"^([ \t]*)# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)"
    match = re.search(stub, cell.source, re.M)
    assert match, f"no stub in solution cell {solution_id!r}"
    indent = match.group(1)
    code = "\n".join(indent + line if line else line for line in body.strip("\n").splitlines())
    return cell.source[: match.start()] + code + cell.source[match.end() :]
