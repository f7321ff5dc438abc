"""Issue 10, ids and intake: odd and hostile class zips never crash, merge or lose a student.

Each case of the issue is one test; the property tests draw random zip member names (Unicode,
long, reserved, colliding after normalization, nested). The CLI runs use the stand-in scorer
(tests/grading_fixtures.py), so the whole file takes seconds.
"""

from __future__ import annotations

import unicodedata
import zipfile

import pytest
from grading_fixtures import ASSIGNMENT, make_course, make_zip, nb_text, student_notebook
from hostile_helpers import grade, graded_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.intake import MAX_ID_BYTES, IntakeError, intake

NB = nb_text(student_notebook())


@pytest.fixture
def course(tmp_path):
    return make_course(tmp_path / "course")


LONG = "张" * 90  # 270 bytes: longer than a file name may be
HALF = nb_text(student_notebook(mul=None))  # 5 of 10 points
HOSTILE_CLASS = {
    # Moodle folders with Chinese names (were both "__")
    "张伟_4242_assignsubmission_file_/ex.ipynb": NB,
    "李娜_4243_assignsubmission_file_/ex.ipynb": HALF,
    # accented names (were both "Jos_")
    "José/ex.ipynb": NB,
    "Josè/ex.ipynb": HALF,
    # names equal after cleaning, with nested folders of the same name (crashed the run)
    "al!ce/ex.ipynb": NB,
    "al!ce/data/data/x": "x",
    "al?ce/ex.ipynb": HALF,
    "al?ce/data/data/y": "y",
    # a zip entry name over 255 bytes (crashed the run), and a long file name
    f"{LONG}/ex.ipynb": NB,
    f"bob/{'长' * 90}.ipynb": NB,
    # folders named like the grader's own files (crashed this and every later run)
    "grades.csv/ex.ipynb": NB,
    "intake.txt/ex.ipynb": HALF,
    "students/ex.ipynb": NB,
    # refused entries, each reported
    "../up.txt": "x",
    "carol/../../x": "x",
    "carol/ex.ipynb": NB,
    ".hidden/ex.ipynb": NB,
    "dave/ex.ipynb": "{broken",
}


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    """The class above graded twice (the second time with --force): (rows, csv bytes x2, out)."""
    tmp = tmp_path_factory.mktemp("hostile")
    course = make_course(tmp / "course")
    z = make_zip(tmp / "class.zip", HOSTILE_CLASS, symlinks={"erin/ex.ipynb": "/etc/passwd"})
    out = course / "autograded" / ASSIGNMENT
    rows, _ = graded_rows(course, z)
    first = (out / "grades.csv").read_bytes()
    again, proc = graded_rows(course, z, "--force")
    return {
        "rows": rows,
        "again": again,
        "csv": (first, (out / "grades.csv").read_bytes()),
        "out": out,
        "zip": z,
        "course": course,
        "rerun": proc,
    }


# ---------------------------------------------------------------- the cases


def test_moodle_chinese_names_keep_their_ids_and_are_both_graded(hostile_class):
    rows = hostile_class["rows"]
    assert (rows["张伟"]["score"], rows["李娜"]["score"]) == ("10", "5")


def test_two_moodle_students_of_the_same_name_stay_two(tmp_path):
    z = make_zip(
        tmp_path / "same.zip",
        {
            "张伟_4242_assignsubmission_file_/ex.ipynb": NB,
            "张伟_5151_assignsubmission_file_/ex.ipynb": NB,
        },
    )
    res = intake(z, ASSIGNMENT, tmp_path / "st")
    assert len(res.students) == 2 and all(s.startswith("张伟~") for s in res.students)
    for st_ in res.students.values():
        assert any("moodle user 4242" in n and "moodle user 5151" in n for n in st_.notes)


def test_accented_names_are_different_students(hostile_class):
    rows = hostile_class["rows"]
    assert (rows["José"]["score"], rows["Josè"]["score"]) == ("10", "5")


def test_nfd_spelling_is_the_same_name_as_nfc(tmp_path):
    nfd = unicodedata.normalize("NFD", "José")
    z = make_zip(tmp_path / "nfd.zip", {"José/ex.ipynb": NB, f"{nfd}/data.csv": "1,2\n"})
    res = intake(z, ASSIGNMENT, tmp_path / "st")
    assert list(res.students) == ["José"]
    assert {p.name for p in res.students["José"].folder.iterdir()} == {"ex.ipynb", "data.csv"}


def test_names_colliding_after_cleaning_get_stable_suffixes_and_a_csv_note(hostile_class, tmp_path):
    rows = hostile_class["rows"]
    ids = sorted(s for s in rows if s.startswith("al_ce"))
    assert len(ids) == 2 and all(i.startswith("al_ce~") and len(i) == 14 for i in ids)
    assert sorted(rows[i]["score"] for i in ids) == ["10", "5"]  # nobody overwritten
    assert all("would all be 'al_ce'" in rows[i]["notes"] for i in ids)
    # stable: the same ids whatever the order of the zip's entries
    entries = {k: v for k, v in HOSTILE_CLASS.items() if k.startswith("al")}
    reordered = make_zip(tmp_path / "r.zip", dict(reversed(entries.items())))
    assert sorted(intake(reordered, ASSIGNMENT, tmp_path / "st").students) == ids


def test_nested_folders_of_colliding_students_are_kept_apart(hostile_class):
    out = hostile_class["out"] / "students"
    ids = sorted(s for s in hostile_class["rows"] if s.startswith("al_ce"))
    res = intake(hostile_class["zip"], ASSIGNMENT, out.parent / "check-intake")
    kept = sorted(
        sorted(
            p.relative_to(res.students[i].folder).as_posix()
            for p in res.students[i].folder.rglob("*")
            if p.is_file()
        )
        for i in ids
    )
    assert kept == [["data/data/x", "ex.ipynb"], ["data/data/y", "ex.ipynb"]]


