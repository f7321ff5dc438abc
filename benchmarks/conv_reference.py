"""Benchmark: the reference NumPy conv2d of assignment 06 vs ``torch.nn.functional.conv2d``.

Fixed suite of shapes (float32, torch on 2 threads), median of repeats (the two timed alternately,
so both see the same machine load); prints each ratio (ours / torch) and their geometric mean,
and the same from the minimum times, which is less sensitive to a busy machine.
Target: geometric mean <= 2.0.

    python benchmarks/conv_reference.py [--repeats 7] [--threads 2] [--notebook]

``--notebook`` times the notebook's own solution of 06 instead (its five graded steps composed,
windows + one einsum per group), to show what the faster variant buys.

``SUITE`` is imported by ``tests/test_06_conv2d_numpy.py``, which checks (on small versions of
these shapes) that the reference agrees with torch, so the benchmark cannot silently be wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference_conv import conv2d  # noqa: E402

#: name -> (x shape, weight shape, conv2d keyword arguments)
SUITE: dict[str, tuple[tuple[int, ...], tuple[int, ...], dict]] = {
    "CIFAR batch 64x3x32x32 -> 6, k3": ((64, 3, 32, 32), (6, 3, 3, 3), {}),
    "32x64x56x56 -> 64, k3 pad 1": ((32, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}),
    "1x1 conv 32x64x56x56 -> 128": ((32, 64, 56, 56), (128, 64, 1, 1), {}),
    "depthwise 32x32x56x56, k3 pad 1": (
        (32, 32, 56, 56),
        (32, 1, 3, 3),
        {"padding": 1, "groups": 32},
    ),
    "dilation 2: 16x32x56x56 -> 32, k3": (
        (16, 32, 56, 56),
        (32, 32, 3, 3),
        {"dilation": 2, "padding": 2},
    ),
    "stride 2: 32x64x56x56 -> 128, k3": (
        (32, 64, 56, 56),
        (128, 64, 3, 3),
        {"stride": 2, "padding": 1},
    ),
}


def paired_times(ours, theirs, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per call of each function, alternating the two so both see the same load."""
    ours(), theirs()  # warm up (allocations, torch's kernel selection)
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ours()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs()
        b.append(time.perf_counter() - start)
    return np.array(a), np.array(b)


def notebook_conv2d():
    """conv2d of source/06_conv2d_numpy, from its numpy-only solution cells run in order."""
    from pathlib import Path

    from autograder.notebooks import numpy_only_namespace

    root = Path(__file__).resolve().parent.parent
    return numpy_only_namespace(root / "source" / "06_conv2d_numpy" / "conv2d_numpy.ipynb")[
        "conv2d"
    ]


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--notebook", action="store_true", help="time the notebook's step-by-step solution of 06"
    )
    args = parser.parse_args(argv)
    ours_fn = notebook_conv2d() if args.notebook else conv2d

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    ratios, best_ratios = [], []
    print(f"{'case':36s} {'ours ms':>8s} {'torch ms':>8s} {'ratio':>6s}   (min-time ratio)")
    for name, (x_shape, w_shape, params) in SUITE.items():
        x = rng.standard_normal(x_shape, dtype=np.float32)
        weight = rng.standard_normal(w_shape, dtype=np.float32)
        bias = rng.standard_normal(w_shape[0], dtype=np.float32)
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias)
        with torch.no_grad():
            expected = F.conv2d(xt, wt, bt, **params).numpy()
            assert np.allclose(ours_fn(x, weight, bias, **params), expected, atol=1e-3), name
            ours, theirs = paired_times(
                lambda x=x, w=weight, b=bias, p=params: ours_fn(x, w, b, **p),
                lambda x=xt, w=wt, b=bt, p=params: F.conv2d(x, w, b, **p),
                args.repeats,
            )
        ratio = float(np.median(ours) / np.median(theirs))
        ratios.append(ratio)
        best_ratios.append(float(ours.min() / theirs.min()))
        print(
            f"{name:36s} {np.median(ours) * 1e3:8.2f} {np.median(theirs) * 1e3:8.2f} "
            f"{ratio:6.2f}   ({best_ratios[-1]:.2f})"
        )
    geo = float(np.exp(np.mean(np.log(ratios))))
    geo_best = float(np.exp(np.mean(np.log(best_ratios))))
    print(
        f"geometric mean of ratios (ours / torch, medians): {geo:.2f}  (target <= 2.0); "
        f"from minimum times: {geo_best:.2f}"
    )
    return geo


if __name__ == "__main__":
    main()
