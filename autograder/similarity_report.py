"""similarity.csv and similarity.html for an `autograder.similarity.Report`.

The page is one self-contained file: no script, no network, a Content-Security-Policy that
forbids both, and a body made only of elements and attributes that an HTML sanitizer keeps with
its default settings (nh3/ammonia): no class, id or style attribute; the look comes from element
selectors in the head's stylesheet. Every piece of student text (code, ids, file names, notes) is
escaped, so it is shown as text and never read as markup.
"""

from __future__ import annotations

import csv
import html
import io
import os
from pathlib import Path

from autograder.sanitize import clean_html
from autograder.similarity import Pair, Report, compare, given_lines

BANDS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
CLOSEST_BELOW = 10  # pairs below the cut-off still listed, to help choose one

CAUTION = (
    "<p><strong>Similarity is evidence for a person to weigh, not a verdict.</strong> A high "
    "score says that two students' solution cells hold the same code once names, comments, "
    "layout, order of functions and the starter code are set aside. It does not say who copied "
    "from whom, or that anyone did: students who worked together as allowed, followed the same "
    "worked example or wrote the same short idiom score high too, and a copy rewritten by hand "
    "can score low. Read the matched code side by side, weigh what else you know, and talk "
    "with the students before you conclude anything.</p>"
)

CSS = """
body{font-family:system-ui,sans-serif;max-width:90em;margin:1.5em auto;padding:0 1em;color:#222}
blockquote{background:#fff7d6;border-left:4px solid #e0b000;margin:1em 0;padding:.4em 1em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top;text-align:left}
th{background:#f3f3f3}
td strong{color:#a31515}
details{border:1px solid #ccc;border-radius:4px;margin:.6em 0;padding:.3em .8em}
summary{cursor:pointer;font-weight:bold}
details table{width:100%;table-layout:fixed}
details td{width:50%}
pre{margin:0;white-space:pre-wrap;word-break:break-all;font-size:.85em;line-height:1.35}
pre small{color:#999;user-select:none}
mark{background:#ffd6a5}
h3{font-size:1em;margin:1em 0 .2em}
footer{color:#666;font-size:.85em;margin-top:2em}
"""

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'"
)


def e(text) -> str:
    return html.escape(str(text), quote=True)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def ranges(lines: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    out: list[str] = []
    start = prev = None
    for n in lines:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(f"{start}-{prev}" if prev != start else f"{start}")
        start = prev = n
    if start is not None:
        out.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(out)


def matched_lines(pair: Pair) -> str:
    return "; ".join(
        f"{label}: A {ranges(m.lines_a)} / B {ranges(m.lines_b)}"
        for label, m in pair.exercises.items()
    )


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ---------------------------------------------------------------- CSV


def csv_text(report: Report) -> str:
    """One row per pair that shares any code, best first (pairs not listed score 0)."""
    labels = [ex.label for ex in report.exercises]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["rank", "student_a", "student_b", "score", "a_in_b", "b_in_a", *labels, "matched_lines"]
    )
    for rank, p in enumerate(report.pairs, 1):
        per_ex = [f"{p.exercises[lab].score:.3f}" if lab in p.exercises else "0" for lab in labels]
        w.writerow(
            [
                rank,
                p.a,
                p.b,
                f"{p.score:.3f}",
                f"{p.shared_a:.3f}",
                f"{p.shared_b:.3f}",
                *per_ex,
                matched_lines(p),
            ]
        )
    return buf.getvalue()


def write_csv(report: Report, path: Path) -> None:
    _atomic_write(path, csv_text(report))


# ---------------------------------------------------------------- HTML pieces


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def highlighted_code(code: str, slices, given: set[int] = frozenset()) -> str:
    """The code as escaped text, numbered lines, matching regions in <mark> (except on the
    `given` lines: the starter code)."""
    marked = bytearray(len(code))
    if len(slices) and len(slices[0]):
        for s, t in zip(slices[0].tolist(), slices[1].tolist(), strict=True):
            s, t = max(0, int(s)), min(len(code), int(t))
            while 0 < s < t and _word(code[s - 1]) and _word(code[s]):
                s -= 1  # copydetect's offsets may cut a name: mark whole words
            while s < t < len(code) and _word(code[t - 1]) and _word(code[t]):
                t += 1
            marked[s:t] = b"\x01" * max(0, t - s)
    lines = code.split("\n")
    width = len(str(len(lines)))
    out, pos = [], 0
    for number, line in enumerate(lines, 1):
        parts = [f"<small>{number:>{width}} </small>"]
        i = 0
        while i < len(line):
            flag = marked[pos + i] and number not in given
            j = i
            while j < len(line) and (marked[pos + j] and number not in given) == flag:
                j += 1
            text = e(line[i:j])
            parts.append(f"<mark>{text}</mark>" if flag else text)
            i = j
        out.append("".join(parts))
        pos += len(line) + 1
    return "<pre>" + "\n".join(out) + "</pre>"


