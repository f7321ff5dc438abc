"""Assignment 08 (CIFAR-10 feature maps in TensorBoard): its tests catch stubs and wrong solutions.

Each test runs the source notebook with some solution cells replaced (``run_notebook_file``) and
looks at how its graded test cells fare. Runs stop after the last graded cell, log into tmp_path
(``COURSE_LOGS_ROOT``) and never download (``COURSE_OFFLINE=1``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.notebooks import run_notebook_file

NOTEBOOK = (
    Path(__file__).resolve().parent.parent / "source" / "08_tensorboard" / "tensorboard.ipynb"
)
LAST_TEST = "test_log_feature_maps"
STUB_BODY = "    # YOUR CODE HERE\n    raise NotImplementedError()\n"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_LOGS_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("COURSE_OFFLINE", "1")


def run(replace: dict[str, str]):
    outcomes = run_notebook_file(NOTEBOOK, replace=replace, stop_after=LAST_TEST, timeout=180)
    for gid, outcome in outcomes.items():
        print(gid, "passed" if outcome.passed else f"FAILED: {outcome.error}")
    return outcomes


# ------------------------------------------------------------------ wrong solutions as sources

SEED_RESHAPE_SOURCE_SIX_ONLY = '''
def seed_reshape_source(k, channels=6):
    """Hard-codes the seed's 6 channels: right for the seed, wrong for any other C."""
    return [divmod(3 * k + j, 6) for j in range(3)]
'''

GRIDS_SEED_RESHAPE = '''
import numpy as np


def feature_map_grids(maps, ncols=3, padding=1):
    """The seed's reshape used as the 'grid': 3 channels glued into fake RGB images."""
    maps = np.asarray(maps)
    return maps.reshape(-1, 3, maps.shape[2], maps.shape[3])
'''

GRIDS_GLOBAL_NORMALIZATION = '''
import numpy as np
import torch
from torchvision.utils import make_grid


def feature_map_grids(maps, ncols=3, padding=1):
    """Right layout, but one min/max for all channels of an image instead of one per panel."""
    x = torch.as_tensor(np.asarray(maps, dtype=np.float64))
    return np.stack([
        make_grid(img[:, None], nrow=ncols, padding=padding, normalize=True,
                  scale_each=False, pad_value=1.0)[:1].numpy()
        for img in x
    ])
'''

GRIDS_MAKE_GRID = '''
import numpy as np
import torch
from torchvision.utils import make_grid


def feature_map_grids(maps, ncols=3, padding=1):
    """A correct alternative: torchvision's make_grid per image."""
    x = torch.as_tensor(np.asarray(maps, dtype=np.float64))
    return np.stack([
        make_grid(img[:, None], nrow=ncols, padding=padding, normalize=True,
                  scale_each=True, pad_value=1.0)[:1].numpy()
        for img in x
    ])
'''

# The wrong logging functions build their own grids, so that only the logging is wrong.
_GRID_HELPER = """
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid


def _grids(maps, scale_each=True):
    x = torch.as_tensor(np.asarray(maps, dtype=np.float64))
    return [make_grid(img[:, None], nrow=3, padding=1, normalize=True,
                      scale_each=scale_each, pad_value=1.0)[:1] for img in x]
"""

LOG_SEED_STYLE = (
    _GRID_HELPER
    + '''

def log_feature_maps(logdir, maps, step, max_images=4):
    """Seed 002's logging: one 'output' tag with the reshaped batch."""
    maps = torch.as_tensor(np.asarray(maps))
    with SummaryWriter(logdir) as writer:
        writer.add_images("output", torch.reshape(maps, (-1, 3, 30, 30)).clamp(0, 1), step)
    return ["output"]
'''
)

LOG_ALWAYS_STEP_ZERO = (
    _GRID_HELPER
    + '''

def log_feature_maps(logdir, maps, step, max_images=4):
    """Right tags and pixels, but every call logs at step 0."""
    tags = []
    with SummaryWriter(logdir) as writer:
        for i, grid in enumerate(_grids(maps)[:max_images]):
            writer.add_image(f"feature_maps/image_{i}", grid, 0)
            tags.append(f"feature_maps/image_{i}")
    return tags
'''
)

LOG_GLOBAL_NORMALIZATION = (
    _GRID_HELPER
    + '''

def log_feature_maps(logdir, maps, step, max_images=4):
    """Right tags and steps, but the panels share one min/max per image."""
    tags = []
    with SummaryWriter(logdir) as writer:
        for i, grid in enumerate(_grids(maps, scale_each=False)[:max_images]):
            writer.add_image(f"feature_maps/image_{i}", grid, step)
            tags.append(f"feature_maps/image_{i}")
    return tags
'''
)

LOG_ROUNDED_UINT8 = (
    _GRID_HELPER
    + '''

