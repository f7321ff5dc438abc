"""course.data: torchvision's CIFAR10 when a CIFAR-10 folder is there, the shipped sample otherwise.

The tests build a tiny folder in the python CIFAR-10 format (``cifar-10-batches-py`` with pickled
``data_batch_1..5``, ``test_batch`` and ``batches.meta``). torchvision checks the md5 sums of the
real files, so the tests set ``CIFAR10``'s expected sums to the sums of the tiny files: they patch
torchvision's class attributes, never ``course.data``. Nothing here downloads: every test forbids
``CIFAR10.download`` and outgoing connections.
"""

from __future__ import annotations

import hashlib
import pickle
import socket
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.datasets import CIFAR10

from course import data as course_data
from course.data import CIFAR10Sample, cifar10_sample, cifar10_test

CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
SAMPLE_SHA256 = "b9fd548787e737173849382cd9a1dd29f09cb78f322abc353bff2242b9f9b93d"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_cifar10_folder(root: Path, n_test: int = 7, seed: int = 0) -> dict:
    """Write a tiny ``root/cifar-10-batches-py`` in the python CIFAR-10 format.

    Returns the md5 sums of the written files and the test images (n, 3, 32, 32) uint8 and labels.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    sums = {}
    for name, n in [(f"data_batch_{i}", 2) for i in range(1, 6)] + [("test_batch", n_test)]:
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        entry = {
            "batch_label": name,
            "labels": labels,
            "data": images.reshape(n, 3072),
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(entry))
        sums[name] = _md5(folder / name)
        if name == "test_batch":
            test_images, test_labels = images, labels
    meta = {"num_cases_per_batch": n_test, "label_names": CLASSES, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    sums["batches.meta"] = _md5(folder / "batches.meta")
    return {"sums": sums, "images": test_images, "labels": test_labels}


def expect_sums(monkeypatch: pytest.MonkeyPatch, sums: dict) -> None:
    """Make torchvision's CIFAR10 accept the tiny files (its class attributes, not the loader)."""
    monkeypatch.setattr(
        CIFAR10, "train_list", [[f"data_batch_{i}", sums[f"data_batch_{i}"]] for i in range(1, 6)]
    )
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(
        CIFAR10,
        "meta",
        {"filename": "batches.meta", "key": "label_names", "md5": sums["batches.meta"]},
    )


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch):
    """Every test: a download or an outgoing connection fails the test."""

    def forbidden_download(self):
        raise AssertionError("CIFAR10.download was called")

    def forbidden_connection(*args, **kwargs):
        raise AssertionError(f"network connection attempted: {args}")

    monkeypatch.setattr(CIFAR10, "download", forbidden_download)
    monkeypatch.setattr(socket, "create_connection", forbidden_connection)
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.delenv("COURSE_DATA_ROOT", raising=False)


@pytest.fixture
def full_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    root = tmp_path / "full"
    written = write_cifar10_folder(root)
    expect_sums(monkeypatch, written["sums"])
    return root, written


def test_folder_present_uses_torchvision_cifar10_with_its_pixels(full_root, capsys):
    root, written = full_root
    dataset = cifar10_test(root)
    assert type(dataset) is CIFAR10
    assert dataset.train is False
    assert dataset.source == "torchvision"
    assert "torchvision.datasets.CIFAR10" in dataset.source_description
    assert "torchvision.datasets.CIFAR10" in capsys.readouterr().out
    assert len(dataset) == len(written["labels"]) == 7
    assert dataset.classes == CLASSES
    for i in range(len(dataset)):
        image, label = dataset[i]
        assert image.dtype == torch.float32 and tuple(image.shape) == (3, 32, 32)
        np.testing.assert_allclose(image.numpy(), written["images"][i] / 255.0, atol=1e-6)
        assert label == written["labels"][i]


def test_env_var_names_the_root(full_root, monkeypatch):
    root, _ = full_root
    monkeypatch.setenv("COURSE_DATA_ROOT", str(root))
    assert cifar10_test().source == "torchvision"


def test_argument_overrides_env_var(full_root, tmp_path, monkeypatch):
    root, _ = full_root
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("COURSE_DATA_ROOT", str(empty))
    assert cifar10_test(root).source == "torchvision"
    monkeypatch.setenv("COURSE_DATA_ROOT", str(root))
    assert cifar10_test(empty).source == "sample"


