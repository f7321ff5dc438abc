"""The seed 003 CNN as a CIFAR-10 classifier, and what training it on the shipped sample needs.

- :class:`SeedClassifier`: seed 003's conv-pool-conv-pool network (with ``super().__init__()``
  fixed, see assignment 07) and the smallest head that turns its maps into 10 class scores;
- :func:`cifar_split`: a fixed, class-balanced train/validation split of the 846 shipped CIFAR-10
  test images (``course/sample_data``), normalized with the training images' statistics;
- :func:`epoch_batches`: the fixed shuffling of each epoch;
- :func:`state_arrays` / :func:`classifier_from_state`: weights as plain NumPy data and back (the
  grader only exchanges plain data with a student's notebook);
- :func:`filter_grid`: first-layer filters as one RGB image, for plots and TensorBoard;
- :func:`edge_kernels`: the hand-made Sobel, Laplacian, blur and colour kernels of assignment 08.

Everything is deterministic: the same seed gives the same weights and the same batches.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

#: Validation images per class (the split holds 10 × 20 = 200 validation images).
VALIDATION_PER_CLASS = 20
#: Seed of the split (which images go to validation); never changes.
SPLIT_SEED = 0
#: The training accuracy is measured on the first this many training images (as many as the
#: validation images: both accuracies are measured alike, and an evaluation costs less).
TRAIN_EVAL_IMAGES = 200


class SeedClassifier(nn.Module):
    """Seed 003's CNN with a classification head.

    Body (seed 003, unchanged): ``conv1 = Conv2d(3, 10, 3, padding=1)``, ``pool1 =
    MaxPool2d(2, stride=1)``, ``conv2 = Conv2d(10, out_channels, 3, padding=1)``, ``pool2 =
    MaxPool2d(2, stride=1)``: (B, 3, 32, 32) -> (B, out_channels, 30, 30). No activation function:
    the max pools are the only non-linearity, as in the seed.

    Head (ours): ``AdaptiveAvgPool2d(regions)`` averages each map over a regions × regions grid,
    ``Flatten`` and ``Linear(out_channels · regions², num_classes)``: -> logits (B, num_classes).
    """

    def __init__(self, out_channels: int = 10, num_classes: int = 10, regions: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3, stride=1, padding=1)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=1)
        self.conv2 = nn.Conv2d(10, out_channels, 3, stride=1, padding=1)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=1)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(regions),
            nn.Flatten(),
            nn.Linear(out_channels * regions * regions, num_classes),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The seed's network: (B, 3, H, W) -> (B, out_channels, H - 2, W - 2)."""
        return self.pool2(self.conv2(self.pool1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 32, 32) float32 images -> (B, num_classes) logits.

        Computed in channels-last memory order (the same numbers; torch's CPU max pooling with
        stride 1 runs about twice as fast that way).
        """
        return self.head(self.features(x.contiguous(memory_format=torch.channels_last)))


def seed_classifier(seed: int = 0) -> SeedClassifier:
    """A :class:`SeedClassifier` initialized from ``seed`` (torch's default initialization);
    the global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SeedClassifier().to(memory_format=torch.channels_last)


@functools.lru_cache(maxsize=1)
def _split() -> dict[str, Any]:
    from course.data import sample_arrays

    sample = sample_arrays()
    images = sample["images"].astype(np.float32) / 255.0  # (N, 3, 32, 32), as ToTensor() gives
    labels = sample["labels"]
    classes = [str(name) for name in sample["classes"]]
    rng = np.random.default_rng(SPLIT_SEED)
    validation = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(labels == c), VALIDATION_PER_CLASS, replace=False)
                for c in range(len(classes))
            ]
        )
    )
    train = np.setdiff1d(np.arange(len(labels)), validation)
    mean = images[train].mean(axis=(0, 2, 3))
    std = images[train].std(axis=(0, 2, 3))
    normalized = (images - mean[None, :, None, None]) / std[None, :, None, None]
    return {
        "x_train": normalized[train],
        "y_train": labels[train],
        "x_val": normalized[validation],
        "y_val": labels[validation],
        "train_index": train,
        "val_index": validation,
        "mean": mean,
        "std": std,
        "classes": classes,
    }


