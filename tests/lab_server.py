"""Start JupyterLab the way `make lab` / `make formgrader` do, for the tests that need a server.

Differences from the Makefile targets, all for a test: no token or password (loopback only), a
free port, no browser, and fresh settings, workspaces, config and runtime folders so nothing a
person configured on this machine changes what the test sees. JupyterLab's own settings are
pinned: every cell stays in the page (no windowed rendering) and no news prompt pops up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

JUPYTER = Path(sys.executable).parent / "jupyter"

# JupyterLab user settings for the test: all cells rendered (so the DOM holds every output),
# no "fetch Jupyter news?" toast, no update check.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    url: str  # http://127.0.0.1:<port>/
    process: subprocess.Popen
    log_path: Path

    def get(self, path: str, timeout: float = 60.0) -> tuple[int, str, str]:
        """GET ``path`` (relative to the server's root); returns (status, content type, body).

        Redirects are not followed, so a 302 is seen as a 302.
        """

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(self.url + path.lstrip("/"), timeout=timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
        except urllib.error.HTTPError as err:
            body = err.read().decode(errors="replace")
            return err.code, err.headers.get("Content-Type", ""), body

    def get_json(self, path: str):
        status, ctype, body = self.get(path)
        assert status == 200, f"GET {path} -> {status}: {body[:500]}\n{self.log_tail()}"
        return json.loads(body)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "server log (tail):\n" + "\n".join(lines[-n:])


def lab_command(notebook_dir: Path, port: int, state: Path) -> list[str]:
    """`make lab`'s command line (see the Makefile) plus the test's settings."""
    return [
        str(JUPYTER),
        "lab",
        f"--notebook-dir={notebook_dir}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        # the test's additions
        "--ServerApp.port_retries=0",
        "--no-browser",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--LabApp.user_settings_dir={state / 'settings'}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        # CI containers run as root; Jupyter refuses root without this flag.
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
    ]


def _write_settings(folder: Path) -> None:
    for rel, data in LAB_SETTINGS.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))


@contextlib.contextmanager
def running_lab(
    notebook_dir: Path, state: Path, cwd: Path | None = None, timeout: float = 120.0
) -> Iterator[LabServer]:
    """JupyterLab serving ``notebook_dir``, started with cwd ``cwd`` (default: notebook_dir).

    ``state`` is an empty folder for the server's settings, workspaces, config and log. The
    server (and its kernels) is always shut down on exit.
    """
    state.mkdir(parents=True, exist_ok=True)
    _write_settings(state / "settings")
    (state / "workspaces").mkdir(exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = str(JUPYTER.parent) + os.pathsep + env.get("PATH", "")
    env["JUPYTER_CONFIG_DIR"] = str(state / "config")  # ignore ~/.jupyter
    env["JUPYTER_RUNTIME_DIR"] = str(state / "runtime")
    env["COURSE_OFFLINE"] = "1"
    env.pop("JUPYTER_TOKEN", None)
    log_path = state / "server.log"
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            lab_command(notebook_dir, port, state),
            cwd=cwd or notebook_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kernels die with it
        )
    server = LabServer(url=f"http://127.0.0.1:{port}/", process=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {proc.returncode}\n{server.log_tail()}"
                )
            try:
                status, _, body = server.get("api/status", timeout=2)
                if status == 200 and "started" in json.loads(body):
                    break
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"jupyter lab did not answer in {timeout:.0f} s\n" + server.log_tail()
                )
            time.sleep(0.5)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # Kernels started by the server share its process group; make sure none is left over.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------ the browser side

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Debian's headless Chromium, offline and quiet (the same flags as tests/test_browser.py).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
# The status bar names the current notebook's kernel and its state: "Python 3 (ipykernel) | Idle".
STATUS_IDLE = """() => {
    const bar = document.querySelector('#jp-main-statusbar');
    return !!bar && /\\|\\s*Idle/.test(bar.innerText);
}"""


def open_notebook(page, lab: LabServer, relpath: str, timeout_ms: int = 90_000) -> None:
    """Open a notebook in JupyterLab and wait until its kernel is connected and idle.

    Each opening uses a workspace of its own, so tabs of earlier cases are not restored.
    """
    import re

    workspace = "t" + re.sub(r"\W", "", relpath)
    page.goto(f"{lab.url}lab/workspaces/{workspace}/tree/{relpath}?reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout_ms)
    page.wait_for_function(STATUS_IDLE, timeout=timeout_ms, polling=250)
