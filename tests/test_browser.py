"""Real-browser test: JupyterLab + Debian's headless Chromium render the widgets and react to a click.

Needs the playwright package (test extra) and /usr/bin/chromium (scripts/install_browser.sh); without them the
tests fail with a message saying so. On failure, screenshots and the server log go to artifacts/browser/.
"""

import time
from pathlib import Path

from tests.browser import (
    click_button,
    distinct_colors,
    element_screenshot,
    free_port,
    layout_problems,
    new_page,
    run_notebook_in_browser,
    wait_for_screenshot_change,
)
from tests.browser.fixtures import browser, lab_page, lab_server  # noqa: F401  (pytest fixtures)

SMOKE = Path(__file__).parent / "browser" / "widgets_smoke.ipynb"


def test_widgets_render_and_button_recolours_heatmap(lab_page, lab_server):  # noqa: F811
    page = run_notebook_in_browser(
        lab_page,
        lab_server,
        SMOKE,
        expected={
            ".smoke-explorer": 1,
            ".smoke-explorer > .widget-button": 1,
            ".smoke-explorer .bqplot.figure.smoke-grid": 1,
        },
    )
    grid = ".smoke-explorer .smoke-grid"
    before = element_screenshot(page, grid, name="before_click")
    assert distinct_colors(before) > 20, "the heatmap looks blank"

    click_button(page, "Shuffle", within=".smoke-explorer")

    wait_for_screenshot_change(page, grid, before, min_fraction=0.2)
    page.get_by_text("clicks: 1").wait_for()


DEMO = Path(__file__).resolve().parents[1] / "demo.ipynb"
DOCS = Path(__file__).resolve().parents[1] / "docs"
TOPS = (".oip-explorer", ".oip-layer-zoo", ".oip-activations", ".oip-atlas-viewer")


def _stop_button(page, within):
    return page.locator(within).locator("button", has_text="Stop")


