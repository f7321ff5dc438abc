"""The zygote imports what an assignment's notebooks import before their first sandbox forks
(issue 16): torchvision is no longer part of every worker's start, yet a notebook that imports
it finds it loaded. Only speed depends on this: a bad name is ignored, the zygote keeps working.
"""

from __future__ import annotations

import nbformat

from autograder.execute import Sandbox
from autograder.sandbox import Limits, Zygote
from autograder.score import imported_modules

LIMITS = Limits(cell_timeout=30, notebook_timeout=120, memory=2 * 2**30, output=64 * 1024)
PROBE = "import sys; print(sorted(m for m in {names!r} if m in sys.modules))"


def _loaded(sandbox: Sandbox, names: tuple[str, ...]) -> str:
    run = sandbox.run_cell(PROBE.format(names=names))
    assert run.status == "ok", run.describe()
    return "".join(o.get("text", "") for o in run.outputs).strip()


def test_a_notebooks_modules_are_loaded_in_its_sandboxes_and_only_then(tmp_path):
    Zygote.shutdown_all()  # a zygote of its own: nothing preloaded by an earlier test
    names = ("torchvision", "no_such_module_anywhere")
    with Sandbox(tmp_path, LIMITS) as plain:
        assert _loaded(plain, names) == "[]", "torchvision is not part of the zygote's start"
    asked = ["torchvision", "no_such_module_anywhere", "os; import this", "../evil", ""]
    with Sandbox(tmp_path, LIMITS, preload=asked) as first:
        assert first.preload_seconds > 0
        assert _loaded(first, names) == "['torchvision']"
    with Sandbox(tmp_path, LIMITS, preload=asked) as second:
        assert second.preload_seconds == 0, "imported once per zygote"
        assert _loaded(second, names) == "['torchvision']"
    with Sandbox(tmp_path, LIMITS, numpy_only=True, preload=asked) as numpy_only:
        assert numpy_only.preload_seconds == 0
        assert _loaded(numpy_only, ("torchvision", "torch")) == "[]"


def test_the_modules_of_a_notebook_are_its_absolute_imports():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import numpy as np, torch.nn\nfrom torchvision import io"),
        nbformat.v4.new_code_cell("%matplotlib inline\nfrom . import sibling\nx = 1"),
        nbformat.v4.new_markdown_cell("import not_code"),
        nbformat.v4.new_code_cell("def f(:\n  pass"),  # does not parse: nothing
    ]
    assert imported_modules(nb) == ["numpy", "torch.nn", "torchvision"]
