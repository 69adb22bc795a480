"""Regularisers: objective terms that score the image itself, to be subtracted from what the ascent climbs
(``ow.MapMean(3) - 0.05 * ow.TotalVariation()``), as lucid's and Xplique's. Each gives one number per image (B,)
that is larger for more of the property, a mean over pixels (and channels), so a weight means the same at every
image size. They score the image before any robustness transform.
"""

from __future__ import annotations

import math

import tensorflow as tf

from .objectives import ImageObjective
from .validation import check_float

__all__ = ["TotalVariation", "L1", "L2", "Blur"]


def _finite(value, name: str) -> float:
    """``value`` as a finite float of any sign, else a ValueError naming it."""
    try:
        return check_float(value, name, low=-math.inf)
    except ValueError:
        raise ValueError(f"{name} must be a finite number; got {value!r}") from None


class TotalVariation(ImageObjective):
    """Per image (B,): the mean |x[i+1, j] − x[i, j]| over the (H − 1) × W vertical neighbour pairs and the
    channels, plus the mean |x[i, j+1] − x[i, j]| over the H × (W − 1) horizontal pairs (pixel units). Means, not
    lucid's sums: the same image at twice the size scores about the same. A side of 1 pixel has no pairs
    and adds 0."""

    def score(self, images):
        dy = images[:, 1:] - images[:, :-1]
        dx = images[:, :, 1:] - images[:, :, :-1]
        return _mean(tf.abs(dy)) + _mean(tf.abs(dx))

    def describe(self):
        return "total variation"


def _mean(values):
    """Mean over all axes but the batch; 0 for an empty axis (a 1-pixel side has no neighbour pairs)."""
    if 0 in tuple(values.shape[1:]):
        return tf.zeros(tf.shape(values)[:1], values.dtype)
    return tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))


class _Norm(ImageObjective):
    """Per image (B,): mean |x − constant|^power over pixels and channels (pixel units to that power)."""

    power, label = 1, "L1"

    def __init__(self, constant: float = 0.0):
        self.constant = _finite(constant, f"{self.label} constant")

    def score(self, images):
        return _mean(tf.abs(images - self.constant) ** self.power)

    def describe(self):
        return self.label if self.constant == 0 else f"{self.label} around {self.constant:g}"


class L1(_Norm):
    """Per image (B,): mean |x − constant| over pixels and channels (pixel units)."""


class L2(_Norm):
    """Per image (B,): mean (x − constant)² over pixels and channels (pixel units squared)."""

    power, label = 2, "L2"


def box_blur(images):
    """3×3 box blur per channel (B, H, W, C): each pixel becomes the mean of its neighbours inside the image (at
    an edge 6 values, at a corner 4: zero padding divided by the count)."""
    c = images.shape[-1]
    kernel = tf.ones((3, 3, c, 1), images.dtype)
    total = tf.nn.depthwise_conv2d(images, kernel, [1, 1, 1, 1], "SAME")
    count = tf.nn.depthwise_conv2d(tf.ones_like(images[:1]), kernel, [1, 1, 1, 1], "SAME")
    return total / count


class Blur(ImageObjective):
    """lucid's blur penalty (``blur_input_each_step``) as a mean: per image (B,), 0.5 × mean (x − blur(x))² over
    pixels and channels, ``blur`` the 3×3 box blur of ``box_blur`` held fixed (``stop_gradient``), so subtracting
    it pulls each pixel towards its neighbours' mean. lucid weighs the ring 0.5 and sums."""

    def score(self, images):
        blurred = tf.stop_gradient(box_blur(images))
        return 0.5 * _mean(tf.square(images - blurred))

    def describe(self):
        return "blur"
