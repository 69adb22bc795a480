"""Drive Debian's headless Chromium with Playwright against a JupyterLab server (see lab.py).

Main entry points:
    launch_browser(playwright)                      -> Browser (Debian's /usr/bin/chromium, headless)
    new_page(browser)                               -> Page that records console messages and page errors
    run_notebook_in_browser(page, server, nb_path)  -> Page with the notebook opened, all cells run, widgets shown
    assert_widgets_rendered(page, expected={css: n})
    click_button(page, text, within=css)
    element_screenshot(page, css)                   -> PNG bytes
    wait_for_screenshot_change(page, css, before)   -> PNG bytes that differ from `before`
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

CHROMIUM = os.environ.get("OIP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# An output area holding a rendered widget view (the widget renderer sets no data-mime-type attribute).
WIDGET_OUTPUT_CSS = ".jp-OutputArea-output:has(> .jupyter-widgets)"
INSTALL_HINT = "run `bash scripts/setup.sh && bash scripts/install_browser.sh` (pip: playwright; apt-get install -y chromium)"


class BrowserSetupError(RuntimeError):
    """Playwright or Chromium is missing: the browser tests cannot run (they must fail, not skip)."""


def check_browser_requirements() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        raise BrowserSetupError(f"the Python package playwright is not importable ({e}); {INSTALL_HINT}") from e
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise BrowserSetupError(f"Chromium is not installed at {CHROMIUM}; {INSTALL_HINT}")


def launch_browser(playwright, headless: bool = True):
    """Debian's Chromium, headless, with no network chatter of its own (never `playwright install`)."""
    check_browser_requirements()
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=headless, args=CHROMIUM_ARGS, timeout=60_000)


def new_page(browser, width: int = 1280, height: int = 1000):
    """A page in a fresh context; its console messages and page errors are kept in `page.oip_log`."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(30_000)
    log: list[str] = []
    page.oip_log = log
    page.oip_shots = {}
    page.on("console", lambda m: log.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.append(f"pageerror: {e}"))
    page.on("crash", lambda *_: log.append("page crashed"))
    return page


# JavaScript run in the page. `window.jupyterapp` exists because the server runs with
# --LabApp.expose_app_in_browser=True.
_JS_NOTEBOOK_READY = """(name) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return false;
  const w = app.shell.currentWidget;
  if (!w || !w.context || w.context.path !== name || !w.content || !w.sessionContext) return false;
  const sc = w.sessionContext;
  const k = sc.session && sc.session.kernel;
  return w.context.isReady && sc.isReady && !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

_JS_RUN_ALL = """() => {
  const app = window.jupyterapp;
  window.__oipRunAll = 'running';
  app.commands.execute('notebook:run-all-cells').then(
    (r) => { window.__oipRunAll = 'done'; },
    (e) => { window.__oipRunAll = 'error: ' + e; });
  return true;
}"""

