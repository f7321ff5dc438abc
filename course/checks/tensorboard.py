"""Checks for assignment 08 (CIFAR-10 feature maps in TensorBoard).

The student writes three functions with plain data in and out:

- ``seed_reshape_source(k, channels) -> list of 3 (image, channel) pairs``: where the k-th fake
  "RGB image" of seed 002's ``reshape(-1, 3, H, W)`` takes its three channels from;
- ``feature_map_grids(maps, ncols=3, padding=1) -> (N, 1, gridH, gridW)``: one grayscale grid
  per image, one panel per channel, each panel min-max scaled to [0, 1];
- ``log_feature_maps(logdir, maps, step, max_images=4) -> list of tags``: writes the grids of the
  first images to TensorBoard under ``feature_maps/image_<i>``.

The references use torch (``reshape`` on an index tensor, ``torchvision.utils.make_grid``); the
logging check reads the event files back with TensorBoard's own reader (:mod:`course.tb`).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from course.checks.core import (
    CheckFailure,
    as_plain_array,
    case_rng,
    check_cases,
    compare_arrays,
    describe_case,
    sweep,
)

#: Pad value between panels (white lines) and in unused grid cells.
PAD_VALUE = 1.0


# ---------------------------------------------------------------- seed_reshape_source


def reference_seed_reshape_source(k: int, channels: int) -> list[tuple[int, int]]:
    """Torch's answer: label each (image, channel) of an (N, C, 1, 1) tensor, reshape it."""
    import torch

    if k < 0:
        raise ValueError("k must be >= 0")
    n_images = 3 * (k + 1)  # N·C divisible by 3 and at least k + 1 fake images
    labels = torch.arange(n_images * channels).reshape(n_images, channels, 1, 1)
    fake = torch.reshape(labels, (-1, 3, 1, 1))[k].flatten().tolist()
    return [divmod(int(v), channels) for v in fake]


def _compare_pairs(got: Any, expected: Any) -> str | None:
    if not isinstance(got, (list, tuple)):
        return f"expected a list of 3 (image, channel) pairs, got {type(got).__name__}"
    array = as_plain_array(list(got), "your result")
    return compare_arrays(array, np.asarray(expected), what="(image, channel) pairs")


