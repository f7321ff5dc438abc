"""course.checks.conv (the torch references and the student-facing checks) and course.plots."""

from __future__ import annotations

import gc
import re
import sys

import matplotlib
import numpy as np
import pytest
import torch
from conftest import ROOT
from hypothesis import HealthCheck, given, settings

from course import plots
from course.checks import conv
from course.checks.core import CheckFailure

matplotlib.use("Agg")
sys.path.insert(0, str(ROOT / "benchmarks"))
import reference_conv  # noqa: E402

SOURCE = open(ROOT / "benchmarks" / "reference_conv.py").read()


def variant(old: str, new: str):
    """The reference conv2d with one edit: a realistic wrong solution."""
    assert old in SOURCE, old
    namespace: dict = {}
    exec(SOURCE.replace(old, new), namespace)
    return namespace["conv2d"]


# --- the torch reference mirrors nn.Conv2d -------------------------------------------------------


@pytest.mark.parametrize("kwargs,x_shape", conv.MODULE_CONFIGS, ids=str)
def test_torch_conv2d_equals_nn_conv2d_forward(kwargs, x_shape):
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(**kwargs).double()
    x = torch.randn(*x_shape, dtype=torch.float64)
    params = {k: v for k, v in kwargs.items() if k not in ("in_channels", "out_channels")}
    params.pop("kernel_size")
    params.pop("bias", None)
    bias = None if layer.bias is None else layer.bias.detach().numpy()
    got = conv.torch_conv2d(x.numpy(), layer.weight.detach().numpy(), bias, **params)
    np.testing.assert_allclose(got, layer(x).detach().numpy(), atol=1e-12)


def test_same_padding_puts_the_extra_row_bottom_right():
    assert conv.torch_padding_amounts(2, "same") == (0, 1, 0, 1)
    assert conv.torch_padding_amounts((2, 3), "same", dilation=(3, 1)) == (1, 1, 1, 2)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 2, 2))
    w[0, 0, 0, 0] = 1.0  # picks the window's top-left cell: output == input when top pad is 0
    for mode in conv.PADDING_MODES:
        np.testing.assert_array_equal(conv.torch_conv2d(x, w, padding="same", padding_mode=mode), x)


@pytest.mark.parametrize("mode", conv.PADDING_MODES)
@pytest.mark.parametrize("padding", [-1, (-1, 1), (0, -2), -2], ids=str)
def test_negative_padding_matches_nn_conv2d_per_mode(mode, padding):
    """nn.Conv2d accepts negative padding in every mode; 'zeros' then raises in forward, the
    other modes crop (F.pad with a negative amount) and convolve what is left."""
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(2, 3, 3, padding=padding, padding_mode=mode).double()
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    try:
        expected = layer(x).detach().numpy()
    except RuntimeError as err:
        print(mode, padding, "torch raises:", err)
        with pytest.raises(RuntimeError):
            conv.torch_conv2d(x.numpy(), weight, bias, padding=padding, padding_mode=mode)
        assert mode == "zeros" or padding == -2  # cropped to 2x3: smaller than the 3x3 kernel
        return
    assert mode != "zeros"
    ph, pw = padding if isinstance(padding, tuple) else (padding, padding)
    assert expected.shape == (1, 3, 6 + 2 * ph - 2, 7 + 2 * pw - 2)  # the formula still holds
    got = conv.torch_conv2d(x.numpy(), weight, bias, padding=padding, padding_mode=mode)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_negative_padding_crops_a_6x6_input_to_2x2_in_reflect_replicate_circular():
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    for mode in ("reflect", "replicate", "circular"):
        layer = torch.nn.Conv2d(1, 1, 3, padding=-1, padding_mode=mode, bias=False)
        with torch.no_grad():
            layer.weight.fill_(1.0)
            y = layer(x)
        inner = torch.nn.functional.conv2d(x[:, :, 1:-1, 1:-1], torch.ones(1, 1, 3, 3))
        assert tuple(y.shape) == (1, 1, 2, 2) and torch.equal(y, inner), mode
    with pytest.raises(RuntimeError, match="negative padding"):
        torch.nn.Conv2d(1, 1, 3, padding=-1)(x)


ACCEPTED = {conv.describe_case(**c) for c in conv.fixed_conv_cases(conv.ALL_FEATURES - {"errors"})}


