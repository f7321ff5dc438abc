"""Intake (folders, zips, hostile zips) and validation (parsing, matching, locked cells)."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from grading_fixtures import (
    ASSIGNMENT,
    NOTEBOOK,
    cell_of,
    make_zip,
    nb_text,
    nbgrader_submission,
    source_notebook,
    student_notebook,
    write_nb,
)

from autograder.intake import IntakeError, intake
from autograder.results import Ungradable
from autograder.validate import grade_id, validate_submission


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file() and not p.is_symlink():
            h.update(p.read_bytes())
    return h.hexdigest()


def files_of(st) -> set[str]:
    return {p.relative_to(st.folder).as_posix() for p in st.folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- folders


def test_nbgrader_layout_is_read_and_input_left_untouched(tmp_path):
    subs = tmp_path / "course"
    nbgrader_submission(subs, "alice", student_notebook())
    nbgrader_submission(subs, "bob", student_notebook(add=None))
    (subs / "submitted" / "bob" / ASSIGNMENT / "timestamp.txt").write_text("2026-11-20 10:00:00")
    (subs / "submitted" / "bob" / ASSIGNMENT / "data.csv").write_text("1,2\n")
    before = tree_digest(subs)
    res = intake(subs, ASSIGNMENT, tmp_path / "staging")
    assert sorted(res.students) == ["alice", "bob"]
    assert files_of(res.students["bob"]) == {f"{NOTEBOOK}.ipynb", "data.csv"}
    assert res.students["bob"].timestamp == "2026-11-20 10:00:00"
    assert tree_digest(subs) == before
    # the submitted/ folder itself works too
    res2 = intake(subs / "submitted", ASSIGNMENT, tmp_path / "staging2")
    assert sorted(res2.students) == ["alice", "bob"]


def test_nbgrader_layout_student_without_this_assignment_is_left_out(tmp_path):
    subs = tmp_path / "course"
    nbgrader_submission(subs, "alice", student_notebook())
    write_nb(student_notebook(), subs / "submitted" / "zoe" / "other_assignment" / "other.ipynb")
    res = intake(subs, ASSIGNMENT, tmp_path / "staging")
    assert sorted(res.students) == ["alice"]


def test_student_folders_with_and_without_assignment_level(tmp_path):
    subs = tmp_path / "subs"
    write_nb(student_notebook(), subs / "alice" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    write_nb(student_notebook(), subs / "bob" / f"{NOTEBOOK}.ipynb")
    res = intake(subs, ASSIGNMENT, tmp_path / "st")
    assert files_of(res.students["alice"]) == {f"{NOTEBOOK}.ipynb"}
    assert files_of(res.students["bob"]) == {f"{NOTEBOOK}.ipynb"}


def test_symlink_in_folder_is_refused_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("gradebook password")
    subs = tmp_path / "subs"
    write_nb(student_notebook(), subs / "alice" / f"{NOTEBOOK}.ipynb")
    os.symlink(secret, subs / "alice" / "notes.txt")
    os.symlink(tmp_path, subs / "alice" / "up")
    res = intake(subs, ASSIGNMENT, tmp_path / "st")
    st = res.students["alice"]
    assert files_of(st) == {f"{NOTEBOOK}.ipynb"}
    assert any("notes.txt: refused, symbolic link" in p for p in st.problems), st.problems
    assert any("up: refused, symbolic link" in p for p in st.problems), st.problems


# ---------------------------------------------------------------- zips


def test_lms_zip_one_file_or_folder_per_student(tmp_path):
    nb = nb_text(student_notebook())
    z = make_zip(
        tmp_path / "class.zip",
        {
            "alice.ipynb": nb,
            "bob/ex.ipynb": nb,
            "carolsmith_12345_67890_ex.ipynb": nb,
            "dave_LATE_1_2_ex.ipynb": nb,
            "Erin Doe_4242_assignsubmission_file_/ex.ipynb": nb,
            "__MACOSX/._alice.ipynb": "junk",
        },
    )
    res = intake(z, ASSIGNMENT, tmp_path / "st")
    assert sorted(res.students) == ["Erin_Doe", "alice", "bob", "carolsmith", "dave"]
    assert files_of(res.students["alice"]) == {"alice.ipynb"}
    assert files_of(res.students["carolsmith"]) == {"ex.ipynb"}
    assert files_of(res.students["dave"]) == {"ex.ipynb"}
    assert files_of(res.students["Erin_Doe"]) == {"ex.ipynb"}
    assert res.problems == []


def test_zip_wrapped_in_submitted_folder(tmp_path):
    nb = nb_text(student_notebook())
    z = make_zip(
        tmp_path / "c.zip", {"submitted/alice/ex/ex.ipynb": nb, "submitted/bob/ex/ex.ipynb": nb}
    )
    res = intake(z, ASSIGNMENT, tmp_path / "st")
    assert sorted(res.students) == ["alice", "bob"]
    assert files_of(res.students["alice"]) == {"ex.ipynb"}


def test_zip_dotdot_and_absolute_entries_refused_nothing_outside(tmp_path):
    nb = nb_text(student_notebook())
    z = make_zip(
        tmp_path / "evil.zip",
        {
            "alice/ex.ipynb": nb,
            "../escaped.txt": "x",
            "alice/../../escaped2.txt": "x",
            "/tmp/abs_escape_e2_test.txt": "x",
            "C:\\windows\\evil.txt": "x",
            "bob\\..\\..\\escaped3.txt": "x",
        },
    )
    staging = tmp_path / "deep" / "st"
    res = intake(z, ASSIGNMENT, staging)
    problems = res.problems + [p for s in res.students.values() for p in s.problems]
    print(problems)
    assert sum("'..'" in p for p in problems) == 3
    assert sum("absolute path" in p for p in problems) == 2
    assert not list(tmp_path.rglob("escaped*"))
    assert not Path("/tmp/abs_escape_e2_test.txt").exists()
    assert files_of(res.students["alice"]) == {"ex.ipynb"}


def test_zip_symlink_entry_refused(tmp_path):
    z = make_zip(
        tmp_path / "s.zip",
        {"alice/ex.ipynb": nb_text(student_notebook())},
        symlinks={"alice/data.csv": "/etc/passwd", "bob/ex.ipynb": "../alice/ex.ipynb"},
    )
    res = intake(z, ASSIGNMENT, tmp_path / "st")
    assert files_of(res.students["alice"]) == {"ex.ipynb"}
    assert any(
        "alice/data.csv: refused, symbolic link" in p for p in res.students["alice"].problems
    )
    every = [p for s in res.students.values() for p in s.problems] + res.problems
    assert any("bob/ex.ipynb: refused, symbolic link" in p for p in every)
    for p in (tmp_path / "st").rglob("*"):
        assert not p.is_symlink(), p


def test_zip_oversize_file_refused_and_bomb_stops_intake(tmp_path):
    big = b"0" * (3 * 1024 * 1024)
    z = make_zip(
        tmp_path / "big.zip", {"alice/ex.ipynb": nb_text(student_notebook()), "alice/big.bin": big}
    )
    res = intake(z, ASSIGNMENT, tmp_path / "st", max_file_bytes=1024 * 1024)
    assert files_of(res.students["alice"]) == {"ex.ipynb"}
    assert any("big.bin: refused, larger than" in p for p in res.students["alice"].problems)
    # a zip bomb: small compressed, large uncompressed, past the total cap
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(8):
            zf.writestr(f"s{i}/blob.bin", b"\0" * (2 * 1024 * 1024))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(IntakeError, match="zip bomb"):
        intake(bomb, ASSIGNMENT, tmp_path / "st2", max_total_bytes=8 * 1024 * 1024)


def test_zip_lying_about_its_size_is_still_capped(tmp_path):
    z = make_zip(tmp_path / "lie.zip", {"alice/big.bin": b"1" * (2 * 1024 * 1024)})
    raw = bytearray(z.read_bytes())
    # forge the declared uncompressed size (central directory) to 10 bytes
    with zipfile.ZipFile(z) as zf:
        info = zf.infolist()[0]
    assert info.file_size == 2 * 1024 * 1024
    idx = raw.rfind(b"PK\x01\x02")
    raw[idx + 24 : idx + 28] = (10).to_bytes(4, "little")
    z.write_bytes(bytes(raw))
    res = intake(z, ASSIGNMENT, tmp_path / "st", max_file_bytes=1024 * 1024)
    every = [p for s in res.students.values() for p in s.problems] + res.problems
    assert any("big.bin" in p and "refused" in p for p in every), every
    assert not list((tmp_path / "st").rglob("big.bin"))


def test_not_a_zip_and_missing_path_are_errors(tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_text("not a zip")
    with pytest.raises(IntakeError, match="neither a folder nor a zip"):
        intake(bad, ASSIGNMENT, tmp_path / "st")
    with pytest.raises(IntakeError, match="no such file"):
        intake(tmp_path / "nope", ASSIGNMENT, tmp_path / "st")


# ---------------------------------------------------------------- validation


def sources():
    return {NOTEBOOK: source_notebook()}


def stage(tmp_path, files: dict[str, bytes | str | object]) -> Path:
    folder = tmp_path / "student"
    folder.mkdir()
    for name, content in files.items():
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif isinstance(content, str):
            p.write_text(content)
        else:
            write_nb(content, p)
    return folder


def test_corrupt_json_is_ungradable_naming_the_file(tmp_path):
    text = nb_text(student_notebook())
    folder = stage(tmp_path, {"ex.ipynb": text[: len(text) // 2]})
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a notebook \(corrupt JSON"):
        validate_submission(folder, sources())


def test_empty_file_is_ungradable_naming_the_file(tmp_path):
    folder = stage(tmp_path, {"ex.ipynb": b""})
    with pytest.raises(Ungradable, match=r"ex\.ipynb is an empty file"):
        validate_submission(folder, sources())


def test_json_that_is_not_a_notebook_is_ungradable(tmp_path):
    folder = stage(tmp_path, {"ex.ipynb": "[1, 2, 3]"})
    with pytest.raises(Ungradable, match="no list of cells"):
        validate_submission(folder, sources())


def test_no_notebook_at_all_lists_what_was_submitted(tmp_path):
    folder = stage(tmp_path, {"answers.txt": "def add(a, b): return a + b"})
    with pytest.raises(Ungradable, match=r"ex\.ipynb not found \(submitted: answers\.txt\)"):
        validate_submission(folder, sources())


def test_renamed_notebook_matched_by_content(tmp_path):
    folder = stage(
        tmp_path,
        {
            "Copy of ex (1).ipynb": student_notebook(),
            "scratch.ipynb": student_notebook(edit=_strip_all),
        },
    )
    val = validate_submission(folder, sources())
    (v,) = val.notebooks
    assert v.file == "Copy of ex (1).ipynb"
    assert "matched to ex.ipynb by its content" in v.notes[0]
    assert any("scratch.ipynb" in n for n in val.notes)


def _strip_all(nb):
    for c in nb.cells:
        c.metadata.pop("nbgrader", None)


def test_corrupt_exact_name_falls_back_to_readable_copy(tmp_path):
    folder = stage(tmp_path, {"ex.ipynb": "{oops", "ex-backup.ipynb": student_notebook()})
    val = validate_submission(folder, sources())
    assert val.notebooks[0].file == "ex-backup.ipynb"
    assert any("ex.ipynb unreadable" in n for n in val.notes)


def test_honest_notebook_has_no_notes_and_released_cells(tmp_path):
    folder = stage(tmp_path, {"ex.ipynb": student_notebook()})
    (v,) = validate_submission(folder, sources()).notebooks
    assert v.notes == []
    assert [grade_id(c) for c in v.student_nb.cells] == [
        None,
        "instructions",
        "add",
        "test_add",
        "test_add_hidden",
        "mul",
        "test_mul",
    ]
    # the hidden tests are never handed to the sandbox side
    assert "HIDDEN" not in cell_of(v.student_nb, "test_add_hidden").source
    assert "add(-1, 1)" not in cell_of(v.student_nb, "test_add_hidden").source


def _validated(tmp_path, edit):
    folder = stage(tmp_path, {"ex.ipynb": student_notebook(edit=edit)})
    (v,) = validate_submission(folder, sources()).notebooks
    ids = [grade_id(c) for c in v.student_nb.cells]
    return v, ids


def test_edited_test_cell_replaced_and_reported(tmp_path):
    def edit(nb):
        cell_of(nb, "test_mul").source = "pass  # trust me"

    v, ids = _validated(tmp_path, edit)
    assert ids.count("test_mul") == 1
    assert cell_of(v.student_nb, "test_mul").source.startswith("assert mul(3, 4) == 12")
    assert v.notes == ["test cell 'test_mul' was edited: the original was used"]


def test_deleted_test_cell_restored_at_source_position(tmp_path):
    def edit(nb):
        nb.cells = [c for c in nb.cells if grade_id(c) not in ("test_add", "test_add_hidden")]

    v, ids = _validated(tmp_path, edit)
    assert ids == [None, "instructions", "add", "test_add", "test_add_hidden", "mul", "test_mul"]
    assert "test cell 'test_add' was deleted: the original was restored" in v.notes
    assert "test cell 'test_add_hidden' was deleted: the original was restored" in v.notes


def test_duplicated_test_cell_kept_once(tmp_path):
    def edit(nb):
        dup = cell_of(nb, "test_add").copy()
        nb.cells.insert(2, dup)

    v, ids = _validated(tmp_path, edit)
    assert ids.count("test_add") == 1
    assert "test cell 'test_add' was duplicated: the extra copy was removed" in v.notes


def test_retyped_test_cell_replaced(tmp_path):
    def edit(nb):
        c = cell_of(nb, "test_mul")
        c.cell_type = "markdown"
        del c["outputs"], c["execution_count"]

    v, ids = _validated(tmp_path, edit)
    assert cell_of(v.student_nb, "test_mul").cell_type == "code"
    assert any("'test_mul' was re-typed to markdown" in n for n in v.notes), v.notes


def test_retagged_test_cell_replaced(tmp_path):
    def edit(nb):
        c = cell_of(nb, "test_add")
        c.metadata.nbgrader["grade"] = False
        c.metadata.nbgrader["solution"] = True
        c.metadata["tags"] = ["skip-execution"]
        c.source = "pass"

    v, ids = _validated(tmp_path, edit)
    c = cell_of(v.student_nb, "test_add")
    assert c.metadata.nbgrader["grade"] is True and c.metadata.get("tags", []) == []
    assert c.source.startswith("assert add(1, 2)")
    assert any("'test_add' was re-tagged" in n for n in v.notes), v.notes


def test_points_changed_is_retagged(tmp_path):
    def edit(nb):
        cell_of(nb, "test_add").metadata.nbgrader["points"] = 100

    v, _ = _validated(tmp_path, edit)
    assert cell_of(v.student_nb, "test_add").metadata.nbgrader["points"] == 2
    assert any("re-tagged" in n for n in v.notes)


def test_renamed_grade_id_becomes_student_code_and_original_restored(tmp_path):
    def edit(nb):
        cell_of(nb, "test_mul").metadata.nbgrader["grade_id"] = "my_test"

    v, ids = _validated(tmp_path, edit)
    assert "my_test" not in ids and ids.count("test_mul") == 1
    assert any("unknown grade_id 'my_test'" in n for n in v.notes)


def test_solution_cells_kept_as_written(tmp_path):
    def edit(nb):
        cell_of(nb, "add").source = "def add(a, b):\n    return 42  # my attempt\n"

    v, _ = _validated(tmp_path, edit)
    assert cell_of(v.student_nb, "add").source == "def add(a, b):\n    return 42  # my attempt\n"
    assert v.notes == []


def test_edited_readonly_cell_reported(tmp_path):
    def edit(nb):
        cell_of(nb, "instructions").source = "I rewrote the instructions"

    v, _ = _validated(tmp_path, edit)
    assert cell_of(v.student_nb, "instructions").source == "Read-only instructions."
    assert v.notes == ["read-only cell 'instructions' was edited: the original was used"]


def test_only_notebook_without_grade_ids_is_graded_and_reported(tmp_path):
    folder = stage(tmp_path, {"mine.ipynb": student_notebook(edit=_strip_all)})
    (v,) = validate_submission(folder, sources()).notebooks
    assert v.file == "mine.ipynb"
    assert v.notes[0] == (
        "mine.ipynb matched to ex.ipynb as the only notebook submitted (no grade ids in common)"
    )
    # the stripped test cells are recognised by their text and used in place
    assert "test cell 'test_add' was re-tagged (metadata removed): the original was used" in v.notes
    ids = [grade_id(c) for c in v.student_nb.cells]
    assert ids.index("test_add") == 3 and ids.index("test_mul") == 6, ids


def test_deleted_test_cell_without_surviving_anchor_goes_to_the_end(tmp_path):
    def edit(nb):
        # the student pasted everything into plain cells and deleted the graded ones
        nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("locked")]
        for c in nb.cells:
            c.metadata.pop("nbgrader", None)

    v, ids = _validated(tmp_path, edit)
    assert ids[-3:] == ["test_add", "test_add_hidden", "test_mul"], ids


def test_hostile_metadata_shapes_are_normalised(tmp_path):
    from autograder.score import is_test_cell as scorer_is_test_cell
    from autograder.score import nbgrader_meta as scorer_meta

    def edit(nb):
        cell_of(nb, "add").metadata.nbgrader["grade"] = True  # answer cell made a "test"
        nb.cells.append(nbformat_cell("x = 1", {"nbgrader": "not a dict"}))
        nb.cells.append(nbformat_cell("y = 2", {"nbgrader": {"grade_id": 7, "grade": True}}))
        nb.cells.append(nbformat_cell("z = 3", {"nbgrader": {"grade_id": "mul", "solution": True}}))

    v, ids = _validated(tmp_path, edit)
    assert cell_of(v.student_nb, "add").metadata.nbgrader["grade"] is False
    assert "answer cell 'add' was re-tagged: the original tags were used" in v.notes
    assert "cell 'mul' appears twice: the second copy is the student's own code" in v.notes
    assert ids.count("mul") == 1 and ids[-3:] == [None, None, None]
    for c in v.student_nb.cells:
        assert isinstance(c.metadata.get("nbgrader", {}), dict)
        scorer_is_test_cell(c), scorer_meta(c)  # the scorer's readers accept every cell
    tests = [grade_id(c) for c in v.student_nb.cells if scorer_is_test_cell(c)]
    assert tests == ["test_add", "test_add_hidden", "test_mul"]


def nbformat_cell(source, metadata):
    from nbformat.v4 import new_code_cell

    return new_code_cell(source, metadata=metadata)


def test_old_style_notebook_source_lists_no_ids_is_read(tmp_path):
    import json

    data = json.loads(nb_text(student_notebook()))
    data["nbformat_minor"] = 0
    for c in data["cells"]:
        c.pop("id", None)
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        c["source"] = src.splitlines(keepends=True)
    folder = stage(tmp_path, {"ex.ipynb": json.dumps(data)})
    (v,) = validate_submission(folder, sources()).notebooks
    assert v.notes == []
    assert cell_of(v.student_nb, "add").source.startswith("def add(a, b):\n")
