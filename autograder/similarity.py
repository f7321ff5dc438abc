"""`python -m autograder similarity ASSIGNMENT SUBMISSIONS`: which students share code.

Stages, each a small function below:

1. **intake** — `autograder.intake.intake`, exactly as `grade` does (same layouts, same student
   ids, same refusals);
2. **code** — per student, `autograder.validate.validate_submission` finds the notebook that
   `grade` would grade (a renamed copy included); the code of each *solution* cell is taken by
   grade id (an exercise = one solution code cell of source/);
3. **fingerprints** — copydetect (winnowing, the algorithm of MOSS): pygments tokens with every
   variable, function, attribute and class name, string and comment normalized away, hashed
   k-grams (k = ``NOISE`` characters of that normalized text), winnowed with a window that
   guarantees every match of ``GUARANTEE`` characters is seen. The release's code (every code
   cell of the student notebooks, stubs included: signatures, docstrings, ``# YOUR CODE HERE``,
   ``raise NotImplementedError()``) is copydetect *boilerplate*: its k-grams are never evidence.
   Passages that more than ``common`` students share are treated the same way (MOSS's ``-m``):
   what a large part of the class writes is the idiom of the exercise, not a copy;
4. **candidates** — an inverted index from fingerprint to students: only pairs that share a
   fingerprint in an exercise are compared there (all other pairs score exactly 0);
5. **compare** — `copydetect.compare_files` per candidate pair and exercise gives the matched
   regions of both sides;
6. **report** — `autograder.similarity_report` writes ``similarity.csv`` and ``similarity.html``.

Scores. For one exercise, ``shared_a`` is the part of A's fingerprinted code (after starter and
common code are removed) that lies in regions matching B; the exercise's score is the part of
both students' code that lies in matching regions, ``(matched_a + matched_b) / (code_a + code_b)``
(1.0: everything either wrote is in the other's; a student who wrote little cannot reach a high
score on one idiom). The overall score is the same fraction over all exercises together. Pairs
are ranked by it. Renaming, reordering functions, comments, blank lines and reformatting do not
change the normalized text, and winnowing matches are position-free, so they do not hide a copy.

Python randomizes ``hash()`` per process and copydetect hashes k-grams with it, so the command
runs its work with ``PYTHONHASHSEED=0``: the same submissions always give the same numbers.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

NOISE = 25  # k: normalized characters per fingerprint; shorter matches are noise
GUARANTEE = 30  # every match at least this long is found (winnowing window = 6)
DEFAULT_THRESHOLD = 0.5  # pairs at or above this overall score are shown in detail
MIN_COMMON = 10  # a passage in more students than max(MIN_COMMON, COMMON_SHARE * class) ...
COMMON_SHARE = 0.1  # ... is common code (the exercise's idiom), not evidence
MIN_CODE = 100  # normalized characters of own code (about 4 lines) a student needs to be compared
MAX_CODE_CHARS = 50_000  # of one solution cell; beyond it the code is cut (and the cut noted)
DEFAULT_MAX_PAIRS = 100  # pairs shown side by side in similarity.html (the CSV has all)
SEED_ENV = "PYTHONHASHSEED"


# ---------------------------------------------------------------- what is compared


@dataclass(frozen=True)
class Exercise:
    """One solution code cell of source/ (by grade id) and what the release gives for it."""

    notebook: str  # notebook name without .ipynb
    grade_id: str
    label: str  # the grade id, or notebook:grade_id when the assignment has several notebooks
    starter: str  # the cell as released (the stub)


@dataclass
class StudentCode:
    """The code of one student's solution cells, by exercise label."""

    student_id: str
    code: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why something is not compared


@dataclass
class ExerciseMatch:
    """One exercise of one pair."""

    score: float  # (matched_a + matched_b) / (code_a + code_b)
    shared_a: float  # matched_a / code_a
    shared_b: float
    lines_a: list[int]  # 1-based lines of A's cell inside matching regions
    lines_b: list[int]


@dataclass
class Pair:
    a: str  # student ids, a < b
    b: str
    score: float  # over all exercises
    shared_a: float  # of all of A's code, the part found in B's
    shared_b: float
    exercises: dict[str, ExerciseMatch]  # only exercises where they share code


