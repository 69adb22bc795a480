"""Transformation robustness: seeded random transforms applied to the image inside the compiled step (lucid's
``transform.py``), so the OIP must work under small shifts, zooms and turns, not only at one exact pixel grid.

Every transform keeps the image size (Keras models usually take one fixed size) and the content's pixel scale,
and is drawn from a stateless seed: the same (seed, step) gives the same transform, for every image of the batch
alike (so a batch split over threads climbs exactly as a whole one). Off for the article's default.

"Reflect" borders mirror the image about its edge pixels (``d c b | a b c d | c b a``, as ``tf.pad``'s REFLECT).
Zooms and turns sample bilinearly with gathers, so their gradient is the exact adjoint (TensorFlow's
``ImageProjectiveTransformV3`` records no gradient on a ``GradientTape``).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .keys import Frozen
from .validation import check_choice, check_float, check_int

__all__ = ["Transform", "Jitter", "Pad", "Scale", "Rotate", "Compose", "standard_transforms"]


class Transform(Frozen):
    """Base class: ``transform(images (B, H, W, C), seed) -> images (B, H, W, C)``, differentiable.

    ``seed``: an int32 tensor of shape (2,), different at every step (``tf.random.stateless_*`` seeds).
    Immutable; its constants are part of the compiled loop's key.
    """

    @abc.abstractmethod
    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """The transformed images, same shape and dtype."""

    def describe(self) -> str:
        return repr(self)


def _finite(value, name: str) -> float:
    """``value`` as a finite float of any sign, else a ValueError naming it."""
    try:
        return check_float(value, name, low=-math.inf)
    except ValueError:
        raise ValueError(f"{name} must be a finite number; got {value!r}") from None


def _choices(values, name: str, positive: bool) -> tuple:
    """A number or a non-empty sequence of finite numbers (> 0 when ``positive``) → a tuple of floats."""
    seq = [values] if np.ndim(values) == 0 and not isinstance(values, str) else values
    try:
        out = tuple(check_float(v, f"each of {name}") if positive else _finite(v, f"each of {name}") for v in seq)
    except TypeError:
        raise ValueError(f"{name} must be a number or a list of numbers; got {values!r}") from None
    if not out:
        raise ValueError(f"{name} must hold at least one number; got {values!r}")
    return out


def _pick(table: Sequence[float], seed) -> tf.Tensor:
    """One entry of ``table`` drawn uniformly from ``seed`` (a float32 scalar tensor)."""
    i = tf.random.stateless_uniform([], seed, minval=0, maxval=len(table), dtype=tf.int32)
    return tf.gather(tf.constant(table, tf.float32), i)


def _shift(images, dy, dx, d: int, fill: str = "reflect", value: float = 0.0):
    """``images`` moved ``dy`` rows down and ``dx`` columns right (int32 scalars in [-d, d]): pad by ``d``, then a
    ``tf.slice`` at the offset (``out[i, j] = images[i - dy, j - dx]``); the uncovered border is reflected or
    ``value``."""
    if d == 0:
        return images
    pads = [[0, 0], [d, d], [d, d], [0, 0]]
    padded = tf.pad(images, pads, mode="REFLECT" if fill == "reflect" else "CONSTANT",
                    constant_values=tf.cast(value, images.dtype))
    begin = tf.stack([0, d - dy, d - dx, 0])
    out = tf.slice(padded, begin, tf.stack([tf.shape(images)[0], *images.shape[1:]]))
    return tf.ensure_shape(out, images.shape)


def _translate(images, seed, d: int, fill: str, value: float):
    """A shift (dy, dx) drawn uniformly from [-d, d]² (the same for the whole batch)."""
    images = tf.convert_to_tensor(images, tf.float32)
    if d == 0:
        return images
    if fill == "reflect" and d >= min(images.shape[1], images.shape[2]):
        raise ValueError(f"a reflected shift of up to {d} pixels needs an image larger than {d} pixels each way; "
                         f"got {images.shape[1]}×{images.shape[2]}: use a smaller d or fill='constant'")
    dy, dx = tf.unstack(tf.random.stateless_uniform([2], seed, minval=-d, maxval=d + 1, dtype=tf.int32))
    return _shift(images, dy, dx, d, fill, value)


def _reflect(u, n: int):
    """Continuous coordinates mirrored about the edge pixels 0 and n − 1 into [0, n − 1]."""
    if n == 1:
        return tf.zeros_like(u)
    period = 2.0 * (n - 1)
    v = tf.math.floormod(u, period)
    return tf.where(v > n - 1, period - v, v)


def _affine(images, a0, a1, b0, b1):
    """Bilinear resampling about the centre ((H − 1) / 2, (W − 1) / 2), reflected borders: output pixel (y, x)
    takes the input at x' = cx + a0 (x − cx) + a1 (y − cy), y' = cy + b0 (x − cx) + b1 (y − cy) (scalars)."""
    h, w = images.shape[1], images.shape[2]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32) - cy, tf.range(w, dtype=tf.float32) - cx, indexing="ij")
    rows = _reflect(cy + b0 * xs + b1 * ys, h)
    cols = _reflect(cx + a0 * xs + a1 * ys, w)
    r0, c0 = tf.floor(rows), tf.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = tf.cast(r0, tf.int32), tf.cast(c0, tf.int32)
    r1, c1 = tf.minimum(r0 + 1, h - 1), tf.minimum(c0 + 1, w - 1)
    flat = tf.reshape(images, [-1, h * w, images.shape[3]])

    def at(r, c):
        return tf.gather(flat, tf.reshape(r * w + c, [-1]), axis=1)

    fr = tf.reshape(fr, [1, -1, 1])
    fc = tf.reshape(fc, [1, -1, 1])
    top = at(r0, c0) * (1.0 - fc) + at(r0, c1) * fc
    bottom = at(r1, c0) * (1.0 - fc) + at(r1, c1) * fc
    out = tf.reshape(top * (1.0 - fr) + bottom * fr, tf.shape(images))
    return tf.ensure_shape(out, images.shape)


class Jitter(Transform):
    """Moves the batch by (dy, dx) pixels, each drawn uniformly from −d..d; the border left uncovered is the image
    reflected (``fill="reflect"``, needs d < H and d < W) or ``value`` (``fill="constant"``). lucid's ``jitter``
    crops instead, which would change the size."""

    def __init__(self, d: int, fill: str = "reflect", value: float = 0.0):
        self.d = check_int(d, "jitter distance d (pixels)", low=0)
        self.fill = check_choice(fill, ("reflect", "constant"), "jitter fill")
        self.value = _finite(value, "jitter fill value")

    def __call__(self, images, seed):
        return _translate(images, seed, self.d, self.fill, self.value)

    def describe(self):
        border = "reflected" if self.fill == "reflect" else f"filled with {self.value:g}"
        return f"jitter ±{self.d} px ({border})"


class Pad(Transform):
    """lucid's ``pad(n)`` followed by a random crop back to the input size: a shift of up to ``n`` pixels each way
    (uniform in −n..n) with a constant border ``value`` (0: the mean of a standardised image, as lucid's 0.5 for
    [0, 1] images). Same as ``Jitter(n, fill="constant", value=value)``."""

    def __init__(self, n: int, value: float = 0.0):
        self.n = check_int(n, "pad width n (pixels)", low=0)
        self.value = _finite(value, "pad value")

    def __call__(self, images, seed):
        return _translate(images, seed, self.n, "constant", self.value)

    def describe(self):
        return f"pad {self.n} px with {self.value:g} and crop back"


class Scale(Transform):
    """Zooms about the centre by a factor drawn uniformly from ``factors`` (> 0; 2.0 doubles the content's size,
    0.5 halves it), same output size, bilinear, reflected borders. A single number is one factor."""

    def __init__(self, factors: float | Sequence[float]):
        self.factors = _choices(factors, "scale factors", positive=True)

    def __call__(self, images, seed):
        inv = _pick(tuple(1.0 / f for f in self.factors), seed)
        return _affine(images, inv, 0.0, 0.0, inv)

    def describe(self):
        return f"scale by one of {', '.join(f'{f:g}' for f in self.factors)}"


class Rotate(Transform):
    """Turns about the centre by an angle in degrees drawn uniformly from ``degrees`` (positive: anticlockwise as
    displayed, so 90 is ``np.rot90``), same output size, bilinear, reflected borders. A single number is one
    angle."""

    def __init__(self, degrees: float | Sequence[float]):
        self.degrees = _choices(degrees, "rotation angles (degrees)", positive=False)

    def __call__(self, images, seed):
        i = tf.random.stateless_uniform([], seed, minval=0, maxval=len(self.degrees), dtype=tf.int32)
        rad = np.deg2rad(np.asarray(self.degrees, np.float64))
        cos = tf.gather(tf.constant(np.cos(rad), tf.float32), i)
        sin = tf.gather(tf.constant(np.sin(rad), tf.float32), i)
        return _affine(images, cos, -sin, sin, cos)

    def describe(self):
        lo, hi = min(self.degrees), max(self.degrees)
        return f"rotate by {lo:g}°" if lo == hi else f"rotate by {lo:g}..{hi:g}°"


def _sub_seed(seed, k: int):
    """The seed of the k-th transform of a composition: independent of the others' draws."""
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), k)