_JS_EXECUTION_STATE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  const cells = [];
  const model = w.content.model;
  for (let i = 0; i < model.cells.length; i++) {
    const c = model.cells.get(i);
    if (c.type !== 'code') continue;
    const outs = c.outputs ? c.outputs.toJSON() : [];
    cells.push({index: i, count: c.executionCount, state: c.executionState || null,
                blank: c.sharedModel.getSource().trim() === '',
                errors: outs.filter(o => o.output_type === 'error')
                            .map(o => ({ename: o.ename, evalue: o.evalue, traceback: (o.traceback || []).join('\\n')})),
                widgets: outs.filter(o => o.data && o.data['""" + WIDGET_MIME + """']).length,
                stderr: outs.filter(o => o.output_type === 'stream' && o.name === 'stderr')
                            .map(o => (Array.isArray(o.text) ? o.text.join('') : o.text).slice(0, 300))});
  }
  return {runAll: window.__oipRunAll || null, kernel: k ? k.status : 'none', cells: cells};
}"""


def _strip_ansi(s: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", s)


def execution_state(page) -> dict:
    """The run-all status, kernel status and, per code cell, execution count, errors and widget outputs."""
    return page.evaluate(_JS_EXECUTION_STATE)


def run_notebook_in_browser(
    page,
    server,
    nb_path: Path | str,
    *,
    extra_files=(),
    open_timeout: float = 90.0,
    run_timeout: float = 120.0,
    render_timeout: float = 30.0,
    allow_errors: bool = False,
    expected: dict[str, int] | None = None,
):
    """Open `nb_path` in JupyterLab, run all cells, wait until the kernel is idle and every widget has rendered.

    The notebook (and `extra_files`, e.g. data it reads by relative path) is copied into the server's root
    directory first, so the original is never modified. Fails (AssertionError) if a cell raised (unless
    `allow_errors`), if a widget shows "Error displaying widget" or stays "Loading widget...", if fewer widget
    views appeared than the kernel displayed, or if a count in `expected` ({css selector: number}) is wrong.
    Returns the page.
    """
    name = server.add_file(nb_path)
    for f in extra_files:
        server.add_file(f)
    page.goto(server.notebook_url(name), wait_until="domcontentloaded", timeout=open_timeout * 1000)
    try:
        page.wait_for_function(_JS_NOTEBOOK_READY, arg=name, timeout=open_timeout * 1000, polling=250)
    except Exception as e:
        dialogs = page.locator(".jp-Dialog").all_inner_texts()
        raise AssertionError(
            f"notebook {name} did not open with an idle kernel within {open_timeout:.0f} s"
            + (f"; a dialog is open: {dialogs[0][:300]!r}" if dialogs else "")
            + f" ({type(e).__name__})"
        ) from None

    page.evaluate(_JS_RUN_ALL)
    deadline = time.monotonic() + run_timeout
    while True:
        state = execution_state(page)
        if state["runAll"] and state["runAll"].startswith("error"):
            raise AssertionError(f"notebook:run-all-cells failed: {state['runAll']}")
        # JupyterLab stops running cells after one raises; blank cells are never executed.
        if state["runAll"] == "done" and state["kernel"] == "idle":
            break
        if time.monotonic() > deadline:
            pending = [c["index"] for c in state["cells"] if c["count"] is None and not c["blank"]]
            raise AssertionError(
                f"notebook {name} did not finish within {run_timeout:.0f} s "
                f"(run-all: {state['runAll']}, kernel: {state['kernel']}, cells not yet run: {pending})"
            )
        time.sleep(0.25)
    errors = [(c["index"], e) for c in state["cells"] for e in c["errors"]]
    if errors and not allow_errors:
        idx, e = errors[0]
        raise AssertionError(
            f"cell {idx} of {name} raised {e['ename']}: {e['evalue']}\n{_strip_ansi(e['traceback'])[-3000:]}"
        )
    unrun = [c["index"] for c in state["cells"] if c["count"] is None and not c["blank"]]
    if unrun and not errors:
        raise AssertionError(f"cells {unrun} of {name} were not run")
    n_widgets = sum(c["widgets"] for c in state["cells"])
    assert_widgets_rendered(page, expected=expected, min_widget_outputs=n_widgets, timeout=render_timeout)
    page.oip_state = state  # what each cell showed (errors, widgets, stderr), for the test to look at
    return page


def widget_report(page) -> dict:
    """What the page shows now: widget outputs, how many still load or failed, and their texts."""
    return page.evaluate(
        """(sel) => {
          const all = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
          const text = (o) => (o.textContent || '').trim();
          return {
            outputs: document.querySelectorAll(sel).length,
            loading: all.filter(o => text(o) === 'Loading widget...').length,
            errors: all.map(text).filter(t => t.includes('Error displaying widget'))
              // ipywidgets 8 shows an error icon instead of a view whose model or view class failed to load
              .concat(Array.from(document.querySelectorAll('.jupyter-widgets-error-widget'))
                .map(e => 'error widget: ' + ((e.title || e.textContent || '').trim().slice(0, 300) || '(no message)'))),
          };
        }""",
        WIDGET_OUTPUT_CSS,
    )


def count(page, css: str) -> int:
    return page.locator(css).count()


def assert_widgets_rendered(
    page, expected: dict[str, int] | None = None, min_widget_outputs: int = 0, timeout: float = 30.0
) -> dict:
    """Wait (up to `timeout` s) until no widget is loading and at least `min_widget_outputs` widget views exist;
    then assert none shows "Error displaying widget" and each `expected` {css: count} matches exactly."""
    deadline = time.monotonic() + timeout
    while True:
        rep = widget_report(page)
        counts = {css: count(page, css) for css in (expected or {})}
        done = (
            rep["loading"] == 0
            and rep["outputs"] >= min_widget_outputs
            and not rep["errors"]
            and all(counts[c] == n for c, n in (expected or {}).items())
        )
        if done or rep["errors"] or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    if rep["errors"]:
        console = [m[:400] for m in getattr(page, "oip_log", []) if m.startswith(("console.error", "pageerror"))]
        raise AssertionError(
            f"{len(rep['errors'])} widget(s) failed to display: {rep['errors'][:3]}; browser errors: {console[:3]}"
        )
    assert rep["loading"] == 0, f"{rep['loading']} widget(s) still show 'Loading widget...' after {timeout:.0f} s"
    assert rep["outputs"] >= min_widget_outputs, (
        f"{rep['outputs']} widget view(s) rendered, but the kernel displayed {min_widget_outputs}"
    )
    for css, n in (expected or {}).items():
        assert counts[css] == n, f"expected {n} element(s) matching {css!r}, found {counts[css]}"
    return {**rep, "counts": counts}


def _scope(page, within: str | None):
    if within is None:
        return page
    loc = page.locator(within)
    loc.first.wait_for(state="visible")
    return loc.first


def click_button(page, text: str, within: str | None = None, timeout: float = 15.0) -> None:
    """Click the ipywidgets Button whose label is exactly `text` (inside the first element matching `within`)."""
    scope = _scope(page, within)
    button = scope.locator("button.jupyter-button, button.widget-button, button").filter(
        has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")
    )
    try:
        button.first.wait_for(state="visible", timeout=timeout * 1000)  # it may still be rendering
    except Exception:
        labels = [t.strip() for t in scope.locator("button").all_inner_texts() if t.strip()]
        raise AssertionError(
            f"no button {text!r}{' in ' + within if within else ''} within {timeout:.0f} s; buttons seen: {labels}"
        ) from None
    n = button.count()
    assert n == 1, f"expected one button {text!r}{' in ' + within if within else ''}, found {n}"
    button.first.click(timeout=timeout * 1000)


def element_screenshot(page, css: str, path: Path | str | None = None, name: str | None = None) -> bytes:
    """PNG of the first element matching `css` (e.g. '.oip-explorer .oip-grid'); also kept for failure artifacts."""
    loc = page.locator(css).first
    loc.wait_for(state="visible")
    png = loc.screenshot(animations="disabled", path=str(path) if path else None)
    shots = getattr(page, "oip_shots", None)
    if shots is not None:
        key = name or f"{len(shots):02d}_{''.join(ch if ch.isalnum() else '_' for ch in css).strip('_')}"
        shots[key] = png
    return png


def wait_for_screenshot_change(
    page, css: str, before: bytes, min_fraction: float = 0.05, timeout: float = 15.0, tolerance: int = 16
) -> bytes:
    """Screenshot `css` until at least `min_fraction` of its pixels differ from `before`; returns the new PNG.
    Raises AssertionError with the last fraction seen if that does not happen within `timeout` s."""
    from .images import diff_fraction

    deadline = time.monotonic() + timeout
    while True:
        after = element_screenshot(page, css, name="after_change")
        frac = diff_fraction(before, after, tolerance=tolerance)
        if frac >= min_fraction:
            return after
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{css} did not change within {timeout:.0f} s: {frac:.4f} of pixels differ (< {min_fraction})"
            )
        time.sleep(0.25)


_JS_LAYOUT_PROBLEMS = r"""(top) => {
  // every input, dropdown, slider readout, button and control label of each widget matching `top` must lie fully
  // inside every widget box that holds it, up to the top widget (1 px of rounding allowed); hidden ones are skipped
  const controls = 'input, select, textarea, button, .widget-readout, .widget-label, .widget-dropdown, ' +
                   '.widget-text, .widget-hslider, .widget-toggle-buttons';
  const problems = [];
  const name = (el) => {
    const label = el.closest('.widget-inline-hbox, .widget-inline-vbox, .jupyter-widgets');
    const own = el.tagName === 'BUTTON' || el.tagName === 'LABEL' || el.classList.contains('widget-readout');
    const text = ((!own && label && label.querySelector('.widget-label')) || el).textContent || el.value || '';
    return el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
      ? '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.') : '') + ' "' + text.trim().slice(0, 30) + '"';
  };
  document.querySelectorAll(top).forEach((root, k) => {
    const rb = root.getBoundingClientRect();
    root.querySelectorAll(controls).forEach((el) => {
      const b = el.getBoundingClientRect();
      if (b.width === 0 || b.height === 0 || el.offsetParent === null) return;  // not shown (collapsed, hidden)
      for (let p = el.parentElement; p; p = p.parentElement) {
        if (p.classList.contains('jupyter-widgets') || p.classList.contains('widget-box') || p === root) {
          const pb = p.getBoundingClientRect();
          if (pb.width === 0 || pb.height === 0) { if (p === root) break; else continue; }
          const out = b.left < pb.left - 1 || b.right > pb.right + 1 || b.top < pb.top - 1 || b.bottom > pb.bottom + 1;
          if (out) {
            problems.push(`${top}[${k}]: ${name(el)} [${b.left.toFixed(0)}..${b.right.toFixed(0)} x ` +
              `${b.top.toFixed(0)}..${b.bottom.toFixed(0)}] sticks out of ` +
              `${p.tagName.toLowerCase()}.${Array.from(p.classList).slice(0, 3).join('.')} ` +
              `[${pb.left.toFixed(0)}..${pb.right.toFixed(0)} x ${pb.top.toFixed(0)}..${pb.bottom.toFixed(0)}]`);
            break;
          }
        }
        if (p === root) break;
      }
      // clipped text: an input or readout whose content is wider than its box
      // (an ellipsis hides a few px that scrollWidth rounds away: measure the text itself)
      let need = 0, room = 0;
      if (el.tagName === 'INPUT' && el.type === 'text') {
        need = el.scrollWidth; room = el.clientWidth + 1;
      } else if ((el.classList.contains('widget-readout') || el.classList.contains('widget-label') ||
                  el.tagName === 'BUTTON') && el.textContent.trim() !== '') {  // (an icon alone is no text)
        const range = document.createRange();
        range.selectNodeContents(el);
        const style = getComputedStyle(el);
        need = range.getBoundingClientRect().width;
        room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) + 0.25;
      }
      if (need > room) {
        problems.push(`${top}[${k}]: ${name(el)} cuts its text (${need.toFixed(1)} px of text in ` +
                      `${room.toFixed(1)} px)`);
      }
    });
    if (rb.right > window.innerWidth + 1) {
      problems.push(`${top}[${k}] is wider than the window (${rb.right.toFixed(0)} > ${window.innerWidth})`);
    }
  });
  return problems;
}"""


def layout_problems(page, top: str) -> list[str]:
    """Controls (inputs, dropdowns, slider readouts, buttons, labels) of the widgets matching ``top`` that stick out
    of a widget box holding them or cut their text; [] when every one fits."""
    return page.evaluate(_JS_LAYOUT_PROBLEMS, top)
