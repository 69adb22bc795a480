"""What the colours of a tile mean: a colour bar of the colour map with the values at its ends, and the values of
an image (per channel) as a small table. HTML only (no widget of its own), so any view can show it in an
``ipywidgets.HTML``.

A tile is stretched on its own (``render.plain_display``: its lowest value → the colour map's first colour, its
highest → the last; ``render.enhanced_display``: the 2nd and 98th percentiles, then γ 0.6), so the numbers at the
ends of a tile's colour bar are that tile's own, unless the image has a range of its own (``OIPResult.value_range``,
RGB in [0, 1] with a ``preprocess`` convention): the plain tile then shows it as it is, and the bar says that range.
"""

from __future__ import annotations

import html

import numpy as np

from ..output.render import palette

__all__ = ["colour_bar", "value_table", "display_range", "GAMMA", "PERCENTILES"]

#: What ``render.enhanced_display`` does by default (the "contrast" row).
PERCENTILES, GAMMA = (2.0, 98.0), 0.6


def colour_bar(cmap: str, low: str = "low", high: str = "high", width: int = 120) -> str:
    """An inline colour bar of ``cmap`` (``width`` px) with ``low`` written left of it and ``high`` right of it."""
    colours = palette(cmap)[np.linspace(0, 255, 9).round().astype(int)]  # 9 stops, both ends included
    stops = ", ".join(f"rgb({r},{g},{b})" for r, g, b in colours)
    return (f'<span class="oip-colour-bar" style="white-space:nowrap">{html.escape(low)} '
            f'<span style="display:inline-block;vertical-align:middle;width:{int(width)}px;height:10px;'
            f'background:linear-gradient(to right, {stops});border:1px solid #bbb"></span> {html.escape(high)}</span>')


def display_range(image: np.ndarray, contrast: bool) -> tuple[float, float]:
    """The values of ``image`` drawn as the first and the last colour: its min and max, or (``contrast``) its 2nd
    and 98th percentiles, over all channels."""
    values = np.asarray(image, np.float64)
    if contrast:
        low, high = np.percentile(values, PERCENTILES)
        return float(low), float(high)
    return float(values.min()), float(values.max())


def value_table(image: np.ndarray) -> str:
    """min, max, mean and standard deviation of ``image`` (H, W) or (H, W, C), one row per channel, as HTML."""
    values = np.asarray(image, np.float64)
    channels = values[..., None] if values.ndim == 2 else values
    names = ["value"] if channels.shape[-1] == 1 else (["R", "G", "B"] if channels.shape[-1] == 3 else
                                                       [f"ch {c}" for c in range(channels.shape[-1])])
    head = "".join(f"<th style='padding:0 6px'>{h}</th>" for h in ("", "min", "max", "mean", "std"))
    rows = []
    for c, name in enumerate(names):
        v = channels[..., c]
        cells = "".join(f"<td style='padding:0 6px;text-align:right'>{x:.3g}</td>"
                        for x in (v.min(), v.max(), v.mean(), v.std()))
        rows.append(f"<tr><td>{name}</td>{cells}</tr>")
    return f"<table class='oip-values' style='font-size:12px'><tr>{head}</tr>{''.join(rows)}</table>"