class Compose(Transform):
    """Applies ``transforms`` in order, the k-th with its own seed (``stateless_fold_in(seed, k)``), so two equal
    transforms draw independently."""

    def __init__(self, transforms: Sequence[Transform]):
        items = tuple(transforms)
        for t in items:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose takes transforms such as Jitter(4); got {t!r} of type {type(t).__name__}")
        self.transforms = items

    def __call__(self, images, seed):
        images = tf.convert_to_tensor(images, tf.float32)
        for k, t in enumerate(self.transforms):
            images = t(images, _sub_seed(seed, k))
        return images

    def describe(self):
        return ", then ".join(t.describe() for t in self.transforms) or "no transform"


def standard_transforms(size: int | None = None) -> Compose:
    """lucid's ``standard_transforms`` sized to the image: for images of ``size`` (the shorter side) of 128 px or
    more (or ``size`` None), a shift of up to 12 px with a 0 border (lucid's pad 12 with 0.5), a reflected shift of
    up to 8 px, a zoom by 0.9..1.1 (steps of 0.02), a turn by −10..10° (0° five times more likely) and a reflected
    shift of up to 4 px; on smaller images the shifts shrink in proportion (at least 1 px): on a 24 px face crop a
    12 px shift would move half the content out, and the OIP would learn to fire on borders."""
    f = 1.0 if size is None else min(1.0, int(size) / 128)
    px = lambda n: max(1, int(round(n * f)))  # noqa: E731
    return Compose([
        Pad(px(12)),
        Jitter(px(8)),
        Scale([1 + (i - 5) / 50 for i in range(11)]),
        Rotate(list(range(-10, 11)) + 5 * [0]),
        Jitter(px(4)),
    ])
