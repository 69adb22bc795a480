"""Turning OIP images into pictures: plain and contrast-enhanced renderings, colour maps, mosaics (pure numpy).

The article shows each OIP twice: with a plain colour map and with some contrast enhancement. Here the plain
rendering scales an image's own min..max to 0..1, and the enhanced one stretches its 2nd..98th percentiles to 0..1
(clipping the tails) and then applies a square-root-like gamma that lifts faint structure. Both land in [0, 1], so
one colour scale serves both rows of a grid. ``plain`` and ``enhanced`` give one (H, W) picture (several channels:
their mean); ``plain_display`` and ``enhanced_display`` do the same for grey images but keep the colour of 3-channel
images ((H, W, 3), all channels stretched jointly so hues stay). An image with a known range (``value_range``: RGB
in [0, 1] for a model with a ``preprocess`` convention) is shown as it is in that range by ``plain_display`` and
``as_rgb`` instead. The widgets send pictures as 8-bit PNG:
``to_rgb8`` turns display values into uint8 RGB (grey ones through a colour map), ``png_bytes`` encodes them
(grey ones as a palette PNG of the colour map: one byte per pixel), ``tile_scale`` picks the on-screen size of a tile
and ``downsample`` shrinks large images for display.
"""

from __future__ import annotations

import numpy as np

__all__ = ["COLORMAPS", "to_2d", "plain", "enhanced", "plain_display", "enhanced_display", "colorize", "to_rgb8",
           "palette", "png_bytes", "png_pixels", "tile_scale", "downsample", "as_rgb", "mosaic"]

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


