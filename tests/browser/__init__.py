"""Real-browser tests: a private JupyterLab server driven by Debian's headless Chromium through Playwright.

    from tests.browser.fixtures import lab_server, browser, lab_page  # noqa: F401  (pytest fixtures)
    from tests.browser import run_notebook_in_browser, click_button, element_screenshot, diff_fraction
"""

from .driver import (
    WIDGET_OUTPUT_CSS,
    BrowserSetupError,
    assert_widgets_rendered,
    check_browser_requirements,
    click_button,
    element_screenshot,
    execution_state,
    launch_browser,
    layout_problems,
    new_page,
    run_notebook_in_browser,
    wait_for_screenshot_change,
    widget_report,
)
from .images import diff_fraction, distinct_colors, images_similar, load_image, mean_color
from .lab import JupyterLabServer, free_port

__all__ = [
    "WIDGET_OUTPUT_CSS",
    "BrowserSetupError",
    "JupyterLabServer",
    "assert_widgets_rendered",
    "check_browser_requirements",
    "click_button",
    "diff_fraction",
    "distinct_colors",
    "element_screenshot",
    "execution_state",
    "free_port",
    "images_similar",
    "launch_browser",
    "layout_problems",
    "load_image",
    "mean_color",
    "new_page",
    "run_notebook_in_browser",
    "wait_for_screenshot_change",
    "widget_report",
]