def cifar_split() -> dict[str, Any]:
    """The fixed split of the 846 shipped CIFAR-10 test images (fresh copies of the arrays).

    Returns a dict: ``x_train`` float32 (646, 3, 32, 32) and ``y_train`` int64 (646,);
    ``x_val`` float32 (200, 3, 32, 32) and ``y_val`` int64 (200,), exactly 20 images per class;
    ``train_index`` / ``val_index``: their positions in the sample; ``mean``, ``std`` (3,): the
    per-channel statistics of the training images, used to normalize both parts (pixels in
    [0, 1] minus mean, divided by std); ``classes``: the 10 class names.
    """
    return {k: (v.copy() if isinstance(v, np.ndarray) else list(v)) for k, v in _split().items()}


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The batches of one epoch: a permutation of ``range(n)`` fixed by (seed, epoch), cut into
    int64 index arrays of ``batch_size`` (the last one may be smaller)."""
    if n < 1 or batch_size < 1:
        raise ValueError("n and batch_size must be >= 1")
    generator = torch.Generator().manual_seed(1000 * int(seed) + int(epoch))
    order = torch.randperm(n, generator=generator).numpy()
    return [order[start : start + batch_size] for start in range(0, n, batch_size)]


def state_arrays(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's weights as plain data: parameter name -> float32 NumPy array (a copy)."""
    return {name: t.detach().cpu().numpy().copy() for name, t in model.state_dict().items()}


def classifier_from_state(state: dict[str, Any]) -> SeedClassifier:
    """A :class:`SeedClassifier` holding ``state`` (name -> array, as :func:`state_arrays`).

    Raises ValueError naming the problem when the names or shapes do not fit.
    """
    model = SeedClassifier().to(memory_format=torch.channels_last)
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"state must have the keys {sorted(expected)}, got {got}")
    tensors = {}
    for name, reference in expected.items():
        array = np.asarray(state[name], dtype=np.float32)
        if array.shape != tuple(reference.shape):
            raise ValueError(
                f"state[{name!r}] has shape {array.shape}, expected {tuple(reference.shape)}"
            )
        tensors[name] = torch.from_numpy(array.copy())
    model.load_state_dict(tensors)
    return model


def filter_grid(weight: Any, scale: int = 8, padding: int = 1) -> np.ndarray:
    """First-layer filters as one RGB image for ``SummaryWriter.add_image`` or ``imshow``.

    weight: (K, 3, kH, kW) array or tensor. Returns float32 (3, H, W) in [0, 1], channels first:
    the K filters side by side, each enlarged ``scale`` times, ``padding`` white pixels around
    every filter. All filters share one scale centred at 0: 0.5 is a weight of 0, 0 and 1 are
    the largest negative and positive weight in absolute value, so filters can be compared.
    """
    w = weight.detach().cpu().numpy() if hasattr(weight, "detach") else np.asarray(weight)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"weight must be (K, 3, kH, kW), got shape {w.shape}")
    k, _, kh, kw = w.shape
    largest = float(np.abs(w).max())
    scaled = 0.5 + w / (2 * largest) if largest > 0 else np.full(w.shape, 0.5)
    big = np.kron(scaled, np.ones((1, 1, scale, scale)))
    height, width = kh * scale, kw * scale
    grid = np.ones((3, height + 2 * padding, k * (width + padding) + padding))
    for i in range(k):
        left = padding + i * (width + padding)
        grid[:, padding : padding + height, left : left + width] = big[i]
    return grid.astype(np.float32)


def edge_kernels() -> tuple[np.ndarray, list[str]]:
    """Assignment 08's hand-made first layer: float32 weights (6, 3, 3, 3) and their names.

    Sobel x and y, Laplacian and box blur applied to the grey image (the same kernel / 3 on R, G
    and B), and two colour-opponent centre pixels (red - green, blue - yellow).
    """
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
    laplace = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
    centre = np.zeros((3, 3), dtype=np.float32)
    centre[1, 1] = 1
    weights = np.zeros((6, 3, 3, 3), dtype=np.float32)
    weights[0] = sobel_x / 3
    weights[1] = sobel_x.T / 3
    weights[2] = laplace / 3
    weights[3] = 1 / 27
    weights[4, 0], weights[4, 1] = centre, -centre
    weights[5, 2], weights[5, 0], weights[5, 1] = centre, -centre / 2, -centre / 2
    return weights, ["Sobel x", "Sobel y", "Laplacian", "box blur", "red-green", "blue-yellow"]