@pytest.mark.parametrize("case", conv.fixed_conv_cases(), ids=lambda c: conv.describe_case(**c))
def test_fixed_cases_raise_exactly_when_torch_raises(case):
    """Error cases (kernel too big, bad stride/padding/dilation/mode/groups) raise the allowed
    exceptions; every other hand-picked case returns an array."""
    try:
        result = conv.torch_conv2d(**case)
    except (ValueError, RuntimeError):
        raised = True
    else:
        raised = False
        assert result.ndim == case["x"].ndim
    assert raised == (conv.describe_case(**case) not in ACCEPTED)


def test_nn_conv2d_raises_like_the_reference():
    for kwargs in (
        dict(padding="same", stride=2),
        dict(padding_mode="symmetric"),
        dict(padding="full"),
        dict(groups=4),  # 6 % 4
    ):
        with pytest.raises(ValueError):
            torch.nn.Conv2d(6, 12, 3, **kwargs)
        x, w = np.zeros((1, 6, 5, 5)), np.zeros((12, 6 // kwargs.get("groups", 1) or 1, 3, 3))
        with pytest.raises(ValueError):
            conv.torch_conv2d(x, w, **kwargs)
    layer = torch.nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect")
    with pytest.raises(RuntimeError):
        layer(torch.zeros(1, 1, 3, 5))
    with pytest.raises(RuntimeError):
        conv.torch_conv2d(
            np.zeros((1, 1, 3, 5)), np.zeros((1, 1, 3, 3)), padding=3, padding_mode="reflect"
        )


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(conv.conv_cases())
def test_random_cases_are_accepted_by_torch_and_omit_defaults(case):
    out = conv.torch_conv2d(**case)
    assert out.size > 0
    defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros"}
    for name, default in defaults.items():
        assert case.get(name, object()) != default or type(case[name]) is not type(default)


# --- check_conv2d: passes the reference, fails wrong solutions with a minimal, named case ------


def test_check_conv2d_accepts_the_reference_solution(capsys):
    conv.check_conv2d(reference_conv.conv2d, max_examples=40)
    assert "ok: conv2d matches torch" in capsys.readouterr().out


def test_reflect_as_symmetric_is_shrunk_to_a_minimal_named_case():
    wrong = variant('"reflect": "reflect"', '"reflect": "symmetric"')
    messages = []
    for _ in range(2):
        with pytest.raises(CheckFailure) as info:
            conv.check_conv2d(wrong, fixed=False, max_examples=60, quiet=True)
        messages.append(str(info.value))
    print(messages[0])
    assert messages[0] == messages[1], "a sweep must give the same message on every run"
    text = messages[0]
    assert "minimal failing case, shrunk by hypothesis" in text
    assert "padding_mode='reflect'" in text and "max error" in text and " at [" in text
    assert "x (1,1," in text and "weight (1,1,1,1)" in text  # shrunk: one channel, 1x1 kernel
    assert "stride" not in text and "groups" not in text and "bias" not in text


def test_fixed_cases_name_the_seed_style_example():
    wrong = variant('"reflect": "reflect"', '"reflect": "symmetric"')
    with pytest.raises(CheckFailure) as info:
        conv.check_conv2d(wrong, max_examples=0, quiet=True)
    assert str(info.value).startswith(
        "conv2d fails for x (1,1,3,3), weight (1,1,2,2), padding=1, padding_mode='reflect'"
    )


@pytest.mark.parametrize(
    "old,new,expect",
    [
        (
            "top, left = (span_h - 1) // 2, (span_w - 1) // 2",
            "top, left = span_h // 2, span_w // 2",
            "padding='same'",
        ),
        ("cols[:, g] @ wmat[g]", "cols[:, 0] @ wmat[g]", "groups="),
        ("out += np.asarray(bias, dtype)[:, None]", "out += np.asarray(bias, dtype)[0]", "bias ("),
        (
            '(sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")',
            '(sh, sw), (dh, dw) = pair(stride, "stride"), (1, 1)',
            "dilation=",
        ),
        ('"circular": "wrap"', '"circular": "symmetric"', "padding_mode='circular'"),
        ('"replicate": "edge"', '"replicate": "wrap"', "padding_mode='replicate'"),
    ],
    ids=["same-top-left", "groups-first-block", "one-bias", "no-dilation", "circular", "replicate"],
)  # fmt: skip
def test_check_conv2d_catches_wrong_solutions(old, new, expect):
    with pytest.raises(CheckFailure) as info:
        conv.check_conv2d(variant(old, new), max_examples=60, quiet=True)
    print(info.value)
    assert expect in str(info.value)


def test_unbatched_input_is_checked():
    def batched_only(x, weight, bias=None, **kw):
        if x.ndim != 4:
            raise ValueError("needs a batch")
        return reference_conv.conv2d(x, weight, bias, **kw)

    with pytest.raises(CheckFailure, match="torch accepts this case"):
        conv.check_conv2d(batched_only, features={"unbatched"}, max_examples=30, quiet=True)


def test_must_raise_where_torch_raises_and_only_allowed_errors():
    def never_raises(x, weight, bias=None, stride=1, padding=0, dilation=1, **kw):
        return reference_conv.conv2d(x, weight, bias, stride, padding, dilation or 1, **kw)

    with pytest.raises(CheckFailure, match="but your function returned a result"):
        conv.check_conv2d(never_raises, features={"dilation", "errors"}, max_examples=0)

    def type_error(x, weight, bias=None, **kw):
        if kw.get("dilation") == 0:
            raise TypeError("bad dilation")
        return reference_conv.conv2d(x, weight, bias, **kw)

    with pytest.raises(CheckFailure, match="expected ValueError or RuntimeError"):
        conv.check_conv2d(type_error, features={"dilation", "errors"}, max_examples=0)


def test_torch_tensor_results_are_refused():
    def returns_tensor(x, weight, bias=None, **kw):
        return torch.from_numpy(reference_conv.conv2d(x, weight, bias, **kw).copy())

    with pytest.raises(CheckFailure, match="return a NumPy array"):
        conv.check_conv2d(returns_tensor, features=set(), max_examples=0)


def test_features_restrict_the_keywords_passed():
    def minimal(x, weight, bias=None):
        return reference_conv.conv2d(x, weight, bias)

    conv.check_conv2d(minimal, features={"bias"}, max_examples=30, quiet=True)


def test_student_cannot_change_the_case_in_place():
    def scribbles(x, weight, bias=None, **kw):
        out = reference_conv.conv2d(x, weight, bias, **kw)
        x[...] = 0.0
        weight[...] = 0.0
        return out

    conv.check_conv2d(scribbles, features={"bias", "padding"}, max_examples=20, quiet=True)


# --- the smaller checks --------------------------------------------------------------------------


def _corr2d(x, k):
    return reference_conv.conv2d(np.asarray(x)[None, None], np.asarray(k)[None, None])[0, 0]


def test_corr2d_checks_accept_right_and_reject_flipped():
    conv.check_corr2d(_corr2d, quiet=True)
    conv.check_multichannel_sum(_corr2d, quiet=True)
    conv.check_corr2d_multi_in(
        lambda x, k: sum(_corr2d(a, b) for a, b in zip(x, k, strict=True)), quiet=True
    )
    conv.check_corr2d_multi_in_out(
        lambda x, k: np.stack([sum(_corr2d(a, b) for a, b in zip(x, ko, strict=True)) for ko in k]),
        quiet=True,
    )
    with pytest.raises(CheckFailure, match=r"corr2d fails for x \(3,3\), k \(2,2\)"):
        conv.check_corr2d(lambda x, k: _corr2d(x, k[::-1, ::-1]), quiet=True)
    with pytest.raises(CheckFailure, match="seed 004"):
        conv.check_multichannel_sum(lambda x, k: _corr2d(x, k[::-1, ::-1]), quiet=True)


def test_seed004_check_rejects_bias_per_input_channel():
    def right(x, weight, bias):
        return reference_conv.conv2d(x, weight, bias)

    def per_input_channel(x, weight, bias):
        return reference_conv.conv2d(x, weight, bias * x.shape[1])

    conv.check_seed004(right, quiet=True)
    with pytest.raises(CheckFailure, match=r"nn.Conv2d\(3, 4, 3\)"):
        conv.check_seed004(per_input_channel, quiet=True)


def test_pad2d_check_rejects_symmetric_and_missing_limits():
    conv.check_pad2d(conv.torch_pad2d, max_examples=20, quiet=True)
    np_modes = {
        "zeros": "constant",
        "reflect": "symmetric",
        "replicate": "edge",
        "circular": "wrap",
    }

    def symmetric(x, pad, mode="zeros"):
        left, right, top, bottom = pad
        return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=np_modes[mode])

    with pytest.raises(CheckFailure, match="mode='reflect'"):
        conv.check_pad2d(symmetric, quiet=True)
    np_modes["reflect"] = "reflect"  # right values, but NumPy reflects beyond torch's limit
    with pytest.raises(CheckFailure, match="torch raises"):
        conv.check_pad2d(symmetric, quiet=True)


def test_padding_amounts_param_count_connectivity_checks():
    conv.check_padding_amounts(conv.torch_padding_amounts, quiet=True)

    def top_left(kernel_size, padding, dilation=1, stride=1):
        left, right, top, bottom = conv.torch_padding_amounts(
            kernel_size, padding, dilation, stride
        )
        return right, left, bottom, top

    with pytest.raises(CheckFailure, match="padding='same'"):
        conv.check_padding_amounts(top_left, quiet=True)

    conv.check_param_count(conv.torch_param_count, quiet=True)
    with pytest.raises(CheckFailure, match="torch counts 336"):
        conv.check_param_count(
            lambda in_channels, out_channels, kernel_size, groups=1, bias=True: (
                conv.torch_param_count(in_channels, out_channels, kernel_size, 1, bias)
            ),
            quiet=True,
        )
    conv.check_connectivity(conv.torch_connectivity, quiet=True)
    with pytest.raises(CheckFailure, match="connectivity"):
        conv.check_connectivity(lambda i, o, g=1: np.ones((o, i), bool), quiet=True)


def test_connectivity_is_measured_block_diagonal():
    m = conv.torch_connectivity(6, 12, 3)
    assert m.shape == (12, 6) and m.sum() == 12 * 2
    assert m[:4, :2].all() and not m[:4, 2:].any() and m[8:, 4:].all()


def _loops_conv2d(x, weight, bias=None):
    """Assignment 03's conv2d as a student writes it: a Python loop over output positions."""
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    out = np.zeros((n, o, h - kh + 1, w - kw + 1))
    for b in range(n):
        for c in range(o):
            for i in range(h - kh + 1):
                for j in range(w - kw + 1):
                    out[b, c, i, j] = (x[b, :, i : i + kh, j : j + kw] * weight[c]).sum()
    return out


TWO_DIGITS = re.compile(r"^(\d\.\d|\d\d|[1-9]\d+0+|0\.0*[1-9]\d)$")  # 2.5, 12, 120, 0.0012


def test_two_digits_keeps_two_significant_digits():
    got = [conv.two_digits(v) for v in (0.00123, 0.5, 1.0, 2.46, 9.96, 12.3, 1234, 0.035)]
    assert got == ["0.0012", "0.50", "1.0", "2.5", "10", "12", "1200", "0.035"]
    assert all(TWO_DIGITS.match(t) for t in got)


def test_speed_report_times_torch_on_one_thread_with_loops_and_two_digits(capsys, monkeypatch):
    import torch.nn.functional as F

    threads = []
    real_conv2d = F.conv2d

    def counting_conv2d(*args, **kwargs):
        threads.append(torch.get_num_threads())
        return real_conv2d(*args, **kwargs)

    monkeypatch.setattr(F, "conv2d", counting_conv2d)
    torch.set_num_threads(2)

    def wrong_but_timed(x, weight, bias=None, **kw):
        return reference_conv.conv2d(x, weight, bias, **kw) * 0  # wrong values, any speed

    small = [
        ("1x2x8x8 -> 3, k3", {"x": (1, 2, 8, 8), "weight": (3, 2, 3, 3)}),
        ("1x4x8x8 depthwise", {"x": (1, 4, 8, 8), "weight": (4, 1, 3, 3), "groups": 4}),
    ]
    rows = conv.speed_report(wrong_but_timed, _loops_conv2d, cases=small, repeats=2)
    out = capsys.readouterr().out
    print(out)
    assert threads and set(threads) == {1}, f"torch ran on {set(threads)} threads"
    assert torch.get_num_threads() == 2  # restored
    plain, depthwise = rows["1x2x8x8 -> 3, k3"], rows["1x4x8x8 depthwise"]
    assert plain["yours/torch"] > 0 and plain["loops/yours"] > 0 and plain["loops_s"] > 0
    assert depthwise["yours/torch"] > 0 and depthwise["loops_s"] is None  # loops have no groups
    for label, row in rows.items():
        line = next(line for line in out.splitlines() if line.startswith(label))
        ratios = line.split()[-2:]
        assert TWO_DIGITS.match(ratios[0]), line
        assert ratios[1] == "-" if row["loops/yours"] is None else TWO_DIGITS.match(ratios[1])
    assert "torch on one thread" in out and "geometric mean of yours/torch" in out


def test_speed_report_without_loops_written_says_so_and_unfinished_conv_is_short(capsys):
    from course.checks.core import NotWrittenYet

    def loops_stub(x, weight, bias=None):
        raise NotImplementedError()

    case = [("1x1x6x6 -> 1, k3", {"x": (1, 1, 6, 6), "weight": (1, 1, 3, 3)})]
    rows = conv.speed_report(reference_conv.conv2d, loops_stub, cases=case, repeats=1)
    assert rows["1x1x6x6 -> 1, k3"]["loops_s"] is None
    assert "paste your 03 conv2d above" in capsys.readouterr().out

    def conv2d(x, weight, bias=None, **kw):
        raise NotImplementedError()

    with pytest.raises(NotWrittenYet) as unfinished:
        conv.speed_report(conv2d, cases=case, repeats=1)
    assert unfinished.value.name == "conv2d"


# --- plots ---------------------------------------------------------------------------------------


def _count(ax, color):
    from matplotlib.colors import to_rgba

    return sum(1 for p in ax.patches if p.get_facecolor() == to_rgba(color))


@pytest.mark.parametrize(
    "in_size,kernel,params",
    [
        (4, 3, {}),
        (5, 3, {"padding": 1}),
        (5, 3, {"padding": 1, "stride": 2}),
        (7, 3, {"dilation": 2}),
        ((6, 5), (2, 3), {"stride": (2, 1), "padding": (1, 0), "dilation": (2, 1)}),
    ],
)
def test_conv_arithmetic_draws_torch_output_size_and_kernel_taps(in_size, kernel, params):
    h, w = (in_size, in_size) if isinstance(in_size, int) else in_size
    expected = torch.nn.Conv2d(1, 1, kernel, **params)(torch.zeros(1, 1, h, w)).shape[2:]
    ax = plots.conv_arithmetic(in_size, kernel, position=(0, 0), **params)
    outputs = _count(ax, plots.OUTPUT_COLOR) + _count(ax, plots.CURRENT_COLOR)
    assert outputs == expected[0] * expected[1]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    assert _count(ax, plots.TAP_COLOR) == kh * kw
    matplotlib.pyplot.close("all")


@pytest.mark.filterwarnings("ignore:Animation was deleted")
def test_conv_arithmetic_same_padding_four_tuple_and_animation():
    ax = plots.conv_arithmetic(4, 2, padding=(0, 1, 0, 1), position=(3, 3))
    assert _count(ax, plots.OUTPUT_COLOR) + _count(ax, plots.CURRENT_COLOR) == 16
    # 5x5 padded grid: 9 padding cells on the bottom/right, 3 of them under the kernel at (3, 3)
    assert _count(ax, plots.PAD_COLOR) == 25 - 16 - 3
    anim = plots.conv_arithmetic_animation(5, 3, padding=1, stride=2)
    assert len(list(anim.new_frame_seq())) == 9
    del anim  # never rendered: collect it here, where its warning is expected
    gc.collect()
    fig = plots.conv_arithmetic_figure(7, 3, dilation=2)
    assert len(fig.axes) == 3
    matplotlib.pyplot.close("all")


def test_connectivity_plot_draws_one_line_per_connection():
    matrix = conv.torch_connectivity(6, 12, 2)
    ax = plots.connectivity(matrix, title="groups=2")
    assert len(ax.lines) == int(matrix.sum()) == 36
    matplotlib.pyplot.close("all")


# --- assignment 06's step references (course/checks/conv_steps.py) ------------------------------


def test_torch_windows_index_the_padded_input_as_documented():
    from course.checks.conv_steps import torch_windows

    xp = np.random.default_rng(0).standard_normal((2, 3, 8, 9))
    (sh, sw), (dh, dw), (kh, kw) = (2, 1), (1, 3), (3, 2)
    windows = torch_windows(xp, (kh, kw), stride=(sh, sw), dilation=(dh, dw))
    n, c, h_out, w_out = windows.shape[:4]
    assert windows.shape == (2, 3, (8 - 2 - 1) // 2 + 1, (9 - 3 - 1) // 1 + 1, kh, kw)
    for y in range(h_out):
        for x in range(w_out):
            for i in range(kh):
                for j in range(kw):
                    np.testing.assert_array_equal(
                        windows[:, :, y, x, i, j], xp[:, :, y * sh + i * dh, x * sw + j * dw]
                    )


@pytest.mark.parametrize(
    "x_shape,w_shape,params",
    [
        ((1, 4, 7, 7), (6, 2, 3, 3), dict(groups=2, stride=2)),
        ((2, 3, 6, 5), (3, 1, 2, 3), dict(groups=3, dilation=(2, 1))),
        ((1, 2, 5, 5), (4, 2, 1, 1), dict()),
    ],
    ids=str,
)
def test_torch_grouped_correlation_of_the_windows_is_conv2d_of_the_input(x_shape, w_shape, params):
    from course.checks.conv_steps import torch_grouped_correlation, torch_windows

    rng = np.random.default_rng(1)
    xp, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    groups = params.pop("groups", 1)
    windows = torch_windows(xp, w_shape[2:], **params)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(xp), torch.from_numpy(w), groups=groups, **params
    )
    got = torch_grouped_correlation(windows, w, groups)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-12)


