"""Reference solution of assignment 06 (vectorized NumPy conv2d), used by the benchmark.

It is the same code as the solution cell ``conv2d`` of
``source/06_conv2d_numpy/conv2d_numpy.ipynb``;
``tests/test_06_conv2d_numpy.py`` checks that both behave the same and match torch. It lives here,
not in ``course/``, because ``course/`` is importable by students and must not hold solutions.
"""

import numpy as np


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """2-D cross-correlation like ``torch.nn.functional.conv2d`` / ``nn.Conv2d``, in NumPy.

    x: (N, C_in, H, W) or unbatched (C_in, H, W); weight: (C_out, C_in/groups, kH, kW);
    bias: (C_out,) or None; stride, padding, dilation: int or (h, w); padding may be 'same'/'valid';
    padding_mode: 'zeros', 'reflect', 'replicate' or 'circular'.
    Returns (N, C_out, H_out, W_out) (or (C_out, H_out, W_out) for an unbatched x).
    Raises ValueError/RuntimeError where torch raises.
    """

    ### BEGIN SOLUTION
    def pair(v, name):
        v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
        if len(v) != 2 or not all(isinstance(n, (int, np.integer)) for n in v):
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        return int(v[0]), int(v[1])

    x, weight = np.asarray(x), np.asarray(weight)
    if x.ndim == 3:
        out = conv2d(x[None], weight, bias, stride, padding, dilation, groups, padding_mode)
        return out[0]
    if x.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(f"expected x 3-D/4-D and weight 4-D, got {x.ndim}-D and {weight.ndim}-D")
    if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
        raise ValueError(f"unknown padding_mode {padding_mode!r}")
    n, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    if not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ValueError("groups must be a positive integer")
    if c_in % groups or c_out % groups:
        raise ValueError("in_channels and out_channels must be divisible by groups")
    if c_per_group * groups != c_in:
        raise RuntimeError(f"weight expects {c_per_group * groups} input channels, x has {c_in}")
    (sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")
    if min(sh, sw, dh, dw) <= 0:
        raise RuntimeError("stride and dilation must be positive")
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the kernel's footprint
    if isinstance(padding, str):
        if padding == "valid":
            top = bottom = left = right = 0
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            top, left = (span_h - 1) // 2, (span_w - 1) // 2  # odd extra goes bottom/right
            bottom, right = span_h - 1 - top, span_w - 1 - left
        else:
            raise ValueError(f"padding must be 'same', 'valid', an int or a pair, got {padding!r}")
    else:
        (top, left) = (bottom, right) = pair(padding, "padding")
    if min(top, left) < 0:
        raise RuntimeError("negative padding is not supported")
    if padding_mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        raise RuntimeError("reflect padding must be smaller than the input size")
    if padding_mode == "circular" and (max(top, bottom) > h or max(left, right) > w):
        raise RuntimeError("circular padding must not exceed the input size")
    hp, wp = h + top + bottom, w + left + right
    h_out, w_out = (hp - span_h) // sh + 1, (wp - span_w) // sw + 1
    if hp < span_h or wp < span_w:
        raise RuntimeError("kernel (with dilation) is larger than the padded input")

    # Channels-last copy of the padded input: every kernel tap then reads a 2-D block
    # (positions, channels) and one matrix product per tap does all the work.
    dtype = np.result_type(x.dtype, weight.dtype, np.float32)
    xl = x.transpose(0, 2, 3, 1).astype(dtype, copy=False)
    if padding_mode == "zeros":
        xp = np.zeros((n, hp, wp, c_in), dtype)
        xp[:, top : top + h, left : left + w] = xl
    else:
        mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[padding_mode]
        xp = np.pad(xl, ((0, 0), (top, bottom), (left, right), (0, 0)), mode=mode)
    wl = weight.astype(dtype, copy=False)
    g_in, g_out = c_in // groups, c_out // groups

    if (sh, sw) == (1, 1):
        # Flattened trick: in the (n*hp*wp, C) matrix, output position p reads row p + offset for
        # tap (i, j), offset = i*dh*wp + j*dw. Rows for columns >= w_out are computed and dropped.
        flat = xp.reshape(n * hp * wp, c_in)
        rows = (n - 1) * hp * wp + (h_out - 1) * wp + w_out
        acc = np.zeros((n * hp * wp, c_out), dtype)
        taps = [(i, j, i * dh * wp + j * dw) for i in range(kh) for j in range(kw)]
        out_rows = acc[:rows]

        def block(off):
            return flat[off : off + rows]
    else:
        # Strided: copy each tap's (strided) window positions into a contiguous block.
        rows = n * h_out * w_out
        acc = np.zeros((rows, c_out), dtype)
        taps = [(i, j, (i * dh, j * dw)) for i in range(kh) for j in range(kw)]
        out_rows = acc

        def block(off):
            a = xp[:, off[0] : off[0] + sh * (h_out - 1) + 1 : sh, off[1] :: sw][:, :, :w_out]
            return np.ascontiguousarray(a).reshape(rows, c_in)

    tmp = np.empty((out_rows.shape[0], g_out), dtype)
    for i, j, off in taps:
        a = block(off)
        if g_in == 1 and groups > 1:  # depthwise-like: elementwise, no matrix product
            k = wl[:, 0, i, j].reshape(groups, g_out)
            out_rows.reshape(-1, groups, g_out)[...] += a[:, :, None] * k
            continue
        for g in range(groups):
            k = wl[g * g_out : (g + 1) * g_out, :, i, j].T  # (g_in, g_out)
            np.matmul(a[:, g * g_in : (g + 1) * g_in], k, out=tmp)
            out_rows[:, g * g_out : (g + 1) * g_out] += tmp
    if bias is not None:
        acc += np.asarray(bias, dtype)
    if (sh, sw) == (1, 1):
        out = acc.reshape(n, hp, wp, c_out)[:, :h_out, :w_out]
    else:
        out = acc.reshape(n, h_out, w_out, c_out)
    return out.transpose(0, 3, 1, 2)
    ### END SOLUTION
