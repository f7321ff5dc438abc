"""Score a notebook: student cells in the sandbox, source test cells in the trusted grader.

``grade_notebook`` walks the student's notebook in order. Each student code cell runs in the
sandboxed kernel (:class:`autograder.execute.Sandbox`). At each test cell's position, the test
cell's code is taken from the *source* notebook by grade_id and executed here, in the grader's
own process, with ``exec`` in a fresh namespace. The names the test uses but does not define
itself (AST analysis) are resolved from the sandbox at that moment: functions become
:class:`autograder.proxy.StudentFunction` proxies whose calls run in the sandbox, values arrive
as plain data. Functions defined in solution cells tagged ``numpy-only`` (tag read from the
source) are called in a second sandbox in which torch cannot be imported.

A test passes when its cell raises nothing (nbgrader's rule); its points are then awarded.

Hidden tests stay hidden: the statements of a test cell between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS`` run with :func:`course.checks.core.hidden_cases` (their sweeps draw cases
from the instructor's secret, keyed by this submission, see :mod:`autograder.secret`), and what
the student's code prints while they run is dropped from the feedback. The two sandboxes of a
notebook never run at the same time: before either is used the other is paused (a baton), so the
numpy-only functions cannot ask the torch sandbox for answers through any channel.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import functools
import io
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from autograder import guard, proxy, sanitize, secret
from autograder.copyout import Mirror
from autograder.execute import Sandbox
from autograder.results import InfrastructureError, NotebookResult, TestResult
from autograder.sandbox import Limits

NUMPY_ONLY_TAG = "numpy-only"
HIDDEN_RE = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
MESSAGE_LIMIT = 20_000
HIDDEN_OUTPUT_NOTE = "(what your code printed while the hidden tests ran is not shown)"

#: Timings of the last grade_notebook call (seconds), for benchmarks and reports: sandbox_start
#: (fork to ready, both sandboxes), student_cells, tests (grader side and calls into the
#: sandbox), tests_in_sandbox (of tests: the calls), round_trips (a count), notebook (all of it).
LAST_TIMINGS: dict[str, float] = {}
#: torch's answers to the cases of pure references (course.checks.core.pure_reference), kept
#: by this trusted process for every notebook it grades: the same case, the same answer, computed
#: once. Never in a sandbox; it changes no case and no comparison.
REFERENCE_ANSWERS: dict = {}


def nbgrader_meta(cell: Any) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_test_cell(cell: Any) -> bool:
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def cell_tags(cell: Any) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def to_python(source: str) -> str:
    """IPython syntax (magics, !shell) to Python, with a fresh transformer (never the student's)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def free_names(tree: ast.AST) -> set[str]:
    """Names a cell reads but never binds itself (imports, assignments, defs, arguments...)."""
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
    return loaded - bound - set(dir(builtins))


def defined_names(source: str) -> set[str]:
    """Top-level names a (solution) cell defines: functions, classes, assignments."""
    try:
        tree = ast.parse(to_python(source))
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
    return names


#: Longest student cell the grader parses itself (to find its imports); longer ones are not.
MAX_PARSED_SOURCE = 200_000


def import_lines(source: str) -> list[str]:
    """The cell's top-level import statements, as code ([] for a cell that does not parse).

    Also called on the student's cells: whatever they hold (100,000 nested brackets, NUL bytes,
    megabytes of code) gives [] here, never an error of the grader's.
    """
    if len(source) > MAX_PARSED_SOURCE:
        return []
    try:
        tree = ast.parse(to_python(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return [
        ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
    ]


def imported_modules(source_nb: Any) -> list[str]:
    """Every module the (instructor's) notebook imports, by absolute dotted name: its sandboxes'
    zygote imports them once, ahead of the first (see ``Zygote.preload``)."""
    key = "\n\f".join(c.source for c in source_nb.cells if c.get("cell_type") == "code")
    return list(_imported_modules(key))


@functools.lru_cache(maxsize=64)
def _imported_modules(sources: str) -> tuple[str, ...]:
    modules: set[str] = set()
    for source in sources.split("\n\f"):
        for line in import_lines(source):
            node = ast.parse(line).body[0]
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif node.module and not node.level:
                modules.add(node.module)
    return tuple(sorted(modules))


def hide_tests(source: str) -> str:
    return HIDDEN_RE.sub("# (hidden tests are not shown)", source)


def hidden_lines(source: str) -> set[int]:
    """Line numbers (1-based) between the hidden-tests markers."""
    lines, inside = set(), False
    for number, line in enumerate(source.splitlines(), 1):
        text = line.strip()
        if text.startswith("### BEGIN HIDDEN TESTS"):
            inside = True
        elif text.startswith("### END HIDDEN TESTS"):
            inside = False
        elif inside:
            lines.add(number)
    return lines


def segments(tree: ast.Module, source: str) -> list[tuple[bool, ast.Module]]:
    """The cell's top-level statements in runs of (hidden?, statements).

    A statement is hidden when any of its lines lies between the markers (a compound statement
    the markers cut through is hidden as a whole). Running the runs one after another in one
    namespace is running the cell.
    """
    hidden = hidden_lines(source)
    runs: list[tuple[bool, list[ast.stmt]]] = []
    for statement in tree.body:
        end = statement.end_lineno or statement.lineno
        is_hidden = any(n in hidden for n in range(statement.lineno, end + 1))
        if runs and runs[-1][0] == is_hidden:
            runs[-1][1].append(statement)
        else:
            runs.append((is_hidden, [statement]))
    return [(h, ast.Module(body=body, type_ignores=[])) for h, body in runs]


class _CappedText(io.TextIOBase):
    def __init__(self, cap: int):
        self.parts: list[str] = []
        self.left = cap
        self.cut = False

    def write(self, text: str) -> int:
        if self.left > 0:
            piece = text[: self.left]
            self.parts.append(piece)
            self.left -= len(piece)
        elif not self.cut:
            self.cut = True
            self.parts.append("\n[output truncated]\n")
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


class _Budget:
    """Time a test cell may spend waiting on the student's code (the grader's own time is free)."""

    def __init__(self, seconds: float, deadline: float):
        self.remaining = seconds
        self.deadline = deadline

    def left(self) -> float:
        return min(self.remaining, self.deadline - time.monotonic())

    def spend(self, seconds: float) -> None:
        self.remaining -= seconds


class _Grader:
    def __init__(self, source_nb, student_nb, workdir: Path, limits: Limits, log, key: bytes):
        self.hidden_key = key
        self.in_hidden = False
        self.active: Sandbox | None = None
        self.source_nb = source_nb
        self.student_nb = student_nb
        self.workdir = Path(workdir)
        self.limits = limits
        self.log = log
        self.start = time.monotonic()
        self.deadline = self.start + limits.notebook_timeout
        self.tests = {
            nbgrader_meta(c)["grade_id"]: c
            for c in source_nb.cells
            if is_test_cell(c) and nbgrader_meta(c).get("grade_id")
        }
        self.numpy_only_ids = {
            nbgrader_meta(c).get("grade_id")
            for c in source_nb.cells
            if c.get("cell_type") == "code"
            and NUMPY_ONLY_TAG in cell_tags(c)
            and nbgrader_meta(c).get("grade_id")
        }
        self.numpy_only_names: set[str] = set()
        for c in source_nb.cells:
            if nbgrader_meta(c).get("grade_id") in self.numpy_only_ids:
                self.numpy_only_names |= defined_names(c.source)
        self.sandbox: Sandbox | None = None
        self.numpy_sandbox: Sandbox | None = None
        self.numpy_imports_sent: set[str] = set()
        self.numpy_problems: list[str] = []
        self.seen_imports: list[str] = []
        self.results: dict[str, TestResult] = {}
        self.notes: list[str] = []
        self.mirror: Mirror | None = None  # what the checks read of the student's files
        self.cell: guard.TrustedCell | None = None  # the test cell running now
        self.timings = {
            "sandbox_start": 0.0,
            "student_cells": 0.0,
            "tests": 0.0,
            "tests_in_sandbox": 0.0,  # of tests: waiting on calls into the sandbox
            "round_trips": 0.0,  # calls into the sandbox (a count)
        }
        self.calls = [0, 0.0]  # the running test cell's calls into the sandbox: count, seconds

    @contextlib.contextmanager
    def _stage(self, name: str):
        started, starts_before = time.monotonic(), self.timings["sandbox_start"]
        try:
            yield
        finally:
            # a sandbox started lazily inside this stage counts as sandbox start, not here
            starts = self.timings["sandbox_start"] - starts_before
            self.timings[name] += time.monotonic() - started - starts

    # -- sandboxes ------------------------------------------------------------------------------

    def _started(self, sandbox: Sandbox, what: str) -> None:
        warm = (
            "warm zygote"
            if not sandbox.zygote_seconds
            else (f"after starting its zygote in {sandbox.zygote_seconds:.1f} s")
        )
        if sandbox.preload_seconds:
            warm += (
                f", which first imported the notebook's modules in {sandbox.preload_seconds:.2f} s"
            )
        self.log(
            f"{what} ready in {sandbox.startup_seconds:.3f} s ({warm}; {sandbox.mode} isolation, "
            f"pid {sandbox.pid})"
        )

    def main_sandbox(self) -> Sandbox:
        if self.sandbox is None:
            self.sandbox = Sandbox(
                self.workdir,
                self.limits,
                deadline=self.deadline,
                preload=imported_modules(self.source_nb),
            )
            self.active = self.sandbox
            LAST_TIMINGS["kernel_ready"] = self.sandbox.startup_seconds
            self.timings["sandbox_start"] += self.sandbox.startup_seconds
            self._started(self.sandbox, "sandbox")
        return self._take_baton(self.sandbox)

    def numpy_only_sandbox(self) -> Sandbox:
        if self.numpy_sandbox is None:
            self.main_sandbox().pause()  # the two never run at the same time
            self.numpy_sandbox = Sandbox(
                self.workdir, self.limits, numpy_only=True, deadline=self.deadline
            )
            self.active = self.numpy_sandbox
            self.timings["sandbox_start"] += self.numpy_sandbox.startup_seconds
            self._started(self.numpy_sandbox, "numpy-only sandbox")
        return self._take_baton(self.numpy_sandbox)

    def live_folder(self) -> Path:
        """The main sandbox's folder (where the student's code reads and writes its files)."""
        sandbox = self.sandbox or self.main_sandbox()
        return sandbox.workdir or self.workdir

    def _take_baton(self, sandbox: Sandbox) -> Sandbox:
        """Only one of the notebook's two sandboxes runs at a time: pause the other."""
        if self.active is not sandbox:
            other = self.active
            if other is not None:
                other.pause()
            sandbox.resume()
            self.active = sandbox
        return sandbox

    def close(self) -> None:
        problems = []
        for sandbox in (self.sandbox, self.numpy_sandbox):
            if sandbox is not None:
                try:
                    sandbox.close()  # returns once none of its processes is left
                except InfrastructureError as error:
                    problems.append(error)
        if self.mirror is not None:
            self.mirror.close()
        if problems:
            raise problems[0]

    # -- cells ----------------------------------------------------------------------------------

    def run_student_cell(self, cell: Any) -> None:
        grade_id = nbgrader_meta(cell).get("grade_id")
        run = self.main_sandbox().run_cell(cell.source)
        cell.outputs = [nbformat.from_dict(o) for o in run.outputs]
        cell.execution_count = run.execution_count
        if run.status in ("timeout", "dead"):
            self.log(f"cell {grade_id or '(no id)'}: {run.describe()}")
        if grade_id in self.numpy_only_ids:
            self.run_numpy_only(cell.source, grade_id)
        self.seen_imports.extend(import_lines(cell.source))

    def run_numpy_only(self, source: str, grade_id: str) -> None:
        preamble = []
        for line in self.seen_imports:
            if line not in self.numpy_imports_sent:
                self.numpy_imports_sent.add(line)
                preamble.append(f"try:\n    {line}\nexcept Exception:\n    pass\n")
        if preamble:
            self.numpy_only_sandbox().run_cell("".join(preamble))
        run = self.numpy_only_sandbox().run_cell(source)
        if run.failed:
            self.numpy_problems.append(
                f"Cell {grade_id!r} run without torch (numpy-only exercise) failed: "
                + run.describe()
            )

    def score_test(self, grade_id: str, cell: Any | None) -> None:
        source_cell = self.tests[grade_id]
        points = float(nbgrader_meta(source_cell).get("points", 0) or 0)
        hidden = bool(HIDDEN_RE.search(source_cell.source))
        started, self.calls = time.monotonic(), [0, 0.0]
        passed, message = self.run_test(grade_id, source_cell.source)
        took, (trips, inside) = time.monotonic() - started, self.calls
        self.timings["tests_in_sandbox"] += inside
        self.timings["round_trips"] += trips
        self.log(
            f"test {grade_id}: {'passed' if passed else 'failed'} in {took:.2f} s (grader "
            f"{took - inside:.2f} s, calls into the sandbox {inside:.2f} s, {trips} round trips)"
        )
        self.results[grade_id] = TestResult(
            grade_id=grade_id,
            points=points if passed else 0.0,
            max_points=points,
            passed=passed,
            message=message,
            hidden=hidden,
        )
        if cell is not None:
            cell.source = hide_tests(source_cell.source)
            outputs = []
            if message:
                name = "stdout" if passed else "stderr"
                outputs.append(nbformat.v4.new_output("stream", name=name, text=message + "\n"))
            cell.outputs = outputs
            cell.execution_count = None

    def run_test(self, grade_id: str, source: str) -> tuple[bool, str]:
        """Execute a source test cell here; (passed, message for the student)."""
        budget = _Budget(self.limits.cell_timeout, self.deadline)
        python = to_python(source)
        dropped_before = self._dropped()
        try:
            tree = ast.parse(python, filename=f"<test {grade_id}>")
        except SyntaxError as error:
            raise InfrastructureError(
                f"test cell {grade_id!r} of the source does not parse: {error}"
            ) from error
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        notes: list[str] = []
        for name in sorted(free_names(tree)):
            problem = self.resolve(name, namespace, budget)
            if problem:
                notes.append(problem)
        captured = _CappedText(self.limits.output)
        error_text = ""
        _preimport(tree)
        if self.mirror is None:
            self.mirror = Mirror(self.live_folder())
        self.mirror.sync()
        try:
            if any(n.startswith("not plain data:") for n in notes):
                raise proxy.NotPlainData("; ".join(n[len("not plain data: ") :] for n in notes))
            # cwd = a copy of the student's folder (regular files only, refreshed after each
            # call): a relative path the test hands to the student's function (e.g. a log
            # folder) names the same files on both sides, and the check never reads in place
            cell = guard.TrustedCell(
                self.mirror.root, self.limits.cell_timeout, self.limits.memory, captured
            )
            self.cell = cell
            try:
                with cell:
                    self.execute(grade_id, tree, python, namespace)
            finally:
                self.cell = None
                self.mirror.push_deletions()  # e.g. the log folder the check removed
        except guard.CellLimitExceeded as error:
            error_text = cell.describe(type(error))
        except ImportError as error:
            if getattr(error, "from_sandbox", False):
                error_text = _describe_error(error)
            else:  # the grader's side cannot import what the test needs: our failure
                raise InfrastructureError(
                    f"test cell {grade_id!r} failed to import in the grader: {error}"
                ) from error
        except (Exception, SystemExit) as error:  # noqa: BLE001 - nbgrader: any exception fails
            error_text = _describe_error(error)
        if error_text and self.mirror.skipped:
            notes.append(self.mirror.describe_skipped())
        printed = captured.getvalue().rstrip("\n")
        if self._dropped() > dropped_before:
            printed = "\n".join(p for p in (printed, HIDDEN_OUTPUT_NOTE) if p)
        if not error_text:
            return True, printed[:MESSAGE_LIMIT]
        died = [n for n in notes if not n.startswith("not plain data:")]
        extra = []
        if self.numpy_problems and self.numpy_only_names & free_names(tree):
            extra.extend(self.numpy_problems)
        message = "\n".join(p for p in [printed, *died, error_text, *extra] if p)
        return False, message[:MESSAGE_LIMIT]

    def execute(self, grade_id: str, tree: ast.Module, python: str, namespace: dict) -> None:
        """Run the test cell's statements; the hidden ones with the secret's cases, unseen."""
        from course.checks.core import hidden_cases, reference_answers

        filename = f"<test {grade_id}>"
        key = secret.cell_key(self.hidden_key, grade_id)
        with reference_answers(REFERENCE_ANSWERS):
            for is_hidden, module in segments(tree, python):
                code = compile(module, filename, "exec")
                if not is_hidden:
                    exec(code, namespace)  # noqa: S102
                    continue
                self.in_hidden = True
                try:
                    with hidden_cases(key):
                        exec(code, namespace)  # noqa: S102
                finally:
                    self.in_hidden = False

    def _dropped(self) -> int:
        return sum(sb.dropped_outputs for sb in (self.sandbox, self.numpy_sandbox) if sb)

    def resolve(self, name: str, namespace: dict, budget: _Budget) -> str | None:
        """Put the student's ``name`` into ``namespace``; a note when it cannot be."""
        use_numpy = name in self.numpy_only_names
        choose = self.numpy_only_sandbox if use_numpy else self.main_sandbox
        kind, value = choose().lookup(name, max(0.5, budget.left()))
        if kind == "function":
            where = "numpy-only sandbox (no torch)" if use_numpy else "sandbox"

            @contextlib.contextmanager
            def crossing():
                """One trip into the sandbox: not charged to the cell, files synced around it."""
                started = time.monotonic()
                cell = self.cell
                if self.mirror is not None:
                    self.mirror.push_deletions()
                try:
                    with cell.outside() if cell else contextlib.nullcontext():
                        yield started + budget.left()
                finally:
                    spent = time.monotonic() - started
                    budget.spend(spent)
                    self.calls[0] += 1
                    self.calls[1] += spent
                    if self.mirror is not None:
                        self.mirror.sync()  # what the call wrote, before the check reads it

            def invoke(fn: str, args: Any, kwargs: Any) -> Any:
                with crossing() as until:
                    return choose().call(fn, args, kwargs, until, show_output=not self.in_hidden)

            def invoke_each(fn: str, calls: list) -> list:
                with crossing() as until:
                    return choose().call_each(fn, calls, until, show_output=not self.in_hidden)

            namespace[name] = proxy.StudentFunction(name, invoke, where, invoke_each)
        elif kind == "value":
            namespace[name] = value
        elif kind == "notplain":
            return f"not plain data: {value}"
        elif kind == "dead":
            return f"Your notebook's kernel could not be used: {value}"
        return None

    # -- the notebook ---------------------------------------------------------------------------

    def grade(self) -> tuple[NotebookResult, Any]:
        executed = copy.deepcopy(self.student_nb)
        for cell in executed.cells:
            if cell.get("cell_type") != "code":
                continue
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id in self.tests:
                if grade_id not in self.results:
                    with self._stage("tests"):
                        self.score_test(grade_id, cell)
                continue
            if nbgrader_meta(cell).get("grade") and not nbgrader_meta(cell).get("solution"):
                self.notes.append(
                    f"cell {grade_id!r} is marked as a test but is not one in the source: not run"
                )
                continue
            with self._stage("student_cells"):
                self.run_student_cell(cell)
        for grade_id in self.tests:
            if grade_id not in self.results:
                self.notes.append(
                    f"test cell {grade_id!r} missing from the notebook: run at the end"
                )
                with self._stage("tests"):
                    self.score_test(grade_id, None)
        ordered = []
        for cell in self.source_nb.cells:
            meta = nbgrader_meta(cell)
            if not meta.get("grade"):
                continue
            grade_id = meta.get("grade_id", "")
            if grade_id in self.results:
                ordered.append(self.results[grade_id])
            else:  # manually graded answer cells: nothing to autograde
                points = float(meta.get("points", 0) or 0)
                ordered.append(
                    TestResult(grade_id, 0.0, points, False, "graded manually, not autograded")
                )
        return NotebookResult(notebook="", tests=ordered, notes=list(self.notes)), executed


def _preimport(tree: ast.Module) -> None:
    """Run the test cell's own top-level imports (instructor code) before its clock starts.

    A first ``import torch`` in the grader takes seconds; that is not the student's time.
    """
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            with contextlib.suppress(Exception):
                exec(compile(ast.Module([node], []), "<test imports>", "exec"), {})  # noqa: S102


def _describe_error(error: BaseException) -> str:
    name = type(error).__name__
    text = str(error)
    if isinstance(error, proxy.StudentException):
        return text
    frames = traceback.extract_tb(error.__traceback__)
    where = ""
    if frames and frames[-1].filename.startswith("<test "):
        where = f" (line {frames[-1].lineno} of the test cell)"
    return f"{name}: {text}{where}" if text else f"{name}{where}"


def grade_notebook(
    source_nb: nbformat.NotebookNode,
    student_nb: nbformat.NotebookNode,
    workdir: Path,
    limits: Limits,
    notebook_name: str,
    log: Callable[[str], None] = print,
    executed_path: Path | None = None,
    hidden_key: str | None = None,
) -> NotebookResult:
    """Grade one student notebook against its source; see the module docstring.

    A student's failure is a failed test with a message; our own failure raises
    :class:`autograder.results.InfrastructureError`. Writes the executed notebook (outputs,
    plots; hidden tests' source removed) to ``executed_path`` or
    ``workdir/../executed/<notebook_name>.ipynb``. ``hidden_key``: the assignment's key
    (:func:`autograder.secret.assignment_key`; default: from the course root's secret and the
    notebook's name).
    """
    started = time.monotonic()
    LAST_TIMINGS.clear()
    if hidden_key is None:
        from autograder.course import course_root

        hidden_key = secret.assignment_key(course_root(), notebook_name)
    digest = secret.submission_digest(student_nb, Path(workdir))
    key = secret.notebook_key(hidden_key, notebook_name, digest)
    grader = _Grader(source_nb, student_nb, Path(workdir), limits, log, key)
    try:
        result, executed = grader.grade()
    except InfrastructureError:
        raise
    except Exception as error:  # a bug of ours must not become a student's zero
        raise InfrastructureError(f"grader error: {type(error).__name__}: {error}") from error
    finally:
        grader.close()
    result.notebook = notebook_name
    path = (
        Path(executed_path)
        if executed_path
        else Path(workdir).parent / "executed" / (notebook_name + ".ipynb")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(sanitize.clean_notebook(executed), str(path))
    result.executed_path = str(path)
    LAST_TIMINGS.update(grader.timings, notebook=time.monotonic() - started)
    log(
        f"{notebook_name}: {result.score:g}/{result.max_score:g} in "
        f"{LAST_TIMINGS['notebook']:.2f} s (sandbox start {grader.timings['sandbox_start']:.2f} s, "
        f"student cells {grader.timings['student_cells']:.2f} s, "
        f"tests {grader.timings['tests']:.2f} s, of which calls into the sandbox "
        f"{grader.timings['tests_in_sandbox']:.2f} s in {grader.timings['round_trips']:.0f} "
        "round trips)"
    )
    return result
