"""The similarity report: copies found, independent work not, starter code never; safe HTML.

The classes (tests/similarity_class.py) hold hand-written, independent solutions of the exercises
of 03_multichannel and 01_anatomy, disguised copies of some of them and blank releases. They are
compared in this process with the real source/ notebooks (no notebook is executed), except for
the command-line cases, which run `python -m autograder similarity` and `grade --similarity`.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from grading_fixtures import cli_env, make_course, nbgrader_submission, student_notebook
from similarity_class import (
    ADA,
    ANATOMY,
    ANATOMY_CLASS,
    ANATOMY_COPIES,
    CHEN,
    CHEN_HELPERS,
    MULTICHANNEL,
    MULTICHANNEL_COPIES,
    write_anatomy_zip,
    write_multichannel_class,
)

from autograder.intake import intake
from autograder.similarity import (
    DEFAULT_THRESHOLD,
    Settings,
    _fingerprint,
    compare,
    compare_class,
    exercises_and_starter,
    nbgrader_config,
    starter_hashes,
)
from autograder.similarity_report import csv_text, html_body, html_page
from autograder.validate import load_notebook

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts" / "similarity"
README_SCREENSHOT = ROOT / "tests" / "screenshots" / "similarity-report.png"
README_PAIR_SCREENSHOT = ROOT / "tests" / "screenshots" / "similarity-pair.png"

# A student whose code carries markup, and a classmate who copied it.
HOSTILE = "</pre><script>window.pwned=1</script>"
MALLORY = {
    "corr2d": f'''
note = "{HOSTILE}"  # <img src=x onerror="window.pwned=2">
x = np.asarray(x, dtype=np.float32)
k = np.asarray(k, dtype=np.float32)
flat = np.lib.stride_tricks.sliding_window_view(x, k.shape).reshape(-1, k.size)
return (flat @ k.ravel()).reshape(x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1)
''',
}
TRENT = {
    "corr2d": f'''
message = "{HOSTILE}"
img = np.asarray(x, dtype=np.float32)
ker = np.asarray(k, dtype=np.float32)
cols = np.lib.stride_tricks.sliding_window_view(img, ker.shape).reshape(-1, ker.size)
# matrix product with the flattened kernel <b>bold</b>
return (cols @ ker.ravel()).reshape(img.shape[0] - ker.shape[0] + 1,
                                    img.shape[1] - ker.shape[1] + 1)
''',
}
HOSTILE_PAIR = ("mallory", "trent")


def sources_of(assignment: str) -> dict:
    return {
        p.stem: load_notebook(p) for p in sorted((ROOT / "source" / assignment).glob("*.ipynb"))
    }


def compare_folder(assignment: str, submissions: Path, staging: Path, **settings):
    staged = intake(submissions, assignment, staging)
    report = compare_class(
        assignment, sources_of(assignment), staged, nbgrader_config(ROOT), Settings(**settings)
    )
    return staged, report


@pytest.fixture(scope="module")
def multichannel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multichannel")
    extra = {"mallory": (MALLORY, {}), "trent": (TRENT, {})}
    course = write_multichannel_class(tmp, extra)
    return compare_folder(MULTICHANNEL, course, tmp / "staging")


@pytest.fixture(scope="module")
def anatomy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anatomy")
    z = write_anatomy_zip(tmp)
    staged, report = compare_folder(ANATOMY, z, tmp / "staging")
    return z, staged, report


def id_of(staged, raw_name: str) -> str:
    """The id intake gave the entry named raw_name (whatever the id rule is)."""
    hits = [
        sid for sid, st in staged.students.items() if any(f":{raw_name}_" in o for o in st.origin)
    ]
    assert len(hits) == 1, (raw_name, hits)
    return hits[0]


def scores_table(report) -> str:
    return "\n".join(
        f"{p.a:>14} {p.b:>14} {p.score:.2f}  "
        + " ".join(f"{k}={m.score:.2f}" for k, m in p.exercises.items())
        for p in report.pairs
    )


def check_copies_rank_first(report, copies: set[frozenset]) -> None:
    print(scores_table(report))
    ids = [s.student_id for s in report.students]
    score = {frozenset((p.a, p.b)): p.score for p in report.pairs}
    copied = {pair: score.get(pair, 0.0) for pair in copies}
    independent = {
        frozenset(pair): score.get(frozenset(pair), 0.0)
        for pair in itertools.combinations(ids, 2)
        if frozenset(pair) not in copies
    }
    worst_copy = min(copied.values())
    best_independent = max(independent.values())
    print(f"lowest copied pair {worst_copy:.2f}, highest independent pair {best_independent:.2f}")
    assert worst_copy > best_independent, (copied, sorted(independent.items(), key=lambda x: -x[1]))
    # and the default cut-off separates them
    assert worst_copy >= DEFAULT_THRESHOLD > best_independent


# ---------------------------------------------------------------- ranking


def test_multichannel_every_copied_pair_ranks_above_every_independent_pair(multichannel):
    _, report = multichannel
    copies = {frozenset(p) for p in MULTICHANNEL_COPIES | {HOSTILE_PAIR}}
    check_copies_rank_first(report, copies)


def test_anatomy_every_copied_pair_ranks_above_every_independent_pair(anatomy):
    _, staged, report = anatomy
    copies = {frozenset(id_of(staged, name) for name in pair) for pair in ANATOMY_COPIES}
    check_copies_rank_first(report, copies)


def _fp(code: str):
    exercises, starter = exercises_and_starter(sources_of(MULTICHANNEL), nbgrader_config(ROOT))
    return _fingerprint("x.py", code, Settings(), starter_hashes(starter, Settings()))


def _score(code_a: str, code_b: str) -> float:
    fa, fb = _fp(code_a), _fp(code_b)
    ma, mb, _, _ = compare(fa, fb)
    return (ma + mb) / (fa.token_coverage + fb.token_coverage)


CHEN_CELL = (
    CHEN_HELPERS
    + "def corr2d(x, k):\n"
    + "".join(f"    {line}\n" if line else "\n" for line in CHEN["corr2d"].strip().splitlines())
)
HELPER_A, HELPER_B, MAIN = CHEN_CELL.split("\n\n\n")
DISGUISES = {
    "renamed": CHEN_CELL.replace("total", "s")
    .replace("window_sum", "dot_at")
    .replace("top", "r0")
    .replace("left", "c0")
    .replace("output_shape", "size_of"),
    "functions reordered": "\n\n\n".join([HELPER_B, HELPER_A, MAIN]),
    "new comments": CHEN_CELL.replace("    total = 0.0", "    # start from zero\n    total = 0.0")
    .replace("    return out", "    return out  # the whole map")
    .replace('"""Sum of the products of k with the window of x at (top, left)."""', "# dot"),
    "reformatted": CHEN_CELL.replace("top + u", "top+u")
    .replace("\n\n\n", "\n\n")
    .replace(
        "out[top, left] = window_sum(x, k, top, left)",
        "out[top, left] = window_sum(\n                x, k,\n                top, left)",
    ),
}


@pytest.mark.parametrize("disguise", DISGUISES)
def test_a_disguise_does_not_hide_a_copy(disguise):
    changed = DISGUISES[disguise]
    assert changed != CHEN_CELL
    score = _score(CHEN_CELL, changed)
    print(f"{disguise}: {score:.2f}")
    assert score >= 0.9


def test_independent_solutions_of_one_exercise_score_low():
    ada = "import numpy as np\n\n\ndef corr2d(x, k):\n" + "".join(
        f"    {line}\n" for line in ADA["corr2d"].strip().splitlines()
    )
    score = _score(CHEN_CELL, ada)
    print(f"chen vs ada on corr2d: {score:.2f}")
    assert score < DEFAULT_THRESHOLD


# ---------------------------------------------------------------- starter code, blanks


@pytest.mark.parametrize("assignment", [MULTICHANNEL, ANATOMY])
def test_starter_code_alone_scores_zero(assignment):
    settings = Settings()
    exercises, starter = exercises_and_starter(sources_of(assignment), nbgrader_config(ROOT))
    boilerplate = starter_hashes(starter, settings)
    assert exercises and len(boilerplate) > 100
    for ex in exercises:
        assert "raise NotImplementedError()" in ex.starter and "BEGIN SOLUTION" not in ex.starter
        fp = _fingerprint(f"{ex.label}.py", ex.starter, settings, boilerplate)
        assert not fp.hashes and fp.token_coverage == 0, ex.label
        matched_a, matched_b, _, _ = compare(fp, fp)
        assert matched_a == matched_b == 0, ex.label
        # the same stub with other blank lines and comments is starter code too
        noisy = ex.starter.replace("# YOUR CODE HERE", "# YOUR CODE HERE\n\n# todo").replace(
            "\n", "\n\n", 1
        )
        assert not _fingerprint("n.py", noisy, settings, boilerplate).hashes, ex.label


def test_blank_release_submissions_pair_with_nobody(multichannel, anatomy):
    _, report = multichannel
    blank = {"ivy", "kim"}
    assert not [p for p in report.pairs if {p.a, p.b} & blank]
    notes = {s.student_id: s.notes for s in report.students}
    for sid in blank:
        assert any("pairs with nobody" in n for n in notes[sid]), notes[sid]
    _, staged, report01 = anatomy
    sam = id_of(staged, "sam")
    assert not [p for p in report01.pairs if sam in (p.a, p.b)]


def test_partial_copy_is_scored_per_exercise_with_matched_lines(multichannel):
    _, report = multichannel
    (pair,) = [p for p in report.pairs if {p.a, p.b} == {"dara", "hugo"}]
    assert set(pair.exercises) == {"corr2d", "corr2d_multi_in", "conv2d_batch"}
    for label, m in pair.exercises.items():
        assert m.score > 0.8, (label, m.score)
        code_a = report.fingerprints[(pair.a, label)].raw_code
        code_b = report.fingerprints[(pair.b, label)].raw_code
        assert m.lines_a and max(m.lines_a) <= code_a.count("\n") + 1
        assert m.lines_b and max(m.lines_b) <= code_b.count("\n") + 1
        # the signature and docstring (starter code) are not what matched
        assert 1 not in m.lines_a and 1 not in m.lines_b, label
    # hugo left one exercise blank: his overall share is higher than dara's
    shares = {pair.a: pair.shared_a, pair.b: pair.shared_b}
    assert shares["hugo"] > shares["dara"]


def test_csv_lists_every_sharing_pair_with_per_exercise_scores(multichannel):
    _, report = multichannel
    rows = list(csv.DictReader(io.StringIO(csv_text(report))))
    labels = ["corr2d", "corr2d_multi_in", "corr2d_multi_in_out", "conv2d_batch"]
    assert list(rows[0]) == [
        "rank",
        "student_a",
        "student_b",
        "score",
        "a_in_b",
        "b_in_a",
        *labels,
        "matched_lines",
    ]
    assert len(rows) == len(report.pairs)
    assert [float(r["score"]) for r in rows] == sorted(
        (float(r["score"]) for r in rows), reverse=True
    )
    hugo = next(r for r in rows if {r["student_a"], r["student_b"]} == {"dara", "hugo"})
    assert hugo["corr2d_multi_in_out"] == "0" and float(hugo["corr2d"]) > 0.8
    assert "corr2d: A " in hugo["matched_lines"] and " / B " in hugo["matched_lines"]


# ---------------------------------------------------------------- ids


def test_student_ids_are_intakes_unicode_and_colliding_names(anatomy):
    z, staged, report = anatomy
    assert [s.student_id for s in report.students] == sorted(staged.students)
    # every entry of the zip is a student of the report or a reason in it
    page = html_page(report)
    for entry in ANATOMY_CLASS:
        raw = entry.split("_", 1)[0] if entry.endswith(".ipynb") and "/" not in entry else None
        owners = [
            s
            for s, st in staged.students.items()
            if any(entry.split("/")[0] in o for o in st.origin)
        ]
        refused = [p for st in staged.students.values() for p in st.problems if entry in p]
        assert owners or refused, (entry, raw)
        for problem in refused:
            assert html.escape(f"intake: {problem}") in page
    lukasz, zoe = id_of(staged, "Łukasz Nowak"), id_of(staged, "Zoë")
    for sid in (lukasz, zoe):
        assert html.escape(sid) in page
    # the Unicode-named student's copy is found under intake's id
    copy = id_of(staged, "Ana María")
    assert report.pairs[0].score >= DEFAULT_THRESHOLD
    assert {lukasz, copy} in [{p.a, p.b} for p in report.flagged()]


# ---------------------------------------------------------------- the page


class Structure(HTMLParser):
    """Tags, attributes and text of an HTML fragment, adjacent text joined."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.events: list = []

    def handle_starttag(self, tag, attrs):
        self.events.append(("start", tag, tuple(sorted(attrs))))

    def handle_endtag(self, tag):
        self.events.append(("end", tag))

    def handle_data(self, data):
        if self.events and self.events[-1][0] == "text":
            self.events[-1] = ("text", self.events[-1][1] + data)
        else:
            self.events.append(("text", data))


