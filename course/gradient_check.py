"""Numerical gradients by central differences, for checking a hand-written backward pass.

In the style of CS231n's ``gradient_check.py``: perturb one entry of the input at a time by
``±h`` and measure how a function's output changes. Use float64 throughout: with float32 the
rounding error of ``f`` swamps the difference quotient.

Nothing here computes a convolution gradient analytically; these helpers only measure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Gradient of a scalar function by central differences.

    f: callable taking an array shaped like ``x`` and returning a number (a float or 0-d array).
    x: float64 array of any shape, e.g. (N, C, H, W). It is perturbed in place during the call and
       restored before returning.
    h: step size.

    Returns an array of ``x.shape``: ``grad[i] = (f(x + h·e_i) - f(x - h·e_i)) / (2h)``.
    Costs ``2 * x.size`` calls of ``f``: keep ``x`` small.
    """
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise ValueError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        index = it.multi_index
        old = x[index]
        x[index] = old + h
        plus = float(f(x))
        x[index] = old - h
        minus = float(f(x))
        x[index] = old
        grad[index] = (plus - minus) / (2 * h)
        it.iternext()
    return grad


def numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, grad_out: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Gradient of ``sum(f(x) * grad_out)`` with respect to ``x``: a vector-Jacobian product.

    f: callable taking an array shaped like ``x`` and returning an array shaped like ``grad_out``
       (e.g. a conv forward: x (N, C_in, H, W) -> y (N, C_out, H_out, W_out)).
    x: float64 array; perturbed in place during the call and restored.
    grad_out: float64 array of ``f(x).shape``, the upstream gradient dL/dy.

    Returns an array of ``x.shape``: dL/dx where L = sum(f(x) * grad_out).
    """
    grad_out = np.asarray(grad_out, dtype=np.float64)
    return numerical_gradient(lambda v: np.sum(np.asarray(f(v)) * grad_out), x, h)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)`` (any equal shapes).

    Around 1e-7 or below: the gradients agree. Around 1e-2 or above: one of them is wrong.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
