"""A class for the similarity report: independent solutions, disguised copies, blanks.

Every implementation below was written by hand, on its own, for the exercises of 03_multichannel
(corr2d, corr2d_multi_in, corr2d_multi_in_out, conv2d_batch) and of 01_anatomy
(conv2d_param_count, conv2d_output_size): nested loops, sliding windows with einsum, pure Python
with helper functions, shifted slices, as_strided with tensordot, and so on. The copies are what
a student does to hide one: other names, new comments, other line breaks and blank lines,
helper functions in another order, a statement rewritten (``+=`` for ``= ... +``), an exercise
left out. Each answer is typed into the release notebook as a student would: the released
signature and docstring kept, the stub replaced (``before``: helper code above the function).

``COPIES`` names the copied pairs; every other pair of students is independent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from student_notebooks import answer_stub, release_copy

from autograder.notebooks import grade_id, is_solution_cell

# ---------------------------------------------------------------- 03_multichannel

MULTICHANNEL = "03_multichannel"

ADA = {
    "corr2d": """
x = np.asarray(x, dtype=float)
k = np.asarray(k, dtype=float)
kh, kw = k.shape
h_out = x.shape[0] - kh + 1
w_out = x.shape[1] - kw + 1
out = np.zeros((h_out, w_out))
for i in range(h_out):
    for j in range(w_out):
        window = x[i:i + kh, j:j + kw]
        out[i, j] = np.sum(window * k)
return out
""",
    "corr2d_multi_in": """
total = corr2d(x[0], k[0])
for c in range(1, len(x)):
    total = total + corr2d(x[c], k[c])
return total
""",
    "corr2d_multi_in_out": """
maps = []
for kernel in k:
    maps.append(corr2d_multi_in(x, kernel))
return np.stack(maps)
""",
    "conv2d_batch": """
results = []
for sample in x:
    y = corr2d_multi_in_out(sample, weight)
    if bias is not None:
        y = y + np.reshape(bias, (-1, 1, 1))
    results.append(y)
return np.array(results)
""",
}

# FRANK copies ADA: new names, comments, blank lines, a line split in parentheses.
FRANK = {
    "corr2d": """
# make float arrays first
img = np.asarray(x, dtype=float)
ker = np.asarray(k, dtype=float)
rows, cols = ker.shape

# size of the result
out_h = (img.shape[0]
         - rows + 1)
out_w = img.shape[1] - cols + 1
result = np.zeros((out_h, out_w))

for r in range(out_h):
    for c in range(out_w):
        patch = img[r:r+rows, c:c+cols]   # the part under the kernel
        result[r, c] = np.sum(patch*ker)
return result
""",
    "corr2d_multi_in": """
# add the channels up one by one
acc = corr2d(x[0], k[0])
for ch in range(1, len(x)):
    acc = acc + corr2d(x[ch], k[ch])

return acc
""",
    "corr2d_multi_in_out": """
outs = []
for kk in k:  # one kernel per output channel
    outs.append(corr2d_multi_in(x, kk))
return np.stack(outs)
""",
    "conv2d_batch": """
batch = []
for image in x:
    o = corr2d_multi_in_out(image, weight)
    if bias is not None:
        o = o + np.reshape(bias, (-1, 1, 1))  # broadcast over H and W
    batch.append(o)
return np.array(batch)
""",
}

BEN = {
    "corr2d": """
from numpy.lib.stride_tricks import sliding_window_view

windows = sliding_window_view(np.asarray(x, dtype=float), np.shape(k))
return np.einsum("ijkl,kl->ij", windows, np.asarray(k, dtype=float))
""",
    "corr2d_multi_in": """
return np.sum([corr2d(xc, kc) for xc, kc in zip(x, k)], axis=0)
""",
    "corr2d_multi_in_out": """
return np.array([corr2d_multi_in(x, kernel) for kernel in k])
""",
    "conv2d_batch": """
out = np.array([corr2d_multi_in_out(image, weight) for image in x])
if bias is None:
    return out
return out + np.asarray(bias)[np.newaxis, :, np.newaxis, np.newaxis]
""",
}

# CHEN: pure Python sums in helper functions above corr2d.
CHEN_HELPERS = '''
def window_sum(x, k, top, left):
    """Sum of the products of k with the window of x at (top, left)."""
    total = 0.0
    for u in range(len(k)):
        for v in range(len(k[0])):
            total += x[top + u][left + v] * k[u][v]
    return total


def output_shape(x, k):
    return len(x) - len(k) + 1, len(x[0]) - len(k[0]) + 1


'''
CHEN = {
    "corr2d": """