def structure(fragment: str) -> list:
    parser = Structure()
    parser.feed(fragment)
    parser.close()
    return parser.events


def test_page_passes_an_html_sanitizer_unchanged(multichannel):
    """nh3 (ammonia) with its default allow-list, and the grader's own sanitizer (the one
    feedback.html goes through), keep every element, attribute and text."""
    import nh3

    from autograder.sanitize import clean_html

    _, report = multichannel
    body = html_body(report)
    assert "<details>" in body and "<mark>" in body and HOSTILE not in body
    assert structure(nh3.clean(body)) == structure(body)
    assert structure(clean_html(body)) == structure(body)
    # the head holds only our own stylesheet, the policy and the escaped assignment name
    page = html_page(report)
    head = page[: page.index("<body>")]
    assert "<script" not in page.lower() and "default-src 'none'" in head


def test_student_code_is_shown_as_text(multichannel):
    _, report = multichannel
    page = html_page(report)
    assert "<script" not in page and "<img" not in page and "<b>bold" not in page
    assert html.escape(HOSTILE) in page
    parsed = structure(html_body(report))
    texts = "".join(ev[1] for ev in parsed if ev[0] == "text")
    assert HOSTILE in texts and '<img src=x onerror="window.pwned=2">' in texts
    tags = {ev[1] for ev in parsed if ev[0] == "start"}
    assert tags <= {
        "h1", "h2", "h3", "p", "ul", "li", "strong", "em", "code", "blockquote", "table",
        "thead", "tbody", "tr", "th", "td", "details", "summary", "pre", "small", "mark", "footer",
    }, tags  # fmt: skip


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: install Debian's chromium")
def test_page_renders_in_chromium_and_runs_no_script(multichannel, tmp_path):
    from playwright.sync_api import sync_playwright

    _, report = multichannel
    page_file = tmp_path / "similarity.html"
    page_file.write_text(html_page(report), encoding="utf-8")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(page_file.as_uri())
            rank = next(
                i for i, pr in enumerate(report.flagged()) if {pr.a, pr.b} == set(HOSTILE_PAIR)
            )
            hostile = page.locator("details").nth(rank)
            hostile.locator("summary").click()
            assert HOSTILE in hostile.inner_text()
            assert page.evaluate("window.pwned") is None
            assert page.evaluate("document.querySelectorAll('script, img').length") == 0
            assert hostile.locator("mark").count() > 0
            assert "evidence for a person to weigh, not a verdict" in page.inner_text("body")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "hostile-pair.png"), full_page=True)
            if os.environ.get("UPDATE_SCREENSHOT") == "1":
                readme_screenshots(browser, tmp_path)
        finally:
            browser.close()