def test_demo_notebook_renders_fits_and_the_explorer_runs_in_the_browser(lab_page, lab_server):  # noqa: F811
    """demo.ipynb in JupyterLab at 1280 px: every cell runs without stderr, every widget renders, every control of
    every explorer, zoo and activation viewer lies inside its widget's box with its text uncut; Stop is disabled
    while idle and enabled during a run, which it stops; a click on a snapshot tile opens its detail view; a click
    on a zoo tile shows that map. With OIP_SCREENSHOT=1 the explorer, zoo and viewer go to docs/*.png."""
    page = run_notebook_in_browser(
        lab_page,
        lab_server,
        DEMO,
        run_timeout=300,
        expected={
            ".oip-explorer": 6,
            ".oip-explorer .oip-grid": 6,
            ".oip-explorer .oip-loss": 6,
            ".oip-layer-zoo .oip-zoo": 1,
            ".oip-layer-zoo .oip-zoo-detail": 1,
            ".oip-activations .oip-maps": 1,
            ".oip-atlas-viewer .oip-atlas-tiles": 1,
        },
    )
    stderr = [(c["index"], c["stderr"]) for c in page.oip_state["cells"] if c["stderr"]]
    assert not stderr, f"cells with stderr output: {stderr}"
    problems = [p for top in TOPS for p in layout_problems(page, top)]
    assert not problems, "controls that do not fit:\n" + "\n".join(problems[:20])

    first = ".oip-explorer >> nth=0"
    explorer = page.locator(".oip-explorer").first
    assert _stop_button(page, first).is_disabled() and not explorer.locator("button", has_text="Run").is_disabled()
    grid = ".oip-explorer .oip-grid"
    before = element_screenshot(page, grid, name="grid_before_run")
    assert distinct_colors(before) > 20, "the explorer's grid looks blank after the notebook ran"

    for name, value in (("seed", "7"), ("steps", "1000000")):  # a long run, to be stopped
        box = explorer.locator(".widget-inline-hbox", has_text=name).locator("input").first
        box.fill(value)
        box.press("Enter")
    click_button(page, "Run", within=".oip-explorer")
    explorer.locator("button", has_text="Running").wait_for(timeout=20_000)
    assert explorer.locator("button", has_text="Running").is_disabled() and _stop_button(page, first).is_enabled()
    wait_for_screenshot_change(page, grid, before, min_fraction=0.02, timeout=60)
    _stop_button(page, first).click()
    explorer.locator(".oip-status").filter(has_text="stopped after").wait_for(timeout=30_000)
    page.wait_for_function("() => { const b = Array.from(document.querySelector('.oip-explorer')"
                           ".querySelectorAll('button')).find(b => b.textContent.trim() === 'Stop');"
                           " return b && b.disabled; }", timeout=10_000)
    assert not explorer.locator("button", has_text="Run").is_disabled()

    # a click on a snapshot tile (its click square) opens the detail view with the tile's values
    view = page.locator(".oip-explorer").nth(1)  # the coarse-noise explorer: a finished run of a live map
    view.scroll_into_view_if_needed()
    view.locator(".oip-grid path.dot").nth(3).click(force=True)
    view.locator(".oip-tile-detail").wait_for(timeout=20_000)
    assert "objective" in view.locator(".oip-values").locator("..").inner_text()
    assert view.locator(".oip-values td").count() == 5  # one channel: name, min, max, mean, std

    # the zoo: clicking a tile selects its map and shows that map's OIP beside its top images
    zoo_fig = page.locator(".oip-layer-zoo .oip-zoo").first
    zoo_fig.scroll_into_view_if_needed()
    detail = ".oip-layer-zoo .oip-zoo-detail"
    detail_before = element_screenshot(page, detail, name="zoo_detail_before")
    title_before = page.locator(".oip-layer-zoo").first.get_by_text("its OIP").first.inner_text()
    page.locator(".oip-layer-zoo .oip-zoo path.dot").first.click(force=True)  # the click square of map 0's tile
    page.locator(".oip-layer-zoo").first.get_by_text("map 0 of Conv2D_3").first.wait_for(timeout=20_000)
    assert "map 0 of Conv2D_3" not in title_before
    wait_for_screenshot_change(page, detail, detail_before, min_fraction=0.02, timeout=20)

    if __import__("os").environ.get("OIP_SCREENSHOT"):  # the README's pictures, taken here in the real browser
        DOCS.mkdir(exist_ok=True)
        page.set_viewport_size({"width": 1280, "height": 2600})  # whole widgets in one picture
        for css, name in ((".oip-explorer >> nth=1", "explorer"), (".oip-layer-zoo", "zoo"),
                          (".oip-activations", "activations")):
            target = page.locator(css).first
            target.scroll_into_view_if_needed()
            png = target.screenshot(animations="disabled")
            from io import BytesIO

            from PIL import Image  # 256 colours: a light picture for the README, the same to the eye

            Image.open(BytesIO(png)).convert("RGB").quantize(256).save(DOCS / f"{name}.png", optimize=True)


def test_voila_serves_the_demo_with_every_control_in_its_box(browser, tmp_path):  # noqa: F811
    """`voila demo.ipynb` in Chromium at 1280 px: all widgets render and every control fits its widget's box."""
    import shutil
    import subprocess
    import sys

    shutil.copy(DEMO, tmp_path / "demo.ipynb")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "voila", "demo.ipynb", "--no-browser", f"--port={port}",
                               "--Voila.ip=127.0.0.1"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    page = new_page(browser, 1280, 1000)
    try:
        deadline = time.monotonic() + 120
        while True:  # until the server answers
            try:
                page.goto(f"http://127.0.0.1:{port}/", timeout=300_000)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                assert server.poll() is None and time.monotonic() < deadline, "voila did not start"
                time.sleep(0.5)
        page.wait_for_function("(tops) => tops.every(([css, n]) => document.querySelectorAll(css).length === n)",
                               arg=[[".oip-explorer", 6], [".oip-layer-zoo", 1], [".oip-activations", 1],
                                    [".oip-atlas-viewer", 1]],
                               timeout=300_000)
        time.sleep(1)  # the last layout pass
        problems = [p for top in TOPS for p in layout_problems(page, top)]
        assert not problems, "controls that do not fit in Voilà:\n" + "\n".join(problems[:20])
    finally:
        page.context.close()
        server.terminate()
        server.wait(timeout=30)


