"""Validate: read a student's notebooks and put the instructor's locked cells back.

For each notebook of the assignment (as in source/<assignment>/):

- find the student's file: same name first; otherwise the parsable notebook whose nbgrader cells
  share the most grade_ids with the source (a renamed notebook), or, when the assignment has one
  notebook and the student handed in exactly one parsable notebook, that one (reported);
- a file that is empty or not notebook JSON makes that notebook ungradable, the reason naming
  the file; when no notebook of the assignment can be read, the submission is ungradable;
- every locked cell of the source (test cells and read-only cells) is compared, by grade_id and
  nbgrader checksum (``nbgrader.utils.compute_checksum``), with the student's copy. Whatever the
  student did (edited, re-tagged, re-typed, duplicated, deleted a test cell), the student notebook
  handed to the grader holds exactly one copy of each locked cell, as released (hidden tests
  removed), and the notes say what was changed. A deleted test cell is restored after the cell
  that precedes it in the source, like nbgrader's ``OverwriteCells.add_missing_cells``.
- solution cells and the student's own cells are kept as written. A cell carrying nbgrader
  metadata with a grade_id the source does not know loses that metadata (it is the student's code).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.results import Ungradable

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
FLAGS = ("grade", "solution", "locked", "points", "grade_id")


@dataclass
class ValidatedNotebook:
    name: str  # notebook name without .ipynb
    student_nb: NotebookNode | None  # None: missing or unreadable (then `problem` says why)
    source_nb: NotebookNode
    file: str | None = None  # the student's file it came from (relative to the student folder)
    notes: list[str] = field(default_factory=list)
    problem: str = ""


@dataclass
class Validation:
    notebooks: list[ValidatedNotebook]
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- source side


def _nbg(cell) -> dict:
    md = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = md.get("nbgrader") if isinstance(md, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def grade_id(cell) -> str | None:
    gid = _nbg(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_locked_source_cell(cell) -> bool:
    nbg = _nbg(cell)
    return (
        bool(grade_id(cell))
        and (bool(nbg.get("grade")) or bool(nbg.get("locked")))
        and not (nbg.get("solution"))
    )


def is_test_cell(cell) -> bool:
    nbg = _nbg(cell)
    return bool(nbg.get("grade")) and not nbg.get("solution") and bool(grade_id(cell))


def strip_hidden_tests(source: str) -> str:
    """The released text of a test cell: hidden-test regions removed, exactly as nbgrader's
    ClearHiddenTests does (so the checksum matches the released notebook's)."""
    out, hidden = [], False
    for line in source.split("\n"):
        if HIDDEN_BEGIN in line:
            hidden = True
        elif HIDDEN_END in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


def released_cell(cell: NotebookNode) -> NotebookNode:
    """A locked source cell as the student received it (hidden tests out, checksum in)."""
    from nbgrader.utils import compute_checksum

    new = copy.deepcopy(cell)
    if new.cell_type == "code":
        new.source = strip_hidden_tests(new.source)
        new.outputs = []
        new.execution_count = None
    new.metadata.setdefault("nbgrader", {})
    new.metadata.nbgrader["checksum"] = compute_checksum(new)
    new.metadata["deletable"] = False
    new.metadata["editable"] = False
    return new


def load_notebook(path: Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


# ---------------------------------------------------------------- student side


#: Most JSON values a student's notebook file may hold (counted before it is parsed).
MAX_NOTEBOOK_VALUES = 5_000_000
#: Deepest nesting of JSON in a student's notebook (nbformat itself needs about 8).
MAX_NOTEBOOK_DEPTH = 64
_CELL_TYPES = ("code", "markdown", "raw")
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def read_student_notebook(path: Path, label: str) -> NotebookNode:
    """The student's notebook, rebuilt as a valid nbformat 4.5 notebook, or Ungradable.

    This is the boundary for notebook content: whatever the file holds (corrupt or huge JSON,
    deep nesting, wrong types, malformed attachments, an old nbformat that does not convert),
    the reason names the file and the submission is the student's failure, never ours. What
    comes out holds only what grading uses: each cell's type, source (text) and checked
    metadata, markdown attachments that are real images; outputs are dropped (the grader runs
    the cells again) and the notebook metadata is left to the source notebook's.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Ungradable(f"{label} cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise Ungradable(f"{label} is an empty file")
    obj = _parse_json(data, label)
    if not isinstance(obj, dict) or not isinstance(obj.get("cells"), list):
        raise Ungradable(f"{label} is not a notebook (no list of cells)")
    try:
        if obj.get("nbformat") != 4:
            obj = _upgrade(obj)
        nb = _rebuild(obj)
        nbformat.validate(nb)
    except Ungradable:
        raise
    except Exception as exc:  # noqa: BLE001 - any content problem is the submission's
        text = str(exc).split("\n", 1)[0][:300]
        raise Ungradable(
            f"{label} is not a valid notebook ({type(exc).__name__}: {text})"
        ) from None
    return nb


def _parse_json(data: bytes, label: str):
    from autograder import proxy

    try:
        obj = proxy.loads_bounded(data.removeprefix(b"\xef\xbb\xbf"), MAX_NOTEBOOK_VALUES)
    except UnicodeDecodeError:
        raise Ungradable(f"{label} is not a notebook (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise Ungradable(
            f"{label} is not a notebook (corrupt JSON at line {exc.lineno}: {exc.msg})"
        ) from None
    except proxy.FrameTooComplex:
        raise Ungradable(
            f"{label} is not a notebook this grader reads (more than {MAX_NOTEBOOK_VALUES} "
            "JSON values)"
        ) from None
    except (RecursionError, MemoryError):
        raise Ungradable(f"{label} is not a notebook (JSON nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise Ungradable(f"{label} is not a notebook (unreadable JSON: {exc})") from None
    if _depth(obj) > MAX_NOTEBOOK_DEPTH:
        raise Ungradable(
            f"{label} is not a notebook (JSON nested more than {MAX_NOTEBOOK_DEPTH} levels)"
        )
    return obj


def _depth(obj) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_NOTEBOOK_DEPTH:
                break
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


def _upgrade(obj: dict) -> dict:
    """An older (or unknown) nbformat converted to v4 by nbformat, as plain JSON."""
    version = obj.get("nbformat")
    try:
        converted = nbformat.reads(json.dumps(obj), as_version=4)
        return json.loads(json.dumps(converted))
    except Exception as exc:  # noqa: BLE001
        text = str(exc).split("\n", 1)[0][:200]
        raise ValueError(
            f"nbformat {version!r} cannot be converted to 4: {type(exc).__name__}: {text}"
        ) from None


def _text(value) -> str:
    """A JSON string with any lone surrogate (a broken \\u escape) replaced."""
    text = value if isinstance(value, str) else "".join(str(v) for v in value)
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _plain(value):
    """A copy of a JSON value with every string through :func:`_text`."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _cell_metadata(meta) -> dict:
    """The cell metadata grading and rendering use, each key checked against nbformat's schema."""
    if not isinstance(meta, dict):
        return {}
    out: dict = {}
    if isinstance(meta.get("nbgrader"), dict):
        out["nbgrader"] = _plain(meta["nbgrader"])
    tags = meta.get("tags")
    if isinstance(tags, list):
        kept = [_text(t) for t in tags if isinstance(t, str) and t and "," not in t]
        out["tags"] = list(dict.fromkeys(kept))
    for key in ("deletable", "editable", "collapsed"):
        if isinstance(meta.get(key), bool):
            out[key] = meta[key]
    if isinstance(meta.get("scrolled"), bool) or meta.get("scrolled") == "auto":
        out["scrolled"] = meta["scrolled"]
    if isinstance(meta.get("name"), str):
        out["name"] = _text(meta["name"])
    jupyter = meta.get("jupyter")
    if isinstance(jupyter, dict):
        flags = {k: v for k, v in jupyter.items() if k in ("source_hidden", "outputs_hidden")}
        if flags and all(isinstance(v, bool) for v in flags.values()):
            out["jupyter"] = flags
    return out


def _rebuild(obj: dict) -> NotebookNode:
    from autograder.sanitize import clean_attachments

    v4 = nbformat.v4
    cells, ids = [], set()
    for index, cell in enumerate(obj["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in _CELL_TYPES:
            raise ValueError(f"cell {index + 1} has no valid cell_type")
        source = cell.get("source", "")
        if not isinstance(source, (str, list)):
            raise ValueError(f"the source of cell {index + 1} is not text")
        kind, source, meta = cell["cell_type"], _text(source), _cell_metadata(cell.get("metadata"))
        new = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell}.get(
            kind, v4.new_raw_cell
        )(source=source, metadata=meta)
        cell_id = cell.get("id")
        if isinstance(cell_id, str) and _CELL_ID.match(cell_id) and cell_id not in ids:
            new["id"] = cell_id
        ids.add(new["id"])
        if kind != "code":
            attachments = clean_attachments(cell.get("attachments"))
            if attachments:
                new["attachments"] = nbformat.from_dict(attachments)
        cells.append(new)
    nb = v4.new_notebook(cells=cells)
    nb.nbformat_minor = max(nb.nbformat_minor, 5)
    return nb


def _ids(nb: NotebookNode) -> set[str]:
    return {gid for c in nb.cells if (gid := grade_id(c))}


def merge_locked_cells(source_nb: NotebookNode, student_nb: NotebookNode) -> tuple:
    """The student's notebook with every locked source cell exactly once, as released.

    Returns (notebook, notes).
    """
    from nbgrader.utils import compute_checksum

    notes: list[str] = []
    locked = {grade_id(c): c for c in source_nb.cells if is_locked_source_cell(c)}
    released = {gid: released_cell(c) for gid, c in locked.items()}
    source_order = [grade_id(c) for c in source_nb.cells if grade_id(c)]
    source_meta = {grade_id(c): _nbg(c) for c in source_nb.cells if grade_id(c)}
    source_types = {grade_id(c): c.get("cell_type") for c in source_nb.cells if grade_id(c)}

    cells: list[NotebookNode] = []
    seen: set[str] = set()
    known = set(source_order)
    for cell in student_nb.cells:
        gid = grade_id(cell)
        if gid is None:
            if "nbgrader" in cell.metadata:  # metadata without a usable id: the student's code
                cell = copy.deepcopy(cell)
                del cell.metadata["nbgrader"]
            cells.append(cell)
            continue
        if gid not in known:
            cell = copy.deepcopy(cell)
            del cell.metadata["nbgrader"]
            notes.append(f"cell with unknown grade_id {gid!r}: treated as the student's own code")
            cells.append(cell)
            continue
        if gid in locked:
            kind = "test cell" if is_test_cell(locked[gid]) else "read-only cell"
            if gid in seen:
                notes.append(f"{kind} {gid!r} was duplicated: the extra copy was removed")
                continue
            seen.add(gid)
            want = released[gid]
            what = []
            if cell.get("cell_type") != want.cell_type:
                what.append(f"re-typed to {cell.get('cell_type')}")
            try:
                s_nbg = _nbg(cell)
                if (
                    bool(s_nbg.get("grade")) != bool(want.metadata.nbgrader.get("grade"))
                    or bool(s_nbg.get("solution")) != bool(want.metadata.nbgrader.get("solution"))
                    or bool(s_nbg.get("locked")) != bool(want.metadata.nbgrader.get("locked"))
                    or (
                        want.metadata.nbgrader.get("grade")
                        and float(s_nbg.get("points", -1))
                        != float(want.metadata.nbgrader["points"])
                    )
                ):
                    what.append("re-tagged")
            except (TypeError, ValueError):
                what.append("re-tagged")
            if not what and cell.get("source", "") not in (want.source, locked[gid].source):
                what.append("edited")  # (the instructor's own copy, hidden tests in, is fine)
            elif not what and cell.get("source", "") == want.source:
                try:
                    if compute_checksum(cell) != want.metadata.nbgrader["checksum"]:
                        what.append("edited")
                except Exception:
                    what.append("edited")
            tags = cell.get("metadata", {}).get("tags", [])
            if tags != want.metadata.get("tags", []):
                what.append(f"tags changed to {tags}")
            if what:
                notes.append(f"{kind} {gid!r} was {', '.join(what)}: the original was used")
            cells.append(copy.deepcopy(want))
            continue
        # A solution cell (or an unlocked instructor cell): the student's text stays, under the
        # source's nbgrader metadata (so a re-tagged answer is still run as an answer).
        if gid in seen:
            notes.append(f"cell {gid!r} appears twice: the second copy is the student's own code")
            cell = copy.deepcopy(cell)
            del cell.metadata["nbgrader"]
            cells.append(cell)
            continue
        seen.add(gid)
        want_meta = source_meta[gid]
        if cell.get("cell_type") != "code" and source_types[gid] == "code":
            notes.append(f"answer cell {gid!r} was re-typed to {cell.get('cell_type')}: not run")
        elif {k: v for k, v in _nbg(cell).items() if k in FLAGS} != {
            k: v for k, v in want_meta.items() if k in FLAGS
        }:
            notes.append(f"answer cell {gid!r} was re-tagged: the original tags were used")
        cell = copy.deepcopy(cell)
        cell.metadata["nbgrader"] = copy.deepcopy(want_meta)
        cells.append(cell)

    # A locked cell whose nbgrader metadata was stripped: the same text in a plain cell.
    for gid in [g for g in source_order if g in locked and g not in seen]:
        texts = {released[gid].source.strip(), locked[gid].source.strip()}
        for k, c in enumerate(cells):
            if not _nbg(c) and c.get("source", "").strip() in texts and texts != {""}:
                cells[k] = copy.deepcopy(released[gid])
                seen.add(gid)
                kind = "test cell" if is_test_cell(locked[gid]) else "read-only cell"
                notes.append(
                    f"{kind} {gid!r} was re-tagged (metadata removed): the original was used"
                )
                break

    # Restore deleted locked cells after the nearest cell that precedes them in the source
    # (present or already restored); with none, before the nearest later one; else at the end.
    def index_of(gid: str) -> int | None:
        return next((k for k, c in enumerate(cells) if grade_id(c) == gid), None)

    for i, gid in enumerate(source_order):
        if gid not in locked or gid in seen:
            continue
        pos = None
        for prev in reversed(source_order[:i]):
            idx = index_of(prev)
            if idx is not None:
                pos = idx + 1
                break
        if pos is None:
            later = [index_of(g) for g in source_order[i + 1 :]]
            later = [k for k in later if k is not None]
            pos = min(later) if later else len(cells)
        cells.insert(pos, copy.deepcopy(released[gid]))
        seen.add(gid)
        kind = "test cell" if is_test_cell(locked[gid]) else "read-only cell"
        notes.append(f"{kind} {gid!r} was deleted: the original was restored")

    out = copy.deepcopy(student_nb)
    out.cells = cells
    out.metadata["kernelspec"] = copy.deepcopy(source_nb.metadata.get("kernelspec", {}))
    return out, notes


def _student_notebook_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*.ipynb")
        if p.is_file() and not p.is_symlink() and ".ipynb_checkpoints" not in p.parts
    )


def validate_submission(
    folder: Path, sources: dict[str, NotebookNode], intake_problems: list[str] | None = None
) -> Validation:
    """Match and check a staged student folder against the source notebooks.

    Raises Ungradable when no notebook of the assignment can be graded.
    """
    folder = Path(folder)
    files = _student_notebook_files(folder)
    parsed: dict[Path, NotebookNode] = {}
    errors: dict[Path, str] = {}
    for p in files:
        label = p.relative_to(folder).as_posix()
        try:
            parsed[p] = read_student_notebook(p, label)
        except Ungradable as exc:
            errors[p] = str(exc)

    val = Validation(notebooks=[])
    used: set[Path] = set()
    chosen: dict[str, Path | None] = {}
    how: dict[str, str] = {}
    # 1. exact names (case-insensitive), preferring the shallowest
    for name in sources:
        hits = [p for p in files if p.name.lower() == f"{name}.ipynb".lower()]
        hits.sort(key=lambda p: (len(p.parts), str(p)))
        good = [p for p in hits if p in parsed]
        chosen[name] = good[0] if good else (hits[0] if hits else None)
        if chosen[name] is not None:
            used.add(chosen[name])
    # 2. by content (grade_ids shared with the source) for names missing or unreadable
    for name, src in sources.items():
        if chosen[name] is not None and chosen[name] in parsed:
            continue
        src_ids = _ids(src)
        best, best_n = None, 0
        for p, nb in parsed.items():
            if p in used:
                continue
            n = len(src_ids & _ids(nb))
            if n > best_n:
                best, best_n = p, n
        only = False
        if best is None and len(sources) == 1:
            rest = [p for p in parsed if p not in used]
            if len(rest) == 1:
                best, only = rest[0], True
        if best is not None:
            if chosen[name] is not None:
                val.notes.append(
                    f"{chosen[name].relative_to(folder).as_posix()} unreadable; "
                    f"{best.relative_to(folder).as_posix()} graded as {name}.ipynb"
                )
            chosen[name] = best
            used.add(best)
            if only:
                how[name] = "as the only notebook submitted (no grade ids in common)"

    for name, src in sources.items():
        p = chosen[name]
        if p is None:
            names = sorted(
                q.relative_to(folder).as_posix() for q in folder.rglob("*") if q.is_file()
            )
            found = ", ".join(names[:20]) + (
                f" and {len(names) - 20} more" if len(names) > 20 else ""
            )
            problem = f"{name}.ipynb not found (submitted: {found or 'nothing'})"
            val.notebooks.append(ValidatedNotebook(name, None, src, problem=problem))
            continue
        rel = p.relative_to(folder).as_posix()
        if p not in parsed:
            val.notebooks.append(ValidatedNotebook(name, None, src, file=rel, problem=errors[p]))
            continue
        nb, notes = merge_locked_cells(src, parsed[p])
        if p.name != f"{name}.ipynb":
            why = how.get(name, "by its content")
            notes.insert(0, f"{rel} matched to {name}.ipynb {why}")
        val.notebooks.append(ValidatedNotebook(name, nb, src, file=rel, notes=notes))

    extra = [p.relative_to(folder).as_posix() for p in files if p not in used]
    if extra:
        val.notes.append("not graded (not part of the assignment): " + ", ".join(extra))
    if all(v.student_nb is None for v in val.notebooks):
        reasons = "; ".join(v.problem for v in val.notebooks)
        if intake_problems:
            reasons += "; " + "; ".join(intake_problems)
        raise Ungradable(reasons)
    return val