def test_output_shape_reference_is_the_shape_of_torch_conv2d():
    from course.checks.conv_steps import OUTPUT_SHAPE_CASES, torch_output_shape

    for case in OUTPUT_SHAPE_CASES:
        params = {k: v for k, v in case.items() if k not in ("x_shape", "weight_shape")}
        x, w = np.zeros(case["x_shape"]), np.zeros(case["weight_shape"])
        assert torch_output_shape(**case) == conv.torch_conv2d(x, w, **params).shape, case
    assert torch_output_shape((20, 16, 50, 100), (33, 16, 3, 5), (2, 1), (4, 2), (3, 1)) == (
        20,
        33,
        26,
        100,
    )


@settings(max_examples=80, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(__import__("course.checks.conv_steps", fromlist=["x"]).pad_input_strategy())
def test_pad_input_cases_are_accepted_by_torch_and_crop_symmetrically(case):
    left, right, top, bottom = case["pads"]
    for a, b in ((left, right), (top, bottom)):
        assert a == b if min(a, b) < 0 else True
    out = conv.torch_pad2d(case["x"], case["pads"], case["mode"])
    assert out.shape[-2:] == (case["x"].shape[2] + top + bottom, case["x"].shape[3] + left + right)


def test_step_checks_reject_wrong_parts_with_named_cases():
    from course.checks.conv_steps import (
        check_conv2d_output_shape,
        check_conv_windows,
        check_grouped_correlation,
        check_pad_input,
    )

    def shape_ignoring_padding(x_shape, weight_shape, stride=1, padding=0, dilation=1):
        *lead, _, h, w = x_shape
        return (*lead, weight_shape[0], h - weight_shape[2] + 1, w - weight_shape[3] + 1)

    with pytest.raises(CheckFailure, match=r"conv2d_output_shape fails for x_shape=\(1, 3, 7, 7\)"):
        check_conv2d_output_shape(shape_ignoring_padding, max_examples=0)

    def windows_transposed(xp, kernel_size, stride=1, dilation=1):
        from course.checks.conv_steps import torch_windows

        return torch_windows(xp, kernel_size, stride, dilation).swapaxes(4, 5)

    with pytest.raises(CheckFailure, match=r"conv_windows fails for xp \(1,1,4,4\), kernel_size=2"):
        check_conv_windows(windows_transposed, max_examples=0)

    def sum_all_groups(windows, weight, groups=1):
        return np.einsum("nchwij,ocij->nohw", windows, np.tile(weight, (1, groups, 1, 1)))

    with pytest.raises(CheckFailure, match=r"grouped_correlation fails .*groups=2"):
        check_grouped_correlation(sum_all_groups, max_examples=0)

    def pad_reflect_as_symmetric(x, pads, mode="zeros"):
        return (
            conv.torch_pad2d(x, pads, mode)
            if mode != "reflect"
            else np.pad(x, [(0, 0), (0, 0), pads[2:], pads[:2]], mode="symmetric")
        )

    with pytest.raises(CheckFailure, match=r"pad_input fails for x \(1,1,3,4\), .*'reflect'"):
        check_pad_input(pad_reflect_as_symmetric, max_examples=0)
