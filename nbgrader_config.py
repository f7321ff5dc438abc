"""nbgrader configuration for the Conv2d course (one file, at the course root).

Used by `python -m autograder release`, by `nbgrader` commands run from this folder and by
formgrader. The trusted grader (`python -m autograder grade`) reads the same file for the
course layout and the stderr pattern.
"""

import os

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file

COURSE_ROOT = os.path.dirname(os.path.abspath(__file__))

c.CourseDirectory.root = COURSE_ROOT
c.CourseDirectory.course_id = "conv2d"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE_ROOT, "gradebook.db")

# What students see in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# torch and NumPy write warnings to stderr; nbgrader zeroes a test cell with any stderr, so a
# passing test that merely triggered a warning would lose its points. Only warning lines match.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(UserWarning|DeprecationWarning|FutureWarning|RuntimeWarning|PendingDeprecationWarning)"
)

# Every cell gets a time limit; a hung student cell must not hang the class.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# The stock tag 'skip-execution' lets a student skip a test cell by tagging it. Only an
# instructor who reads this file knows the tag that skips a cell.
c.Execute.skip_cells_with_tag = "instructor-skip-cell-4f1c9a"

# A deleted test cell comes back from the source notebook instead of silently vanishing.
c.OverwriteCells.add_missing_cells = True

# A student cell that prints megabytes must not bloat the gradebook or feedback.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# Run folders and caches that executing a notebook leaves beside it never belong in a release.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "runs",
    "tb_check_logs",
    ".hypothesis",
]
