"""Compare screenshots (PNG bytes or files) with Pillow."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageChops


def load_image(img) -> Image.Image:
    """PNG bytes, a path or a PIL image -> an RGB PIL image."""
    if isinstance(img, Image.Image):
        return img.convert("RGB")
    if isinstance(img, (bytes, bytearray)):
        return Image.open(io.BytesIO(img)).convert("RGB")
    return Image.open(Path(img)).convert("RGB")


def diff_fraction(a, b, tolerance: int = 16) -> float:
    """Fraction (0..1) of pixels whose largest channel difference exceeds `tolerance` (0..255).
    Images of different sizes count as entirely different (1.0)."""
    ia, ib = load_image(a), load_image(b)
    if ia.size != ib.size:
        return 1.0
    diff = ImageChops.difference(ia, ib)
    r, g, bch = diff.split()
    mx = ImageChops.lighter(ImageChops.lighter(r, g), bch)
    over = mx.point(lambda v: 255 if v > tolerance else 0)
    n = ia.size[0] * ia.size[1]
    return (over.histogram()[255] / n) if n else 0.0


def images_similar(a, b, max_fraction: float = 0.01, tolerance: int = 16) -> bool:
    return diff_fraction(a, b, tolerance) <= max_fraction


def mean_color(img) -> tuple[float, float, float]:
    """Average RGB of an image: a quick check that a plot is not blank."""
    im = load_image(img)
    px = im.resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    return tuple(float(v) for v in px)


def distinct_colors(img, max_colors: int = 4096) -> int:
    """Number of distinct colours (capped): a blank or single-colour element has very few."""
    colors = load_image(img).getcolors(max_colors)
    return max_colors if colors is None else len(colors)
