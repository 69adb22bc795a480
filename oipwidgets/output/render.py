"""Turning OIP images into pictures: plain and contrast-enhanced renderings, colour maps, mosaics (pure numpy).

The article shows each OIP twice: with a plain colour map and with some contrast enhancement. Here the plain
rendering scales an image's own min..max to 0..1, and the enhanced one stretches its 2nd..98th percentiles to 0..1
(clipping the tails) and then applies a square-root-like gamma that lifts faint structure. Both land in [0, 1], so
one colour scale serves both rows of a grid. Images with several channels are shown as their channel mean in a
colour-mapped view; exports of RGB models can use ``as_rgb``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLORMAPS", "to_2d", "plain", "enhanced", "colorize", "as_rgb", "mosaic"]

#: Colour maps offered by the widgets (names valid both in bqplot's ColorScale and in matplotlib).
COLORMAPS = ("viridis", "magma", "plasma", "inferno", "Greys")


def to_2d(image: np.ndarray) -> np.ndarray:
    """(H, W, C) or (H, W) → (H, W) float32: the single channel, or the mean of several channels."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., 0] if image.shape[-1] == 1 else image.mean(axis=-1)
    if image.ndim != 2:
        raise ValueError(f"expected an image (H, W) or (H, W, C); got shape {image.shape}")
    return image


def _stretch(image: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low
    if not np.isfinite(span) or span <= 0:
        return np.full(image.shape, 0.5, dtype=np.float32)
    return np.clip((image - low) / span, 0.0, 1.0).astype(np.float32)


def plain(image: np.ndarray) -> np.ndarray:
    """The image's own min..max scaled to 0..1, (H, W) float32 (a flat image gives 0.5 everywhere)."""
    img = to_2d(image)
    return _stretch(img, float(img.min()), float(img.max()))


def enhanced(image: np.ndarray, percentiles=(2.0, 98.0), gamma: float = 0.6) -> np.ndarray:
    """Contrast-enhanced (H, W) float32 in 0..1: percentile stretch, then ``x ** gamma`` (gamma < 1 lifts faint parts)."""
    img = to_2d(image)
    low, high = np.percentile(img, percentiles)
    return _stretch(img, float(low), float(high)) ** gamma


def colorize(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """Values in 0..1 (H, W) → uint8 RGB (H, W, 3) with a matplotlib colour map."""
    from matplotlib import colormaps  # imported here: only exports need it

    if cmap not in colormaps:
        raise ValueError(f"unknown colour map {cmap!r}; try one of {', '.join(COLORMAPS)}")
    rgba = colormaps[cmap](np.clip(values, 0, 1))
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def as_rgb(image: np.ndarray, cmap: str = "viridis", contrast: bool = False) -> np.ndarray:
    """An OIP as uint8 RGB (H, W, 3): colour-mapped for one channel, min..max scaled colours for three."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 3:
        lo, hi = float(image.min()), float(image.max())
        return (_stretch(image, lo, hi) * 255 + 0.5).astype(np.uint8)
    return colorize(enhanced(image) if contrast else plain(image), cmap)


def mosaic(tiles: np.ndarray, cols: int, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """Tiles (N, h, w) on a grid of ``cols`` columns with ``gap`` pixels between them → (rows·(h+gap)−gap, …)."""
    tiles = np.asarray(tiles, dtype=np.float32)
    n, h, w = tiles.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), fill, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = tiles[i]
    return out