def test_zip_entry_name_over_255_bytes_is_graded_under_a_shortened_id(hostile_class):
    rows = hostile_class["rows"]
    (long_id,) = [s for s in rows if s.startswith("张张")]
    assert len(long_id.encode()) <= MAX_ID_BYTES
    assert rows[long_id]["score"] == "10" and "shortened" in rows[long_id]["notes"]
    assert rows["bob"]["score"] == "10"  # its long notebook name shortened, matched by content


def test_students_named_like_files_of_the_grader_are_graded_and_reruns_work(hostile_class):
    rows, out = hostile_class["rows"], hostile_class["out"]
    assert (rows["grades.csv"]["score"], rows["intake.txt"]["score"]) == ("10", "5")
    assert rows["students"]["score"] == "10"
    for name in ("grades.csv", "intake.txt", "students"):
        assert (out / "students" / name / "feedback.html").is_file()
    assert (out / "grades.csv").is_file() and (out / "intake.txt").is_file()
    assert hostile_class["again"] == rows


def test_every_entry_is_a_row_or_a_reported_refusal(hostile_class):
    rows, out = hostile_class["rows"], hostile_class["out"]
    report = (out / "intake.txt").read_text()
    assert "../up.txt: refused" in report and "carol/../../x: refused" in report
    assert (
        ".hidden/ex.ipynb: refused, hidden" in report
        and "erin/ex.ipynb: refused, symbolic" in report
    )
    assert rows["carol"]["score"] == "10"
    assert rows["erin"]["status"] == "ungradable" and "symbolic link" in rows["erin"]["reason"]
    assert rows["dave"]["status"] == "ungradable" and "corrupt JSON" in rows["dave"]["reason"]
    assert len(rows) == 14  # 19 entries: 14 students (3 refused entries belong to none)


def test_grading_the_same_input_twice_gives_the_same_csv(hostile_class):
    first, second = hostile_class["csv"]
    assert first == second


def test_an_unreadable_input_exits_2_and_writes_nothing(course, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alice/ex.ipynb", NB)
        for i in range(3):
            zf.writestr(f"s{i}/blob.bin", b"\0" * (2 * 1024 * 1024))
    proc = grade(course, bomb, "--max-total-mb", "4")
    assert proc.returncode == 2 and "zip bomb" in proc.stderr
    out = course / "autograded" / ASSIGNMENT
    assert not (out / "grades.csv").exists() and not (out / "students").exists()
    assert not (out / ".intake").exists()
    with pytest.raises(IntakeError, match="empty"):
        intake(make_zip(tmp_path / "empty.zip", {}), ASSIGNMENT, tmp_path / "st")


# ---------------------------------------------------------------- properties

RESERVED = ["grades.csv", "students", "intake.txt", "CON", "nul", "-rf", "~", ".", "..", " "]
LETTERS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00", max_codepoint=0x2FFFF
)
NAMES = st.one_of(
    st.text(LETTERS, min_size=1, max_size=12),
    st.sampled_from(RESERVED),
    st.text(st.sampled_from("张李娜伟é\u0301eE!?_ "), min_size=1, max_size=8),
    st.integers(60, 120).map(lambda n: "長" * n),  # longer than a file name may be
)


def _expected_students(entries: list[str]) -> set[str]:
    """The distinct students a zip of these ``.../ex.ipynb`` entries holds (the test's own model):
    the first path component, or the file name itself for a notebook at the top (``./ex.ipynb``
    is the one-file-per-student layout, student ``ex``)."""
    out = set()
    for entry in entries:
        parts = [p for p in entry.replace("\\", "/").split("/") if p not in ("", ".")]
        if ".." in parts or parts[0].startswith("."):
            continue
        student = parts[0] if len(parts) > 1 else parts[0].removesuffix(".ipynb")
        out.add(unicodedata.normalize("NFC", student))
    return out


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(NAMES, min_size=1, max_size=8))
def test_property_random_member_names_every_student_staged_exactly_once(tmp_path_factory, names):
    print(f"names={names!r}")
    tmp = tmp_path_factory.mktemp("prop")
    entries = {
        f"{n}/sub/{n}/ex.ipynb" if i % 3 == 2 else f"{n}/ex.ipynb": NB for i, n in enumerate(names)
    }
    z = make_zip(tmp / "class.zip", entries)
    expected = _expected_students(list(entries))
    try:
        res = intake(z, ASSIGNMENT, tmp / "st")
    except IntakeError as exc:  # only when nothing at all is left to read
        assert not expected, exc
        return
    shown = sorted(unicodedata.normalize("NFC", s.name) for s in res.students.values())
    assert shown == sorted(expected)  # each student once: none merged, none lost
    for sid, student in res.students.items():
        assert sid not in ("", ".", "..") and "/" not in sid and "\0" not in sid
        assert len(sid.encode()) <= MAX_ID_BYTES and student.folder.name == sid
        assert list(student.folder.rglob("*.ipynb")) or student.problems


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(NAMES, min_size=2, max_size=6, unique=True))
def test_property_random_member_names_the_run_exits_0_with_one_row_each(tmp_path_factory, names):
    print(f"names={names!r}")
    tmp = tmp_path_factory.mktemp("cli")
    course = make_course(tmp / "course")
    entries = {f"{n}/ex.ipynb": NB for n in names} | {"x/ex.ipynb": NB}
    z = make_zip(tmp / "class.zip", entries)
    expected = _expected_students(list(entries))
    rows, _ = graded_rows(course, z)
    assert len(rows) == len(expected)
    assert all(r["score"] == "10" or r["reason"] for r in rows.values())
