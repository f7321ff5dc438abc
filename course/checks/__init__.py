"""Student-facing checks: compare a student's function with torch and explain any difference.

Every check takes the student's function as a callable, passes it plain data and compares plain
data, so the trusted grader can run the student's side in a sandbox. Topic modules add checks for
their assignment in their own module (``course.checks.conv``, ``course.checks.pooling`` ...);
this package re-exports the core helpers.
"""

from course.checks.core import (
    ALLOWED_ERRORS,
    CheckFailure,
    NotWrittenYet,
    as_plain_array,
    assert_close_number,
    assert_matches_torch,
    check_cases,
    compare_arrays,
    compare_call,
    describe_case,
    needs,
    sweep,
)

__all__ = [
    "ALLOWED_ERRORS",
    "CheckFailure",
    "NotWrittenYet",
    "as_plain_array",
    "assert_close_number",
    "assert_matches_torch",
    "check_cases",
    "compare_arrays",
    "compare_call",
    "describe_case",
    "needs",
    "sweep",
]
