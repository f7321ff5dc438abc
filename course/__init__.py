"""Helpers for the Conv2d course notebooks: data, plots, TensorBoard and student-facing checks.

Nothing in this package is a solution to an exercise: checks compare a student's function with
torch, they never compute the answer in the student's place.

Imported in a Jupyter kernel, the package shows an unfinished exercise (a function whose body is
still ``raise NotImplementedError()``) as two lines naming the function instead of a traceback
(see :func:`course.checks.core.install_unfinished_message`).
"""

from course.checks.core import install_unfinished_message

install_unfinished_message()
