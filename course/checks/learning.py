"""Checks for assignment 10: a CNN that learns.

Part (a), NumPy: ``learn_kernel(x, y, kernel, lr, steps) -> (kernel, losses)`` runs gradient
descent on the squared error ``L = sum((conv2d(x, kernel) - y) ** 2)`` with the student's own
forward and backward of assignment 09. Reference: the same loop with torch autograd (d2l's
experiment, section 7.2.4).

Part (b), torch: the student writes ``train_step(model, optimizer, images, labels)`` and
``evaluate(model, loader)``; the notebook's plain-data wrappers ``train_steps_on_arrays`` and
``evaluate_on_arrays`` let the grader call them with NumPy arrays. References: one SGD-with-momentum
step written functionally (``torch.func.functional_call`` and ``torch.autograd.grad``, no optimizer
object), and an evaluation that weights every image equally. ``train_cnn(logdir, ...)`` trains the
seed 003 classifier and logs to TensorBoard; :func:`check_train_cnn` reads the event files back
with TensorBoard's reader and re-evaluates the returned weights itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from course.checks.core import (
    CheckFailure,
    as_plain_array,
    check_cases,
    compare_arrays,
    compare_call,
    describe_case,
    one_thread,
    sweep,
)

#: Relative folder under which :func:`check_train_cnn` makes its log folders (as in 08's check).
CHECK_LOGS = "tb_check_logs"
#: TensorBoard scalar tag -> key of the history dict that ``train_cnn`` returns.
SCALARS = {
    "loss/train": "train_loss",
    "accuracy/train": "train_accuracy",
    "loss/validation": "val_loss",
    "accuracy/validation": "val_accuracy",
}
FILTERS_TAG = "filters/conv1"
#: The validation accuracy a correct solution must reach after the check's short training (the
#: split is balanced, so chance is exactly 0.10; a correct solution reaches 0.285 in 2 epochs).
MIN_VAL_ACCURACY = 0.17


# --------------------------------------------------------------------------- (a) learn a kernel


def d2l_edge_data() -> dict[str, np.ndarray]:
    """d2l's experiment: x (1, 1, 6, 8) of ones with a black band in columns 2..5, and
    y = x correlated with the edge kernel [[1, -1]] (computed by torch): (1, 1, 6, 7), +1 where
    white turns black, -1 where black turns white."""
    import torch
    import torch.nn.functional as F

    x = np.ones((1, 1, 6, 8))
    x[:, :, :, 2:6] = 0
    with torch.no_grad():
        y = F.conv2d(torch.from_numpy(x), torch.tensor([[[[1.0, -1.0]]]], dtype=torch.float64))
    return {"x": x, "y": y.numpy()}


def torch_learn_kernel(
    x: np.ndarray, y: np.ndarray, kernel: np.ndarray, lr: float, steps: int
) -> tuple[np.ndarray, list[float]]:
    """Gradient descent with torch autograd (float64), d2l's loop.

    x (N, C_in, H, W); y (N, C_out, H_out, W_out); kernel (C_out, C_in, kH, kW), the start.
    Each step: loss = sum((conv2d(x, k) - y)²), recorded *before* the update; k -= lr · dloss/dk.
    Returns (the final kernel, the list of ``steps`` losses).
    """
    import torch
    import torch.nn.functional as F

    xt = torch.from_numpy(np.array(x, dtype=np.float64))
    yt = torch.from_numpy(np.array(y, dtype=np.float64))
    k = torch.tensor(np.asarray(kernel, dtype=np.float64), requires_grad=True)
    losses = []
    with one_thread():
        for _ in range(int(steps)):
            loss = ((F.conv2d(xt, k) - yt) ** 2).sum()
            losses.append(float(loss.detach()))
            (grad,) = torch.autograd.grad(loss, k)
            with torch.no_grad():
                k -= lr * grad
    return k.detach().numpy(), losses


def _compare_learned(got: Any, expected: tuple[np.ndarray, list[float]]) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"learn_kernel must return a tuple (kernel, losses), got {type(got).__name__}"
    problem = compare_arrays(got[1], np.asarray(expected[1]), atol=1e-8, rtol=1e-6, what="loss")
    if problem is not None:
        return problem + " (the loss of step t is computed before step t's update)"
    return compare_arrays(got[0], expected[0], atol=1e-8, rtol=1e-6, what="kernel")


def learn_kernel_strategy():
    """Random keyword dicts for ``learn_kernel``: small x, a random target y and start kernel,
    lr 1e-3..1e-2, 1..5 steps."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw):
        n, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        h, w = kh + draw(st.integers(0, 4)), kw + draw(st.integers(0, 4))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        return {
            "x": rng.standard_normal((n, c_in, h, w)),
            "y": rng.standard_normal((n, c_out, h - kh + 1, w - kw + 1)),
            "kernel": rng.standard_normal((c_out, c_in, kh, kw)),
            "lr": draw(st.sampled_from([1e-3, 3e-3, 1e-2])),
            "steps": draw(st.integers(1, 5)),
        }

    return cases()