height, width = output_shape(x, k)
out = np.empty((height, width))
for top in range(height):
    for left in range(width):
        out[top, left] = window_sum(x, k, top, left)
return out
""",
    "corr2d_multi_in": """
c_count = len(x)
acc = None
for c in range(c_count):
    part = corr2d(x[c], k[c])
    acc = part if acc is None else acc + part
return acc
""",
    "corr2d_multi_in_out": """
o_count = len(k)
first = corr2d_multi_in(x, k[0])
out = np.empty((o_count,) + first.shape)
out[0] = first
for o in range(1, o_count):
    out[o] = corr2d_multi_in(x, k[o])
return out
""",
    "conv2d_batch": """
n = len(x)
outs = [corr2d_multi_in_out(x[i], weight) for i in range(n)]
out = np.stack(outs, axis=0)
if bias is not None:
    for o in range(out.shape[1]):
        out[:, o] += bias[o]
return out
""",
}

# GINA copies CHEN: the two helpers swapped and renamed, new comments and docstring.
GINA_HELPERS = '''
def out_size(img, ker):
    # rows and columns of the result
    return len(img) - len(ker) + 1, len(img[0]) - len(ker[0]) + 1


def dot_at(img, ker, r0, c0):
    """Dot product at one position."""
    s = 0.0
    for a in range(len(ker)):
        for b in range(len(ker[0])):
            s += img[r0 + a][c0 + b] * ker[a][b]
    return s


'''
GINA = {
    "corr2d": """
H, W = out_size(x, k)
res = np.empty((H, W))
for r0 in range(H):
    for c0 in range(W):
        res[r0, c0] = dot_at(x, k, r0, c0)
return res
""",
    "corr2d_multi_in": """
nc = len(x)
s = None
for ch in range(nc):
    p = corr2d(x[ch], k[ch])
    s = p if s is None else s + p
return s
""",
    "corr2d_multi_in_out": """
n_out = len(k)
y0 = corr2d_multi_in(x, k[0])
y = np.empty((n_out,) + y0.shape)
y[0] = y0
for j in range(1, n_out):
    y[j] = corr2d_multi_in(x, k[j])
return y
""",
    "conv2d_batch": """
batch = len(x)
maps = [corr2d_multi_in_out(x[b], weight) for b in range(batch)]
res = np.stack(maps, axis=0)
if bias is not None:
    # add each output channel's bias
    for ch in range(res.shape[1]):
        res[:, ch] += bias[ch]
return res
""",
}

DARA = {
    "corr2d": """
x = np.array(x, dtype=np.float64)
k = np.array(k, dtype=np.float64)
H, W = x.shape
kH, kW = k.shape
acc = np.zeros((H - kH + 1, W - kW + 1), dtype=np.float64)
for u in range(kH):
    for v in range(kW):
        acc += k[u, v] * x[u:u + H - kH + 1, v:v + W - kW + 1]
return acc
""",
    "corr2d_multi_in": """
return np.add.reduce([corr2d(x[i], k[i]) for i in range(x.shape[0])])
""",
    "corr2d_multi_in_out": """
out = None
for o, kernel in enumerate(k):
    y = corr2d_multi_in(x, kernel)
    if out is None:
        out = np.zeros((len(k),) + y.shape)
    out[o] = y
return out
""",
    "conv2d_batch": """
x = np.asarray(x)
b = np.zeros(len(weight)) if bias is None else np.asarray(bias, dtype=float)
return np.stack([corr2d_multi_in_out(x[i], weight) + b[:, None, None] for i in range(len(x))])
""",
}

# HUGO copies DARA on three exercises (corr2d_multi_in_out left blank), renamed, commented,
# one long line broken up, `+=` spelled out.
HUGO = {
    "corr2d": """
# work in float64
img = np.array(x, dtype=np.float64)
kern = np.array(k, dtype=np.float64)
n_rows, n_cols = img.shape
k_rows, k_cols = kern.shape
total = np.zeros(
    (n_rows - k_rows + 1, n_cols - k_cols + 1), dtype=np.float64
)
# slide the image under each weight of the kernel
for a in range(k_rows):
    for b in range(k_cols):
        total = total + kern[a, b] * img[a:a + n_rows - k_rows + 1,
                                         b:b + n_cols - k_cols + 1]
return total
""",
    "corr2d_multi_in": """
return np.add.reduce(
    [corr2d(x[c], k[c]) for c in range(x.shape[0])]
)
""",
    "conv2d_batch": """