def test_no_folder_gives_embedded_sample_with_real_cifar10_labels(tmp_path, capsys):
    dataset = cifar10_test(tmp_path)
    assert isinstance(dataset, CIFAR10Sample)
    assert isinstance(dataset, torch.utils.data.Dataset)
    assert dataset.source == "sample"
    out = capsys.readouterr().out
    assert "embedded CIFAR-10 sample" in out and "Krizhevsky" in out
    assert "COURSE_OFFLINE=1" in dataset.source_description
    assert len(dataset) == 846
    assert dataset.classes == CLASSES
    assert dataset.targets[:10] == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    counts = np.bincount(dataset.targets, minlength=10)
    assert counts.tolist() == [83, 70, 88, 84, 76, 79, 97, 87, 88, 94]
    with np.load(course_data.sample_path()) as archive:
        raw = archive["images"]
    for i in (0, 1, 845):
        image, label = dataset[i]
        assert image.dtype == torch.float32 and tuple(image.shape) == (3, 32, 32)
        np.testing.assert_allclose(image.numpy(), raw[i] / 255.0, atol=1e-6)
        assert isinstance(label, int)


def test_sample_file_is_unchanged_and_cited():
    payload = course_data.sample_path().read_bytes()
    assert hashlib.sha256(payload).hexdigest() == SAMPLE_SHA256
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / course_data.SAMPLE_FILE
    if shared.exists():  # beside a checkout on the project's machines; not in a student's clone
        assert shared.read_bytes() == payload
    readme = course_data.sample_path().with_name("README.md").read_text()
    assert "Krizhevsky" in readme and "846" in readme


def test_corrupted_folder_falls_back_to_sample_and_says_why(tmp_path):
    # The tiny files do not have the real CIFAR-10 md5 sums, and here the sums are not patched.
    write_cifar10_folder(tmp_path)
    dataset = cifar10_test(tmp_path)
    assert dataset.source == "sample"
    assert "incomplete or corrupted" in dataset.source_description


def test_offline_env_forbids_download_even_when_asked(tmp_path):
    dataset = cifar10_test(tmp_path, download=True)  # the fixture fails the test on a download
    assert dataset.source == "sample"
    assert "not downloading because COURSE_OFFLINE=1" in dataset.source_description


@pytest.mark.parametrize("download", [False, None])
def test_download_false_or_unreachable_server_never_downloads(tmp_path, monkeypatch, download):
    monkeypatch.delenv("COURSE_OFFLINE")
    if download is None:
        # The probe of the CIFAR-10 server is the only connection allowed; it finds no server.
        def unreachable(*args, **kwargs):
            raise OSError("network unreachable (test)")

        monkeypatch.setattr(socket, "create_connection", unreachable)
    dataset = cifar10_test(tmp_path, download=download)
    assert dataset.source == "sample"
    assert "not downloading" in dataset.source_description


def test_failed_download_falls_back_to_sample(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_OFFLINE")
    calls = []

    def failing_download(self):
        calls.append(self.root)
        raise URLError("no internet (test)")

    monkeypatch.setattr(CIFAR10, "download", failing_download)
    dataset = cifar10_test(tmp_path / "new", download=True)
    assert calls == [str(tmp_path / "new")]
    assert dataset.source == "sample"
    assert "download failed" in dataset.source_description


def test_transform_receives_pil_image_on_both_sources(full_root, tmp_path):
    root, _ = full_root
    seen = []

    def transform(image):
        seen.append((type(image).__name__, image.size, image.mode))
        return np.asarray(image)

    for where in (root, tmp_path / "none"):
        image, _ = cifar10_test(where, transform=transform)[0]
        assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert seen == [("Image", (32, 32), "RGB")] * 2


def test_same_dataloader_code_runs_on_both_sources(full_root, tmp_path):
    root, _ = full_root
    for dataset, n in [(cifar10_test(root), 7), (cifar10_test(tmp_path / "none"), 846)]:
        loader = DataLoader(dataset, batch_size=64)
        batches = list(loader)
        assert sum(len(targets) for _, targets in batches) == n
        imgs, targets = batches[0]
        assert imgs.shape == (min(n, 64), 3, 32, 32) and imgs.dtype == torch.float32
        assert targets.dtype == torch.int64
        assert 0.0 <= float(imgs.min()) and float(imgs.max()) <= 1.0


def test_cifar10_sample_ignores_installed_full_set(full_root, monkeypatch):
    root, _ = full_root
    monkeypatch.setenv("COURSE_DATA_ROOT", str(root))
    assert cifar10_sample().source == "sample"
