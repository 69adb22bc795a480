"""demo.ipynb runs top to bottom headless, offline, without errors, and shows what it promises."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

DEMO = Path(__file__).resolve().parents[1] / "demo.ipynb"


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
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    shutil.copy(DEMO, tmp_path / "demo.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "voila", "demo.ipynb", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"]
    server = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page, deadline = None, time.monotonic() + 120
        while page is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=240) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, "voila did not answer"
        assert page.count("application/vnd.jupyter.widget-view+json") >= 5  # explorers, zoo, viewer
        assert '"output_type": "error"' not in page and "Traceback" not in page
        assert "test accuracy 99.00%" in page
    finally:
        server.terminate()
        server.wait(timeout=30)