@dataclass
class Settings:
    threshold: float = DEFAULT_THRESHOLD
    common: int | None = None  # None: max(MIN_COMMON, ceil(COMMON_SHARE * students with code))
    max_pairs: int = DEFAULT_MAX_PAIRS
    min_code: int = MIN_CODE
    noise: int = NOISE
    guarantee: int = GUARANTEE


@dataclass
class Report:
    assignment: str
    exercises: list[Exercise]
    students: list[StudentCode]  # every student intake found, compared or not
    pairs: list[Pair]  # pairs sharing any code, best first
    settings: Settings
    common: int  # the cap actually used
    common_dropped: dict[str, int]  # exercise label -> fingerprints ignored as common code
    fingerprints: dict[tuple[str, str], object]  # (student, label) -> copydetect CodeFingerprint
    sizes: dict[str, float] = field(default_factory=dict)  # student -> fingerprinted code size
    intake_problems: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> wall time

    def compared(self) -> list[StudentCode]:
        """The students with code beyond the starter (and common) code."""
        return [s for s in self.students if self.sizes.get(s.student_id, 0) > 0]

    def flagged(self) -> list[Pair]:
        return [p for p in self.pairs if p.score >= self.settings.threshold]


# ---------------------------------------------------------------- source side


def nbgrader_config(course_root: Path):
    """The course's nbgrader configuration (stub text, delimiters), or nbgrader's defaults."""
    from traitlets.config import Config

    if (course_root / "nbgrader_config.py").is_file():
        from traitlets.config.loader import PyFileConfigLoader

        return PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    return Config()


def released(source_nb: NotebookNode, config) -> NotebookNode:
    """The student version of a source notebook, made by nbgrader's own preprocessors."""
    import copy

    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = copy.deepcopy(source_nb)
    resources: dict = {"nbgrader": {}}
    for pre in (ClearSolutions(config=config), ClearHiddenTests(config=config)):
        nb, resources = pre.preprocess(nb, resources)
    return nb


def _is_solution_code(cell) -> bool:
    from autograder.validate import grade_id

    nbg = cell.get("metadata", {}).get("nbgrader", {}) or {}
    return cell.get("cell_type") == "code" and bool(nbg.get("solution")) and bool(grade_id(cell))


FENCED = re.compile(r"```[^\n]*\n(.*?)```", re.S)


def exercises_and_starter(
    sources: dict[str, NotebookNode], config
) -> tuple[list[Exercise], list[str]]:
    """The exercises of the assignment, and every piece of code the release hands out.

    The starter code is each released code cell (stubs, given helpers, visible tests) and the
    fenced code blocks of its markdown cells: copying those proves nothing.
    """
    from autograder.validate import grade_id

    exercises: list[Exercise] = []
    starter: list[str] = []
    several = len(sources) > 1
    for name in sorted(sources):
        src = sources[name]
        rel = released(src, config)
        for src_cell, rel_cell in zip(src.cells, rel.cells, strict=True):
            if rel_cell.cell_type == "code":
                starter.append(rel_cell.source)
            elif rel_cell.cell_type == "markdown":
                starter.extend(FENCED.findall(rel_cell.source))
            if _is_solution_code(src_cell):
                gid = grade_id(src_cell)
                label = f"{name}:{gid}" if several else gid
                exercises.append(Exercise(name, gid, label, rel_cell.source))
    return exercises, starter


# ---------------------------------------------------------------- student side