def _score_cell(x: float, threshold: float) -> str:
    return f"<td><strong>{pct(x)}</strong></td>" if x >= threshold else f"<td>{pct(x)}</td>"


def pairs_table(report: Report, pairs: list[Pair], first_rank: int) -> str:
    th = report.settings.threshold
    head = "".join(f"<th>{e(ex.label)}</th>" for ex in report.exercises)
    rows = []
    for rank, p in enumerate(pairs, first_rank):
        per_ex = "".join(
            _score_cell(p.exercises[ex.label].score, th)
            if ex.label in p.exercises
            else "<td>-</td>"
            for ex in report.exercises
        )
        rows.append(
            f"<tr><td>{rank}</td><td>{e(p.a)}</td><td>{e(p.b)}</td>{_score_cell(p.score, th)}"
            f"<td>{pct(p.shared_a)}</td><td>{pct(p.shared_b)}</td>{per_ex}</tr>"
        )
    return (
        "<table><thead><tr><th>#</th><th>student A</th><th>student B</th><th>overall</th>"
        f"<th>of A's code in B's</th><th>of B's code in A's</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def pair_details(report: Report, pair: Pair, rank: int) -> str:
    """One pair, per exercise: both cells side by side, matching regions marked."""
    parts = [
        f"<details><summary>#{rank} {e(pair.a)} and {e(pair.b)}: {pct(pair.score)} overall "
        f"({pct(pair.shared_a)} of {e(pair.a)}'s code, {pct(pair.shared_b)} of "
        f"{e(pair.b)}'s)</summary>"
    ]
    quiet = []
    for ex in report.exercises:
        m = pair.exercises.get(ex.label)
        if m is None:
            quiet.append(ex.label)
            continue
        fa = report.fingerprints[(pair.a, ex.label)]
        fb = report.fingerprints[(pair.b, ex.label)]
        _, _, sa, sb = compare(fa, fb)
        parts.append(
            f"<h3>{e(ex.label)}: {pct(m.score)} (lines {e(ranges(m.lines_a))} of {e(pair.a)}, "
            f"lines {e(ranges(m.lines_b))} of {e(pair.b)})</h3>"
            f"<table><thead><tr><th>{e(pair.a)}</th><th>{e(pair.b)}</th></tr></thead><tbody><tr>"
            f"<td>{highlighted_code(fa.raw_code, sa, given_lines(fa.raw_code, ex.starter))}</td>"
            f"<td>{highlighted_code(fb.raw_code, sb, given_lines(fb.raw_code, ex.starter))}</td>"
            "</tr></tbody></table>"
        )
    if quiet:
        parts.append(f"<p>No shared code in: {e(', '.join(quiet))}.</p>")
    parts.append("</details>")
    return "".join(parts)


def distribution(report: Report) -> str:
    """How many pairs score in each band: where the cut-off falls in this class."""
    n = len(report.compared())
    all_pairs = n * (n - 1) // 2
    counts = [0] * len(BANDS)
    for p in report.pairs:
        counts[next(i for i, lo in enumerate(BANDS) if p.score >= lo)] += 1
    tops = (1.0, *BANDS[:-2])
    heads = [f"{100 * lo:.0f}-{pct(hi)}" for lo, hi in zip(BANDS[:-1], tops, strict=True)]
    heads += [f"under {pct(BANDS[-2])}", "no shared code"]
    cells = [*counts, all_pairs - len(report.pairs)]
    return (
        "<table><thead><tr><th>overall score</th>"
        + "".join(f"<th>{h}</th>" for h in heads)
        + "</tr></thead><tbody><tr><th>pairs</th>"
        + "".join(f"<td>{c}</td>" for c in cells)
        + "</tr></tbody></table>"
    )


def settings_list(report: Report) -> str:
    import copydetect

    s = report.settings
    compared = report.compared()
    not_compared = len(report.students) - len(compared)
    exercises = ", ".join(ex.label for ex in report.exercises)
    dropped = sum(report.common_dropped.values())
    items = [
        f"Cut-off: pairs with an overall score of at least <strong>{pct(s.threshold)}</strong> "
        "are listed and shown side by side (your choice: <code>--threshold</code>; the default, "
        "50%, keeps pairs where half of what the two wrote is the same code).",
        f"{len(compared)} students compared, {len(compared) * (len(compared) - 1) // 2} pairs; "
        f"{not_compared} not compared (see the end of the page).",
        f"Exercises (solution cells, by grade id): {e(exercises)}. Only the students' code in "
        "these cells is compared.",
        "Starter code removed: every code cell of the release (signatures, docstrings, stubs "
        "such as <code># YOUR CODE HERE</code> and <code>raise NotImplementedError()</code>, "
        "given helpers, visible tests) is never counted as shared.",
        f"Common code removed: a passage found in more than {report.common} students' code is "
        f"the idiom of the exercise, not evidence ({dropped} such fingerprints ignored; "
        "<code>--common N</code> changes this, e.g. when a whole group may share one leaked "
        "solution).",
        f"Method: winnowing (MOSS) by copydetect {e(copydetect.__version__)}: the code is "
        "tokenized with every name, string and comment normalized away, so renaming, new "
        "comments, blank lines, reformatting and reordered functions do not hide a copy; "
        f"fingerprints are hashes of {s.noise} normalized characters, and every match of "
        f"{s.guarantee} or more is found.",
        "Score of a pair (per exercise, and overall over all exercises): the part of the two "
        "students' code that lies in matching regions. <em>Of A's code in B's</em>: the part of "
        "A's code found in B's.",
    ]
    return "<ul>" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"


def not_compared(report: Report) -> str:
    rows = [
        f"<li>{e(st.student_id)}: {e('; '.join(st.notes))}</li>"
        for st in report.students
        if st.notes
    ]
    rows += [f"<li>intake: {e(p)}</li>" for p in report.intake_problems]
    if not rows:
        return ""
    return "<h2>Not compared, and notes</h2><ul>" + "".join(rows) + "</ul>"


def html_body(report: Report) -> str:
    """The page's body: only elements and attributes a default sanitizer keeps."""
    s = report.settings
    flagged = report.flagged()
    shown = flagged[: s.max_pairs]
    parts = [
        f"<h1>Similarity report: {e(report.assignment)}</h1>",
        f"<blockquote>{CAUTION}</blockquote>",
        settings_list(report),
        "<h2>All pairs by score</h2>",
        distribution(report),
        f"<h2>Pairs at or above the cut-off of {pct(s.threshold)} ({len(flagged)})</h2>",
    ]
    if flagged:
        parts.append(pairs_table(report, flagged, 1))
    else:
        parts.append("<p>No pair reaches the cut-off.</p>")
    below = report.pairs[len(flagged) : len(flagged) + CLOSEST_BELOW]
    if below:
        parts.append(f"<h2>The closest pairs below the cut-off ({len(below)})</h2>")
        parts.append(pairs_table(report, below, len(flagged) + 1))
    if shown:
        more = (
            f" (the first {len(shown)} of {len(flagged)}; <code>--max-pairs</code> shows more; "
            "similarity.csv lists every pair)"
            if len(shown) < len(flagged)
            else ""
        )
        parts.append(f"<h2>Side by side{more}</h2>")
        parts.append(
            "<p>Click a pair to open it. Marked: the regions of each cell that match the other "
            "student's (after names are normalized, so the matching text may use other names).</p>"
        )
        parts += [pair_details(report, p, rank) for rank, p in enumerate(shown, 1)]
    parts.append(not_compared(report))
    parts.append(
        "<footer>Written by <code>python -m autograder similarity</code>. similarity.csv beside "
        "this page lists every pair that shares any code, with its scores and matched lines."
        "</footer>"
    )
    return "".join(parts)


def html_page(report: Report) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        f"<title>Similarity: {e(report.assignment)}</title><style>{CSS}</style></head>"
        f"<body>{clean_html(html_body(report))}</body></html>"
    )


def write_html(report: Report, path: Path) -> None:
    _atomic_write(path, html_page(report))


# ---------------------------------------------------------------- console


def print_summary(report: Report, out: Path, top: int = 10) -> None:
    compared = report.compared()
    n = len(compared)
    flagged = report.flagged()
    print(
        f"{report.assignment}: {n} students compared ({n * (n - 1) // 2} pairs) on "
        f"{len(report.exercises)} exercises; {len(report.pairs)} pairs share code, "
        f"{len(flagged)} at or above {pct(report.settings.threshold)}"
    )
    if report.pairs:
        width = max(9, *(len(p.a) for p in report.pairs[:top]))
        print(f"  {'student A':<{width}}  {'student B':<{width}}  overall")
        for p in report.pairs[:top]:
            print(f"  {p.a:<{width}}  {p.b:<{width}}  {pct(p.score):>7}")
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    print(f"({timing})")
    print(f"\nreport: {out / 'similarity.html'}\ntable:  {out / 'similarity.csv'}")
