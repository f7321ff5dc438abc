"""What the zygote holds when it forks a sandbox.

It imports what an assignment's notebooks import before their first sandbox forks (issue 16):
torchvision is no longer part of every worker's start, yet a notebook that imports it finds it
loaded. Only speed depends on this: a bad name is ignored, the zygote keeps working. And nothing
it holds may break in the sandbox: no open figure, no font object reading through a file
descriptor the sandbox closes (mathtext kept the warm-up figure's fonts).
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


MATHTEXT_CELL = """
import gc
import matplotlib.pyplot as plt
from matplotlib.mathtext import MathTextParser
fig, ax = plt.subplots(figsize=(4, 2))
ax.set_title("warm-up $x^2$")  # the zygote's warm-up figure's own mathtext
ax.set_xlabel(r"$H_{out} = \\sum_k w_k$")
plt.show()
MathTextParser._parse_cached.cache_clear()
_ = gc.collect()  # every font object mathtext held is closed now
"""


def test_a_plot_with_mathtext_renders_and_no_inherited_font_breaks(tmp_path):
    held = (
        "from matplotlib.mathtext import MathTextParser as P; print(P._parse_cached.cache_info())"
    )
    with Sandbox(tmp_path, LIMITS) as sandbox:
        first = sandbox.run_cell(held)
        run = sandbox.run_cell(MATHTEXT_CELL)
    (printed,) = first.outputs  # and no figure of the zygote's shows after the first cell
    assert "currsize=0" in printed["text"], "mathtext's cache holds fonts opened in the zygote"
    shown = [
        (o["output_type"], sorted(o.get("data", {})), o.get("text", "")[:500]) for o in run.outputs
    ]
    assert run.status == "ok" and len(run.outputs) == 1, shown
    assert "image/png" in run.outputs[0]["data"], shown


FDS_CELL = """
import os
seen = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        seen[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass  # the listing's own descriptor, closed again
print(sorted(seen.items()))
"""


def test_every_inherited_descriptor_is_dev_null_but_the_grader_channel(tmp_path):
    with Sandbox(tmp_path, LIMITS) as sandbox:
        run = sandbox.run_cell(FDS_CELL)
    assert run.status == "ok", run.describe()
    seen = dict(eval(run.outputs[0]["text"]))  # noqa: S307 - a list of (int, str) we printed
    print(seen)
    others = {fd: target for fd, target in seen.items() if target != "/dev/null"}
    sockets = [fd for fd, target in others.items() if target.startswith("socket:")]
    listing = [fd for fd, target in others.items() if target.endswith("/fd")]
    assert len(sockets) == 1, f"only the grader's channel may be open: {others}"
    assert set(others) == set(sockets) | set(listing), others
    assert {0, 1, 2} <= set(seen) and all(seen[fd] == "/dev/null" for fd in (0, 1, 2))


# An attack: a student's code reads its whole address space (a fork of the zygote) for what
# the sandbox forked before it held. The zygote never receives a notebook, a cell or an answer
# (they cross the channel to the sandbox itself, after the fork), so nothing can be there.
# The scan must find a marker the probe makes itself, or it proves nothing; a marker is only
# ever written whole by .upper() or join at run time, so no cell's source holds one, and the
# scan skips the needles' own bytes and its read buffer.
PLANT_CELL = "planted = ''.join(['CLASSMATE', 'ANSWER'] * 3)\nalso = planted.encode() * 64"
SCAN_CELL = r"""
import ctypes, sys
own = "".join(["SELF", "MARKER"] * 3)
needles = {"classmate": b"classmateanswer" * 3, "own": b"selfmarker" * 3}
needles = {name: lowercase.upper() for name, lowercase in needles.items()}
skip = {id(n) + sys.getsizeof(b"") - 1 for n in needles.values()}
buf = bytearray(2**20)
buf_at = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
found, scanned = {name: False for name in needles}, 0
with open("/proc/self/maps") as maps:
    regions = maps.read().splitlines()
with open("/proc/self/mem", "rb", 0) as mem:
    for line in regions:
        span, perms, *rest = line.split()
        if not perms.startswith("rw") or (len(rest) > 3 and not rest[3].startswith("[")):
            continue  # data lives in anonymous memory; a library read in would count as ours
        start, end = (int(x, 16) for x in span.split("-"))
        for at in range(start, end, len(buf) - 64):  # windows overlapping by 64 bytes
            try:
                mem.seek(at)
                n = mem.readinto(memoryview(buf)[: min(len(buf), end - at)])
            except (OSError, ValueError, OverflowError):
                break
            scanned += n
            for name, needle in needles.items():
                pos = buf.find(needle, 0, n)
                while pos >= 0:
                    where = at + pos
                    if where not in skip and not buf_at <= where < buf_at + len(buf):
                        found[name] = True
                    pos = buf.find(needle, pos + 1, n)
print(found, scanned > 10 * 2**20)
"""


def test_a_sandbox_memory_holds_nothing_of_the_sandbox_forked_before_it(tmp_path):
    with Sandbox(tmp_path, LIMITS) as first:
        planted = first.run_cell(PLANT_CELL)
        assert planted.status == "ok", planted.describe()
    with Sandbox(tmp_path, LIMITS) as second:
        run = second.run_cell(SCAN_CELL)
    assert run.status == "ok", run.describe()
    text = "".join(o.get("text", "") for o in run.outputs).strip()
    print(f"{second.mode} isolation: {text}")
    assert text == "{'classmate': False, 'own': True} True"
