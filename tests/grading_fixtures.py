"""A tiny nbgrader course built in a temporary folder, and submissions for it.

Used by test_intake.py, test_record.py and test_grade_cli.py. The assignment `ex` has one notebook
`ex.ipynb`: two solution cells (`add`, `mul`), three test cells (2 + 3 hidden + 5 = 10 points) and
a read-only markdown cell. `fake_grade_notebook` is a stand-in scorer (plain exec, no sandbox)
for tests of the pipeline around the scorer; the end-to-end tests use the real one.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.results import InfrastructureError, NotebookResult
from autograder.results import TestResult as TR
from autograder.validate import HIDDEN_BEGIN, grade_id, is_test_cell

ASSIGNMENT = "ex"
NOTEBOOK = "ex"
POINTS = {"test_add": 2.0, "test_add_hidden": 3.0, "test_mul": 5.0}
TOTAL = sum(POINTS.values())
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

ADD_OK = "def add(a, b):\n    return a + b\n"
MUL_OK = "def mul(a, b):\n    return a * b\n"


def _meta(gid, *, grade=False, solution=False, locked=False, points=None):
    nbg = {"grade": grade, "solution": solution, "locked": locked, "grade_id": gid}
    nbg["schema_version"] = 3
    if points is not None:
        nbg["points"] = points
    return {"nbgrader": nbg}


def source_notebook() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# Exercise\nWrite `add` and `mul`."),
        new_markdown_cell("Read-only instructions.", metadata=_meta("instructions", locked=True)),
        new_code_cell(
            "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION\n",
            metadata=_meta("add", solution=True),
        ),
        new_code_cell(
            "assert add(1, 2) == 3\nprint('ok: add')",
            metadata=_meta("test_add", grade=True, locked=True, points=2),
        ),
        new_code_cell(
            "assert add(2, 2) == 4\n### BEGIN HIDDEN TESTS\nassert add(-1, 1) == 0\n"
            "assert add(10, 5) == 15\n### END HIDDEN TESTS",
            metadata=_meta("test_add_hidden", grade=True, locked=True, points=3),
        ),
        new_code_cell(
            "def mul(a, b):\n    ### BEGIN SOLUTION\n    return a * b\n    ### END SOLUTION\n",
            metadata=_meta("mul", solution=True),
        ),
        new_code_cell(
            "assert mul(3, 4) == 12\nassert mul(0, 7) == 0",
            metadata=_meta("test_mul", grade=True, locked=True, points=5),
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = KERNELSPEC
    return nb


def release_notebook() -> nbformat.NotebookNode:
    """What nbgrader generate_assignment hands students (done in memory with its preprocessors)."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions, ComputeChecksums, LockCells

    nb = source_notebook()
    res = {"nbgrader": {"notebook": NOTEBOOK, "assignment": ASSIGNMENT}}
    for pre in (LockCells(), ClearSolutions(), ClearHiddenTests(), ComputeChecksums()):
        nb, res = pre.preprocess(nb, res)
    return nb


def make_course(root: Path) -> Path:
    """source/ex/ex.ipynb and an nbgrader_config.py with the gradebook at root/gradebook.db."""
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(source_notebook(), str(root / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"))
    (root / "nbgrader_config.py").write_text(
        textwrap.dedent(
            f"""
            c = get_config()
            c.CourseDirectory.root = {str(root)!r}
            c.CourseDirectory.course_id = "testcourse"
            c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
            """
        )
    )
    return root


def student_notebook(add: str | None = ADD_OK, mul: str | None = MUL_OK, edit=None):
    """The release notebook with the given solution sources; `edit(nb)` may tamper with it."""
    nb = release_notebook()
    for cell in nb.cells:
        if grade_id(cell) == "add" and add is not None:
            cell.source = add
        if grade_id(cell) == "mul" and mul is not None:
            cell.source = mul
    if edit:
        edit(nb)
    return nb


def cell_of(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def write_nb(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def nbgrader_submission(folder: Path, student: str, nb) -> Path:
    return write_nb(nb, folder / "submitted" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb")


def make_zip(path: Path, entries: dict[str, bytes | str], symlinks: dict[str, str] = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return path


def nb_text(nb) -> str:
    return nbformat.writes(nb)


# ---------------------------------------------------------------- stand-in scorer


def fake_grade_notebook(source_nb, student_nb, workdir, limits, notebook_name, log=print, **_):
    """Runs student cells with exec and the SOURCE test cells after them (no sandbox).

    Student code may call `os.kill(os.getpid(), 9)` to simulate a dying worker; the file
    KILL_ONCE (env) makes the first attempt die and later ones succeed.
    """
    once = os.environ.get("FAKE_SCORER_KILL_ONCE")
    if once and not Path(once).exists():
        Path(once).write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    if any("SIMULATE_GRADER_BUG" in c.source for c in student_nb.cells):
        raise InfrastructureError("simulated failure of the grader itself")
    src_tests = {grade_id(c): c for c in source_nb.cells if is_test_cell(c)}
    ns: dict = {}
    tests = []
    executed = copy.deepcopy(student_nb)
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        gid = grade_id(cell)
        if gid in src_tests:
            src = src_tests[gid]
            pts = float(src.metadata.nbgrader["points"])
            try:
                exec(src.source, ns)
                tests.append(TR(gid, pts, pts, True, "ok", HIDDEN_BEGIN in src.source))
            except Exception as exc:
                msg = f"{type(exc).__name__}: {exc}"
                tests.append(TR(gid, 0.0, pts, False, msg, HIDDEN_BEGIN in src.source))
        else:
            try:
                exec(cell.source, ns)
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
            except Exception as exc:
                log(f"student cell raised {type(exc).__name__}: {exc}")
    path = Path(workdir) / f"{notebook_name}.executed.ipynb"
    nbformat.write(executed, str(path))
    return NotebookResult(notebook=notebook_name, tests=tests, executed_path=str(path))


def cli_env(**extra) -> dict:
    env = dict(os.environ)
    tests_dir = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = tests_dir + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