def student_code(
    student_id: str,
    folder: Path,
    sources: dict[str, NotebookNode],
    exercises: list[Exercise],
    problems: list[str] | None = None,
) -> StudentCode:
    """The student's solution cells, from the notebook(s) `grade` would grade."""
    from autograder.results import Ungradable
    from autograder.validate import grade_id, validate_submission

    out = StudentCode(student_id, notes=[f"intake: {p}" for p in problems or []])
    try:
        val = validate_submission(folder, sources, problems)
    except Ungradable as exc:
        out.notes.append(f"not compared: {exc}")
        return out
    except Exception as exc:  # whatever the files hold, only this student is not compared
        out.notes.append(f"not compared: the submission cannot be read ({type(exc).__name__})")
        return out
    wanted = {(e.notebook, e.grade_id): e.label for e in exercises}
    for v in val.notebooks:
        if v.student_nb is None:
            out.notes.append(f"{v.name}: not compared: {v.problem}")
            continue
        for cell in v.student_nb.cells:
            label = wanted.get((v.name, grade_id(cell)))
            if label is None or cell.get("cell_type") != "code" or label in out.code:
                continue
            code = cell.get("source", "")
            if len(code) > MAX_CODE_CHARS:
                out.notes.append(f"{label}: only the first {MAX_CODE_CHARS} characters compared")
                code = code[:MAX_CODE_CHARS]
            out.code[label] = code
    return out


# ---------------------------------------------------------------- fingerprints


def _fingerprint(name: str, code: str, settings: Settings, boilerplate=None, window=None):
    from copydetect import CodeFingerprint

    window = window or settings.guarantee - settings.noise + 1
    return CodeFingerprint(
        name, settings.noise, window, boilerplate, language="python", fp=io.StringIO(code)
    )


def starter_hashes(starter: list[str], settings: Settings):
    """Every k-gram hash of the starter code, as copydetect builds boilerplate (window 1)."""
    import numpy as np

    hashes: set = set()
    for i, code in enumerate(starter):
        hashes |= _fingerprint(f"starter{i}.py", code, settings, window=1).hashes
    return np.unique(np.array(sorted(hashes), dtype=np.int64))


def fingerprint_class(
    students: list[StudentCode], exercises: list[Exercise], boilerplate, settings: Settings
) -> dict[tuple[str, str], object]:
    """(student, exercise label) -> CodeFingerprint, for code left once the starter is out."""
    fps = {}
    for st in students:
        for ex in exercises:
            code = st.code.get(ex.label)
            if code is None or not code.strip():
                continue
            try:
                fp = _fingerprint(f"{st.student_id}/{ex.label}.py", code, settings, boilerplate)
            except Exception as exc:  # (the tokenizer takes any text; this is belt and braces)
                st.notes.append(f"{ex.label}: not compared ({type(exc).__name__}: {exc})")
                continue
            if fp.hashes:
                fps[(st.student_id, ex.label)] = fp
    return fps


def _drop(fp, hashes: set) -> None:
    """Remove fingerprints exactly as copydetect removes boilerplate (after winnowing)."""
    from copydetect.utils import get_token_coverage

    for h in hashes:
        del fp.hash_idx[h]
    fp.hashes -= hashes
    fp.token_coverage = get_token_coverage(fp.hash_idx, fp.k, len(fp.filtered_code))


def inverted_index(fps: dict, label: str) -> dict:
    """fingerprint hash -> students whose code for this exercise holds it."""
    index: dict = {}
    for (sid, lab), fp in fps.items():
        if lab == label:
            for h in fp.hashes:
                index.setdefault(h, []).append(sid)
    return index


def drop_common(fps: dict, label: str, index: dict, common: int) -> int:
    """Ignore fingerprints more than `common` students share; returns how many were dropped."""
    frequent = {h for h, sids in index.items() if len(sids) > common}
    touched: dict[str, set] = {}
    for h in frequent:
        for sid in index.pop(h):
            touched.setdefault(sid, set()).add(h)
    for sid, hashes in touched.items():
        fp = fps[(sid, label)]
        _drop(fp, hashes)
        if not fp.hashes:
            del fps[(sid, label)]
    return len(frequent)


