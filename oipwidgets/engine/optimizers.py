"""Optimisers: how one step moves the state given the gradient of the objective (B, *shape).

* ``RMSAscent()`` — the article's: the gradient of each image scaled to unit RMS, times the step size ``epsilon``.
* ``Adam(beta1=0.9, beta2=0.999)`` — Adam (Kingma & Ba) with learning rate ``epsilon``, what lucid, Xplique and
  tf-keras-vis use; its moment estimates are kept per image beside the state (``slots`` = 2), so a batch split over
  threads or memory waves climbs exactly as a whole one.

Both return the RMS-normalised gradient's sum per image, which the dead-map and non-finite tests read.
"""

from __future__ import annotations

import abc
import math

import tensorflow as tf

from .keys import Frozen
from .validation import from_spec

__all__ = ["Optimizer", "RMSAscent", "Adam", "OPTIMIZERS", "optimizer"]

RMS_EPS = 1e-7  # added to the gradient's RMS (the article's constant)


def normalised(grad: tf.Tensor) -> tf.Tensor:
    """Each image's gradient (B, ...) divided by its root mean square (+1e-7)."""
    axes = list(range(1, grad.shape.rank))
    return grad / (tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True)) + RMS_EPS)


class Optimizer(Frozen):
    """Base class: ``update(x, grad, unit, slots, t, epsilon) -> (x', slots')``; ``slots`` extra arrays per image.

    grad: the raw gradient (B, *shape); unit: the same scaled to unit RMS per image (computed once by the loop)."""

    name = "base"
    slots = 0

    @abc.abstractmethod
    def update(self, x: tf.Tensor, grad: tf.Tensor, unit: tf.Tensor, slots: list, t: tf.Tensor, epsilon: tf.Tensor):
        """One ascent step (towards larger objective). t: the step number (from 0), int32; returns (x', slots')."""

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RMSAscent(Optimizer):
    """The article's step: x + epsilon × gradient / RMS(gradient), per image."""

    name = "rms"

    def update(self, x, grad, unit, slots, t, epsilon):
        return x + epsilon * unit, []


class Adam(Optimizer):
    """Adam ascent with learning rate ``epsilon``: moments m, v per image with bias correction."""

    name = "adam"
    slots = 2

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        for label, value in (("beta1", beta1), ("beta2", beta2)):
            if not (isinstance(value, (int, float)) and 0.0 <= float(value) < 1.0):
                raise ValueError(f"Adam {label} must be a number in [0, 1); got {value!r}")
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
            raise ValueError(f"Adam eps must be a finite number > 0; got {eps!r}")
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def update(self, x, grad, unit, slots, t, epsilon):
        m, v = slots
        m = self.beta1 * m + (1.0 - self.beta1) * grad
        v = self.beta2 * v + (1.0 - self.beta2) * tf.square(grad)
        n = tf.cast(t + 1, tf.float32)
        m_hat = m / (1.0 - tf.pow(self.beta1, n))
        v_hat = v / (1.0 - tf.pow(self.beta2, n))
        return x + epsilon * m_hat / (tf.sqrt(v_hat) + self.eps), [m, v]

    def __repr__(self):
        return f"Adam(beta1={self.beta1:g}, beta2={self.beta2:g})"


OPTIMIZERS = {"rms": RMSAscent, "adam": Adam}


def optimizer(spec) -> Optimizer:
    """An Optimizer from a name ("rms", "adam") or an Optimizer object."""
    return from_spec(spec, Optimizer, OPTIMIZERS, "optimizer", "an Optimizer such as Adam(beta1=0.9)")
