"""Record: write graded submissions where instructors and LMSs look for them.

- nbgrader's gradebook (``nbgrader.api.Gradebook``): the assignment, its notebooks and cells are
  created from the source notebooks with nbgrader's own preprocessors (ClearSolutions,
  ComputeChecksums, SaveCells, as ``nbgrader generate_assignment`` does), then each submission's
  ``Grade.auto_score`` is set. Recording is idempotent (find-or-create by student and assignment),
  so a rerun never duplicates a row. ``nbgrader export`` and formgrader read it as usual.
- ``<out>/grades.csv``: one row per student (graded, ungradable or infrastructure failure);
  ``<out>/intake.txt``: every entry of the input that was refused, and why.
- per student, in ``<out>/students/<student>/`` (:func:`student_dir`; no student id can name a
  file of the grader's): ``feedback.html`` (per-test pass/fail, message, points; hidden tests'
  source is never shown; outputs of the student's own cells are, through
  :func:`autograder.sanitize.clean_html`), ``results.json`` in Gradescope's format.

Only the parent process calls the gradebook functions.
"""

from __future__ import annotations

import copy
import csv
import html
import io
import json
import os
import threading
import warnings
from pathlib import Path

from nbformat import NotebookNode

from autograder.results import SubmissionResult
from autograder.sanitize import clean_html, image_data

INFRA = "infrastructure failure"
#: The folder of the output that holds one folder per student (and nothing else).
STUDENTS = "students"


def student_dir(out: Path, student_id: str) -> Path:
    """Where a student's files go: ``<out>/students/<id>/``, apart from the grader's own files."""
    return Path(out) / STUDENTS / student_id


# ---------------------------------------------------------------- gradebook


def db_url_for(db: str | Path) -> str:
    db = str(db)
    return db if "://" in db else "sqlite:///" + str(Path(db).resolve())