def candidate_pairs(index: dict) -> set[tuple[str, str]]:
    """Pairs of students that share at least one fingerprint (ids sorted within a pair)."""
    import numpy as np

    names = sorted({sid for sids in index.values() for sid in sids})
    number = {sid: i for i, sid in enumerate(names)}
    n = len(names)
    chunks = []
    for sids in index.values():
        if len(sids) < 2:
            continue
        ids = np.array(sorted(number[s] for s in sids), dtype=np.int64)
        i, j = np.triu_indices(len(ids), 1)
        chunks.append(ids[i] * n + ids[j])
    if not chunks:
        return set()
    codes = np.unique(np.concatenate(chunks))
    return {(names[c // n], names[c % n]) for c in codes.tolist()}


# ---------------------------------------------------------------- compare


def given_lines(code: str, starter: str) -> set[int]:
    """1-based lines of a student's cell that are the released cell's (signature, docstring).

    A fingerprint that straddles the end of the docstring and the student's first line is
    the student's evidence, but the released lines it touches are not shown as matched.
    """
    import difflib

    mine, theirs = code.split("\n"), starter.split("\n")
    blocks = difflib.SequenceMatcher(None, theirs, mine, autojunk=False).get_matching_blocks()
    return {b.b + i + 1 for b in blocks for i in range(b.size)}


def line_starts(code: str):
    """Offsets at which the lines of code start (for line_numbers)."""
    import numpy as np

    return np.array([0] + [m.end() for m in re.finditer("\n", code)], dtype=np.int64)


def line_numbers(code: str, slices, given: set[int] = frozenset(), starts=None) -> list[int]:
    """1-based lines touched by copydetect slices (2 x N array of [start, end) offsets),
    leaving out the `given` lines (starter code)."""
    import numpy as np

    if len(slices) == 0 or len(slices[0]) == 0:
        return []
    starts = line_starts(code) if starts is None else starts
    begin = np.clip(slices[0], 0, len(code))
    end = np.clip(slices[1], 0, len(code))
    keep = end > begin
    first = np.searchsorted(starts, begin[keep], side="right")
    last = np.searchsorted(starts, end[keep] - 1, side="right")
    lines: set[int] = set()
    for f, t in zip(first.tolist(), last.tolist(), strict=True):
        lines.update(range(f, t + 1))
    return sorted(lines - given)


def compare(fp_a, fp_b) -> tuple[float, float, object, object]:
    """(matched_a, matched_b, slices_a, slices_b): copydetect's overlap of two fingerprints."""
    from copydetect import compare_files

    _, (sim_a, sim_b), (slices_a, slices_b) = compare_files(fp_a, fp_b)
    return (
        float(sim_a) * fp_a.token_coverage,
        float(sim_b) * fp_b.token_coverage,
        slices_a,
        slices_b,
    )


def code_sizes(fps: dict) -> dict[str, float]:
    """student -> normalized characters covered by fingerprints, over all exercises."""
    size: dict[str, float] = {}
    for (sid, _), fp in fps.items():
        size[sid] = size.get(sid, 0.0) + fp.token_coverage
    return size


def score_pairs(fps: dict, exercises: list[Exercise], candidates: dict[str, set]) -> list[Pair]:
    """Compare every candidate pair on every exercise where they share a fingerprint."""
    size = code_sizes(fps)
    lines_of: dict[tuple[str, str], tuple] = {}  # (given lines, line starts) per cell

    def lines(sid: str, ex: Exercise, slices) -> list[int]:
        key = (sid, ex.label)
        if key not in lines_of:
            code = fps[key].raw_code
            lines_of[key] = (given_lines(code, ex.starter), line_starts(code))
        given, starts = lines_of[key]
        return line_numbers(fps[key].raw_code, slices, given, starts)

    matched: dict[tuple[str, str], list[float]] = {}
    per_ex: dict[tuple[str, str], dict[str, ExerciseMatch]] = {}
    for ex in exercises:
        for a, b in candidates.get(ex.label, ()):
            fa, fb = fps[(a, ex.label)], fps[(b, ex.label)]
            ma, mb, sa, sb = compare(fa, fb)
            if ma <= 0 and mb <= 0:
                continue
            tot = matched.setdefault((a, b), [0.0, 0.0])
            tot[0] += ma
            tot[1] += mb
            per_ex.setdefault((a, b), {})[ex.label] = ExerciseMatch(
                score=(ma + mb) / (fa.token_coverage + fb.token_coverage),
                shared_a=ma / fa.token_coverage,
                shared_b=mb / fb.token_coverage,
                lines_a=lines(a, ex, sa),
                lines_b=lines(b, ex, sb),
            )
    pairs = [
        Pair(
            a,
            b,
            score=(ma + mb) / (size[a] + size[b]),
            shared_a=ma / size[a],
            shared_b=mb / size[b],
            exercises=per_ex[(a, b)],
        )
        for (a, b), (ma, mb) in matched.items()
    ]
    pairs.sort(key=lambda p: (-p.score, -max(m.score for m in p.exercises.values()), p.a, p.b))
    return pairs


def drop_small(fps: dict, students: list[StudentCode], min_code: int) -> set[str]:
    """Students with less code of their own than min_code are not compared (and told why).

    What is left of a few lines, once starter and common code are out, matches by chance.
    """
    size = code_sizes(fps)
    small = set()
    for st in students:
        have = size.get(st.student_id, 0.0)
        if have >= min_code:
            continue
        small.add(st.student_id)
        if not st.code:
            continue
        if have == 0:
            st.notes.append("no code beyond the starter code and common code: pairs with nobody")
        else:
            st.notes.append(
                f"not compared: too little code of their own ({have:.0f} normalized "
                f"characters beyond starter and common code; --min-code is {min_code})"
            )
    for key in [k for k in fps if k[0] in small]:
        del fps[key]
    return small


def common_cap(settings: Settings, n_students: int) -> int:
    if settings.common is not None:
        return settings.common
    return max(MIN_COMMON, math.ceil(COMMON_SHARE * n_students))


# ---------------------------------------------------------------- the whole class


def compare_class(
    assignment: str,
    sources: dict[str, NotebookNode],
    staged,
    config=None,
    settings: Settings | None = None,
) -> Report:
    """Compare every pair of students intake staged (an `autograder.intake.IntakeResult`)."""
    from traitlets.config import Config

    settings = settings or Settings()
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    exercises, starter = exercises_and_starter(sources, config or Config())
    students = [
        student_code(sid, st.folder, sources, exercises, st.problems)
        for sid, st in sorted(staged.students.items())
    ]
    seconds["read notebooks"] = time.perf_counter() - t

    t = time.perf_counter()
    boilerplate = starter_hashes(starter, settings)
    fps = fingerprint_class(students, exercises, boilerplate, settings)
    seconds["fingerprint"] = time.perf_counter() - t

    t = time.perf_counter()
    common = common_cap(settings, len({sid for sid, _ in fps}))
    dropped, candidates = {}, {}
    for ex in exercises:
        index = inverted_index(fps, ex.label)
        dropped[ex.label] = drop_common(fps, ex.label, index, common)
        candidates[ex.label] = candidate_pairs(index)
    seconds["index"] = time.perf_counter() - t

    too_little = drop_small(fps, students, settings.min_code)
    for ex in exercises:
        candidates[ex.label] = {
            (a, b) for a, b in candidates[ex.label] if a not in too_little and b not in too_little
        }

    t = time.perf_counter()
    pairs = score_pairs(fps, exercises, candidates)
    seconds["compare"] = time.perf_counter() - t
    return Report(
        assignment,
        exercises,
        students,
        pairs,
        settings,
        common,
        dropped,
        fps,
        sizes=code_sizes(fps),
        intake_problems=list(staged.problems),
        seconds=seconds,
    )


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "assignment", help="assignment name, a folder of source/ (e.g. 03_multichannel)"
    )
    parser.add_argument(
        "submissions",
        help="folder (nbgrader submitted/<student>/<assignment>/, <student>/...) or LMS zip",
    )
    parser.add_argument("--out", help="output folder (default: <course>/autograded/<assignment>)")
    parser.add_argument("--course", help="course root holding source/ (default: this checkout)")
    add_report_options(parser)
    parser.add_argument("--max-file-mb", type=float, default=20.0, help="largest accepted file")
    parser.add_argument(
        "--max-total-mb", type=float, default=500.0, help="cap on all submissions uncompressed"
    )


def add_report_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """--threshold, --common, --max-pairs (prefixed for `grade --similarity`)."""
    parser.add_argument(
        f"--{prefix}threshold",
        type=_fraction,
        default=DEFAULT_THRESHOLD,
        help="overall score (0-1, or a percentage like 40%%) from which a pair is listed and "
        f"shown side by side (default {DEFAULT_THRESHOLD})",
    )
    parser.add_argument(
        f"--{prefix}common",
        type=int,
        default=None,
        help="ignore passages more than N students share, as common code (default: "
        f"{COMMON_SHARE * 100:.0f}%% of the class, at least {MIN_COMMON})",
    )
    parser.add_argument(
        f"--{prefix}min-code",
        type=int,
        default=MIN_CODE,
        help="students with fewer normalized characters of their own code (beyond starter and "
        f"common code) are not compared (default {MIN_CODE}, about 4 lines)",
    )
    parser.add_argument(
        f"--{prefix}max-pairs",
        type=int,
        default=DEFAULT_MAX_PAIRS,
        help=f"pairs shown side by side in similarity.html (default {DEFAULT_MAX_PAIRS})",
    )


def _fraction(text: str) -> float:
    value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a score between 0 and 1 (or 0%-100%), got {text!r}")
    return value


def argv_for(assignment: str, submissions: Path, out: Path, course: Path, options: dict) -> list:
    """The `similarity` command line for these inputs (used to rerun with a fixed hash seed)."""
    argv = [assignment, str(submissions), "--out", str(out), "--course", str(course)]
    for name, value in options.items():
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def seed_is_fixed() -> bool:
    return os.environ.get(SEED_ENV) == "0"


def rerun_with_fixed_seed(argv: list[str]) -> int:
    """`python -m autograder similarity ARGV` in a process whose hash() seed is fixed."""
    env = dict(os.environ, **{SEED_ENV: "0"})
    cmd = [sys.executable, "-m", "autograder", "similarity", *argv]
    return subprocess.run(cmd, env=env).returncode


def after_grading(args: argparse.Namespace, course: Path, out: Path) -> int:
    """`grade --similarity`: the report for the same submissions, in the same output folder."""
    options = {
        "threshold": args.similarity_threshold,
        "common": args.similarity_common,
        "max_pairs": args.similarity_max_pairs,
        "min_code": args.similarity_min_code,
        "max_file_mb": args.max_file_mb,
        "max_total_mb": args.max_total_mb,
    }
    argv = argv_for(args.assignment, Path(args.submissions).resolve(), out, course, options)
    rc = rerun_with_fixed_seed(argv)
    if rc != 0:
        print(f"error: the similarity report failed (status {rc})", file=sys.stderr)
    return rc


def run(args: argparse.Namespace) -> int:
    """The `similarity` command (`autograder.cli` first moves it to a fixed hash seed)."""
    from autograder.course import course_root
    from autograder.intake import IntakeError, intake
    from autograder.similarity_report import print_summary, write_csv, write_html
    from autograder.validate import load_notebook

    root = Path(args.course).resolve() if args.course else course_root()
    out = Path(args.out).resolve() if args.out else root / "autograded" / args.assignment
    src_dir = root / "source" / args.assignment
    nb_paths = sorted(src_dir.glob("*.ipynb")) if src_dir.is_dir() else []
    if not nb_paths:
        print(f"error: no notebooks in {src_dir}", file=sys.stderr)
        return 2
    sources = {p.stem: load_notebook(p) for p in nb_paths}
    settings = Settings(
        threshold=args.threshold,
        common=args.common,
        max_pairs=args.max_pairs,
        min_code=args.min_code,
    )
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".similarity-intake-", dir=out))
    try:
        t = time.perf_counter()
        try:
            staged = intake(
                Path(args.submissions),
                args.assignment,
                staging,
                max_file_bytes=int(args.max_file_mb * 1024 * 1024),
                max_total_bytes=int(args.max_total_mb * 1024 * 1024),
            )
        except IntakeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        took = time.perf_counter() - t
        if not staged.students:
            print("error: no submissions found", file=sys.stderr)
            return 2
        report = compare_class(args.assignment, sources, staged, nbgrader_config(root), settings)
        report.seconds = {"intake": took, **report.seconds}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_csv(report, out / "similarity.csv")
    write_html(report, out / "similarity.html")
    print_summary(report, out)
    return 0