def log_feature_maps(logdir, maps, step, max_images=4):
    """A correct alternative: rounds to uint8 itself (SummaryWriter truncates): off by <= 1."""
    tags = []
    with SummaryWriter(logdir) as writer:
        for i, grid in enumerate(_grids(maps)[:max_images]):
            pixels = np.round(grid.numpy() * 255).astype(np.uint8)
            writer.add_image(f"feature_maps/image_{i}", pixels, global_step=step)
            tags.append(f"feature_maps/image_{i}")
    return tags
'''
)


def stub(signature_line: str) -> str:
    return f"{signature_line}\n{STUB_BODY}"


# ------------------------------------------------------------------ tests


def test_stubs_fail_every_graded_cell():
    outcomes = run(
        {
            "seed_reshape_source": stub("def seed_reshape_source(k, channels=6):"),
            "feature_map_grids": stub("def feature_map_grids(maps, ncols=3, padding=1):"),
            "log_feature_maps": stub("def log_feature_maps(logdir, maps, step, max_images=4):"),
        }
    )
    assert set(outcomes) == {
        "test_seed_reshape_source",
        "test_feature_map_grids",
        "test_log_feature_maps",
    }
    for gid, outcome in outcomes.items():
        assert not outcome.passed and outcome.points == 0, gid
        assert "NotImplementedError" in outcome.error, gid


def test_seed_reshape_as_grid_and_seed_logging_are_caught_with_hard_coded_six_only_by_hidden():
    outcomes = run(
        {
            "seed_reshape_source": SEED_RESHAPE_SOURCE_SIX_ONLY,
            "feature_map_grids": GRIDS_SEED_RESHAPE,
            "log_feature_maps": LOG_SEED_STYLE,
        }
    )
    # Hard-coding C = 6 passes the visible cases (the seed's 6 channels) ...
    reshape_source = outcomes["test_seed_reshape_source"]
    assert not reshape_source.passed
    assert "ok: seed_reshape_source matches torch on 5 case(s)" in reshape_source.error
    # ... and the hidden cases with other channel counts catch it.
    assert "seed_reshape_source fails for k=" in reshape_source.error
    assert "channels=1" in reshape_source.error or "channels=2" in reshape_source.error

    grids = outcomes["test_feature_map_grids"]
    assert not grids.passed
    assert "output shape (4, 3, 5, 4) but torch gives (2, 1, 13, 16)" in grids.error

    logging = outcomes["test_log_feature_maps"]
    assert not logging.passed
    assert "returned tags ['output']; expected ['feature_maps/image_0'" in logging.error


def test_global_normalization_and_wrong_steps_are_caught():
    outcomes = run(
        {
            "feature_map_grids": GRIDS_GLOBAL_NORMALIZATION,
            "log_feature_maps": LOG_ALWAYS_STEP_ZERO,
        }
    )
    assert outcomes["test_seed_reshape_source"].passed  # the notebook's own solution
    grids = outcomes["test_feature_map_grids"]
    assert not grids.passed and "differs from torch" in grids.error
    logging = outcomes["test_log_feature_maps"]
    assert not logging.passed
    assert "has images at steps [0, 0, 0]; expected one image at each of steps [0, 1, 2]" in (
        logging.error
    )


def test_logging_with_shared_normalization_is_caught_by_the_pixels():
    outcomes = run({"log_feature_maps": LOG_GLOBAL_NORMALIZATION})
    logging = outcomes["test_log_feature_maps"]
    assert not logging.passed
    assert "pixels differ from the expected grid" in logging.error
    assert outcomes["test_feature_map_grids"].passed


def test_correct_alternatives_pass_make_grid_and_rounded_uint8():
    outcomes = run({"feature_map_grids": GRIDS_MAKE_GRID, "log_feature_maps": LOG_ROUNDED_UINT8})
    for gid, outcome in outcomes.items():
        assert outcome.passed, f"{gid}: {outcome.error}"


def test_trusted_grader_gives_an_honest_submission_full_marks(tmp_path):
    """The logging test across processes: the student's function runs in the grader's sandbox
    (private /tmp, own uid, cwd = the submission folder), the test cell in the grader. The check
    passes a relative log folder, so this needs test cells to run in the submission folder too
    (as in nbgrader, where they run in the notebook's kernel)."""
    import nbformat

    from autograder.sandbox import Limits, isolation_available
    from autograder.score import grade_notebook

    if not isolation_available():
        pytest.skip("the grader's sandbox isolation needs root")
    source = nbformat.read(str(NOTEBOOK), as_version=4)
    workdir = tmp_path / "submitted" / "alice" / "08_tensorboard"
    workdir.mkdir(parents=True)
    nbformat.write(source, str(workdir / NOTEBOOK.name))
    result = grade_notebook(source, source, workdir, Limits(), "tensorboard", log=print)
    for test in result.tests:
        print(test.grade_id, test.points, "/", test.max_points, test.message[:400])
    assert {t.grade_id: t.points for t in result.tests} == {
        "test_seed_reshape_source": 1.0,
        "test_feature_map_grids": 2.0,
        "test_log_feature_maps": 2.0,
    }
    assert not (workdir / "tb_check_logs").exists(), "the check must remove its log folders"
