"""Where bqplot draws a mark: the screen box (CSS pixels) of a data rectangle in a ``Figure``, computed as bqplot
0.13 lays out a figure whose size its layout fixes (``width``/``height`` in px, ``auto_layout`` off).

bqplot takes the element's size, clamps its width/height ratio to ``[min_aspect_ratio, max_aspect_ratio]``,
subtracts ``fig_margin`` to get the plot area, and maps each scale's domain onto the plot area's width (x) or height
(y). A scale with ``allow_padding`` (bqplot's default) is first shrunk at both ends by the largest padding of the
marks that use it: a ``Scatter`` or ``Label`` pads by half its marker (``sqrt(default_size) / 2 + 1`` px). That
padding is the same number of pixels in x and y, so on a figure taller than wide it squeezes x more than y: the
tiles' click squares (one marker as large as a tile) made 64×64 tiles 88 px wide and 110 px tall. The tile grids
therefore use scales without padding and an aspect ratio that includes the margins; ``screen_box`` lets a test
check what the browser will draw without a browser.
"""

from __future__ import annotations

import math

from bqplot import Label, Scatter

__all__ = ["px", "plot_area", "scale_range", "screen_box"]


def px(value) -> float:
    """A CSS length in pixels ("426px" → 426.0); a number is taken as pixels. ValueError for other units."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text.endswith("px"):
        raise ValueError(f"a layout size in px is needed to know the drawn size; got {value!r}")
    return float(text[:-2])


def plot_area(figure) -> tuple[float, float]:
    """(width, height) in px of the figure's plot area: the layout's size, its ratio clamped to the figure's aspect
    ratio bounds, minus the margins."""
    width, height = px(figure.layout.width), px(figure.layout.height)
    ratio = width / height
    if ratio < figure.min_aspect_ratio:
        height = width / figure.min_aspect_ratio
    elif ratio > figure.max_aspect_ratio:
        width = height * figure.max_aspect_ratio
    m = figure.fig_margin
    return width - m["left"] - m["right"], height - m["top"] - m["bottom"]


def _padding(figure, scale) -> float:
    """The largest padding (px) of the marks of ``figure`` drawn on ``scale`` (0 for a scale without padding)."""
    if not scale.allow_padding:
        return 0.0
    pads = [math.sqrt(mark.default_size) / 2 + 1 for mark in figure.marks
            if isinstance(mark, (Scatter, Label)) and scale in mark.scales.values()]
    return max(pads, default=0.0)


def scale_range(figure, scale, axis: str) -> tuple[float, float]:
    """The pixel range (start, end) onto which ``scale`` ("x": left → right, "y": top → bottom) maps its domain."""
    width, height = plot_area(figure)
    size, share = (width, figure.padding_x) if axis == "x" else (height, figure.padding_y)
    pad = size * share + _padding(figure, scale)
    return pad, size - pad


def screen_box(figure, xs, ys, x, y) -> tuple[float, float, float, float]:
    """(left, top, width, height) in px, within the plot area, of the data rectangle ``x`` = (x0, x1), ``y`` =
    (y0, y1) drawn on scales ``xs`` and ``ys`` (a reversed y scale has its minimum at the top)."""

    def to_px(scale, axis, values):
        start, end = scale_range(figure, scale, axis)
        lo, hi = float(scale.min), float(scale.max)
        flip = (axis == "y") != bool(getattr(scale, "reverse", False))  # bqplot's y grows upwards
        out = []
        for v in values:
            t = (float(v) - lo) / (hi - lo)
            out.append(start + (1 - t if flip else t) * (end - start))
        return min(out), max(out)

    left, right = to_px(xs, "x", x)
    top, bottom = to_px(ys, "y", y)
    return left, top, right - left, bottom - top
