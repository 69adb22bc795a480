"""Start and stop a private JupyterLab server for the browser tests.

The server runs from this project's virtual environment, listens on 127.0.0.1 on a free port with a random
token, serves a temporary root directory, and keeps its config, data, runtime, settings and workspaces in
temporary directories so nothing from the user's own Jupyter setup leaks in (and nothing leaks out).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# User settings written into the private settings directory: no news or update checks, no autosave, and every
# cell rendered (JupyterLab 4 virtualises long notebooks by default; widgets off screen would never render).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}

# Front-end plugins switched off through page_config.json: the news prompt and the extension manager's
# PyPI look-ups.
DISABLED_PLUGINS = {
    "@jupyterlab/apputils-extension:announcements": True,
    "@jupyterlab/extensionmanager-extension": True,
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLabError(RuntimeError):
    pass


class JupyterLabServer:
    """A JupyterLab server in its own process group; use as a context manager or call start()/stop().

    `root` is the directory the server serves (notebooks are copied there by `add_file`); `log_path` holds
    everything the server printed.
    """

    def __init__(self, base_dir: Path, python: str | None = None, start_timeout: float = 90.0):
        self.base_dir = Path(base_dir)
        self.root = self.base_dir / "root"
        self.log_path = self.base_dir / "server.log"
        self.python = os.path.abspath(python or sys.executable)  # abspath, not resolve(): keep the venv
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(24)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log_file = None

    # -- addresses -------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        """The address of `path` (e.g. 'lab/tree/x.ipynb') with the token attached."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def notebook_url(self, name: str) -> str:
        return self.url(f"lab/tree/{name}?reset")

    def api(self, method: str, path: str, timeout: float = 10.0):
        """Call the server's REST API; returns the decoded JSON body (or None when there is none)."""
        req = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    # -- files -----------------------------------------------------------------------------------------------
    def add_file(self, src: Path | str, name: str | None = None) -> str:
        """Copy `src` into the server's root directory (so runs never touch the original); returns its name."""
        src = Path(src)
        name = name or src.name
        dest = self.root / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest)
        return name

    def log_text(self) -> str:
        if self._log_file:
            self._log_file.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- life cycle ------------------------------------------------------------------------------------------
    def _prepare_dirs(self) -> dict:
        d = self.base_dir
        dirs = {k: d / k for k in ("config", "data", "runtime", "ipython", "settings", "workspaces")}
        for p in [self.root, *dirs.values()]:
            p.mkdir(parents=True, exist_ok=True)
        for rel, value in LAB_SETTINGS.items():
            f = dirs["settings"] / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value, indent=1))
        labconfig = dirs["config"] / "labconfig"
        labconfig.mkdir(exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": DISABLED_PLUGINS}))
        return dirs

    def _command(self, dirs: dict) -> list[str]:
        return [
            self.python, "-m", "jupyter", "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            # Stops by itself if a test run dies without tearing it down.
            "--ServerApp.shutdown_no_activity_timeout=900",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={dirs['settings']}",
            f"--LabApp.workspaces_dir={dirs['workspaces']}",
        ]

    def _env(self, dirs: dict) -> dict:
        env = dict(os.environ)
        for k in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_TOKEN", "JUPYTERLAB_DIR", "PYTHONPATH"):
            env.pop(k, None)
        env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
            IPYTHONDIR=str(dirs["ipython"]),
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONUNBUFFERED="1",
            # Kernels see the same venv; keep TensorFlow quiet and on the CPU.
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
        )
        return env

    def start(self) -> "JupyterLabServer":
        dirs = self._prepare_dirs()
        last_error = None
        for _attempt in range(3):  # another process may grab the free port between probing and binding
            self.port = free_port()
            self._log_file = open(self.log_path, "ab")
            self._log_file.write(f"\n=== starting on port {self.port} ===\n".encode())
            self._log_file.flush()
            self.proc = subprocess.Popen(
                self._command(dirs),
                cwd=self.root,
                env=self._env(dirs),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() can end all of it
            )
            try:
                self._wait_ready()
                return self
            except JupyterLabError as e:
                last_error = e
                self.stop()
                if "address already in use" not in self.log_text().lower():
                    break
        raise JupyterLabError(f"{last_error}\n--- server log ({self.log_path}) ---\n{self.log_text()[-4000:]}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise JupyterLabError(f"JupyterLab exited with code {self.proc.returncode} while starting")
            try:
                self.api("GET", "status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.25)
        raise JupyterLabError(f"JupyterLab did not answer on {self.base_url} within {self.start_timeout:.0f} s")

    def _kernel_pids(self) -> list[int]:
        """Pids of kernels this server started (their command line names a file in our runtime dir)."""
        runtime = str(self.base_dir / "runtime")
        pids = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if runtime in cmd and "kernel" in cmd and int(p.name) != os.getpid():
                pids.append(int(p.name))
        return pids

    def shutdown_kernels(self) -> None:
        """End every session and kernel (each test then starts from a fresh kernel). Errors are ignored."""
        try:
            for sess in self.api("GET", "sessions", timeout=3) or []:
                self.api("DELETE", f"sessions/{sess['id']}", timeout=10)
            for k in self.api("GET", "kernels", timeout=3) or []:
                self.api("DELETE", f"kernels/{k['id']}", timeout=10)
        except Exception:
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the kernels down, then end the server's whole process group (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                self.shutdown_kernels()
                for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
                    try:
                        os.killpg(proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        proc.wait(wait)
                        break
                    except subprocess.TimeoutExpired:
                        continue
            # Kernels live in process groups of their own: end any left behind, by pid.
            for pid in self._kernel_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "JupyterLabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
