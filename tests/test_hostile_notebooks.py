"""Issue 10, reading a notebook: whatever a student's file holds is the student's failure.

Each case of the issue is a test of the read boundary (``validate_submission``): the submission is
``ungradable: <reason naming the file>`` or is read into a valid nbformat 4.5 notebook. The
property test mutates a valid notebook's JSON at random. Fast: no sandbox, no CLI.
"""

from __future__ import annotations

import copy
import json
import random

import nbformat
import pytest
from grading_fixtures import make_course, make_zip, nb_text, source_notebook, student_notebook
from hostile_helpers import graded_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.results import Ungradable
from autograder.score import import_lines
from autograder.validate import validate_submission

VALID = json.loads(nb_text(student_notebook()))


def validate(tmp_path, text: str | bytes, name: str = "ex.ipynb"):
    folder = tmp_path / "student"
    folder.mkdir(exist_ok=True)
    path = folder / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return validate_submission(folder, {"ex": source_notebook()})


def with_cell(cell: dict) -> str:
    data = copy.deepcopy(VALID)
    data["cells"].insert(2, cell)
    return json.dumps(data)


def test_metadata_nested_100000_deep_is_ungradable_naming_the_file(tmp_path):
    text = nb_text(student_notebook())
    deep = '"metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", "
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a notebook \(JSON nested"):
        validate(tmp_path, text.replace('"metadata": {', deep, 1))


def test_metadata_nested_deeper_than_nbformat_needs_is_ungradable(tmp_path):
    data = copy.deepcopy(VALID)
    data["metadata"]["x"] = json.loads("[" * 500 + "]" * 500)
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a notebook \(JSON nested more"):
        validate(tmp_path, json.dumps(data))


def test_malformed_attachments_are_dropped_and_the_notebook_graded(tmp_path):
    cell = {"cell_type": "markdown", "metadata": {}, "source": "![x](attachment:x.png)"}
    for bad in ("not a dict", {"x.png": "nope"}, {"x.png": {"image/png": 'AAAA"onerror="'}}):
        (v,) = validate(tmp_path, with_cell({**cell, "attachments": bad})).notebooks
        nbformat.validate(v.student_nb)
        assert all("attachments" not in c for c in v.student_nb.cells)


def test_code_cell_nested_100000_deep_and_minus_chain_are_cells_not_our_errors(tmp_path):
    nested = "x = a" + "[0]" * 100_000
    minus = "y = " + "-" * 100_000 + "1"
    for source in (nested, minus, "z = 1\x00", "w = 1\n" * 300_000):
        assert import_lines(source) == []  # the grader's own parse of student code never fails
        (v,) = validate(tmp_path, with_cell(nbformat.v4.new_code_cell(source))).notebooks
        assert any(c.source == source for c in v.student_nb.cells)


def test_schema_errors_are_ungradable_or_repaired(tmp_path):
    bad_type = with_cell({"cell_type": "widget", "source": ""})
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a valid notebook .*cell_type"):
        validate(tmp_path, bad_type)
    bad_source = with_cell({"cell_type": "code", "source": 42})
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a valid notebook .*not text"):
        validate(tmp_path, bad_source)
    odd = {
        "cell_type": "code",
        "source": ["a = '\ud800'\n", 3],
        "metadata": {"tags": [1, "a,b", "ok", "ok"], "collapsed": "yes", "jupyter": []},
        "outputs": "not a list",
        "execution_count": "x",
        "id": "bad id!",
    }
    (v,) = validate(tmp_path, with_cell(odd)).notebooks
    nbformat.validate(v.student_nb)
    nbformat.writes(v.student_nb)  # no lone surrogate left to break UTF-8
    cell = v.student_nb.cells[2]
    assert cell.metadata == {"tags": ["ok"]} and cell.outputs == []


def test_nbformat_upgrade_failure_is_ungradable_and_v3_is_read(tmp_path):
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a valid notebook .*nbformat 3"):
        validate(tmp_path, json.dumps({"nbformat": 3, "cells": [], "worksheets": "x"}))
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "cells": [],
        "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "outputs": []}]}],
    }
    (v,) = validate(tmp_path, json.dumps(v3)).notebooks
    assert any(c.source == "x = 1" for c in v.student_nb.cells)


def test_memory_bomb_json_is_refused_before_it_is_built(tmp_path):
    bomb = b'{"cells": [], "x": [' + b"[]," * 6_000_000 + b"[]]}"
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a notebook this grader reads"):
        validate(tmp_path, bomb)
    with pytest.raises(Ungradable, match=r"ex\.ipynb is not a notebook \(unreadable JSON"):
        validate(tmp_path, '{"cells": [], "n": ' + "9" * 5000 + "}")


# ---------------------------------------------------------------- property: random mutations

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def mutate(data, seed: int, replacement, how: str):
    """One random change of the notebook JSON: replace, delete or wrap the value at a path."""
    data = copy.deepcopy(data)
    paths = [p for p in _paths(data) if p]
    path = random.Random(seed).choice(paths)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if how == "delete":
        del parent[path[-1]]
    elif how == "wrap":
        parent[path[-1]] = [parent[path[-1]]]
    else:
        parent[path[-1]] = replacement
    return data


MUTATIONS = st.lists(
    st.tuples(st.integers(0, 10**6), JSON, st.sampled_from(["replace", "delete", "wrap"])),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutations=MUTATIONS)
def test_property_random_mutations_are_read_or_ungradable_naming_the_file(tmp_path, mutations):
    print(f"mutations={mutations!r}")
    data = VALID
    for seed, replacement, how in mutations:
        data = mutate(data, seed, replacement, how)
    try:
        val = validate(tmp_path, json.dumps(data))
    except Ungradable as exc:
        assert "ex.ipynb" in str(exc)
        return
    for v in val.notebooks:
        if v.student_nb is not None:
            nbformat.validate(v.student_nb)
            nbformat.writes(v.student_nb)
        else:
            assert "ex.ipynb" in v.problem


@settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(classes=st.lists(MUTATIONS, min_size=4, max_size=4))
def test_property_a_class_of_mutated_notebooks_exits_0_with_one_row_each(tmp_path_factory, classes):
    print(f"classes={classes!r}")
    tmp = tmp_path_factory.mktemp("mut")
    entries = {}
    for i, mutations in enumerate(classes):
        data = VALID
        for seed, replacement, how in mutations:
            data = mutate(data, seed, replacement, how)
        entries[f"s{i}/ex.ipynb"] = json.dumps(data)
    rows, _ = graded_rows(make_course(tmp / "course"), make_zip(tmp / "c.zip", entries))
    assert sorted(rows) == [f"s{i}" for i in range(len(classes))]
    for row in rows.values():
        assert row["status"] in ("graded", "ungradable"), row
        assert row["status"] == "graded" or "ex.ipynb" in row["reason"]