x = np.asarray(x)
# zero bias when there is none
bb = np.zeros(len(weight)) if bias is None else np.asarray(bias, dtype=float)
return np.stack(
    [corr2d_multi_in_out(x[n], weight) + bb[:, None, None] for n in range(len(x))]
)
""",
}

EVE = {
    "corr2d": """
from numpy.lib.stride_tricks import as_strided

a = np.ascontiguousarray(x, dtype=float)
kernel = np.asarray(k, dtype=float)
oh, ow = a.shape[0] - kernel.shape[0] + 1, a.shape[1] - kernel.shape[1] + 1
view = as_strided(a, shape=(oh, ow) + kernel.shape, strides=a.strides * 2)
return np.tensordot(view, kernel, axes=([2, 3], [0, 1]))
""",
    "corr2d_multi_in": """
result = 0
for xc, kc in zip(x, k):
    result = result + corr2d(xc, kc)
return result
""",
    "corr2d_multi_in_out": """
return np.concatenate([corr2d_multi_in(x, kk)[None] for kk in k])
""",
    "conv2d_batch": """
n = x.shape[0]
y = np.stack([corr2d_multi_in_out(x[i], weight) for i in range(n)])
if bias is not None:
    y += np.asarray(bias).reshape(1, -1, 1, 1)
return y
""",
}

# JON did only the first exercise, his own way.
JON = {
    "corr2d": """
x = np.asarray(x, float)
k = np.asarray(k, float)
kh, kw = k.shape
rows = []
for i in range(x.shape[0] - kh + 1):
    rows.append([np.vdot(x[i:i + kh, j:j + kw], k) for j in range(x.shape[1] - kw + 1)])
return np.array(rows)
""",
}

MULTICHANNEL_CLASS = {
    "ada": (ADA, {}),
    "ben": (BEN, {}),
    "chen": (CHEN, {"corr2d": CHEN_HELPERS}),
    "dara": (DARA, {}),
    "eve": (EVE, {}),
    "jon": (JON, {}),
    "frank": (FRANK, {}),
    "gina": (GINA, {"corr2d": GINA_HELPERS}),
    "hugo": (HUGO, {}),
    "ivy": ({}, {}),  # handed in the blank release
    "kim": ({}, {}),  # so did kim
}
MULTICHANNEL_COPIES = {("ada", "frank"), ("chen", "gina"), ("dara", "hugo")}

# ---------------------------------------------------------------- 01_anatomy

ANATOMY = "01_anatomy"

P1 = """
if isinstance(kernel_size, int):
    kernel_size = (kernel_size, kernel_size)
kh, kw = kernel_size
if groups < 1:
    raise ValueError("groups must be positive")
if in_channels % groups != 0 or out_channels % groups != 0:
    raise ValueError("channels must be divisible by groups")
