"""Assignment 10 (a CNN that learns): wrong solutions are caught, training is deterministic and
honest, and the whole notebook grades in the trusted grader's sandbox.

The checks are exercised in-process with edited reference solutions (fast); one shared notebook
run (stopping before the training) shows that the graded cells catch mistakes each in its own
cell; one trusted-grader run trains in the sandbox.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from conftest import ROOT

from autograder import notebooks as nbs
from autograder.notebooks import grade_id, is_solution_cell, is_test_cell, load, run_notebook_file
from course import cnn
from course.checks import learning
from course.checks.core import CheckFailure

NOTEBOOK = ROOT / "source" / "10_cnn_learns" / "cnn_learns.ipynb"
edited = functools.partial(nbs.edited_solution, NOTEBOOK)
failing = nbs.failing
TESTS = [
    "test_pasted_09",
    "test_learn_kernel",
    "test_train_step",
    "test_evaluate",
    "test_train_cnn",
]
NUMPY_ONLY = {"pasted_09", "learn_kernel"}


def solutions(**edits: tuple[str, str]) -> dict:
    """The namespace of the notebook's imports and solution cells; ``edits`` maps a grade_id
    to an (old, new) replacement applied first."""
    nb = load(NOTEBOOK)
    namespace: dict = {}
    exec(nb.cells[1].source, namespace)  # noqa: S102 - the imports cell
    for cell in nb.cells:
        if is_solution_cell(cell):
            source = cell.source
            if grade_id(cell) in edits:
                old, new = edits[grade_id(cell)]
                assert old in source, f"{grade_id(cell)} no longer contains {old!r}"
                source = source.replace(old, new)
            exec(compile(source, grade_id(cell), "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(scope="module")
def reference():
    return solutions()


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_notebook_has_the_expected_test_cells():
    nb = load(NOTEBOOK)
    assert [grade_id(c) for c in nb.cells if is_test_cell(c)] == TESTS
    for cell in nb.cells:
        if is_solution_cell(cell):
            numpy_only = "numpy-only" in cell.metadata.get("tags", [])
            assert numpy_only == (grade_id(cell) in NUMPY_ONLY), grade_id(cell)
            if numpy_only:
                assert "import torch" not in cell.source, grade_id(cell)


def test_pasted_cell_holds_09s_reference_solutions():
    """The reference answer of the paste cell is 09's code: both pass 09's checks here, and the
    released paste cell is a stub (the student pastes)."""
    from course.checks.backward import check_conv2d_backward, check_conv2d_forward

    ns = solutions()
    check_conv2d_forward(ns["conv2d_forward"], random=10)
    check_conv2d_backward(ns["conv2d_backward"], random=10)
    release = load(ROOT / "release" / "10_cnn_learns" / "cnn_learns.ipynb")
    pasted = next(c for c in release.cells if grade_id(c) == "pasted_09")
    assert "raise NotImplementedError()" in pasted.source and "def conv2d" not in pasted.source


# --------------------------------------------------------------------------- part (a)


def test_reference_learn_kernel_recovers_the_edge_kernel(reference, capsys):
    learning.check_learn_kernel(reference["learn_kernel"], random=20)
    learning.check_recovers_edge_kernel(reference["learn_kernel"])
    assert "the edge kernel [1, -1] is learned" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # the mean squared error: a different gradient (and loss) than d2l's sum
        ("np.sum(diff**2)", "np.mean(diff**2)", "loss differs from torch"),
        # the loss recorded after the update
        (
            "        losses.append(float(np.sum(diff**2)))\n"
            "        _, grad_kernel, _ = conv2d_backward(x, kernel, 2 * diff)\n"
            "        kernel = kernel - lr * grad_kernel\n",
            "        _, grad_kernel, _ = conv2d_backward(x, kernel, 2 * diff)\n"
            "        kernel = kernel - lr * grad_kernel\n"
            "        losses.append(float(np.sum((conv2d_forward(x, kernel) - y) ** 2)))\n",
            "the loss of step t is computed before step t's update",
        ),
        # a sign error: gradient ascent
        ("kernel = kernel - lr * grad_kernel", "kernel = kernel + lr * grad_kernel", "differ"),
    ],
)
def test_wrong_gradient_descent_is_caught(old, new, expected):
    wrong = solutions(learn_kernel=(old, new))["learn_kernel"]
    data = learning.d2l_edge_data()
    start = np.random.default_rng(0).standard_normal((1, 1, 1, 2))
    with pytest.raises(CheckFailure) as failure:
        learning.check_learn_kernel(
            wrong, [dict(x=data["x"], y=data["y"], kernel=start, lr=0.03, steps=3)]
        )
    print(failure.value)
    assert "learn_kernel fails for x (1,1,6,8), y (1,1,6,7), kernel (1,1,1,2)" in str(failure.value)
    assert expected in str(failure.value)


# --------------------------------------------------------------------------- part (b)


def test_split_is_fixed_balanced_and_normalized():
    data = cnn.cifar_split()
    assert data["x_train"].shape == (646, 3, 32, 32) and data["x_val"].shape == (200, 3, 32, 32)
    assert np.bincount(data["y_val"]).tolist() == [20] * 10
    assert not set(data["train_index"]) & set(data["val_index"])
    np.testing.assert_allclose(data["x_train"].mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(data["x_train"].std(axis=(0, 2, 3)), 1, atol=1e-4)
    assert np.array_equal(cnn.cifar_split()["val_index"], data["val_index"])


def test_classifier_round_trips_through_plain_data_and_refuses_bad_states():
    model = cnn.seed_classifier(3)
    state = cnn.state_arrays(model)
    again = cnn.state_arrays(cnn.classifier_from_state(state))
    assert all(np.array_equal(state[k], again[k]) for k in state)
    assert not np.array_equal(
        state["conv1.weight"], cnn.state_arrays(cnn.seed_classifier(4))["conv1.weight"]
    )
    bad = dict(state, **{"conv1.weight": np.zeros((10, 3, 5, 5))})
    with pytest.raises(ValueError, match=r"state\['conv1.weight'\] has shape \(10, 3, 5, 5\)"):
        cnn.classifier_from_state(bad)


def test_reference_train_step_and_evaluate_pass(reference, capsys):
    learning.check_train_step(reference["train_steps_on_arrays"])
    learning.check_evaluate(reference["evaluate_on_arrays"])
    out = capsys.readouterr().out
    assert "ok: train_step matches torch on 3 case(s)" in out
    assert "ok: evaluate matches torch on 3 case(s)" in out


def test_forgotten_zero_grad_is_caught_on_the_second_step():
    ns = solutions(train_step=("    optimizer.zero_grad()\n", ""))
    # one step alone is right: the gradients start at zero
    learning.check_train_step(ns["train_steps_on_arrays"], [learning.train_steps_case(8, 8)])
    with pytest.raises(CheckFailure) as failure:
        learning.check_train_step(ns["train_steps_on_arrays"])
    message = str(failure.value)
    print(message)
    assert (
        "train_step fails for state=<6 weight arrays, 2800 numbers>, images (24,3,32,32), "
        "labels (24,), lr=0.05, batch_size=8:" in message
    )
    assert "the first batch's loss is right, a later one is not" in message
    assert "(zero the gradients before each backward, then one optimizer step per batch)" in message


def test_loss_after_the_update_is_caught():
    ns = solutions(
        train_step=(
            "    return loss.item()",
            "    return F.cross_entropy(model(images), labels).item()",
        )
    )
    with pytest.raises(CheckFailure, match="the batch's mean cross-entropy before the update"):
        learning.check_train_step(ns["train_steps_on_arrays"])


def test_mean_of_batch_means_is_caught_when_the_last_batch_is_smaller():
    ns = solutions(
        evaluate=(
            'total_loss += F.cross_entropy(logits, labels, reduction="sum").item()',
            "total_loss += F.cross_entropy(logits, labels).item() * len(loader.dataset) "
            "/ len(loader)",
        )
    )
    # the mean of the batch means: right for one batch (the check's first case), wrong for
    # batches of 64, 64, 64 and 8 (its second)
    with pytest.raises(CheckFailure) as failure:
        learning.check_evaluate(ns["evaluate_on_arrays"])
    print(failure.value)
    assert "the mean over all images (a smaller last batch must count less" in str(failure.value)


def test_accuracy_as_a_count_is_caught():
    ns = solutions(
        evaluate=(
            "return total_loss / count, correct / count",
            "return total_loss / count, correct",
        )
    )
    with pytest.raises(CheckFailure, match="the fraction of images whose largest logit"):
        learning.check_evaluate(ns["evaluate_on_arrays"])


def test_training_is_deterministic(reference, in_tmp):
    first = reference["train_cnn"](str(in_tmp / "a"), epochs=1, seed=5)
    second = reference["train_cnn"](str(in_tmp / "b"), epochs=1, seed=5)
    for key in learning.SCALARS.values():
        assert first[key] == second[key], key
    for name in first["state"]:
        np.testing.assert_array_equal(first["state"][name], second["state"][name])


@pytest.fixture(scope="module")
def wrong_logging():
    """train_cnn variants with one logging mistake each, and the reference."""
    line = 'writer.add_scalar("accuracy/validation", val_accuracy, epoch)'
    return {
        "percent": solutions(
            train_cnn=(line, line.replace("val_accuracy,", "100 * val_accuracy,"))
        ),
        "steps from 1": solutions(train_cnn=(line, line.replace("epoch)", "epoch + 1)"))),
        "no filters": solutions(
            train_cnn=(
                'writer.add_image("filters/conv1", cnn.filter_grid(model.conv1.weight), epoch)',
                "pass",
            )
        ),
    }


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        ("percent", "scalar 'accuracy/validation' logs"),
        ("steps from 1", "is logged at steps [1, 2]; expected one value per epoch at steps [0, 1]"),
        ("no filters", "no image 'filters/conv1' in the event files"),
    ],
)
def test_logging_mistakes_are_caught_and_the_check_cleans_up(
    wrong_logging, in_tmp, mistake, expected
):
    with pytest.raises(CheckFailure) as failure:
        learning.check_train_cnn(wrong_logging[mistake]["train_cnn"])
    print(failure.value)
    assert expected in str(failure.value)
    assert not (in_tmp / learning.CHECK_LOGS).exists()


def test_faked_history_is_caught_by_the_recomputed_accuracy(reference, in_tmp):
    """Logs and history that agree with each other but not with the returned weights."""
    real = reference["train_cnn"]

    def boasting(logdir, **kwargs):
        from torch.utils.tensorboard import SummaryWriter

        history = real(os.path.join(logdir, "real"), **kwargs)
        history["val_accuracy"] = [0.9] * len(history["val_accuracy"])
        with SummaryWriter(logdir) as writer:
            for tag, key in learning.SCALARS.items():
                for step, value in enumerate(history[key]):
                    writer.add_scalar(tag, value, step)
            for step in range(len(history["train_loss"])):
                grid = cnn.filter_grid(history["state"]["conv1.weight"])
                writer.add_image("filters/conv1", grid, step)
        return history

    with pytest.raises(CheckFailure) as failure:
        learning.check_train_cnn(boasting)
    print(failure.value)
    assert "accuracy/validation at the last step is 0.9, but the returned weights score" in str(
        failure.value
    )


def test_an_untrained_model_fails_the_learning_thresholds(in_tmp):
    ns = solutions(train_step=("    optimizer.step()\n", ""))  # never updates the weights
    with pytest.raises(CheckFailure, match="the training loss did not fall"):
        learning.check_train_cnn(ns["train_cnn"])


# --------------------------------------------------------------------------- notebook runs


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory):
    """One notebook run, stopping before the training: learn_kernel with the mean squared error,
    train_step without zero_grad, evaluate with the mean of batch means."""
    wrong = edited("learn_kernel", "np.sum(diff**2)", "np.mean(diff**2)")
    wrong.update(edited("train_step", "    optimizer.zero_grad()\n", ""))
    wrong.update(
        edited(
            "evaluate",
            'total_loss += F.cross_entropy(logits, labels, reduction="sum").item()',
            "total_loss += F.cross_entropy(logits, labels).item() * len(loader.dataset) "
            "/ len(loader)",
        )
    )
    return run_notebook_file(NOTEBOOK, replace=wrong, stop_after="test_evaluate", timeout=300)


def test_each_mistake_is_caught_by_its_own_cell(mistakes):
    assert mistakes["test_pasted_09"].passed
    assert failing(mistakes) == {"test_learn_kernel", "test_train_step", "test_evaluate"}
    error = mistakes["test_learn_kernel"].error
    print(error)
    assert (
        "CheckFailure: learn_kernel fails for x (1,1,6,8), y (1,1,6,7), kernel (1,1,1,2), "
        "lr=0.03, steps=1:" in error
    )
    assert "loss differs from torch" in error
    assert "zero the gradients before each backward" in mistakes["test_train_step"].error
    assert "a smaller last batch must count less" in mistakes["test_evaluate"].error


@pytest.mark.xdist_group("grader")
def test_trusted_grader_trains_in_the_sandbox_and_gives_full_marks(tmp_path):
    """The whole notebook in the trusted grader: student cells (including the 8-epoch run and
    its TensorBoard folder under runs/) in the sandbox, test cells in the grader, which reads the
    sandbox's event files (a relative folder inside the submission) and re-evaluates the weights
    that crossed over as plain data."""
    import nbformat

    from autograder.sandbox import Limits, isolation_available
    from autograder.score import grade_notebook

    if not isolation_available():
        pytest.skip("the grader's sandbox isolation needs root")
    source = nbformat.read(str(NOTEBOOK), as_version=4)
    workdir = tmp_path / "submitted" / "alice" / "10_cnn_learns"
    workdir.mkdir(parents=True)
    nbformat.write(source, str(workdir / NOTEBOOK.name))
    result = grade_notebook(source, source, workdir, Limits(), "cnn_learns", log=print)
    for test in result.tests:
        print(test.grade_id, test.points, "/", test.max_points, test.message[:600])
    assert {t.grade_id: t.points for t in result.tests} == {
        "test_pasted_09": 1.0,
        "test_learn_kernel": 2.0,
        "test_train_step": 2.0,
        "test_evaluate": 2.0,
        "test_train_cnn": 2.0,
    }
    # test_train_cnn's marks need the event files the student's run wrote (read by the grader
    # through its copy of the sandbox's folder); the sandbox wrote only its own copy, never the
    # grader's folder
    assert not (workdir / "runs").exists() and not (workdir / learning.CHECK_LOGS).exists()