def check_learn_kernel(
    student_fn: Callable[..., Any],
    cases: Iterable[dict[str, Any]] | None = None,
    *,
    random: int = 0,
    name: str = "learn_kernel",
) -> None:
    """Compare ``student_fn(x, y, kernel, lr, steps)`` -> (kernel, losses) with
    :func:`torch_learn_kernel` on ``cases`` and/or ``random`` hypothesis cases."""
    __tracebackhide__ = True

    def fresh(**case: Any) -> Any:
        return student_fn(
            **{k: v.copy() if isinstance(v, np.ndarray) else v for k, v in case.items()}
        )

    count = 0
    if cases is not None:
        count += check_cases(fresh, torch_learn_kernel, cases, name=name, compare=_compare_learned)
    if random:
        count += sweep(
            fresh,
            torch_learn_kernel,
            learn_kernel_strategy(),
            name=name,
            max_examples=random,
            compare=_compare_learned,
        )
    if count == 0:
        raise ValueError("give cases or random > 0")


def check_recovers_edge_kernel(student_fn: Callable[..., Any], steps: int = 30) -> None:
    """d2l's experiment end to end: from a random 1×2 start (seed 0), ``steps`` steps of lr 0.03
    on :func:`d2l_edge_data` must reach the kernel [[1, -1]] within 0.05 (as torch does)."""
    __tracebackhide__ = True
    data = d2l_edge_data()
    start = np.random.default_rng(0).standard_normal((1, 1, 1, 2))
    got = student_fn(data["x"], data["y"], start.copy(), 0.03, steps)
    expected = torch_learn_kernel(data["x"], data["y"], start, 0.03, steps)
    problem = _compare_learned(got, expected)
    if problem is not None:
        raise CheckFailure(
            f"learn_kernel on d2l's edge data ({steps} steps of lr 0.03):\n  {problem}"
        )
    kernel = as_plain_array(got[0]).reshape(-1)
    if not np.allclose(kernel, [1.0, -1.0], atol=0.05):
        raise CheckFailure(f"after {steps} steps the kernel is {kernel}, not close to [1, -1]")
    print(
        f"ok: from {np.round(start.reshape(-1), 3)} to {np.round(kernel, 3)} in {steps} steps "
        f"(loss {got[1][0]:.3g} -> {got[1][-1]:.3g}): the edge kernel [1, -1] is learned"
    )


# --------------------------------------------------------------------------- (b) train a CNN


def _as_tensors(images: Any, labels: Any):
    import torch

    return (
        torch.from_numpy(np.array(images, dtype=np.float32)),
        torch.from_numpy(np.array(labels, dtype=np.int64)),
    )


