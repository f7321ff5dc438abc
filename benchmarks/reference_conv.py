"""A faster variant of assignment 06's solution (vectorized NumPy conv2d), used by the benchmark.

The notebook ``source/06_conv2d_numpy/conv2d_numpy.ipynb`` builds ``conv2d`` from five graded
steps (output shape, sliding windows, grouped einsum, padding, the whole function); this file
does the same job in one function, channels-last, with one matrix product per kernel tap, which
is what the benchmark times. ``tests/test_06_conv2d_numpy.py`` checks that both agree and match
torch. It lives here, not in ``course/``, because ``course/`` is importable by students and must
not hold solutions.
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
        if padding_mode == "zeros":
            raise RuntimeError("negative padding is not supported with padding_mode='zeros'")
        # torch's F.pad crops for a negative amount (other modes): crop, then pad what is left
        x = x[:, :, max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]
        h, w = x.shape[2:]
        top, bottom, left, right = (max(p, 0) for p in (top, bottom, left, right))
    if padding_mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        raise RuntimeError("reflect padding must be smaller than the input size")
    if padding_mode == "circular" and (max(top, bottom) > h or max(left, right) > w):
        raise RuntimeError("circular padding must not exceed the input size")
    hp, wp = h + top + bottom, w + left + right
    h_out, w_out = (hp - span_h) // sh + 1, (wp - span_w) // sw + 1
    if hp < span_h or wp < span_w:
        raise RuntimeError("kernel (with dilation) is larger than the padded input")

    dtype = np.result_type(x.dtype, weight.dtype, np.float32)
    mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "zeros": "constant"}
    n_taps = kh * kw
    g_in, g_out = c_in // groups, c_out // groups
    depthwise = g_in == 1 and groups > 1
    if depthwise or (groups == 1 and c_in * n_taps <= 32):
        # Few input channels (e.g. RGB) or depthwise: work in NCHW, where copies move long runs.
        # Flattened per channel plane (plus a tail of zeros), tap (i, j) reads the contiguous run
        # of h_out*wp values at offset i*dh*wp + j*dw; columns >= w_out are dropped at the end.
        extra = (kw - 1) * dw if (sh, sw) == (1, 1) else 0
        flat = np.zeros((n, c_in, hp * wp + extra), dtype)
        planes = flat[:, :, : hp * wp].reshape(n, c_in, hp, wp)
        if padding_mode == "zeros":
            planes[:, :, top : top + h, left : left + w] = x
        else:
            widths = ((0, 0), (0, 0), (top, bottom), (left, right))
            planes[...] = np.pad(x.astype(dtype, copy=False), widths, mode=mode[padding_mode])
        length = h_out * wp if (sh, sw) == (1, 1) else h_out * w_out

        def taps_of(b):  # (tap index, (c_in, length) block of image b) for every tap
            for t in range(n_taps):
                r, c = (t // kw) * dh, (t % kw) * dw
                if (sh, sw) == (1, 1):
                    yield t, flat[b, :, r * wp + c : r * wp + c + length]
                else:
                    block = planes[b, :, r : r + sh * (h_out - 1) + 1 : sh, c::sw][..., :w_out]
                    yield t, block.reshape(c_in, length)

        out = np.empty((n, c_out, length), dtype)
        wl = weight.astype(dtype, copy=False)
        if depthwise:
            # Output channel o reads input channel o // g_out only: elementwise products, one
            # image at a time so the working set stays in cache.
            wk = wl.reshape(groups, g_out, n_taps)
            tmp = np.empty((groups, g_out, length), dtype)
            for b in range(n):
                acc = out[b].reshape(groups, g_out, length)
                for t, block in taps_of(b):
                    np.multiply(block[:, None, :], wk[:, :, t, None], out=acc if t == 0 else tmp)
                    if t:
                        acc += tmp
        else:
            # im2col per image: (c_in * n_taps, length) columns, one matrix product.
            wmat = wl.reshape(c_out, c_in * n_taps)
            cols = np.empty((c_in, n_taps, length), dtype)
            for b in range(n):
                for t, block in taps_of(b):
                    cols[:, t] = block
                np.matmul(wmat, cols.reshape(c_in * n_taps, length), out=out[b])
        if bias is not None:
            out += np.asarray(bias, dtype)[:, None]
        if (sh, sw) == (1, 1):
            return out.reshape(n, c_out, h_out, wp)[..., :w_out]
        return out.reshape(n, c_out, h_out, w_out)

    # Many channels: channels-last copy of the padded input, (n, hp, wp, C). For a kernel tap
    # (i, j) the input values it multiplies, over all output positions, form one block
    # (positions..., C); im2col stacks the blocks and one matrix product per group does the rest.
    xl = x.transpose(0, 2, 3, 1).astype(dtype, copy=False)
    if padding_mode == "zeros":
        xp = np.zeros((n, hp, wp, c_in), dtype)
        xp[:, top : top + h, left : left + w] = xl
    else:
        xp = np.pad(xl, ((0, 0), (top, bottom), (left, right), (0, 0)), mode=mode[padding_mode])
    wl = weight.astype(dtype, copy=False)

    if (sh, sw) == (1, 1):
        # Flattened trick: in the (n*hp*wp, C) matrix, output position p reads row p + offset for
        # tap (i, j), offset = i*dh*wp + j*dw: a contiguous block, no copy. Positions in columns
        # >= w_out (and between images) are computed too and dropped at the end.
        flat = xp.reshape(n * hp * wp, c_in)
        rows = (n - 1) * hp * wp + (h_out - 1) * wp + w_out
        lead = (rows,)
        acc = np.empty((n * hp * wp, c_out), dtype)  # rows >= `rows` are never read

        def block(i, j):
            off = i * dh * wp + j * dw
            return flat[off : off + rows]
    else:
        rows = n * h_out * w_out
        lead = (n, h_out, w_out)
        acc = np.empty((rows, c_out), dtype)

        def block(i, j):
            r, c = i * dh, j * dw
            return xp[:, r : r + sh * (h_out - 1) + 1 : sh, c : c + sw * (w_out - 1) + 1 : sw]

    out_rows = acc[:rows]
    # im2col: columns ordered (group, tap, channel in group); one matrix product per group.
    cols = np.empty((rows, groups, n_taps, g_in), dtype)
    target = cols.reshape(*lead, groups, n_taps, g_in)
    for t in range(n_taps):
        target[..., t, :] = block(t // kw, t % kw).reshape(*lead, groups, g_in)
    cols = cols.reshape(rows, groups, n_taps * g_in)
    # weight (c_out, g_in, kh, kw) -> per group (kh*kw*g_in, g_out) in the same order
    wmat = wl.reshape(groups, g_out, g_in, n_taps).transpose(0, 3, 2, 1)
    wmat = wmat.reshape(groups, n_taps * g_in, g_out)
    if groups == 1:
        np.matmul(cols[:, 0], wmat[0], out=out_rows)
    else:
        for g in range(groups):
            out_rows[:, g * g_out : (g + 1) * g_out] = cols[:, g] @ wmat[g]
    if bias is not None:
        out_rows += np.asarray(bias, dtype)
    if (sh, sw) == (1, 1):
        out = acc.reshape(n, hp, wp, c_out)[:, :h_out, :w_out]
    else:
        out = acc.reshape(n, h_out, w_out, c_out)
    return out.transpose(0, 3, 1, 2)
    ### END SOLUTION
