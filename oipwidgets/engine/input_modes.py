"""Input modes: what the ascent does to the image after each step, so it stays in the range the model was trained on.

The article's CNN sees per-image standardised inputs, so after every step the image is standardised again
(``Standardize``, the default). A model trained on raw pixels in [0, 1] (or [0, 255]) wants ``Clip(0, 1)``;
``Identity`` leaves the image free (it may then grow without bound: the gradient is normalised, not the image).
Each mode also maps a standardised noise image into its range (``prepare``), so every noise works with every mode.
"""

from __future__ import annotations

import abc
import math

import numpy as np
import tensorflow as tf

from ..models.preprocessing import standardize
from .keys import Frozen
from .validation import from_spec

__all__ = ["InputMode", "Standardize", "Clip", "Identity", "input_mode", "INPUT_MODES"]


class InputMode(Frozen):
    """Base class: ``apply(images)`` (tf, in the compiled loop) and ``prepare(start)`` (numpy, before it).

    Immutable; every public attribute is a constant of the compiled loop and part of its ``key()``.
    """

    name = "base"
    #: (low, high) of the images this mode makes, or None when they are unbounded (shown stretched)
    value_range: tuple | None = None
    #: the value a robustness transform fills borders with (the middle of the range; 0 for standardised images)
    centre = 0.0

    @abc.abstractmethod
    def apply(self, images: tf.Tensor) -> tf.Tensor:
        """The images (B, H, W, C) after a step, brought back into the model's input range."""

    def prepare(self, start: np.ndarray) -> np.ndarray:
        """A standardised start image (N, H, W, C) mapped into this mode's range, float32."""
        return np.asarray(start, dtype=np.float32)

    def smooth(self, images: tf.Tensor) -> tf.Tensor:
        """A differentiable form of ``apply`` for parameterised images (Fourier, MACO), whose gradient must reach
        the parameters everywhere (``apply`` by default)."""
        return self.apply(images)

    def unsmooth(self, images: np.ndarray) -> np.ndarray:
        """Numpy inverse of ``smooth`` for images in this mode's range: where a parameterised run starts from."""
        return np.asarray(images, np.float32)

    # The pixel climb's state is the image itself for the article's modes; a mode may keep another state (such as
    # ``Preprocess``'s standardised image) and show ``view(state)``.
    viewed = False  # True when ``view`` is not the identity

    def view(self, states: tf.Tensor) -> tf.Tensor:
        """The images (B, H, W, C) of pixel-climb states (tf): the states themselves unless ``viewed``."""
        return states

    def unview(self, images: np.ndarray) -> np.ndarray:
        """The pixel-climb states of images (numpy inverse of ``view``)."""
        return np.asarray(images, np.float32)

    def to_model(self, images: tf.Tensor) -> tf.Tensor:
        """The model's input for images (B, H, W, C) of this mode (tf, differentiable): the images themselves
        unless the mode names a preprocessing (``preprocess.Preprocess``)."""
        return images

    def from_model(self, inputs: np.ndarray) -> np.ndarray:
        """Images of this mode for inputs in the model's form (numpy inverse of ``to_model``)."""
        return np.asarray(inputs, np.float32)

    def check(self, input_shape: tuple) -> None:
        """Raise ValueError when this mode cannot serve a model taking images of ``input_shape`` (H, W, C)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Standardize(InputMode):
    """Re-standardise each image (mean 0, std 1) exactly like ``tf.image.per_image_standardization``: the article's."""

    name = "standardize"

    def apply(self, images):
        return tf.image.per_image_standardization(images)

    def smooth(self, images):
        """Mean 0, standard deviation 1 per image, however small the image is (``apply`` stops dividing below a
        standard deviation of 1/sqrt(pixels), which would leave a parameterised start of tiny amplitude tiny)."""
        mean, var = tf.nn.moments(images, axes=[1, 2, 3], keepdims=True)
        return (images - mean) * tf.math.rsqrt(var + 1e-20)

    def prepare(self, start):
        return standardize(start)


class Clip(InputMode):
    """Clip pixels to [low, high] after each step, for models trained on raw pixel ranges such as [0, 1].

    ``prepare`` maps a standardised noise image linearly so that ±3 standard deviations span [low, high].
    """

    name = "clip"

    def __init__(self, low: float = 0.0, high: float = 1.0):
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"Clip needs finite bounds with low < high; got low={low}, high={high}")
        self.low, self.high = low, high

    @property
    def value_range(self):
        return (self.low, self.high)

    @property
    def centre(self):
        return (self.low + self.high) / 2

    def apply(self, images):
        return tf.clip_by_value(images, self.low, self.high)

    def smooth(self, images):
        """A sigmoid onto (low, high) (lucid's squash): clipping would stop the gradient outside the range."""
        return self.low + (self.high - self.low) * tf.sigmoid(images)

    def unsmooth(self, images):
        unit = np.clip((np.asarray(images, np.float64) - self.low) / (self.high - self.low), 1e-4, 1 - 1e-4)
        return np.log(unit / (1 - unit)).astype(np.float32)

    def prepare(self, start):
        mid, half = (self.low + self.high) / 2, (self.high - self.low) / 2
        return np.clip(mid + half * np.asarray(start, np.float32) / 3.0, self.low, self.high).astype(np.float32)

    def __repr__(self):
        return f"Clip({self.low:g}, {self.high:g})"


class Identity(InputMode):
    """Leave the image as the step made it (for models that normalise their input themselves)."""

    name = "identity"

    def apply(self, images):
        return images


INPUT_MODES = {"standardize": Standardize, "clip": Clip, "identity": Identity}


def input_mode(spec) -> InputMode:
    """An InputMode from a name ("standardize", "clip" = clip to [0, 1], "identity") or an InputMode."""
    return from_spec(spec, InputMode, INPUT_MODES, "input mode", "an InputMode such as Clip(0, 255)")
