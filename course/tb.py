"""TensorBoard helpers: one log folder per run, and reading event files back as plain arrays.

Writing goes through ``torch.utils.tensorboard.SummaryWriter``; reading goes through TensorBoard's
own event reader (``tensorboard.backend.event_processing.event_accumulator.EventAccumulator``), the
code the TensorBoard server uses, so a test that reads an image back here reads what TensorBoard
would show.

Logs root: the ``root`` argument, else the environment variable ``COURSE_LOGS_ROOT``, else ``runs``
(relative to the current folder, as SummaryWriter's own default). Open it with
``tensorboard --logdir runs`` (or ``%tensorboard --logdir runs`` in JupyterLab after
``%load_ext tensorboard``).
"""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Environment variable naming the folder under which each run gets its own log folder.
LOGS_ROOT_ENV = "COURSE_LOGS_ROOT"
#: Default logs root (relative to the current folder).
DEFAULT_LOGS_ROOT = "runs"


def logs_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The logs root: ``root`` if given, else ``$COURSE_LOGS_ROOT``, else ``runs``."""
    if root is None:
        root = os.environ.get(LOGS_ROOT_ENV) or DEFAULT_LOGS_ROOT
    return Path(root).expanduser()


def new_run_dir(name: str = "run", root: str | os.PathLike[str] | None = None) -> str:
    """Create and return a fresh log folder ``<logs root>/<name>-<YYYYmmdd-HHMMSS>-<6 hex>``.

    Each run writes into its own folder, so TensorBoard shows runs side by side instead of
    mixing the steps of two runs under one name. ``name`` may contain letters, digits, ``-_.``.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"run name {name!r}: use letters, digits, '-', '_' or '.'")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = logs_root(root) / f"{name}-{stamp}-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=False)
    return str(folder)


def event_files(logdir: str | os.PathLike[str]) -> list[Path]:
    """The event files directly inside ``logdir`` (``events.out.tfevents.*``), sorted by name."""
    return sorted(Path(logdir).glob("events.out.tfevents.*"))


def load_events(logdir: str | os.PathLike[str]):
    """An ``EventAccumulator`` over every event file in ``logdir``, fully loaded.

    Keeps every event (size guidance 0 = no sampling), unlike TensorBoard's server defaults which
    keep only a sample of images per tag.
    """
    from tensorboard.backend.event_processing import event_accumulator as ea

    guidance = {ea.IMAGES: 0, ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 0}
    accumulator = ea.EventAccumulator(str(logdir), size_guidance=guidance)
    accumulator.Reload()
    return accumulator


@dataclass(frozen=True)
class LoggedImage:
    """One image event read back: ``pixels`` is the decoded PNG, uint8 (height, width, channels)."""

    tag: str
    step: int
    width: int
    height: int
    pixels: np.ndarray


def decode_png(encoded: bytes) -> np.ndarray:
    """PNG bytes -> uint8 array (height, width, channels); grayscale PNGs get channels = 1."""
    from PIL import Image

    with Image.open(io.BytesIO(encoded)) as image:
        array = np.asarray(image)
    return array[:, :, None] if array.ndim == 2 else array


def image_tags(logdir: str | os.PathLike[str]) -> list[str]:
    """The image tags in ``logdir``, sorted."""
    return sorted(load_events(logdir).Tags()["images"])


def read_images(logdir: str | os.PathLike[str]) -> dict[str, list[LoggedImage]]:
    """Every image event in ``logdir``: tag -> list of :class:`LoggedImage`, in step order."""
    accumulator = load_events(logdir)
    result: dict[str, list[LoggedImage]] = {}
    for tag in sorted(accumulator.Tags()["images"]):
        events = sorted(accumulator.Images(tag), key=lambda event: event.step)
        result[tag] = [
            LoggedImage(
                tag=tag,
                step=int(event.step),
                width=int(event.width),
                height=int(event.height),
                pixels=decode_png(event.encoded_image_string),
            )
            for event in events
        ]
    return result


def read_scalars(logdir: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in ``logdir``: tag -> list of (step, value), in step order."""
    accumulator = load_events(logdir)
    return {
        tag: sorted((int(e.step), float(e.value)) for e in accumulator.Scalars(tag))
        for tag in sorted(accumulator.Tags()["scalars"])
    }


def summary_writer_pixels(image: np.ndarray) -> np.ndarray:
    """What ``SummaryWriter.add_image(tag, image)`` stores for a float CHW image in [0, 1].

    image: (C, H, W) with C = 1 or 3, float. Returns uint8 (H, W, 3): values times 255, clipped,
    truncated to integers (SummaryWriter's own conversion), a single channel repeated as RGB.
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ValueError(f"expected (1 or 3, H, W), got shape {array.shape}")
    hwc = array.transpose(1, 2, 0)
    if hwc.shape[2] == 1:
        hwc = np.concatenate([hwc] * 3, axis=2)
    return (hwc * 255.0).clip(0, 255).astype(np.uint8)


def seed_reshape(maps: np.ndarray) -> np.ndarray:
    """Seed 002's ``torch.reshape(output, (-1, 3, H, W))`` on an array.

    maps: (N, C, H, W) with N·C divisible by 3. Returns (N·C/3, 3, H, W): consecutive triples of
    channels, read across image boundaries, relabelled as RGB "images". Shown in the notebook to
    make the mixing visible; it is not a way to display feature maps.
    """
    array = np.asarray(maps)
    return array.reshape(-1, 3, *array.shape[2:])


def to_unit_range(array: np.ndarray) -> np.ndarray:
    """Min-max scale ``array`` to [0, 1] as a whole (all zeros when it is constant)."""
    array = np.asarray(array, dtype=np.float64)
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)