def _display_channels(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 for a 3-channel image, else the (H, W) of ``to_2d``."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 3:
        return image
    return to_2d(image)


def plain_display(image: np.ndarray, value_range: tuple | None = None) -> np.ndarray:
    """What a tile shows, plain: ``plain(image)`` (H, W) for one channel; for 3 channels (H, W, 3) in 0..1, the
    image's min..max over ALL channels scaled to 0..1 (one stretch for the three channels: the hues stay).

    value_range: (low, high) of the image's space (``OIPResult.value_range``: RGB (0, 1) for a model with a
    ``preprocess`` convention): the image is then shown as it is in that range (low → 0, high → 1, clipped), with
    no stretch of its own, so a dull OIP looks dull and an RGB OIP has the colours the model sees."""
    img = _display_channels(image)
    if value_range is not None:
        return _stretch(img, float(value_range[0]), float(value_range[1]))
    return _stretch(img, float(img.min()), float(img.max()))


def enhanced_display(image: np.ndarray, percentiles=(2.0, 98.0), gamma: float = 0.6) -> np.ndarray:
    """What a tile shows, contrast-enhanced: ``enhanced(image)`` (H, W) for one channel. For 3 channels (H, W, 3):
    the percentiles of all values together are stretched to 0..1 (one stretch for the three channels, clipping the
    tails), then the gamma lifts each pixel's brightness (its largest channel ``v`` becomes ``v ** gamma``, the
    other channels are scaled with it), so a pixel's hue and saturation stay as the stretch left them."""
    img = _display_channels(image)
    low, high = np.percentile(img, percentiles)
    out = _stretch(img, float(low), float(high))
    if out.ndim == 2:
        return out ** gamma
    v = out.max(axis=-1, keepdims=True)
    lifted = np.where(v > 0, np.power(np.maximum(v, 1e-12), gamma - 1.0), 0.0)
    return np.clip(out * lifted, 0.0, 1.0).astype(np.float32)


def palette(cmap: str = "viridis") -> np.ndarray:
    """The 256 colours (256, 3) uint8 of a matplotlib colour map: entry k is the colour of value k / 255."""
    return colorize(np.linspace(0.0, 1.0, 256, dtype=np.float32)[None, :], cmap)[0]


def _indices(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values → palette indices 0..255 (low → 0, high → 255; NaN → 0)."""
    span = high - low if high > low else 1.0
    v = np.nan_to_num((np.asarray(values, np.float32) - low) / span, nan=0.0)
    return (np.clip(v, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def to_rgb8(values: np.ndarray, cmap: str = "viridis", low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Display values → uint8 RGB (H, W, 3): (H, W) (or (H, W, 1)) through colour map ``cmap`` (``low`` → its first
    colour, ``high`` → its last, 256 levels), (H, W, 3) as colours (``low`` → 0, ``high`` → 255, no colour map)."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim == 2:
        return palette(cmap)[_indices(values, low, high)]
    if values.ndim == 3 and values.shape[-1] == 3:
        return _indices(values, low, high)
    raise ValueError(f"expected display values (H, W) or (H, W, 3); got shape {values.shape}")


def png_bytes(pixels: np.ndarray, cmap: str | None = None, low: float = 0.0, high: float = 1.0) -> bytes:
    """8-bit PNG bytes of a picture. ``pixels`` uint8 RGB (H, W, 3) (e.g. from ``to_rgb8``) is encoded as is; with
    ``cmap``, ``pixels`` are display values (H, W) (grey: a palette PNG of the colour map, one byte per pixel) or
    (H, W, 3) (colour: ``to_rgb8``), ``low``/``high`` as in ``to_rgb8``."""
    import io

    from PIL import Image

    pixels = np.asarray(pixels)
    if cmap is not None:
        if pixels.ndim == 3 and pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        if pixels.ndim == 2:
            img = Image.fromarray(_indices(pixels, low, high), mode="P")
            img.putpalette(palette(cmap).ravel().tolist())
        else:
            img = Image.fromarray(to_rgb8(pixels, cmap, low, high), mode="RGB")
    else:
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[-1] != 3:
            raise ValueError(f"png_bytes takes uint8 RGB (H, W, 3) (or display values with cmap=); got "
                             f"{pixels.dtype} {pixels.shape}")
        img = Image.fromarray(np.ascontiguousarray(pixels), mode="RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def png_pixels(data: bytes) -> np.ndarray:
    """The uint8 RGB (H, W, 3) that PNG bytes show (palette PNGs decoded through their palette)."""
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


#: On-screen size of a tile's longer side, in CSS pixels: small inputs are enlarged into this range, large ones
#: shrunk into it.
TILE_PX = (84.0, 140.0)


def tile_scale(h: int, w: int | None = None) -> float:
    """Screen pixels per image pixel for a tile of an (h, w) image, so its longer side ``n`` is ~84–140 px.

    n <= 140: the smallest whole factor that reaches 84 px (28 → ×3 = 84 px, 32 → ×3, 64 → ×2 = 128 px, 100 → ×1),
    whole so every image pixel is a square of equal size; when that overshoots 140 px (75 → ×2 = 150), 84 / n.
    n > 140: half size, kept within 84..140 px (224 → ×0.5 = 112 px, 160 → 84 px, 512 → 140 px).
    """
    n = float(max(int(h), int(h if w is None else w), 1))
    lo, hi = TILE_PX
    if n <= hi:
        k = float(np.ceil(lo / n))
        return k if n * k <= hi else lo / n
    return min(hi, max(lo, n / 2)) / n


def downsample(values: np.ndarray, size) -> np.ndarray:
    """Display values (H, W[, C]) averaged down to ``size`` (h, w) (area average: no aliasing, no ringing);
    returned as they are when they are not larger than ``size``."""
    from PIL import Image

    values = np.asarray(values, dtype=np.float32)
    h, w = (int(s) for s in size)
    if values.shape[0] <= h and values.shape[1] <= w:
        return values
    h, w = min(h, values.shape[0]), min(w, values.shape[1])

    def one(channel):
        return np.asarray(Image.fromarray(np.ascontiguousarray(channel), mode="F").resize((w, h), Image.BOX))

    if values.ndim == 2:
        return one(values)
    return np.stack([one(values[..., c]) for c in range(values.shape[-1])], axis=-1)


def colorize(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """Values in 0..1 (H, W) → uint8 RGB (H, W, 3) with a matplotlib colour map."""
    from matplotlib import colormaps  # imported here: only exports need it

    if cmap not in colormaps:
        raise ValueError(f"unknown colour map {cmap!r}; try one of {', '.join(COLORMAPS)}")
    rgba = colormaps[cmap](np.clip(values, 0, 1))
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def as_rgb(image: np.ndarray, cmap: str = "viridis", contrast: bool = False,
           value_range: tuple | None = None) -> np.ndarray:
    """An OIP as uint8 RGB (H, W, 3): colour-mapped for one channel, min..max scaled colours for three.
    value_range: (low, high) of the image's space (see ``plain_display``): without ``contrast`` the image is shown
    as it is in that range instead of stretched."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 3:
        lo, hi = (float(image.min()), float(image.max())) if value_range is None or contrast else value_range
        return (_stretch(image, float(lo), float(hi)) * 255 + 0.5).astype(np.uint8)
    if contrast:
        return colorize(enhanced(image), cmap)
    return colorize(plain(image) if value_range is None else plain_display(to_2d(image), value_range), cmap)


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
