"""Layout helpers shared by the widgets: control panels that fit their controls, sections with short headings, and a
main row that wraps instead of cutting its content.

Everything is flexbox (``ipywidgets.Layout``) with relative widths: a control fills its panel (``width="auto"`` in a
stretching column, so its margins stay inside), a panel has a ``min_width`` that its longest control needs, and the
row of panel and view wraps (``flex_flow="row wrap"``) when the notebook is narrower than both. Nothing is cut at
1280 px in JupyterLab (file browser open) or in Voilà; the browser test measures it.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

__all__ = ["CONTROL_STYLE", "PANEL_WIDTH", "fill", "refit", "section", "panel", "main_row", "view_column"]

#: Room for the description of a control ("optimiser", "smoothness", "transforms" fit).
CONTROL_STYLE = {"description_width": "84px"}
#: Width of a control panel: a description plus a readable value, readout or dropdown.
PANEL_WIDTH = "300px"


def fill(**kwargs) -> widgets.Layout:
    """A control's layout: as wide as its panel (its own margins inside), never narrower than its content."""
    return widgets.Layout(width="auto", min_width="0", **kwargs)


def refit(widget: widgets.Widget, **kwargs) -> widgets.Widget:
    """Make ``widget`` fill its panel (as ``fill``), changing its own ``Layout`` in place (a Layout replaced would
    stay behind in the kernel); ``kwargs``: further layout settings (e.g. ``flex="1 1 0"``)."""
    for name, value in {"width": "auto", "min_width": "0", **kwargs}.items():
        setattr(widget.layout, name, value)
    return widget


def section(title: str, children, css_class: str = "oip-section") -> widgets.VBox:
    """Controls under a short heading (``title``), one per line, each filling the section's width."""
    heading = widgets.HTML(f'<div class="oip-heading" style="font-weight:600;color:#444;margin:6px 0 0 4px;'
                           f'border-bottom:1px solid #ddd">{html.escape(title)}</div>', layout=fill())
    box = widgets.VBox([heading, *children], layout=widgets.Layout(width="100%", overflow="visible"))
    box.add_class(css_class)
    return box


def panel(children, width: str = PANEL_WIDTH) -> widgets.VBox:
    """A column of sections that keeps its width (``flex: 0 0 width``) while the view beside it takes the rest."""
    return widgets.VBox(list(children), layout=widgets.Layout(flex=f"0 0 {width}", width=width, min_width=width,
                                                              overflow="visible"))


def view_column(children) -> widgets.VBox:
    """The column beside a panel: takes the remaining width; wide content (a grid of many tiles) scrolls inside it
    instead of pushing past the notebook's edge."""
    return widgets.VBox(list(children), layout=widgets.Layout(flex="1 1 360px", min_width="0", overflow="auto hidden"))


def main_row(left, right) -> widgets.HBox:
    """Panel and view side by side; the view goes below the panel when the notebook is too narrow for both."""
    return widgets.HBox([left, right], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start",
                                                             width="100%"))
