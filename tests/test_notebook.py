"""demo.ipynb runs top to bottom headless, offline, without errors, and shows what it promises."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demo.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers=None, wait: float = 120, server=None):
    """The body of ``url`` once the server answers (retrying until ``wait`` seconds or until the ``server``
    process has exited), else None."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and (server is None or server.poll() is None):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=240) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.5)
    return None


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream" and out.name == "stdout":
            parts.append(out.text)
        elif out.output_type == "execute_result":
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts)


def test_demo_notebook_executes(tmp_path):
    nb = nbformat.read(DEMO, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit demo.ipynb without outputs"
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    stderr = [o.text for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, stderr  # no TensorFlow start-up lines (oipwidgets/quiet.py) nor any other stderr
    assert "fourier" in "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")  # the planted section ran
    text = "\n".join(_text(c) for c in nb.cells if c.cell_type == "code")
    assert "test accuracy 99.00%" in text
    assert "dead for seed 1:" in text and "LayerResult(64 OIPs" in text
    assert "Fashion-MNIST model: test accuracy" in text
    assert "oip.gif" in text
    assert "64 maps in" in text and "dead for this noise" in text
    widget_views = [
        o for c in nb.cells for o in c.get("outputs", [])
        if o.output_type in ("display_data", "execute_result") and "application/vnd.jupyter.widget-view+json" in o.data
    ]
    assert len(widget_views) >= 5  # the explorer, the linked pair, the Fashion-MNIST explorer, zoo, viewer


def test_voila_serves_the_demo_as_an_app(tmp_path):
    """`voila demo.ipynb` runs the notebook and serves its widgets (no code cells shown, no errors)."""
    shutil.copy(DEMO, tmp_path / "demo.ipynb")
    port = _free_port()
    cmd = [sys.executable, "-m", "voila", "demo.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"]
    server = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = _get(f"http://127.0.0.1:{port}/", server=server)
        assert page is not None, "voila did not answer"
        assert page.count("application/vnd.jupyter.widget-view+json") >= 5  # explorers, zoo, viewer
        assert '"output_type": "error"' not in page and "Traceback" not in page
        assert "test accuracy 99.00%" in page
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_readme_run_command_serves_the_demo_in_jupyterlab():
    """`bash scripts/run.sh --no-browser` (the README's run command) sets up and starts JupyterLab on demo.ipynb,
    also as root (containers), where jupyter needs --allow-root."""
    port, token = _free_port(), "oipwidgets-test"
    cmd = ["bash", str(ROOT / "scripts" / "run.sh"), "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        auth = {"Authorization": f"token {token}"}
        body = _get(f"http://127.0.0.1:{port}/api/contents/demo.ipynb?content=0", auth, wait=300, server=server)
        assert body is not None, f"JupyterLab did not answer (exit code {server.poll()})"
        info = json.loads(body)
        assert info["name"] == "demo.ipynb" and info["type"] == "notebook"
        assert "JupyterLab" in _get(f"http://127.0.0.1:{port}/lab?token={token}")
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
