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
