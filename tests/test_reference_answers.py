"""torch's answers kept by the trusted grader (course.checks.core.reference_answers, issue 16).

The store may only save work: the same case gets the same answer (or the same error) as a fresh
call, 1, 1.0 and True are different cases, a reference not marked pure is always called, and
outside the grader's block nothing is kept.
"""

from __future__ import annotations

import contextlib

import pytest

from course.checks import core, shapes


def _counting(fn):
    calls = []

    def reference(**case):
        calls.append(case)
        return fn(**case)

    reference.__qualname__ = f"counting_{fn.__name__}"
    return reference, calls


def test_a_pure_reference_answers_each_case_once_with_the_same_value():
    reference, calls = _counting(shapes.reference_output_size)
    reference = core.pure_reference(reference)
    store: dict = {}
    case = {"h": 7, "w": 7, "kernel_size": 3, "stride": 2}
    with core.reference_answers(store):
        first = core.reference_call(reference, case)()
        second = core.reference_call(reference, dict(case))()
    assert first == second == shapes.reference_output_size(**case) == (3, 3)
    assert len(calls) == 1


def test_the_error_torch_raises_is_kept_and_raised_again():
    reference, calls = _counting(shapes.reference_output_size)
    reference = core.pure_reference(reference)
    case = {"h": 2, "w": 2, "kernel_size": 3}  # kernel larger than the input: torch raises
    with core.reference_answers({}):
        answers = [core.run_reference(core.reference_call(reference, case)) for _ in range(3)]
    assert len(calls) == 1
    for value, error in answers:
        assert value is None and isinstance(error, RuntimeError)
    assert str(answers[0][1]) == str(answers[2][1])


def test_one_one_point_oh_and_true_are_different_cases():
    seen = []

    @core.pure_reference
    def echo(x):
        seen.append(x)
        return type(x).__name__

    with core.reference_answers({}):
        names = [core.reference_call(echo, {"x": x})() for x in (1, 1.0, True, (1,), [1])]
    assert names == ["int", "float", "bool", "tuple", "list"]
    assert len(seen) == 5


@pytest.mark.parametrize("marked, inside", [(False, True), (True, False)])
def test_nothing_is_kept_unless_marked_and_inside_the_graders_block(marked, inside):
    reference, calls = _counting(shapes.reference_param_count)
    if marked:
        reference = core.pure_reference(reference)
    case = {"in_channels": 3, "out_channels": 2, "kernel_size": 3}
    store: dict = {}
    for _ in range(2):
        if inside:
            with core.reference_answers(store):
                assert core.reference_call(reference, case)() == 56
        else:
            assert core.reference_call(reference, case)() == 56
    assert len(calls) == 2 and not store


def test_arrays_are_never_keys():
    import numpy as np

    @core.pure_reference
    def total(x):
        return float(np.sum(x))

    store: dict = {}
    with core.reference_answers(store):
        assert core.reference_call(total, {"x": np.ones(3)})() == 3.0
        assert core.reference_call(total, {"x": np.ones(4)})() == 4.0
    assert not store


def test_a_sweep_gives_the_same_verdicts_with_and_without_the_store():
    def wrong_for_dilation(h, w, kernel_size, stride=1, padding=0, dilation=1):
        return shapes.reference_output_size(h, w, kernel_size, stride, padding, 1)

    messages = []
    store: dict = {}
    for use_store in (False, True, True):
        with core.hidden_cases(b"a key"):
            block = core.reference_answers(store) if use_store else contextlib.nullcontext()
            with block, pytest.raises(core.CheckFailure) as failure:
                shapes.sweep_output_size(wrong_for_dilation, max_examples=60)
        messages.append(str(failure.value))
    assert messages[0] == messages[1] == messages[2]
    assert store
