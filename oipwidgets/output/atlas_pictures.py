"""The pictures of an atlas's views (the notebook viewer and the static site): an OIP as display values, a dataset
example's thumbnail, and the heatmap of its activation map over it. Pure numpy (PIL for the resizing).

OIPs are drawn as the zoo draws them (``render.plain_display``): as they are in their ``value_range`` (RGB in
[0, 1] with a preprocess convention), else each stretched from its lowest to its highest value; grey ones go
through a colour map, colour ones stay colour. A muted tile (a dead or failed unit) keeps ``MUTED`` of its contrast
around mid-grey. The heatmap: the map (h, w) stretched over the thumbnail (th, tw) (bilinear; a map is the layer's
grid over the image, smaller than the image for valid convolutions), scaled by ``high`` (the unit's largest
activation over its examples, so the k heatmaps of a unit compare), coloured with ``inferno`` and laid over the
thumbnail in grey with an opacity that grows with the activation: cold places show the image, hot ones the colour.
"""

from __future__ import annotations

import numpy as np

from .render import palette, plain_display, to_rgb8

__all__ = ["MUTED", "oip_display", "oip_rgb8", "thumbnail_rgb8", "heat_overlay", "HEAT_CMAP"]

#: contrast left to the tiles of units without an OIP (dead, non-finite, error), around mid-grey (as the zoo)
MUTED = 0.2
#: the heatmaps' colour map
HEAT_CMAP = "inferno"
_HEAT_ALPHA = 0.75  # opacity of the colour where the activation is ``high``


def oip_display(image: np.ndarray, value_range=None, muted: bool = False) -> np.ndarray:
    """Display values in 0..1 of an OIP (H, W, C): (H, W) for one channel, (H, W, 3) for colour; ``muted``: faint."""
    values = plain_display(np.asarray(image, np.float32), None if value_range is None else tuple(value_range))
    return (0.5 + MUTED * (values - 0.5)).astype(np.float32) if muted else values.astype(np.float32)


def oip_rgb8(image: np.ndarray, value_range=None, cmap: str = "viridis", muted: bool = False) -> np.ndarray:
    """uint8 RGB (H, W, 3) of an OIP: ``oip_display`` through ``cmap`` (grey) or as colour."""
    return to_rgb8(oip_display(image, value_range, muted), cmap)


def thumbnail_rgb8(thumb: np.ndarray) -> np.ndarray:
    """uint8 RGB (th, tw, 3) of a stored thumbnail (th, tw, 1) or (th, tw, 3): grey shown grey."""
    t = np.asarray(thumb, np.uint8)
    if t.ndim == 2:
        t = t[..., None]
    return np.repeat(t, 3, axis=-1) if t.shape[-1] == 1 else np.ascontiguousarray(t[..., :3])


def heat_overlay(thumb: np.ndarray, amap: np.ndarray, high: float, cmap: str = HEAT_CMAP) -> np.ndarray:
    """uint8 RGB (th, tw, 3): the activation map ``amap`` (h, w) over the thumbnail (th, tw, tc) (see the module
    doc); ``high``: the activation drawn at full colour (values <= 0 show the image alone)."""
    from PIL import Image

    base = thumbnail_rgb8(thumb).astype(np.float32) / 255.0
    grey = base.mean(axis=-1, keepdims=True)
    th, tw = base.shape[:2]
    m = np.nan_to_num(np.asarray(amap, np.float32), nan=0.0)
    if m.shape != (th, tw):
        m = np.asarray(Image.fromarray(np.ascontiguousarray(m), mode="F").resize((tw, th), Image.BILINEAR))
    level = np.clip(m / float(high), 0.0, 1.0) if high and np.isfinite(high) and high > 0 else np.zeros_like(m)
    colour = palette(cmap)[(level * 255 + 0.5).astype(np.uint8)].astype(np.float32) / 255.0
    alpha = (_HEAT_ALPHA * level)[..., None]
    out = (1.0 - alpha) * (0.35 + 0.5 * grey) + alpha * colour
    return (np.clip(out, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
