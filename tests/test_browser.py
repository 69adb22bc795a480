"""Real-browser test: JupyterLab + Debian's headless Chromium render the widgets and react to a click.

Needs the playwright package (test extra) and /usr/bin/chromium (scripts/install_browser.sh); without them the
tests fail with a message saying so. On failure, screenshots and the server log go to artifacts/browser/.
"""

from pathlib import Path

from tests.browser import (
    click_button,
    distinct_colors,
    element_screenshot,
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
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "explorer.png"


def test_demo_notebook_renders_and_the_explorer_runs_in_the_browser(lab_page, lab_server):  # noqa: F811
    """demo.ipynb: run all cells, every widget renders; then set a new seed in the first explorer, click Run and
    see its grid change. With OIP_SCREENSHOT=1 the explorer after the run is saved as docs/explorer.png."""
    page = run_notebook_in_browser(
        lab_page,
        lab_server,
        DEMO,
        run_timeout=300,
        expected={
            ".oip-explorer": 5,
            ".oip-explorer .oip-grid": 5,
            ".oip-explorer .oip-loss": 5,
            ".oip-layer-zoo .oip-zoo": 1,
            ".oip-layer-zoo .oip-zoo-detail": 1,
            ".oip-activations .oip-maps": 1,
        },
    )
    explorer = page.locator(".oip-explorer").first
    grid = ".oip-explorer .oip-grid"
    before = element_screenshot(page, grid, name="grid_before_run")
    assert distinct_colors(before) > 20, "the explorer's grid looks blank after the notebook ran"

    seed = explorer.locator(".widget-inline-hbox", has_text="seed").locator("input")
    seed.fill("7")
    seed.press("Enter")
    click_button(page, "Run", within=".oip-explorer")
    wait_for_screenshot_change(page, grid, before, min_fraction=0.02, timeout=60)
    status = explorer.locator(".oip-status")
    status.filter(has_text="final objective").wait_for(timeout=60_000)

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

    if __import__("os").environ.get("OIP_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        explorer.screenshot(path=str(SCREENSHOT), animations="disabled")


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