def _atlas_notebook(tmp_path) -> Path:
    """The demo's atlas section (its "## 10." cells) after the demo's first code cell, as a notebook of its own."""
    import nbformat

    demo = nbformat.read(DEMO, as_version=4)
    start = next(i for i, c in enumerate(demo.cells) if c.cell_type == "markdown" and c.source.startswith("## 10."))
    first = next(c for c in demo.cells if c.cell_type == "code")
    demo.cells = [first, *demo.cells[start:]]
    path = tmp_path / "atlas_demo.ipynb"
    nbformat.write(demo, path)
    return path


def test_atlas_viewer_fits_and_a_click_opens_the_unit(lab_page, lab_server, tmp_path):  # noqa: F811
    """The demo's atlas section in JupyterLab at 1280 px: the atlas is computed, its examples found, the viewer
    renders its page of tiles with every control inside its box; a click on a tile opens that unit's panel (its OIP
    and its dataset examples with their heatmaps), which fits too. With OIP_SCREENSHOT=1 it goes to docs/atlas.png."""
    page = run_notebook_in_browser(
        lab_page,
        lab_server,
        _atlas_notebook(tmp_path),
        run_timeout=240,
        expected={".oip-atlas-viewer": 1, ".oip-atlas-viewer .oip-atlas-tiles": 1, ".oip-atlas-unit .bqplot": 0},
    )
    stderr = [(c["index"], c["stderr"]) for c in page.oip_state["cells"] if c["stderr"]]
    assert not stderr, f"cells with stderr output: {stderr}"
    problems = layout_problems(page, ".oip-atlas-viewer")
    assert not problems, "controls that do not fit:\n" + "\n".join(problems[:20])
    viewer = page.locator(".oip-atlas-viewer").first
    tiles = ".oip-atlas-viewer .oip-atlas-tiles"
    assert distinct_colors(element_screenshot(page, tiles, name="atlas_tiles")) > 20, "the tiles look blank"
    assert viewer.get_by_text("page 1 of 1").count() == 1 and viewer.get_by_text("32 of 32 maps").count() == 1

    viewer.locator(".oip-atlas-tiles path.dot").nth(3).click(force=True)  # the click square of unit 3's tile
    unit = page.locator(".oip-atlas-unit").first
    unit.get_by_text("Conv2D_1 map 3").wait_for(timeout=20_000)
    unit.locator(".oip-atlas-examples").wait_for(timeout=20_000)
    assert unit.locator(".oip-atlas-oips").count() == 1
    assert distinct_colors(element_screenshot(page, ".oip-atlas-unit .oip-atlas-examples", name="atlas_examples")) > 20
    assert unit.locator("button", has_text="Open in explorer").count() == 1
    time.sleep(1)  # the panel's last layout pass
    problems = layout_problems(page, ".oip-atlas-viewer")
    assert not problems, "controls that do not fit with the unit open:\n" + "\n".join(problems[:20])

    if __import__("os").environ.get("OIP_SCREENSHOT"):  # the README's picture, taken here in the real browser
        from io import BytesIO

        from PIL import Image

        page.set_viewport_size({"width": 1280, "height": 1600})
        viewer.scroll_into_view_if_needed()
        png = viewer.screenshot(animations="disabled")
        Image.open(BytesIO(png)).convert("RGB").quantize(256).save(DOCS / "atlas.png", optimize=True)


def test_zoo_html_renders_offline_in_chromium(browser, tmp_path):  # noqa: F811
    """`oipwidgets zoo --html` writes a page that shows its zoo image from a file:// URL with no network at all."""
    from oipwidgets import cli

    page_path = tmp_path / "zoo.html"
    assert cli.main(["zoo", "--steps", "5", "--out", str(tmp_path / "zoo.png"), "--html", str(page_path)]) == 0
    context = browser.new_context(offline=True)
    page = context.new_page()
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_path.as_uri())
    img = page.locator("img").first
    img.wait_for()
    width = page.evaluate("() => document.images[0].complete ? document.images[0].naturalWidth : 0")
    context.close()
    assert width == 960  # the 64-map zoo on 8 columns
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