def reference_train_steps(
    state: dict[str, np.ndarray],
    images: np.ndarray,
    labels: np.ndarray,
    lr: float,
    batch_size: int,
    momentum: float = 0.9,
) -> tuple[dict[str, np.ndarray], list[float]]:
    """SGD with momentum on the mean cross-entropy, batch after batch in the given order.

    state: weights of the seed classifier (name -> array); images (B, 3, 32, 32) float32;
    labels (B,) int. Batches are consecutive slices of ``batch_size``. Per batch, the loss is
    computed at the current weights (and recorded), then v = momentum·v + g (v = g at the first
    step), w -= lr·v. Returns (the final state, the list of batch losses).
    """
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    from course.cnn import SeedClassifier, state_arrays

    model = SeedClassifier()
    params = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    x, y = _as_tensors(images, labels)
    velocity: dict[str, torch.Tensor] = {}
    losses = []
    with one_thread():
        for start in range(0, len(x), batch_size):
            leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            loss = F.cross_entropy(
                functional_call(model, leaves, (x[start : start + batch_size],)),
                y[start : start + batch_size],
            )
            grads = torch.autograd.grad(loss, list(leaves.values()))
            losses.append(float(loss.detach()))
            for (name, value), grad in zip(leaves.items(), grads, strict=True):
                velocity[name] = grad if name not in velocity else momentum * velocity[name] + grad
                params[name] = value.detach() - lr * velocity[name]
    model.load_state_dict(params)
    return state_arrays(model), losses


def reference_evaluate(
    state: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray, batch_size: int = 256
) -> tuple[float, float]:
    """(mean cross-entropy over all images, fraction classified correctly) of the seed classifier
    with ``state`` on images (B, 3, 32, 32) and labels (B,); every image counts once."""
    import torch
    import torch.nn.functional as F

    from course.cnn import classifier_from_state

    model = classifier_from_state(state).eval()
    x, y = _as_tensors(images, labels)
    total, correct = 0.0, 0
    with torch.no_grad(), one_thread():
        for start in range(0, len(x), batch_size):
            logits = model(x[start : start + batch_size])
            target = y[start : start + batch_size]
            total += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(dim=1) == target).sum())
    return total / len(x), correct / len(x)


def _compare_states(got: Any, expected: dict[str, np.ndarray], what: str = "state") -> str | None:
    if not isinstance(got, dict) or set(got) != set(expected):
        keys = sorted(got) if isinstance(got, dict) else type(got).__name__
        return f"{what} must be a dict with the keys {sorted(expected)}, got {keys}"
    for name in expected:
        problem = compare_arrays(
            got[name], expected[name], atol=2e-5, rtol=1e-4, what=f"{what}[{name!r}]"
        )
        if problem is not None:
            return problem
    return None


def _compare_steps(got: Any, expected: tuple[dict[str, np.ndarray], list[float]]) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"train_steps_on_arrays must return (state, losses), got {type(got).__name__}"
    update_hint = "(zero the gradients before each backward, then one optimizer step per batch)"
    losses, want = as_plain_array(got[1], "your losses"), np.asarray(expected[1])
    if losses.shape == want.shape and losses.size > 1:
        first = compare_arrays(losses[:1], want[:1], atol=1e-5, rtol=1e-4, what="loss")
        later = compare_arrays(losses, want, atol=1e-5, rtol=1e-4, what="loss")
        if first is None and later is not None:
            return (
                f"{later}: the first batch's loss is right, a later one is not, so the weights "
                f"after a step are wrong {update_hint}"
            )
    problem = compare_arrays(losses, want, atol=1e-5, rtol=1e-4, what="loss")
    if problem is not None:
        return (
            problem + " (train_step returns the batch's mean cross-entropy before the update, "
            "as a float)"
        )
    problem = _compare_states(got[0], expected[0], "weights after the steps")
    if problem is not None:
        return f"{problem} {update_hint}"
    return None


def describe_weights_case(case: dict[str, Any]) -> str:
    """``describe_case`` for cases holding a state dict: the weights summarized, not printed."""
    parts = []
    for name, value in case.items():
        if isinstance(value, dict):
            count = sum(int(np.size(v)) for v in value.values())
            parts.append(f"{name}=<{len(value)} weight arrays, {count} numbers>")
        else:
            parts.append(describe_case(**{name: value}))
    return ", ".join(parts)


