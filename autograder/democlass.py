"""`python -m autograder demo-class`: build a small class for assignment 01, grade it, show it.

The class: an honest reference, the blank release, a partly wrong student, and cheaters who try
what beats stock nbgrader (an IPython hook that swallows later cells, an object that equals
everything, patched comparison functions, the skip-execution tag on test cells, torch inside a
from-scratch function). Each submission is what a student would hand in: the release notebook
with their answers typed into the solution cells. The table shows what the trusted grader gave
and what an honest grader should give; any difference is an error.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import notebooks as nbs
from autograder import record
from autograder.course import course_root
from autograder.results import SubmissionResult

ASSIGNMENT = "01_anatomy"
NOTEBOOK = "anatomy"
PARAM_TESTS = ("test_param_count_seeds", "test_param_count_sweep")

WRONG_OUTPUT_SIZE = '''\
import math


def conv2d_output_size(h, w, kernel_size, stride=1, padding=0, dilation=1):
    """Off by one: rounds up where torch rounds down."""

    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(pair, (kernel_size, stride, padding, dilation))
    return (
        math.ceil((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1,
        math.ceil((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1,
    )
'''

ALWAYS_EQUAL = '''\
class AlwaysEqual(tuple):
    """Equal to everything: beats a test that compares with ==."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = tuple.__hash__


def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    return AlwaysEqual()


def conv2d_output_size(h, w, kernel_size, stride=1, padding=0, dilation=1):
    return AlwaysEqual()
'''

SWALLOW_LATER_CELLS = """\
# Every cell after this one is replaced by `pass`: test cells run, print nothing, raise nothing.
get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
"""

PATCH_COMPARISONS = """\
import numpy as np
import numpy.testing

import course.checks.core as core

np.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
core.compare_arrays = lambda *args, **kwargs: None
core.compare_call = lambda *args, **kwargs: None


def conv2d_param_count(in_channels, out_channels, kernel_size, groups=1, bias=True):
    return 0


def conv2d_output_size(h, w, kernel_size, stride=1, padding=0, dilation=1):
    return (0, 0)
"""

TORCH_OUTPUT_SIZE = '''\
def conv2d_output_size(h, w, kernel_size, stride=1, padding=0, dilation=1):
    """Asks torch instead of computing: forbidden in a numpy-only exercise."""
    import torch

    layer = torch.nn.Conv2d(1, 1, kernel_size, stride=stride, padding=padding, dilation=dilation)
    return tuple(layer(torch.zeros(1, 1, h, w)).shape[2:])
'''


@dataclass
class Student:
    name: str
    what: str
    passes: tuple[str, ...] | None  # test grade_ids an honest grader passes; None = all


def _solutions(source: nbformat.NotebookNode) -> dict[str, str]:
    return {nbs.grade_id(c): c.source for c in source.cells if nbs.is_solution_cell(c)}


def _answer(release: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The release notebook with the given solution cells typed in (by grade_id)."""
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if nbs.grade_id(cell) in answers:
            cell.source = answers[nbs.grade_id(cell)]
    return nb


def _insert_after_imports(nb: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first_code + 1, nbformat.v4.new_code_cell(source))
    return nb


def _tag_tests(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if nbs.is_test_cell(cell):
            cell.metadata.setdefault("tags", []).append(tag)
    return nb


def build_class(root: Path, submitted: Path) -> list[Student]:
    """Write the class into ``submitted/<student>/01_anatomy/anatomy.ipynb``."""
    source = nbs.load(root / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    release = nbs.load(root / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    right = _solutions(source)
    honest = _answer(release, right)
    roster = [
        (Student("reference", "the instructor's solutions", None), honest),
        (Student("blank", "the release, untouched", ()), release),
        (
            Student("partly_wrong", "output size rounds up (ceil)", PARAM_TESTS),
            _answer(release, {**right, "conv2d_output_size": WRONG_OUTPUT_SIZE}),
        ),
        (
            Student("cheat_hook", "IPython hook turns later cells into `pass`", ()),
            _insert_after_imports(release, SWALLOW_LATER_CELLS),
        ),
        (
            Student("cheat_eq", "returns an object equal to everything", ()),
            _insert_after_imports(release, ALWAYS_EQUAL),
        ),
        (
            Student("cheat_patch", "patches numpy and course comparisons", ()),
            _insert_after_imports(release, PATCH_COMPARISONS),
        ),
        (
            Student("cheat_skip", "tags test cells skip-execution", ()),
            _tag_tests(release, "skip-execution"),
        ),
        (
            Student("cheat_torch", "numpy-only output size calls torch", PARAM_TESTS),
            _answer(release, {**right, "conv2d_output_size": TORCH_OUTPUT_SIZE}),
        ),
    ]
    if submitted.exists():
        shutil.rmtree(submitted)
    for student, nb in roster:
        folder = submitted / student.name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{NOTEBOOK}.ipynb"))
    return [student for student, _ in roster]


def expected_score(source: nbformat.NotebookNode, passes: tuple[str, ...] | None) -> float:
    return sum(
        float(nbs.nbgrader_meta(c)["points"])
        for c in source.cells
        if nbs.is_test_cell(c) and (passes is None or nbs.grade_id(c) in passes)
    )


def run(out: Path, workers: int | None, unsafe: bool = False) -> int:
    root = course_root()
    submitted, graded = out / "submitted", out / "autograded"
    students = build_class(root, submitted)
    cmd = [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(submitted)]
    cmd += ["--out", str(graded), "--db", str(out / "gradebook.db"), "--force", "--no-progress"]
    if workers:
        cmd += ["--workers", str(workers)]
    if unsafe:
        cmd.append("--unsafe-no-sandbox")
    print(f"grading a demo class of {len(students)} for {ASSIGNMENT} ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        print(proc.stdout + proc.stderr)
        return proc.returncode
    source = nbs.load(root / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    rows, mismatches = [], 0
    for student in students:
        result = SubmissionResult.from_json(
            (record.student_dir(graded, student.name) / "result.json").read_text()
        )
        want = expected_score(source, student.passes)
        ok = abs(result.score - want) < 1e-9
        mismatches += not ok
        rows.append(
            (
                student.name,
                student.what,
                f"{result.score:g}/{result.max_score:g}",
                f"{want:g}",
                "ok" if ok else "WRONG",
            )
        )
    header = ("student", "what they handed in", "graded", "honest", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"feedback, grades.csv and results.json: {graded}")
    return 1 if mismatches else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="build/demo-class", help="where the class is written")
    parser.add_argument("--workers", type=int, default=None, help="submissions graded at once")
    parser.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="grade without isolation on a machine that allows none (see `grade --help`)",
    )


def main(args: argparse.Namespace) -> int:
    return run(Path(args.out).resolve(), args.workers, args.unsafe_no_sandbox)
