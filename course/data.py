"""CIFAR-10 test images for the notebooks: the full set when it is there, else the shipped sample.

:func:`cifar10_test` returns ``torchvision.datasets.CIFAR10(root, train=False)`` when the python
version of CIFAR-10 (folder ``cifar-10-batches-py``) is under the data root, or can be downloaded;
otherwise it returns :class:`CIFAR10Sample`, the first 846 test images that ship inside this
package (``course/sample_data/``, see its README for provenance). Both are torch ``Dataset`` objects
whose items are ``(image, label)``:

- ``image``: float32 tensor of shape (3, 32, 32), RGB, values in [0, 1] (``ToTensor()`` of the
  32×32 PIL image; a ``transform`` you pass replaces ``ToTensor()`` and receives the PIL image);
- ``label``: int class index 0..9, a name in ``dataset.classes``.

so the same ``DataLoader(dataset, batch_size=64)`` loop yields ``imgs`` (B, 3, 32, 32) and
``targets`` (B,) on either. ``dataset.source`` says which one you got (``"torchvision"`` or
``"sample"``) and ``dataset.source_description`` says it in words; the function also prints it.

Data root: the ``root`` argument, else the environment variable ``COURSE_DATA_ROOT``, else
``~/.cache/conv2d-course/data``. Downloading: never when the environment variable
``COURSE_OFFLINE=1`` is set (the Makefile sets it, so tests and ``make demo`` never download);
otherwise ``download=True`` downloads, ``download=False`` never does, and ``download=None`` (the
default) downloads only when the CIFAR-10 server answers within a few seconds.

Source of the images: Alex Krizhevsky, *Learning Multiple Layers of Features from Tiny Images*,
2009 (the CIFAR-10 data set).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from torch.utils.data import Dataset

logger = logging.getLogger(__name__)

#: Environment variable naming the data root (the folder that holds ``cifar-10-batches-py``).
DATA_ROOT_ENV = "COURSE_DATA_ROOT"
#: Environment variable that forbids any download when set to 1/true/yes.
OFFLINE_ENV = "COURSE_OFFLINE"
#: Default data root when neither the argument nor the environment variable gives one.
DEFAULT_DATA_ROOT = Path("~/.cache/conv2d-course/data")
#: File name of the shipped sample inside ``course/sample_data/``.
SAMPLE_FILE = "cifar10-test-first846.npz"
#: The citation to show next to the images.
CITATION = (
    "Alex Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009 "
    "(the CIFAR-10 data set)"
)


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root`` if given, else ``$COURSE_DATA_ROOT``, else the default (expanded)."""
    if root is None:
        root = os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    return Path(root).expanduser()