def _check_weight_cases(wrapper_fn, reference_fn, cases, name: str, compare) -> None:
    __tracebackhide__ = True
    count = 0
    for case in cases:
        problem = compare_call(
            lambda case=case: wrapper_fn(**case),
            lambda case=case: reference_fn(**case),
            compare=compare,
        )
        if problem is not None:
            raise CheckFailure(f"{name} fails for {describe_weights_case(case)}:\n  {problem}")
        count += 1
    print(f"ok: {name} matches torch on {count} case(s)")


def train_steps_case(n_images: int, batch_size: int, *, seed: int = 0, lr: float = 0.05):
    """Keyword dict for ``train_steps_on_arrays``: the seed classifier's initial weights (from
    ``seed``), the first ``n_images`` training images of the split, ``lr``, ``batch_size``."""
    from course.cnn import cifar_split, seed_classifier, state_arrays

    data = cifar_split()
    return {
        "state": state_arrays(seed_classifier(seed)),
        "images": data["x_train"][:n_images],
        "labels": data["y_train"][:n_images],
        "lr": lr,
        "batch_size": batch_size,
    }


def check_train_step(
    wrapper_fn: Callable[..., Any], cases: Iterable[dict[str, Any]] | None = None
) -> None:
    """Compare ``wrapper_fn(state, images, labels, lr, batch_size)`` -> (state, losses), which
    runs the student's ``train_step`` once per batch with SGD(momentum=0.9), with
    :func:`reference_train_steps`."""
    __tracebackhide__ = True
    if cases is None:
        cases = [
            train_steps_case(8, 8),  # one step
            train_steps_case(24, 8, seed=1),  # three steps: gradients must not pile up
            train_steps_case(20, 8, seed=2, lr=0.1),  # a last batch of 4
        ]
    _check_weight_cases(
        wrapper_fn,
        lambda **case: reference_train_steps(**case, momentum=0.9),
        cases,
        "train_step",
        _compare_steps,
    )


def evaluate_case(n_images: int, batch_size: int, *, seed: int = 0) -> dict[str, Any]:
    """Keyword dict for ``evaluate_on_arrays``: weights from ``seed`` (briefly trained so that
    the accuracy is not trivial), the first ``n_images`` validation images, ``batch_size``."""
    from course.cnn import cifar_split

    data = cifar_split()
    start = train_steps_case(64, 16, seed=seed, lr=0.05)
    state, _ = reference_train_steps(**start)
    return {
        "state": state,
        "images": data["x_val"][:n_images],
        "labels": data["y_val"][:n_images],
        "batch_size": batch_size,
    }


def _compare_evaluation(got: Any, expected: tuple[float, float]) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"evaluate must return (mean loss, accuracy), got {type(got).__name__} {got!r}"
    loss, accuracy = (as_plain_array(v, "your result") for v in got)
    if loss.shape != () or accuracy.shape != ():
        return f"evaluate must return two numbers, got {got!r}"
    if not math.isclose(float(loss), expected[0], rel_tol=1e-4, abs_tol=1e-5):
        return (
            f"mean loss {float(loss):.6g}, expected {expected[0]:.6g}: the mean over all images "
            "(a smaller last batch must count less than a full one)"
        )
    if not math.isclose(float(accuracy), expected[1], abs_tol=1e-9):
        return (
            f"accuracy {float(accuracy):.6g}, expected {expected[1]:.6g}: the fraction of "
            "images whose largest logit is their label"
        )
    return None


def check_evaluate(
    wrapper_fn: Callable[..., Any], cases: Iterable[dict[str, Any]] | None = None
) -> None:
    """Compare ``wrapper_fn(state, images, labels, batch_size)`` -> (mean loss, accuracy), which
    runs the student's ``evaluate`` on a DataLoader of those arrays, with
    :func:`reference_evaluate`."""
    __tracebackhide__ = True
    if cases is None:
        cases = [evaluate_case(200, 200), evaluate_case(200, 64), evaluate_case(50, 7, seed=1)]
    _check_weight_cases(
        wrapper_fn,
        lambda **case: reference_evaluate(**case),
        cases,
        "evaluate",
        _compare_evaluation,
    )


# --------------------------------------------------------------------------- the whole training