n = out_channels * (in_channels // groups) * kh * kw
if bias:
    n += out_channels
return n
"""

P2 = """
try:
    kh, kw = kernel_size
except TypeError:
    kh = kw = kernel_size
if groups <= 0 or in_channels % groups or out_channels % groups:
    raise ValueError(f"bad groups={groups} for {in_channels} -> {out_channels} channels")
per_filter = (in_channels // groups) * kh * kw
return out_channels * per_filter + (out_channels if bias else 0)
"""

P3 = """
import math

size = kernel_size if isinstance(kernel_size, (tuple, list)) else [kernel_size] * 2
ok = groups >= 1 and in_channels % groups == 0 and out_channels % groups == 0
if not ok:
    raise ValueError("invalid groups")
weight_shape = (out_channels, in_channels // groups, *size)
return math.prod(weight_shape) + out_channels * int(bool(bias))
"""

P4 = """
kernel = tuple(kernel_size) if hasattr(kernel_size, "__len__") else (kernel_size,) * 2
if not (isinstance(groups, int) and groups > 0):
    raise ValueError("groups must be a positive integer")
for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
    if value % groups:
        raise ValueError(f"{name}={value} is not divisible by groups={groups}")
count = 0
for _ in range(out_channels):
    count += (in_channels // groups) * kernel[0] * kernel[1]
    if bias:
        count += 1
return count
"""

O1 = """
def to_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)

kh, kw = to_pair(kernel_size)
sh, sw = to_pair(stride)
dh, dw = to_pair(dilation)
if padding == "valid":
    ph = pw = 0
elif padding == "same":
    if (sh, sw) != (1, 1):
        raise ValueError("padding='same' needs stride 1")
    return h, w
else:
    ph, pw = to_pair(padding)
h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
if h_out <= 0 or w_out <= 0:
    raise ValueError("kernel larger than the padded input")
return h_out, w_out
"""

O2 = """
import math

params = []
for value in (kernel_size, stride, dilation):
    params.append(list(value) if isinstance(value, (list, tuple)) else [value, value])
(k1, k2), (s1, s2), (d1, d2) = params
if isinstance(padding, str):
    if padding not in ("same", "valid"):
        raise ValueError(padding)
    if padding == "same":
        if s1 != 1 or s2 != 1:
            raise ValueError("strided 'same' padding")
        return (h, w)
    padding = 0
p1, p2 = (padding, padding) if isinstance(padding, int) else padding
sizes = []
for n, k, s, p, d in ((h, k1, s1, p1, d1), (w, k2, s2, p2, d2)):
    size = math.floor((n + 2 * p - d * (k - 1) - 1) / s + 1)
    if size < 1:
        raise ValueError("output would be empty")
    sizes.append(size)
return tuple(sizes)
"""

O3 = """
import numpy as np

k = np.broadcast_to(np.asarray(kernel_size), (2,))
s = np.broadcast_to(np.asarray(stride), (2,))
d = np.broadcast_to(np.asarray(dilation), (2,))
if isinstance(padding, str):
    if padding == "same" and np.all(s == 1):
        return int(h), int(w)
    if padding != "valid":
        raise ValueError(f"unsupported padding {padding}")
    p = np.zeros(2, dtype=int)
else:
    p = np.broadcast_to(np.asarray(padding), (2,))
effective = d * (k - 1) + 1
out = (np.array([h, w]) + 2 * p - effective) // s + 1
if (out < 1).any():
    raise ValueError("the kernel does not fit")
return int(out[0]), int(out[1])
"""

O4 = """
def one(n, k, s, p, d):
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise ValueError(f"input {n} with padding {p} is smaller than the kernel span {span}")
    return 1 + (n + 2 * p - span) // s

def hw(v, what):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{what}: expected 2 values")
        return v[0], v[1]
    return v, v

if padding == "same":
    if hw(stride, "stride") != (1, 1):
        raise ValueError("'same' padding requires stride 1")
    return h, w
if padding == "valid":
    padding = 0
names = ("kernel_size", "stride", "padding", "dilation")
args = [hw(v, name) for v, name in zip((kernel_size, stride, padding, dilation), names)]
return tuple(one(n, *(a[i] for a in args)) for i, n in enumerate((h, w)))
"""

# A copy of P2 + O4: the nested functions swapped, names and messages changed, comments.
P2_COPY = """
# kernel_size may be an int or a pair
try:
    a, b = kernel_size
except TypeError:
    a = b = kernel_size
if groups <= 0 or in_channels % groups or out_channels % groups:
    raise ValueError(f"groups={groups} does not divide {in_channels} and {out_channels}")
weights_per_filter = (in_channels // groups) * a * b
return out_channels * weights_per_filter + (out_channels if bias else 0)
"""

O4_COPY = """
def as_two(val, label):
    # ints become (val, val)
    if isinstance(val, (tuple, list)):
        if len(val) != 2:
            raise ValueError(f"{label} needs two numbers")
        return val[0], val[1]
    return val, val


def size_1d(size, kern, step, pad, dil):
    reach = dil * (kern - 1) + 1
    if size + 2 * pad < reach:
        raise ValueError(f"size {size} + padding {pad} is below the kernel reach {reach}")
    return 1 + (size + 2 * pad - reach) // step


if padding == "same":
    if as_two(stride, "stride") != (1, 1):
        raise ValueError("stride must be 1 for 'same'")
    return h, w
if padding == "valid":
    padding = 0
labels = ("kernel_size", "stride", "padding", "dilation")
vals = [as_two(v, lab) for v, lab in zip((kernel_size, stride, padding, dilation), labels)]
return tuple(size_1d(size, *(t[d] for t in vals)) for d, size in enumerate((h, w)))
"""

# A copy of P1 + O1, reformatted (one-line ifs split, parentheses, spacing) and renamed.
P1_COPY = """
if isinstance(kernel_size, int): kernel_size = (kernel_size, kernel_size)
kernel_h, kernel_w = kernel_size
if groups < 1:
    raise ValueError("groups has to be >= 1")
if (in_channels % groups != 0
        or out_channels % groups != 0):
    raise ValueError("groups must divide the channels")
total = out_channels*(in_channels//groups)*kernel_h*kernel_w
if bias:
    total += out_channels
return total
"""

O1_COPY = """
def pair_of(value):
    return (value, value) if isinstance(value, int) else tuple(value)


kernel_h, kernel_w = pair_of(kernel_size)
stride_h, stride_w = pair_of(stride)
dil_h, dil_w = pair_of(dilation)
if padding == "valid":
    pad_h = pad_w = 0
elif padding == "same":
    if (stride_h, stride_w) != (1, 1):
        raise ValueError("'same' only with stride 1")
    return h, w
else:
    pad_h, pad_w = pair_of(padding)
out_h = (h + 2*pad_h - dil_h*(kernel_h - 1) - 1)//stride_h + 1
out_w = (w + 2*pad_w - dil_w*(kernel_w - 1) - 1)//stride_w + 1
if out_h <= 0 or out_w <= 0:
    raise ValueError("the kernel does not fit in the padded input")
return out_h, out_w
"""

# Zip entry name -> (answers, helper code). Canvas files and Moodle folders, Unicode names, and
# two names that map to the same id (intake keeps them apart with a suffix).
ANATOMY_CLASS = {
    "pia_101_1_anatomy.ipynb": ({"conv2d_param_count": P1, "conv2d_output_size": O1}, {}),
    "Łukasz Nowak_77_assignsubmission_file_/anatomy.ipynb": (
        {"conv2d_param_count": P2, "conv2d_output_size": O4},
        {},
    ),
    "omar_103_1_anatomy.ipynb": ({"conv2d_param_count": P3, "conv2d_output_size": O2}, {}),
    "Zoë_104_1_anatomy.ipynb": ({"conv2d_param_count": P4, "conv2d_output_size": O3}, {}),
    "Ana María_105_assignsubmission_file_/anatomy.ipynb": (
        {"conv2d_param_count": P2_COPY, "conv2d_output_size": O4_COPY},
        {},
    ),
    # a second Ana María (an id that collides with the first): hands in omar's code as is
    "Ana_María_106_1_anatomy.ipynb": ({"conv2d_param_count": P3, "conv2d_output_size": O2}, {}),
    "rosa_107_1_anatomy.ipynb": (
        {"conv2d_param_count": P1_COPY, "conv2d_output_size": O1_COPY},
        {},
    ),
    "sam_108_1_anatomy.ipynb": ({}, {}),  # the blank release
}
# The copied pairs, by the entry names' student part (mapped to ids through intake's origin).
ANATOMY_COPIES = {("pia", "rosa"), ("Łukasz Nowak", "Ana María"), ("omar", "Ana_María")}


# ---------------------------------------------------------------- building submissions


def answer(release_nb, gid: str, body: str, before: str = "") -> str:
    """The solution cell as the student typed it: stub replaced by body, helpers above the def."""
    source = answer_stub(release_nb, gid, body)
    if before:
        match = re.search(r"^def ", source, re.M)
        source = source[: match.start()] + before.lstrip("\n") + source[match.start() :]
    return source


def submission(release_nb, answers: dict[str, str], helpers: dict[str, str]):
    nb = nbformat.from_dict(json.loads(json.dumps(release_nb)))
    ids = {grade_id(c) for c in nb.cells if is_solution_cell(c)}
    assert set(answers) <= ids, f"unknown exercises {set(answers) - ids}"
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in answers:
            cell.source = answer(release_nb, gid, answers[gid], helpers.get(gid, ""))
    return nb


def released_notebook(assignment: str, tmp: Path):
    folder = release_copy(assignment, tmp)
    (path,) = sorted(folder.glob("*.ipynb"))
    return path.stem, nbformat.read(path, as_version=4)


def write_multichannel_class(tmp: Path, extra: dict | None = None) -> Path:
    """nbgrader layout: tmp/course/submitted/<student>/03_multichannel/multichannel.ipynb."""
    name, release_nb = released_notebook(MULTICHANNEL, tmp / "release")
    course = tmp / "course"
    for student, (answers, helpers) in {**MULTICHANNEL_CLASS, **(extra or {})}.items():
        nb = submission(release_nb, answers, helpers)
        path = course / "submitted" / student / MULTICHANNEL / f"{name}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    return course


def write_anatomy_zip(tmp: Path) -> Path:
    """An LMS zip (Canvas files, Moodle folders) of the 01_anatomy class."""
    import zipfile

    _, release_nb = released_notebook(ANATOMY, tmp / "release")
    path = tmp / "anatomy_submissions.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry, (answers, helpers) in ANATOMY_CLASS.items():
            zf.writestr(entry, nbformat.writes(submission(release_nb, answers, helpers)))
    return path