def offline() -> bool:
    """True when ``$COURSE_OFFLINE`` forbids downloads (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def sample_path() -> Path:
    """Path of the shipped ``.npz`` sample (arrays ``images`` (846,3,32,32) uint8, ``labels``,
    ``label_names``)."""
    return Path(str(resources.files("course") / "sample_data" / SAMPLE_FILE))


def sample_arrays() -> dict[str, np.ndarray]:
    """The shipped sample as plain NumPy arrays, without torchvision (fast to load).

    Returns ``images`` uint8 (846, 3, 32, 32), RGB, channels first; ``labels`` int64 (846,);
    ``classes``: the 10 class names (str array). The same images and order as
    :class:`CIFAR10Sample`.
    """
    with np.load(sample_path()) as archive:
        return {
            "images": archive["images"].copy(),
            "labels": archive["labels"].astype(np.int64),
            "classes": archive["label_names"].astype(str),
        }


def _default_transform() -> Callable[[Any], Any]:
    import torchvision.transforms as T

    return T.ToTensor()


class CIFAR10Sample(Dataset):
    """The shipped CIFAR-10 test sample as a torch ``Dataset`` shaped like ``CIFAR10(train=False)``.

    Attributes mirror torchvision's ``CIFAR10``:

    - ``data``: uint8 array (N, 32, 32, 3), HWC like torchvision's (N = 846 for the whole sample);
    - ``targets``: list of N ints;
    - ``classes``: the 10 class names; ``class_to_idx``: name -> index;
    - ``source`` = ``"sample"``; ``source_description``: where the images come from, in words.

    ``dataset[i]`` is ``(transform(PIL image 32×32 RGB), int label)``; the default transform is
    ``ToTensor()``, giving a float32 tensor (3, 32, 32) in [0, 1].
    """

    source = "sample"

    def __init__(self, transform: Callable[[Any], Any] | None = None):
        super().__init__()
        with np.load(sample_path()) as archive:
            images = archive["images"]  # (N, 3, 32, 32) uint8
            labels = archive["labels"]
            names = archive["label_names"]
        self.data = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # (N, 32, 32, 3)
        self.targets = [int(label) for label in labels]
        self.classes = [str(name) for name in names]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.transform = transform if transform is not None else _default_transform()
        self.source_description = (
            f"embedded CIFAR-10 sample: the first {len(self.targets)} test images shipped in "
            f"{sample_path()} (source: {CITATION})"
        )

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        image = Image.fromarray(self.data[index])
        return self.transform(image), self.targets[index]

    def __repr__(self) -> str:
        return f"CIFAR10Sample(n={len(self)}, source='sample')"


def cifar10_sample(transform: Callable[[Any], Any] | None = None) -> CIFAR10Sample:
    """Always the shipped sample (846 test images), whatever is installed: what graded tests use."""
    return CIFAR10Sample(transform=transform)


def _server_answers(url: str, timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``url``'s host opens within ``timeout`` seconds."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _report(dataset: Any, verbose: bool) -> None:
    logger.info("CIFAR-10 test set: %s", dataset.source_description)
    if verbose:
        print(f"CIFAR-10 test set: {dataset.source_description}")


def cifar10_test(
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool | None = None,
    transform: Callable[[Any], Any] | None = None,
    verbose: bool = True,
) -> Any:
    """The CIFAR-10 test set: torchvision's full set if available, else the shipped sample.

    root: folder that holds (or will hold) ``cifar-10-batches-py``; default ``$COURSE_DATA_ROOT``
        or ``~/.cache/conv2d-course/data``.
    download: ``True`` download if missing, ``False`` never, ``None`` only if the server answers.
        Ignored (no download) when ``$COURSE_OFFLINE=1``.
    transform: applied to each 32×32 PIL image; default ``ToTensor()`` -> float32 (3, 32, 32) in
        [0, 1].
    verbose: print which source was used (it is always logged at INFO level).

    Returns ``torchvision.datasets.CIFAR10(root, train=False)`` (10,000 images) or a
    :class:`CIFAR10Sample` (846 images); both have ``classes``, ``targets``, ``data`` (N,32,32,3)
    uint8, ``source`` (``"torchvision"`` / ``"sample"``) and ``source_description``.
    """
    from torchvision.datasets import CIFAR10

    folder = data_root(root)
    transform = transform if transform is not None else _default_transform()
    present = (folder / CIFAR10.base_folder).is_dir()
    reason = ""
    if present:
        try:
            dataset = CIFAR10(str(folder), train=False, transform=transform, download=False)
        except RuntimeError as err:
            reason = f"{folder / CIFAR10.base_folder} is incomplete or corrupted ({err})"
        else:
            return _finish_torchvision(dataset, folder, verbose)
    else:
        reason = f"no {CIFAR10.base_folder} under {folder}"

    if offline():
        reason += f"; not downloading because {OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)}"
    elif download is False:
        reason += "; not downloading (download=False)"
    elif download is None and not _server_answers(CIFAR10.url):
        reason += "; not downloading (the CIFAR-10 server does not answer: offline?)"
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            dataset = CIFAR10(str(folder), train=False, transform=transform, download=True)
        except (OSError, RuntimeError, ValueError) as err:
            reason += f"; download failed ({type(err).__name__}: {err})"
        else:
            return _finish_torchvision(dataset, folder, verbose)

    sample = CIFAR10Sample(transform=transform)
    sample.source_description += f" [{reason}]"
    _report(sample, verbose)
    return sample


def _finish_torchvision(dataset: Any, folder: Path, verbose: bool) -> Any:
    dataset.source = "torchvision"
    dataset.source_description = (
        f"torchvision.datasets.CIFAR10(train=False), {len(dataset)} images from "
        f"{folder / dataset.base_folder} (source: {CITATION})"
    )
    _report(dataset, verbose)
    return dataset