def check_train_cnn(
    train_fn: Callable[..., Any],
    logdir: str | None = None,
    *,
    epochs: int = 2,
    lr: float = 0.02,
    seed: int = 1,
) -> None:
    """Call ``train_fn(logdir, epochs=epochs, lr=lr, seed=seed)``, read its TensorBoard events
    back, and check them against the returned history and against the grader's own evaluation
    of the returned weights:

    - the four scalars of :data:`SCALARS` and the image ``filters/conv1`` at steps 0..epochs-1;
    - logged values equal to the returned history; the last filters image equal to
      ``course.cnn.filter_grid`` of the returned conv1 weight (±1 grey level);
    - the returned weights' accuracy (train and validation) and validation loss, recomputed
      here, equal to the last logged values;
    - the training loss fell (logged first vs last epoch, and recomputed: final weights vs the
      initial weights of ``seed``); validation accuracy at least :data:`MIN_VAL_ACCURACY`.

    logdir: default a new relative folder ``tb_check_logs/<random>``, removed afterwards
    (relative, so the student's process and this one name the same folder).
    """
    __tracebackhide__ = True
    cleanup = logdir is None
    if logdir is None:
        logdir = os.path.join(CHECK_LOGS, uuid.uuid4().hex[:12])
    try:
        _check_train_cnn(train_fn, logdir, epochs, lr, seed)
    finally:
        if cleanup:
            shutil.rmtree(logdir, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(CHECK_LOGS)  # only when empty


def _check_train_cnn(train_fn, logdir: str, epochs: int, lr: float, seed: int) -> None:
    from course import cnn, tb

    started = time.perf_counter()
    history = train_fn(logdir, epochs=epochs, lr=lr, seed=seed)
    seconds = time.perf_counter() - started
    call = f"train_cnn({logdir!r}, epochs={epochs}, lr={lr}, seed={seed})"
    _check_history(history, epochs, call)
    state = history["state"]
    try:
        cnn.classifier_from_state(state)
    except ValueError as err:
        raise CheckFailure(
            f"{call} returned weights that do not fit the seed classifier: {err}"
        ) from None

    if not tb.event_files(logdir):
        raise CheckFailure(
            f"no event file in {logdir!r}: write there with SummaryWriter(logdir) and close it"
        )
    scalars = tb.read_scalars(logdir)
    steps = list(range(epochs))
    for tag, key in SCALARS.items():
        if tag not in scalars:
            raise CheckFailure(f"no scalar {tag!r} in the event files (found {sorted(scalars)})")
        logged_steps = [step for step, _ in scalars[tag]]
        if logged_steps != steps:
            raise CheckFailure(
                f"scalar {tag!r} is logged at steps {logged_steps}; expected one value per "
                f"epoch at steps {steps} (global_step=epoch)"
            )
        values = [value for _, value in scalars[tag]]
        if not np.allclose(values, history[key], rtol=1e-5, atol=1e-6):
            raise CheckFailure(
                f"scalar {tag!r} logs {np.round(values, 4).tolist()} but the returned "
                f"history[{key!r}] is {np.round(history[key], 4).tolist()}"
            )
    _check_filters(logdir, state, steps)

    data = cnn.cifar_split()
    val_loss, val_accuracy = reference_evaluate(state, data["x_val"], data["y_val"])
    n_train = cnn.TRAIN_EVAL_IMAGES
    _, train_accuracy = reference_evaluate(
        state, data["x_train"][:n_train], data["y_train"][:n_train]
    )
    for tag, logged, measured in (
        ("accuracy/validation", history["val_accuracy"][-1], val_accuracy),
        ("accuracy/train", history["train_accuracy"][-1], train_accuracy),
    ):
        if abs(logged - measured) > 1.5 / len(data["y_val"]):
            raise CheckFailure(
                f"{tag} at the last step is {logged:.4g}, but the returned weights score "
                f"{measured:.4g} (recomputed here): log the fraction of correct images "
                f"(0..1) of the model after the epoch (training accuracy: on the first "
                f"{n_train} training images)"
            )
    if not math.isclose(history["val_loss"][-1], val_loss, rel_tol=1e-3, abs_tol=1e-4):
        raise CheckFailure(
            f"loss/validation at the last step is {history['val_loss'][-1]:.5g}, but the "
            f"returned weights' mean validation loss is {val_loss:.5g} (recomputed here)"
        )
    initial_loss, _ = reference_evaluate(
        cnn.state_arrays(cnn.seed_classifier(seed)), data["x_train"], data["y_train"]
    )
    final_loss, _ = reference_evaluate(state, data["x_train"], data["y_train"])
    losses = history["train_loss"]
    if not (losses[-1] < losses[0] and final_loss < initial_loss):
        raise CheckFailure(
            f"the training loss did not fall: logged {np.round(losses, 4).tolist()}; the "
            f"training-set loss of the initial weights is {initial_loss:.4g}, of the final "
            f"ones {final_loss:.4g}"
        )
    if val_accuracy < MIN_VAL_ACCURACY:
        raise CheckFailure(
            f"validation accuracy {val_accuracy:.3f} after {epochs} epochs; a correct training "
            f"step reaches more than {MIN_VAL_ACCURACY} (chance is 0.10)"
        )
    print(
        f"ok: {call} took {seconds:.1f} s; training loss {losses[0]:.3f} -> {losses[-1]:.3f} "
        f"(recomputed on the final weights: {final_loss:.3f}, initial {initial_loss:.3f}); "
        f"validation accuracy {val_accuracy:.3f} = {round(val_accuracy * len(data['y_val']))}/"
        f"{len(data['y_val'])} (chance 0.10); every logged scalar and the filters image match "
        "the returned weights"
    )


def _check_history(history: Any, epochs: int, call: str) -> None:
    if not isinstance(history, dict):
        raise CheckFailure(f"{call} must return a dict, got {type(history).__name__}")
    missing = [key for key in (*SCALARS.values(), "state") if key not in history]
    if missing:
        raise CheckFailure(f"{call} returned a dict without {missing}")
    for key in SCALARS.values():
        values = history[key]
        if not isinstance(values, (list, tuple)) or len(values) != epochs:
            raise CheckFailure(
                f"history[{key!r}] must be a list of {epochs} numbers, got {values!r}"
            )
        for value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise CheckFailure(f"history[{key!r}] holds {value!r}; expected Python floats")
            if not math.isfinite(float(value)):
                raise CheckFailure(f"history[{key!r}] holds {value!r}: training diverged")


def _check_filters(logdir: str, state: dict[str, Any], steps: list[int]) -> None:
    from course import cnn, tb

    images = tb.read_images(logdir)
    if FILTERS_TAG not in images:
        raise CheckFailure(f"no image {FILTERS_TAG!r} in the event files (found {sorted(images)})")
    logged = images[FILTERS_TAG]
    if [image.step for image in logged] != steps:
        raise CheckFailure(
            f"image {FILTERS_TAG!r} is logged at steps {[i.step for i in logged]}; expected {steps}"
        )
    from course.tb import summary_writer_pixels

    want = summary_writer_pixels(cnn.filter_grid(np.asarray(state["conv1.weight"])))
    got = logged[-1].pixels[:, :, :3].astype(np.int64)
    if got.shape[:2] != want.shape[:2]:
        raise CheckFailure(
            f"the last {FILTERS_TAG!r} image is {got.shape[0]}x{got.shape[1]}; "
            f"cnn.filter_grid(model.conv1.weight) is {want.shape[0]}x{want.shape[1]}"
        )
    if np.abs(got - want.astype(np.int64)).max() > 1:
        raise CheckFailure(
            f"the last {FILTERS_TAG!r} image is not cnn.filter_grid of the final conv1 weight"
        )


__all__ = [
    "CheckFailure",
    "MIN_VAL_ACCURACY",
    "SCALARS",
    "check_evaluate",
    "check_learn_kernel",
    "check_recovers_edge_kernel",
    "check_train_cnn",
    "check_train_step",
    "d2l_edge_data",
    "describe_weights_case",
    "evaluate_case",
    "learn_kernel_strategy",
    "reference_evaluate",
    "reference_train_steps",
    "torch_learn_kernel",
    "train_steps_case",
]