def prepare_gradebook(
    db_url: str, course_id: str, assignment: str, sources: dict[str, NotebookNode]
) -> None:
    """Create (or update) the assignment, its notebooks and cells in the gradebook."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import ClearSolutions, ComputeChecksums, SaveCells

    with Gradebook(db_url, course_id=course_id) as gb:
        gb.update_or_create_assignment(assignment)
    for name, src in sources.items():
        nb = copy.deepcopy(src)
        resources = {
            "nbgrader": {"notebook": name, "assignment": assignment, "db_url": db_url},
            "unique_key": name,
        }
        for pre in (ClearSolutions(), ComputeChecksums(), SaveCells()):
            nb, resources = pre.preprocess(nb, resources)


def record_submission(
    db_url: str, course_id: str, result: SubmissionResult, gradebook=None
) -> None:
    """Set auto_score of every grade cell for this student (infrastructure failures skipped).

    ``gradebook``: an open ``nbgrader.api.Gradebook`` of ``db_url`` to use (a run records every
    submission through one: opening one costs more than recording); else one is opened here.
    """
    if result.status not in ("graded", "ungradable"):
        return
    from nbgrader.api import Gradebook

    opened = Gradebook(db_url, course_id=course_id) if gradebook is None else None
    try:
        _set_scores(opened or gradebook, result)
    finally:
        if opened is not None:
            opened.close()


def _set_scores(gb, result: SubmissionResult) -> None:
    with warnings.catch_warnings():
        # nbgrader's add_submission triggers harmless SQLAlchemy autoflush warnings
        warnings.simplefilter("ignore")
        gb.update_or_create_student(result.student_id)
        sub = gb.update_or_create_submission(result.assignment, result.student_id)
        if getattr(result, "timestamp", None):
            try:
                gb.update_or_create_submission(
                    result.assignment, result.student_id, timestamp=result.timestamp
                )
            except Exception:  # an unparsable timestamp.txt is not worth a failed record
                gb.db.rollback()
        scores: dict[tuple[str, str], float] = {}
        for nb in result.notebooks:
            for t in nb.tests:
                scores[(nb.notebook, t.grade_id)] = t.points
        for snb in sub.notebooks:
            for grade in snb.grades:
                if grade.cell.__class__.__name__ != "GradeCell":
                    continue
                # ungradable or test not run: 0 (the student's submission, not our failure)
                grade.auto_score = float(scores.get((snb.name, grade.name), 0.0))
                grade.needs_manual_grade = grade.manual_score is not None
        try:
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise


# ---------------------------------------------------------------- files


def _fmt(x: float) -> str:
    return f"{x:g}"


def write_grades_csv(
    path: Path,
    results: list[SubmissionResult],
    notebook_names: list[str],
    student_notes: dict[str, list[str]] | None = None,
) -> None:
    """grades.csv: student, score, max_score, status, reason, one column per notebook, notes.

    ``student_notes``: notes per student id that come before the notebooks' (e.g. from intake:
    how the id was made). Rows are sorted by id, so the same results give the same file.
    """
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["student", "score", "max_score", "status", "reason", *notebook_names, "notes"])
    for r in sorted(results, key=lambda r: r.student_id):
        per_nb = {nb.notebook: nb.score for nb in r.notebooks}
        if r.status == "graded":
            score = _fmt(r.score)
            nbs = [_fmt(per_nb.get(n, 0.0)) for n in notebook_names]
            reason = r.reason
        elif r.status == "ungradable":
            score = "0"
            nbs = ["0" for _ in notebook_names]
            reason = f"ungradable: {r.reason}"
        else:  # infrastructure failure: never a zero
            score = ""
            nbs = ["" for _ in notebook_names]
            reason = f"{INFRA}: {r.reason}"
        extra = (student_notes or {}).get(r.student_id, [])
        notes = " | ".join([*extra, *(n for nb in r.notebooks for n in nb.notes)])
        w.writerow([r.student_id, score, _fmt(r.max_score), r.status, reason, *nbs, notes])
    _atomic_write(path, buf.getvalue())


def write_intake_report(path: Path, problems: list[str], per_student: dict[str, list[str]]) -> None:
    """intake.txt: every refused entry of the input with its reason (also in the CSV's rows)."""
    lines = [f"not attributed to a student: {p}" for p in problems]
    for sid in sorted(per_student):
        lines += [f"{sid}: {p}" for p in per_student[sid]]
    _atomic_write(path, "".join(line + "\n" for line in lines) or "nothing refused\n")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}-{threading.get_ident()}.tmp")
    # a name that is not valid Unicode must not cost the whole file
    tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
    tmp.replace(path)


