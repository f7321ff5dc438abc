"""TensorBoard's own server shows what assignment 08's logging code writes.

The notebook's reference ``feature_map_grids`` and ``log_feature_maps`` (its solution cells) log
real feature maps of shipped CIFAR-10 test images into a run folder under tmp_path. Then
``tensorboard --logdir`` starts on a free loopback port; the test asks its HTTP API for the run,
the image tags and one image, checks that image is the PNG TensorBoard's event reader decodes, and
always stops the server.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from autograder import notebooks as nbs
from course import tb
from course.checks.tensorboard import sample_feature_maps

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "source" / "08_tensorboard" / "tensorboard.ipynb"
TENSORBOARD = Path(sys.executable).parent / "tensorboard"
HOST = "127.0.0.1"
RUN = "seed002"
STEPS = [0, 1]
TAGS = ["feature_maps/image_0", "feature_maps/image_1", "feature_maps/image_2"]
START_TIMEOUT = 90.0


def notebook_functions() -> dict:
    """Execute the notebook's solution cells (the reference code) and return their namespace."""
    namespace: dict = {}
    exec("import numpy as np", namespace)
    for cell in nbs.load(NOTEBOOK).cells:
        if nbs.is_solution_cell(cell) and cell.cell_type == "code":
            exec(compile(cell.source, f"<{nbs.grade_id(cell)}>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tb_logs")
    log_feature_maps = notebook_functions()["log_feature_maps"]
    run_dir = root / RUN
    for step in STEPS:
        maps = sample_feature_maps(3 * step, 3)  # (3, 6, 30, 30) from shipped CIFAR-10 images
        assert log_feature_maps(str(run_dir), maps, step) == TAGS
    return root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def get(base: str, path: str, **params) -> bytes:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, url
        return response.read()


def get_json(base: str, path: str, **params):
    return json.loads(get(base, path, **params))


@pytest.fixture(scope="module")
def server(logdir, tmp_path_factory):
    """A running ``tensorboard --logdir`` on a free loopback port: yields its base URL."""
    assert TENSORBOARD.exists(), f"{TENSORBOARD} missing: tensorboard is a pinned dependency"
    port = free_port()
    log_file = tmp_path_factory.mktemp("tb_server") / "tensorboard.log"
    with open(log_file, "wb") as output:
        process = subprocess.Popen(
            [
                str(TENSORBOARD),
                "--logdir",
                str(logdir),
                "--host",
                HOST,
                "--port",
                str(port),
                "--load_fast=false",
                "--reload_interval",
                "1",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"tensorboard exited with {process.returncode}:\n{log_file.read_text()}"
                )
            try:
                tags = get_json(base, "/data/plugin/images/tags")
                if set(tags.get(RUN, {})) >= set(TAGS):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"tensorboard did not serve the run's image tags within {START_TIMEOUT} s:\n"
                    + log_file.read_text()
                )
            time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def test_server_lists_the_run(server):
    runs = get_json(server, "/data/runs")
    print("runs:", runs)
    assert runs == [RUN]


def test_server_lists_exactly_the_logged_image_tags(server):
    tags = get_json(server, "/data/plugin/images/tags")
    print("image tags:", tags)
    assert sorted(tags[RUN]) == TAGS
    for tag in TAGS:
        assert tags[RUN][tag]["samples"] == 1


def test_server_serves_one_png_per_step_equal_to_the_event_file(server, logdir):
    from PIL import Image

    tag = TAGS[1]
    entries = get_json(server, "/data/plugin/images/images", run=RUN, tag=tag, sample=0)
    print("image entries:", entries)
    assert [entry["step"] for entry in entries] == STEPS
    expected = {image.step: image.pixels for image in tb.read_images(logdir / RUN)[tag]}
    for entry in entries:
        png = get(server, "/data/plugin/images/individualImage?" + entry["query"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG"
            assert image.size == (94, 63)  # (width, height) of 6 panels 30x30, 3 columns, pad 1
            pixels = np.asarray(image.convert("RGB"))
        np.testing.assert_array_equal(pixels, expected[entry["step"]][:, :, :3])
        # the grayscale grid of the notebook's own function, as SummaryWriter stores it
        grids = notebook_functions()["feature_map_grids"](sample_feature_maps(3 * entry["step"], 3))
        np.testing.assert_array_equal(pixels, tb.summary_writer_pixels(grids[1]))


# ------------------------------------------------------------------ course.tb helpers (no server)


def test_new_run_dir_makes_one_fresh_folder_per_run_under_the_logs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_LOGS_ROOT", str(tmp_path / "from_env"))
    first, second = tb.new_run_dir("seed002"), tb.new_run_dir("seed002")
    assert first != second
    for folder in (first, second):
        assert Path(folder).parent == tmp_path / "from_env" and Path(folder).is_dir()
        assert Path(folder).name.startswith("seed002-")
    explicit = tb.new_run_dir("sobel", root=tmp_path / "arg")
    assert Path(explicit).parent == tmp_path / "arg"
    with pytest.raises(ValueError):
        tb.new_run_dir("../escape", root=tmp_path)


def test_read_images_returns_what_summary_writer_stored(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(3)
    gray = rng.random((1, 5, 7))
    rgb = rng.random((3, 4, 6)).astype(np.float32)
    with SummaryWriter(str(tmp_path)) as writer:
        for step in (2, 4):
            writer.add_image("gray", gray * step / 4, step)
        writer.add_image("rgb", rgb, 0)
    images = tb.read_images(tmp_path)
    assert tb.image_tags(tmp_path) == ["gray", "rgb"] == sorted(images)
    assert [image.step for image in images["gray"]] == [2, 4]
    for image in images["gray"]:
        assert (image.height, image.width) == (5, 7)
        want = tb.summary_writer_pixels(gray * image.step / 4)
        np.testing.assert_array_equal(image.pixels[:, :, :3], want)
    np.testing.assert_array_equal(images["rgb"][0].pixels[:, :, :3], tb.summary_writer_pixels(rgb))
