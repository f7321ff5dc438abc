"""Hidden sweeps draw their cases from the grader's key without hypothesis's search engine
(issue 16), and still shrink a failing case with hypothesis.

What must hold: the same key gives the same cases (a regrade gives the same grade), another key
other cases; the cases are distinct and as many as asked; a wrong function still fails with a
minimal failing case and the same message on every run; a function that answers differently
the second time fails with the case as it failed; the public (derandomized) sweeps are unchanged.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import strategies as st

from course.checks import core, shapes


def _cases(key: bytes, max_examples: int = 120) -> list[tuple]:
    seen: list[tuple] = []

    def recording(h, w, kernel_size, stride=1, padding=0, dilation=1):
        seen.append((h, w, kernel_size, stride, padding, dilation))
        return shapes.reference_output_size(h, w, kernel_size, stride, padding, dilation)

    with contextlib.redirect_stdout(io.StringIO()), core.hidden_cases(key):
        shapes.sweep_output_size(recording, max_examples=max_examples)
    return seen[:max_examples]  # the sweep's cases, then the fixed invalid ones


def test_the_same_key_draws_the_same_distinct_cases_and_another_key_others():
    first, again, other = _cases(b"key one"), _cases(b"key one"), _cases(b"key two")
    print("first cases:", first[:5])
    assert first == again
    assert len(set(first)) == len(first) == 120
    assert len(set(first) & set(other)) <= 12, "another submission draws other cases"


def test_hidden_cases_cover_what_the_strategy_can_draw():
    cases = _cases(b"coverage", max_examples=400)
    paddings = {c[4] for c in cases}
    assert {"same", "valid"} <= paddings and any(isinstance(p, tuple) for p in paddings)
    assert any(isinstance(c[2], tuple) for c in cases) and any(c[2] == 1 for c in cases)
    assert {c[0] for c in cases} >= {1, 16}, "both bounds of the input height"
    invalid = 0
    for h, w, k, s, p, d in cases:
        try:
            shapes.reference_output_size(h, w, k, s, p, d)
        except RuntimeError:
            invalid += 1
    print(f"{invalid} of {len(cases)} cases are ones where torch raises")
    assert 40 <= invalid <= 300


def ignores_dilation(h, w, kernel_size, stride=1, padding=0, dilation=1):
    return shapes.reference_output_size(h, w, kernel_size, stride, padding, 1)


def wrong_for_tall_inputs(h, w, kernel_size, stride=1, padding=0, dilation=1):
    h_out, w_out = shapes.reference_output_size(h, w, kernel_size, stride, padding, dilation)
    return (h_out + 1, w_out) if h >= 13 else (h_out, w_out)


@pytest.mark.parametrize("fn", [ignores_dilation, wrong_for_tall_inputs], ids=lambda f: f.__name__)
def test_a_wrong_function_fails_with_a_minimal_case_and_the_same_message_every_run(fn):
    messages = []
    for _ in range(2):
        with core.hidden_cases(b"a key"), pytest.raises(core.CheckFailure) as failure:
            shapes.sweep_output_size(fn)
        messages.append(str(failure.value))
    print(messages[0])
    assert messages[0] == messages[1]
    assert "minimal failing case, shrunk by hypothesis" in messages[0]
    if fn is wrong_for_tall_inputs:  # shrunk to the boundary of the bug, the rest minimal
        assert "h=13, w=1, kernel_size=1, stride=1, padding=0, dilation=1" in messages[0]


def test_shrinking_stays_within_its_budget():
    calls = [0]

    def always_wrong(a):
        calls[0] += 1
        return a + 1

    strategy = st.fixed_dictionaries({"a": st.integers(-(10**9), 10**9)})
    with core.hidden_cases(b"k"), pytest.raises(core.CheckFailure, match="minimal failing"):
        core.sweep(always_wrong, lambda a: a, strategy, max_examples=50)
    print("calls:", calls[0])
    assert calls[0] <= 1 + core.SHRINK_BUDGET + 1


def test_a_function_right_only_when_asked_again_fails_with_the_case_it_failed():
    calls = [0]

    def wrong_on_call_5_only(h, w, kernel_size, stride=1, padding=0, dilation=1):
        calls[0] += 1
        if calls[0] == 5:
            return (-1, -1)
        return shapes.reference_output_size(h, w, kernel_size, stride, padding, dilation)

    with core.hidden_cases(b"k"), pytest.raises(core.CheckFailure) as failure:
        shapes.sweep_output_size(wrong_on_call_5_only, max_examples=50)
    print(failure.value)
    assert "you return (h_out, w_out) = (-1, -1)" in str(failure.value)
    assert "minimal failing case" not in str(failure.value)


def test_a_strategy_with_few_distinct_cases_gives_each_once():
    seen = []

    def spy(a):
        seen.append(a)
        return a

    strategy = st.fixed_dictionaries({"a": st.integers(0, 9)})
    with contextlib.redirect_stdout(io.StringIO()) as printed, core.hidden_cases(b"k"):
        count = core.sweep(spy, lambda a: a, strategy, max_examples=100)
    assert sorted(seen) == list(range(10)) and count == 10
    assert "on 10 random case(s) (hidden cases)" in printed.getvalue()


def test_drawn_cases_replay_from_their_choices():
    # what shrinking starts from: hypothesis replays the choices and must get the case back
    from hypothesis.control import BuildContext
    from hypothesis.internal.conjecture.data import ConjectureData

    strategy = shapes.output_size_strategy()
    for case, choices in core.drawn_cases(strategy, 20, seed=12345):
        data = ConjectureData.for_choices(choices)
        with BuildContext(data, wrapped_test=None):
            assert data.draw(strategy) == case


def test_public_sweeps_still_draw_hypothesiss_derandomized_cases():
    seen = []

    def spy(a):
        seen.append(a)
        return a

    strategy = st.fixed_dictionaries({"a": st.integers(-999, 999)})
    with contextlib.redirect_stdout(io.StringIO()):
        core.sweep(spy, lambda a: a, strategy, max_examples=30)
    assert seen[0] == 0, "hypothesis's engine tries the simplest case first"
    assert len(seen) == 30