def gradescope_json(result: SubmissionResult) -> dict:
    """Gradescope autograder results format (https://gradescope-autograders.readthedocs.io)."""
    tests = []
    for nb in result.notebooks:
        for t in nb.tests:
            entry = {
                "name": f"{nb.notebook}: {t.grade_id}",
                "score": t.points,
                "max_score": t.max_points,
                "status": "passed" if t.passed else "failed",
                "output": t.message,
                "visibility": "after_published" if t.hidden else "visible",
            }
            tests.append(entry)
    out: dict = {
        "score": result.score if result.status == "graded" else 0.0,
        "max_score": result.max_score,
        "tests": tests,
    }
    notes = [n for nb in result.notebooks for n in nb.notes]
    if result.status == "ungradable":
        out["output"] = f"Ungradable: {result.reason}"
    elif notes:
        out["output"] = "Notes:\n" + "\n".join(notes)
    return out


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .6em;
vertical-align:top}th{background:#f3f3f3}.pass{color:#176b1e;font-weight:bold}
.fail{color:#a31515;font-weight:bold}pre{background:#f7f7f7;padding:.5em;white-space:pre-wrap;
overflow-x:auto;margin:0}.cell{border-left:3px solid #ddd;margin:1em 0;padding-left:.8em}
.note{background:#fff7d6;padding:.5em}img{max-width:100%}
"""


def _text_of(value) -> str:
    return "".join(str(x) for x in value) if isinstance(value, list) else str(value)


def _render_outputs(cell: dict) -> str:
    """A cell's outputs as HTML: text escaped, HTML through the sanitizer, images checked."""
    parts = []
    outputs = cell.get("outputs", [])
    for out in outputs[:50] if isinstance(outputs, list) else []:
        if not isinstance(out, dict):
            continue
        otype = out.get("output_type")
        if otype == "stream":
            parts.append(f"<pre>{html.escape(_text_of(out.get('text', ''))[:20000])}</pre>")
        elif otype in ("execute_result", "display_data"):
            data = out.get("data", {}) if isinstance(out.get("data"), dict) else {}
            parts.append(_render_bundle(data))
        elif otype == "error":
            tb = f"{out.get('ename', '')}: {out.get('evalue', '')}"
            parts.append(f"<pre>{html.escape(tb[:5000])}</pre>")
    return "".join(parts)


def _render_bundle(data: dict) -> str:
    for mime in ("image/png", "image/jpeg"):
        clean = image_data(mime, data.get(mime))
        if clean:
            return f'<img alt="plot" src="data:{mime};base64,{clean}">'
    if "text/html" in data and len(_text_of(data["text/html"])) <= 200_000:
        return f'<div class="html">{clean_html(_text_of(data["text/html"]))}</div>'
    return f"<pre>{html.escape(_text_of(data.get('text/plain', ''))[:20000])}</pre>"


def feedback_html(result: SubmissionResult, executed: dict[str, dict] | None = None) -> str:
    """A self-contained HTML page for the student. Test sources are never included."""
    e = html.escape
    rows = []
    for nb in result.notebooks:
        for t in nb.tests:
            status = (
                '<span class="pass">passed</span>'
                if t.passed
                else ('<span class="fail">failed</span>')
            )
            kind = " (hidden test)" if t.hidden else ""
            rows.append(
                f"<tr><td>{e(nb.notebook)}</td><td>{e(t.grade_id)}{kind}</td><td>{status}</td>"
                f"<td>{_fmt(t.points)} / {_fmt(t.max_points)}</td>"
                f"<td><pre>{e(t.message[:20000])}</pre></td></tr>"
            )
    if result.status == "graded":
        head = f"Score: {_fmt(result.score)} / {_fmt(result.max_score)}"
    elif result.status == "ungradable":
        head = f"Ungradable — 0 / {_fmt(result.max_score)}: {e(result.reason)}"
    else:
        head = f"Not graded yet ({INFRA}): {e(result.reason)}"
    notes = [n for nb in result.notebooks for n in nb.notes]
    notes_html = (
        '<div class="note"><b>Notes</b><ul>'
        + "".join(f"<li>{e(n)}</li>" for n in notes)
        + "</ul></div>"
        if notes
        else ""
    )
    cells_html = []
    for name, nb in (executed or {}).items():
        cells_html.append(f"<h2>Your notebook {e(name)}.ipynb (as executed)</h2>")
        for cell in nb.get("cells", []):
            nbg = cell.get("metadata", {}).get("nbgrader", {}) or {}
            if nbg.get("grade") and not nbg.get("solution"):
                continue  # test cells: their (released or hidden) source is not shown here
            if cell.get("cell_type") != "code":
                continue
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else str(src)
            cells_html.append(
                f'<div class="cell"><pre>{e(src[:20000])}</pre>{_render_outputs(cell)}</div>'
            )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{e(result.assignment)} — {e(result.student_id)}</title><style>{_CSS}</style>"
        f"</head><body><h1>{e(result.assignment)}: {e(result.student_id)}</h1><p><b>{head}</b></p>"
        f"{notes_html}<table><tr><th>notebook</th><th>test</th><th>result</th><th>points</th>"
        f"<th>message</th></tr>{''.join(rows)}</table>{''.join(cells_html)}</body></html>"
    )


def write_student_files(folder: Path, result: SubmissionResult) -> None:
    """feedback.html and results.json (Gradescope) in the student's output folder."""
    executed: dict[str, dict] = {}
    for nb in result.notebooks:
        if nb.executed_path and Path(nb.executed_path).is_file():
            try:
                executed[nb.notebook] = json.loads(Path(nb.executed_path).read_text())
            except (OSError, ValueError):
                pass
    _atomic_write(folder / "feedback.html", feedback_html(result, executed))
    _atomic_write(folder / "results.json", json.dumps(gradescope_json(result), indent=1))