def check_seed_reshape_source(student_fn: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``student_fn(k, channels)`` with torch's reshape on labelled channels.

    Returns None (a test cell may end with the call: nbgrader would read a number as a score).
    """
    cases = [dict(k=k, channels=6) for k in range(4)] + [dict(k=127, channels=6)]
    if hidden:
        cases += [dict(k=k, channels=c) for c in (1, 2, 3, 4, 5, 8) for k in (0, 1, 2, 5)]
    check_cases(
        student_fn,
        reference_seed_reshape_source,
        cases,
        name="seed_reshape_source",
        compare=_compare_pairs,
    )


# ---------------------------------------------------------------- feature_map_grids


def grid_shape(channels: int, height: int, width: int, ncols: int = 3, padding: int = 1):
    """(gridH, gridW) of one image's grid: min(ncols, C) columns, ceil(C / columns) rows."""
    columns = min(ncols, channels)
    rows = math.ceil(channels / columns)
    return rows * (height + padding) + padding, columns * (width + padding) + padding


def reference_feature_map_grids(maps: Any, ncols: int = 3, padding: int = 1):
    """torchvision's ``make_grid`` per image; returns a tensor (N, 1, gridH, gridW) in [0, 1].

    maps: (N, C, H, W) numbers, C >= 2. Each image's C channels become C single-channel panels,
    each scaled by its own min and max (``normalize=True, scale_each=True``; a constant panel
    becomes 0), laid out row by row, ``padding`` pixels of ``PAD_VALUE`` around every panel.
    """
    import torch
    from torchvision.utils import make_grid

    x = torch.as_tensor(np.asarray(maps, dtype=np.float64))
    if x.ndim != 4:
        raise ValueError(f"maps must be (N, C, H, W), got {tuple(x.shape)}")
    if x.shape[1] < 2:
        raise ValueError("need at least 2 channels")
    if ncols < 1 or padding < 0:
        raise ValueError("ncols must be >= 1 and padding >= 0")
    grids = [
        make_grid(
            image[:, None],
            nrow=ncols,
            padding=padding,
            normalize=True,
            scale_each=True,
            pad_value=PAD_VALUE,
        )[:1]
        for image in x
    ]
    if not grids:
        return torch.zeros((0, 1, *grid_shape(x.shape[1], x.shape[2], x.shape[3], ncols, padding)))
    return torch.stack(grids)


def _grid_cases(hidden: bool) -> list[dict[str, Any]]:
    rng = case_rng(8)  # in the grader's hidden tests: values from the instructor's secret
    cases = [
        dict(maps=rng.normal(size=(2, 6, 5, 4)).astype(np.float32)),
        dict(maps=rng.normal(size=(1, 6, 30, 30)).astype(np.float32), ncols=3, padding=1),
    ]
    if hidden:
        constant = rng.normal(size=(2, 6, 4, 4))
        constant[0, 2] = 7.0
        constant[1, 5] = 0.0
        cases += [
            dict(maps=constant),
            dict(maps=rng.normal(size=(3, 4, 3, 5)), ncols=2, padding=2),
            dict(maps=rng.normal(size=(2, 5, 4, 4)), ncols=3, padding=0),
            dict(maps=rng.normal(size=(1, 2, 3, 3)), ncols=4, padding=1),
            dict(maps=rng.normal(size=(2, 6, 6, 6)) * 100 + 50, ncols=6, padding=1),
        ]
    return cases


def grid_strategy():
    """Random keyword cases for ``feature_map_grids``: small maps on a 0.5 grid (exact ranges)."""
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    @st.composite
    def cases(draw):
        n = draw(st.integers(1, 3))
        c = draw(st.integers(2, 7))
        h = draw(st.integers(1, 5))
        w = draw(st.integers(1, 5))
        halves = draw(hnp.arrays(np.int64, (n, c, h, w), elements=st.integers(-6, 6)))
        return dict(
            maps=halves.astype(np.float64) / 2,
            ncols=draw(st.integers(1, 4)),
            padding=draw(st.integers(0, 2)),
        )

    return cases()


def check_feature_map_grids(student_fn: Callable[..., Any], hidden: bool = False) -> None:
    """Compare ``student_fn(maps, ncols, padding)`` with ``make_grid`` per image (returns None)."""
    check_cases(
        student_fn,
        reference_feature_map_grids,
        _grid_cases(hidden),
        name="feature_map_grids",
    )
    if hidden:
        sweep(
            student_fn,
            reference_feature_map_grids,
            grid_strategy(),
            name="feature_map_grids",
            max_examples=40,
        )


# ---------------------------------------------------------------- log_feature_maps


def sample_feature_maps(start: int, count: int, seed: int = 2) -> np.ndarray:
    """Real feature maps: seeded ``Conv2d(3, 6, 3)`` on shipped CIFAR-10 test images.

    Returns float32 (count, 6, 30, 30) for sample images ``start .. start + count - 1``.
    """
    import torch

    from course.data import cifar10_sample

    dataset = cifar10_sample()
    images = torch.stack([dataset[i][0] for i in range(start, start + count)])
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(3, 6, 3)
    with torch.no_grad():
        return conv(images).numpy()


def expected_tags(n_images: int, max_images: int = 4) -> list[str]:
    """The tags ``log_feature_maps`` writes for a batch of ``n_images``."""
    return [f"feature_maps/image_{i}" for i in range(min(n_images, max_images))]


#: Folder (relative to the current folder) under which the check's log folders are made.
CHECK_LOGS = "tb_check_logs"


def check_log_feature_maps(
    log_fn: Callable[..., Any],
    logdir: str | None = None,
    *,
    batch_sizes: tuple[int, ...] = (3, 3, 3),
    max_images: int | None = None,
    first_step: int = 0,
) -> None:
    """Call ``log_fn(logdir, maps, step)`` once per batch, read the events back, check them.

    Checks the returned tag lists, that TensorBoard's reader finds exactly those image tags, one
    image per step for each tag, the image size of the grid, and every pixel (within 1 of
    SummaryWriter's conversion of the ``make_grid`` reference, allowing rounding).
    Returns None; prints how many images it checked.

    logdir: default a new *relative* folder ``tb_check_logs/<random>`` that the check does not
    create (SummaryWriter does) and removes afterwards. Relative, because the student's function
    may run in another process (the grader's sandbox) whose /tmp is private: both processes run
    in the submission folder, which is the same path for both, so a relative path names the same
    folder for the writer and for this reader.
    """
    cleanup = logdir is None
    if logdir is None:
        logdir = os.path.join(CHECK_LOGS, uuid.uuid4().hex[:12])
    try:
        _check_log_feature_maps(log_fn, logdir, batch_sizes, max_images, first_step)
    finally:
        if cleanup:
            shutil.rmtree(logdir, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(CHECK_LOGS)  # only when empty


def _check_log_feature_maps(log_fn, logdir, batch_sizes, max_images, first_step) -> None:
    from course import tb

    limit = 4 if max_images is None else max_images
    kwargs = {} if max_images is None else {"max_images": max_images}
    steps = list(range(first_step, first_step + len(batch_sizes)))
    expected: dict[str, dict[int, np.ndarray]] = {}
    start = 0
    for step, size in zip(steps, batch_sizes, strict=True):
        maps = sample_feature_maps(start, size)
        start += size
        case = describe_case(logdir=logdir, maps=maps, step=step, **kwargs)
        returned = log_fn(logdir, maps.copy(), step, **kwargs)
        want = expected_tags(size, limit)
        if not isinstance(returned, (list, tuple)) or not all(isinstance(t, str) for t in returned):
            raise CheckFailure(
                f"log_feature_maps({case}) returned {returned!r}; expected the list of tags "
                f"it wrote, {want}"
            )
        if list(returned) != want:
            raise CheckFailure(
                f"log_feature_maps({case}) returned tags {list(returned)}; expected {want}"
            )
        grids = reference_feature_map_grids(maps).numpy()
        for i, tag in enumerate(want):
            expected.setdefault(tag, {})[step] = tb.summary_writer_pixels(grids[i])

    if not tb.event_files(logdir):
        raise CheckFailure(
            f"no event file in {logdir!r}: write there with SummaryWriter(logdir) and close() it"
        )
    logged = tb.read_images(logdir)
    missing = sorted(set(expected) - set(logged))
    extra = sorted(set(logged) - set(expected))
    if missing or extra:
        raise CheckFailure(
            f"image tags in the event files: {sorted(logged)}; expected exactly "
            f"{sorted(expected)}"
            + (f" (missing {missing})" if missing else "")
            + (f" (unexpected {extra})" if extra else "")
        )
    checked = 0
    for tag, by_step in expected.items():
        got_steps = [image.step for image in logged[tag]]
        if got_steps != sorted(by_step):
            raise CheckFailure(
                f"tag {tag!r} has images at steps {got_steps}; expected one image at each of "
                f"steps {sorted(by_step)} (did you pass global_step=step?)"
            )
        for image in logged[tag]:
            want = by_step[image.step]
            where = f"tag {tag!r}, step {image.step}"
            if (image.height, image.width) != want.shape[:2]:
                raise CheckFailure(
                    f"{where}: image is {image.height}x{image.width} (HxW); the grid of 6 "
                    f"30x30 maps with 3 columns and padding 1 is {want.shape[0]}x{want.shape[1]}"
                )
            got = image.pixels[:, :, :3].astype(np.int64)
            if got.shape[2] == 1:
                got = np.repeat(got, 3, axis=2)
            diff = np.abs(got - want.astype(np.int64))
            if diff.max() > 1:
                y, x, c = np.unravel_index(int(np.argmax(diff)), diff.shape)
                raise CheckFailure(
                    f"{where}: {int(np.count_nonzero(diff.max(axis=2) > 1))} of "
                    f"{diff.shape[0] * diff.shape[1]} pixels differ from the expected grid; "
                    f"e.g. at (row {y}, col {x}) yours {int(got[y, x, c])}, expected "
                    f"{int(want[y, x, c])} (grayscale 0..255; each panel scaled by its own "
                    "min and max?)"
                )
            checked += 1
    print(
        f"ok: log_feature_maps wrote {sorted(expected)} at steps {steps}; "
        f"{checked} image(s) read back with TensorBoard's reader match (sizes and pixels)"
    )
