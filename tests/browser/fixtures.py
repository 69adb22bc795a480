"""pytest fixtures for browser tests. Use them from a test module with

    from tests.browser.fixtures import lab_server, browser, lab_page  # noqa: F401

`lab_server` (one JupyterLab per test session), `browser` (one headless Chromium per session) and `lab_page`
(a fresh page per test; on failure its screenshot, console log, element screenshots and the server log are
saved in artifacts/browser/<test name>/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from .driver import BrowserSetupError, check_browser_requirements, execution_state, launch_browser, new_page
from .lab import JupyterLabError, JupyterLabServer

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"


def artifact_dir(name: str) -> Path:
    d = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    d.mkdir(parents=True, exist_ok=True)
    return d


class _Shared:
    """One JupyterLab server and one browser for the whole pytest session, however many test modules import
    these fixtures (each import makes its own session-scoped fixture; two sync_playwright() instances in one
    thread would clash). Reference-counted: the last user's teardown stops them."""

    server: JupyterLabServer | None = None
    server_users = 0
    playwright_cm = None
    browser = None
    browser_users = 0


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """A private JupyterLab (this venv's Python) serving a temporary directory; stopped at session end."""
    if _Shared.server is None:
        venv_python = REPO / ".venv" / "bin" / "python"
        python = str(venv_python) if venv_python.exists() else sys.executable
        server = JupyterLabServer(tmp_path_factory.mktemp("jupyterlab"), python=python)
        try:
            server.start()
        except JupyterLabError as e:
            shutil.copy(server.log_path, artifact_dir("jupyterlab_start") / "server.log")
            pytest.fail(f"JupyterLab did not start: {e}", pytrace=False)
        _Shared.server = server
    _Shared.server_users += 1
    try:
        yield _Shared.server
    finally:
        _Shared.server_users -= 1
        if _Shared.server_users == 0:
            _Shared.server.stop()
            _Shared.server = None


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium through Playwright. Missing pieces make the tests FAIL, never skip."""
    if _Shared.browser is None:
        try:
            check_browser_requirements()
        except BrowserSetupError as e:
            pytest.fail(str(e), pytrace=False)
        from playwright.sync_api import sync_playwright

        cm = sync_playwright()
        pw = cm.__enter__()
        try:
            _Shared.browser = launch_browser(pw)
        except BaseException:
            cm.__exit__(None, None, None)
            raise
        _Shared.playwright_cm = cm
    _Shared.browser_users += 1
    try:
        yield _Shared.browser
    finally:
        _Shared.browser_users -= 1
        if _Shared.browser_users == 0:
            try:
                _Shared.browser.close()
            finally:
                _Shared.playwright_cm.__exit__(None, None, None)
                _Shared.browser = _Shared.playwright_cm = None


def save_page_artifacts(page, server, name: str) -> Path:
    """Save what `page` shows (screenshot, HTML, notebook state, element screenshots, console) and the server
    log into artifacts/browser/<name>/; returns that directory. Never raises for a broken page."""
    d = artifact_dir(name)
    try:
        page.screenshot(path=str(d / "page.png"), full_page=True, timeout=10_000)
    except Exception as e:  # the page may have crashed
        (d / "page.png.error.txt").write_text(str(e))
    try:
        (d / "page.html").write_text(page.content())
        (d / "notebook_state.json").write_text(json.dumps(execution_state(page), indent=1))
    except Exception:
        pass
    for key, png in getattr(page, "oip_shots", {}).items():
        (d / f"{key}.png").write_bytes(png)
    (d / "console.log").write_text("\n".join(getattr(page, "oip_log", [])))
    (d / "server.log").write_text(server.log_text())
    return d


@pytest.fixture
def lab_page(request, browser, lab_server):
    """A fresh page; if the test fails, what it saw is saved into artifacts/browser/<test>/
    (always, with OIP_BROWSER_ARTIFACTS=always). Its kernels are shut down afterwards."""
    failed_before = request.session.testsfailed
    page = new_page(browser)
    try:
        yield page
    finally:
        try:
            failed = request.session.testsfailed > failed_before
            if failed or os.environ.get("OIP_BROWSER_ARTIFACTS") == "always":
                d = save_page_artifacts(page, lab_server, request.node.nodeid.split("::", 1)[-1])
                print(f"\nbrowser artifacts saved in {d}")
        finally:
            try:
                page.context.close()
            finally:
                lab_server.shutdown_kernels()
