"""A sweep of a grader proxy calls the student in a few round trips, with the same verdicts
(issue 16): the same cases in the same order, the same count, the same minimal failing case and
message as one call per case, and a function that answers differently when asked again fails.

The proxies here call plain local functions (what the sandbox would run); the real round trip is
covered by the trust and demo-class tests.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from autograder import proxy
from course.checks import core, shapes


def _proxy(fn, batched: bool, log: list):
    def invoke(name, args, kwargs):
        log.append(("one", proxy.decode(kwargs)))
        return fn(*proxy.decode(args), **proxy.decode(kwargs))

    def invoke_each(name, calls):
        log.append(("batch", len(calls)))
        outcomes = []
        for args, kwargs in calls:
            try:
                outcomes.append((True, fn(*proxy.decode(args), **proxy.decode(kwargs))))
            except Exception as error:  # noqa: BLE001
                outcomes.append((False, error))
        return outcomes

    return proxy.StudentFunction(fn.__name__, invoke, "test", invoke_each if batched else None)


def _sweep(fn, batched: bool, key: bytes = b"k"):
    log: list = []
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), core.hidden_cases(key):
        try:
            shapes.sweep_output_size(_proxy(fn, batched, log), max_examples=120)
            outcome = "passed"
        except core.CheckFailure as failure:
            outcome = f"failed: {failure}"
        except core.NotWrittenYet as unfinished:
            outcome = f"unfinished: {unfinished}"
    return outcome, printed.getvalue(), log


def correct(h, w, kernel_size, stride=1, padding=0, dilation=1):
    return shapes.reference_output_size(h, w, kernel_size, stride, padding, dilation)


def ignores_dilation(h, w, kernel_size, stride=1, padding=0, dilation=1):
    return shapes.reference_output_size(h, w, kernel_size, stride, padding, 1)


def unwritten(h, w, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


@pytest.mark.parametrize("fn", [correct, ignores_dilation, unwritten], ids=lambda f: f.__name__)
def test_batched_and_one_call_per_case_give_the_same_verdict_and_message(fn):
    batched, batched_print, batched_log = _sweep(fn, batched=True)
    single, single_print, _ = _sweep(fn, batched=False)
    print(fn.__name__, batched[:200])
    assert batched == single
    assert batched_print == single_print
    if fn is correct:
        assert batched == "passed"
        assert ("batch", 120 - core.LIVE_CASES) in batched_log  # the rest in one batch
    else:
        assert batched != "passed"


def test_the_batch_holds_the_cases_one_call_per_case_would_get_in_that_order():
    seen: dict[bool, list] = {True: [], False: []}
    for batched in (True, False):

        def recording(h, w, kernel_size, stride=1, padding=0, dilation=1, _into=seen[batched]):
            _into.append((h, w, kernel_size, stride, padding, dilation))
            return correct(h, w, kernel_size, stride, padding, dilation)

        _sweep(recording, batched)
    assert seen[True] == seen[False] and len(seen[True]) > 100


def test_a_function_that_goes_wrong_only_in_the_batch_still_fails():
    calls = [0]

    def wrong_on_call_50_only(h, w, kernel_size, stride=1, padding=0, dilation=1):
        calls[0] += 1
        if calls[0] == 50:
            return (-1, -1)
        return correct(h, w, kernel_size, stride, padding, dilation)

    outcome, _, log = _sweep(wrong_on_call_50_only, batched=True)
    assert outcome.startswith("failed: conv2d_output_size fails for"), outcome
    assert "minimal failing case" not in outcome  # the batch's own case: the rerun agreed
    assert any(kind == "batch" for kind, _ in log) and any(kind == "one" for kind, _ in log)