def readme_screenshots(browser, tmp: Path) -> None:
    """The README's pictures, of the class without the hostile pair: the top of the page, and
    the pair whose helper functions were reordered, opened."""
    course = write_multichannel_class(tmp / "readme")
    _, report = compare_folder(MULTICHANNEL, course, tmp / "readme-staging")
    page_file = tmp / "readme.html"
    page_file.write_text(html_page(report), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1250, "height": 900})
    page.goto(page_file.as_uri())
    README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(README_SCREENSHOT))
    pair = page.locator("details", has_text="chen and gina")
    pair.locator("summary").click()
    pair.screenshot(path=str(README_PAIR_SCREENSHOT))
    page.close()
    print(f"wrote {README_SCREENSHOT} and {README_PAIR_SCREENSHOT}")


# ---------------------------------------------------------------- command line


def run_cli(*args: str, cwd: Path, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_similarity_command_writes_the_same_report_every_time(anatomy, tmp_path):
    z, staged, report = anatomy
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run
        proc = run_cli("similarity", ANATOMY, str(z), "--out", str(out), cwd=tmp_path)
        assert proc.returncode == 0
        assert "students compared" in proc.stdout and "similarity.html" in proc.stdout
        outputs.append((out / "similarity.csv").read_text(encoding="utf-8"))
        assert (out / "similarity.html").is_file()
        assert not list(out.glob(".similarity-intake*")), "staging left behind"
    assert outputs[0] == outputs[1], "two runs on the same submissions differ"
    rows = list(csv.DictReader(io.StringIO(outputs[0])))
    # (in this process hash() has another seed: winnowing keeps other fingerprints of the
    # small overlaps, but the pairs above the cut-off are the same)
    assert {
        frozenset((r["student_a"], r["student_b"]))
        for r in rows
        if float(r["score"]) >= DEFAULT_THRESHOLD
    } == {frozenset((p.a, p.b)) for p in report.flagged()}


def test_similarity_command_names_a_missing_input(tmp_path, capsys):
    from autograder import cli, similarity

    args = cli.build_parser().parse_args(["similarity", ANATOMY, str(tmp_path / "nope.zip")])
    args.out = str(tmp_path / "out")
    assert similarity.run(args) == 2
    assert "nope.zip: no such file" in capsys.readouterr().err


# Long enough (over the minimum of own code) to be compared: a hand-rolled addition.
ADD_LOOP = '''def add(a, b):
    """Add two integers without the + operator, bit by bit."""
    carry = 0
    result = 0
    for bit in range(64):
        x, y = (a >> bit) & 1, (b >> bit) & 1
        total = x ^ y ^ carry
        carry = (x & y) | (carry & (x ^ y))
        result |= total << bit
    return result - (1 << 64) if result >> 63 else result
'''
ADD_LOOP_COPY = (
    ADD_LOOP.replace("carry", "c")
    .replace("result", "acc")
    .replace("    for bit", "    # every bit\n    for bit")
)


def test_grade_with_similarity_flag_writes_the_report(tmp_path):
    course = make_course(tmp_path / "course")
    subs = tmp_path / "subs"
    nbgrader_submission(subs, "alice", student_notebook(add=ADD_LOOP))
    nbgrader_submission(subs, "bob", student_notebook(add=ADD_LOOP_COPY))
    nbgrader_submission(subs, "carol", student_notebook())
    proc = run_cli(
        "grade", "ex", str(subs), "--course", str(course), "--no-progress", "--workers", "1",
        "--similarity", "--similarity-threshold", "60%",
        cwd=course,
        env=cli_env(AUTOGRADER_TEST_SCORER="grading_fixtures:fake_grade_notebook"),
    )  # fmt: skip
    assert proc.returncode == 0
    out = course / "autograded" / "ex"
    assert (out / "grades.csv").is_file()
    rows = list(csv.DictReader((out / "similarity.csv").open(encoding="utf-8")))
    assert [(r["student_a"], r["student_b"]) for r in rows] == [("alice", "bob")]
    assert float(rows[0]["score"]) > 0.9
    page = (out / "similarity.html").read_text(encoding="utf-8")
    assert "at least <strong>60%</strong>" in page
    assert "carol" in page  # too little code of her own: said so, not compared


def test_unreadable_notebook_is_a_reason_not_a_crash(tmp_path):
    from similarity_class import released_notebook, submission

    name, release_nb = released_notebook(MULTICHANNEL, tmp_path / "release")
    subs = tmp_path / "subs"
    for student, answers in (("ada", ADA), ("ben", ADA)):
        nbformat_write(submission(release_nb, answers, {}), subs / student / f"{name}.ipynb")
    (subs / "tom").mkdir()
    (subs / "tom" / f"{name}.ipynb").write_text('{"cells": [oops')
    _, report = compare_folder(MULTICHANNEL, subs, tmp_path / "staging")
    notes = {s.student_id: s.notes for s in report.students}
    assert any("not a notebook" in n for n in notes["tom"]), notes["tom"]
    assert [(p.a, p.b) for p in report.pairs] == [("ada", "ben")]
    assert "tom" in html_page(report)


def nbformat_write(nb, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
