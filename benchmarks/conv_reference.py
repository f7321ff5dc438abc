"""Benchmark: the reference NumPy conv2d of assignment 06 vs ``torch.nn.functional.conv2d``.

Fixed suite of shapes (float32, torch on 2 threads), median of repeats; prints each ratio
(ours / torch) and their geometric mean. Target: geometric mean <= 2.0.

    python benchmarks/conv_reference.py [--repeats 7] [--threads 2]

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


def median_time(fn, repeats: int) -> float:
    fn()  # warm up (allocations, torch's kernel selection)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    ratios = []
    print(f"{'case':40s} {'ours ms':>9s} {'torch ms':>9s} {'ratio':>6s}")
    for name, (x_shape, w_shape, params) in SUITE.items():
        x = rng.standard_normal(x_shape, dtype=np.float32)
        weight = rng.standard_normal(w_shape, dtype=np.float32)
        bias = rng.standard_normal(w_shape[0], dtype=np.float32)
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias)
        with torch.no_grad():
            expected = F.conv2d(xt, wt, bt, **params).numpy()
            ours_out = conv2d(x, weight, bias, **params)
            assert np.allclose(ours_out, expected, atol=1e-3, rtol=1e-3), name
            ours = median_time(
                lambda x=x, w=weight, b=bias, p=params: conv2d(x, w, b, **p), args.repeats
            )
            theirs = median_time(
                lambda x=xt, w=wt, b=bt, p=params: F.conv2d(x, w, b, **p), args.repeats
            )
        ratios.append(ours / theirs)
        print(f"{name:40s} {ours * 1e3:9.2f} {theirs * 1e3:9.2f} {ours / theirs:6.2f}")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"geometric mean of ratios (ours / torch): {geo:.2f}  (target <= 2.0)")
    return geo


if __name__ == "__main__":
    main()
