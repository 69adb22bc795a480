"""Preprocess: the model's input convention, said once, so the OIP lives where people look at images — RGB in [0, 1].

Most trained colour CNNs do not take per-image standardised input (the article's). They take RGB in [0, 1] (after a
``Rescaling(1/255)``), bytes in [0, 255], [-1, 1] (Keras' "tf" mode), Caffe's BGR minus the ImageNet mean or
torch's ImageNet mean/std. ``OIPEngine(model, layer, preprocess="caffe")`` names that convention; the OIP is then an
RGB image in [0, 1] (what a person looks at and what ``to_model`` maps into the model's input), and every result
reports the share of its values within 2 % of the range's ends (``saturated_share``).

How the image stays inside [0, 1] without living at its ends: the climb keeps a *standardised* image z (mean 0,
standard deviation 1 per image, all channels together — the article's re-standardisation, kept exact for the pixel
climb) and shows ``rgb = sigmoid(contrast · z)``. The squash never sees more than ``contrast`` standard deviations
per unit of z, so a Gaussian image has ``2·Φ(−3.89 / contrast)`` of its values within 0.02 of 0 or 1 (1.9 % at the
default contrast 1.6) and a median distance from mid-grey of 0.24 (natural photos: 0.25), whatever the optimiser
does to the scale of its parameters. A plain sigmoid of unbounded parameters (lucid's ``to_valid_rgb``) is driven
into its tails by the ascent: posterised images whose gradient vanishes as a clip's would.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from ..models.preprocessing import standardize
from .input_modes import InputMode, Standardize, input_mode
from .validation import check_float

__all__ = ["Preprocess", "PRESETS", "preprocess_mode", "saturated_share", "images_in_space", "IMAGENET_BGR_MEAN", "IMAGENET_MEAN",
           "IMAGENET_STD", "DEFAULT_CONTRAST", "END_MARGIN"]

IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)  # Caffe's per-channel means, B, G, R, in 0..255
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torch's, R, G, B, in 0..1
IMAGENET_STD = (0.229, 0.224, 0.225)
#: standard deviations of z per unit of the squash's argument (see the module doc; chosen in benchmarks/bench_real.py)
DEFAULT_CONTRAST = 1.6
END_MARGIN = 0.02  # "at the ends": within 2 % of the range's width of its low or high end


def _unit(x):
    return x


def _byte(x):
    return 255.0 * x


def _tf(x):
    return 2.0 * x - 1.0


def _caffe(x):
    return 255.0 * x[..., ::-1] - tf.constant(IMAGENET_BGR_MEAN, x.dtype)


def _torch(x):
    return (x - tf.constant(IMAGENET_MEAN, x.dtype)) / tf.constant(IMAGENET_STD, x.dtype)


def _unit_inv(x):
    return x


def _byte_inv(x):
    return x / 255.0


def _tf_inv(x):
    return (x + 1.0) / 2.0


def _caffe_inv(x):
    return ((x + np.asarray(IMAGENET_BGR_MEAN)) / 255.0)[..., ::-1]


def _torch_inv(x):
    return x * np.asarray(IMAGENET_STD) + np.asarray(IMAGENET_MEAN)


#: name → (RGB in [0, 1] → model input (tf), model input → RGB (numpy), channels it needs (None: any), what it is)
PRESETS: dict = {
    "unit": (_unit, _unit_inv, None, "RGB in [0, 1] (e.g. after Rescaling(1/255))"),
    "byte": (_byte, _byte_inv, None, "RGB in [0, 255]"),
    "tf": (_tf, _tf_inv, None, "RGB in [-1, 1] (Keras' 'tf' mode: MobileNet, Inception, Xception)"),
    "caffe": (_caffe, _caffe_inv, 3, "BGR in [0, 255] minus the ImageNet mean (VGG16/19, ResNet50)"),
    "torch": (_torch, _torch_inv, 3, "RGB minus the ImageNet mean, divided by its std (DenseNet, torch ports)"),
}
_CHOICES = "'standardize' (the article's), " + ", ".join(repr(k) for k in PRESETS) + " or a callable"


class Preprocess(InputMode):
    """The model takes ``convention(rgb)`` of images ``rgb`` in [0, 1]; OIPs are made and shown as ``rgb``.

    convention: a preset name (see ``PRESETS``) or a callable taking a float32 tf tensor (B, H, W, C) of values in
    [0, 1] and returning the model's input (differentiable tf/keras ops; it is part of the compiled loop's key by
    identity, so pass the same function object to share compiled loops).
    contrast: standard deviations per unit of the squash (see the module doc): larger gives more contrast and more
    values near 0 and 1.

    The climb's state is a standardised image z: the pixel climb re-standardises it after each step (``apply``,
    the article's projection) and the model sees ``to_model(view(z))``; parameterised climbs (Fourier, MACO) get
    ``smooth(x) = sigmoid(contrast · standardise(x))``.
    """

    name = "preprocess"
    value_range = (0.0, 1.0)
    centre = 0.5
    viewed = True

    def __init__(self, convention: str | Callable = "unit", contrast: float = DEFAULT_CONTRAST):
        if isinstance(convention, str):
            if convention not in PRESETS:
                raise ValueError(f"unknown preprocess {convention!r}; valid: {_CHOICES}")
        elif not callable(convention):
            raise TypeError(f"preprocess must be a name ({_CHOICES}); got {type(convention).__name__}")
        self.convention = convention
        self.contrast = check_float(contrast, "contrast", high=10.0)

    # ------------------------------------------------------------------ the model's side
    @property
    def label(self) -> str:
        """The convention's name (a preset) or the callable's qualified name."""
        c = self.convention
        return c if isinstance(c, str) else getattr(c, "__qualname__", type(c).__name__)

    def check(self, input_shape: tuple) -> None:
        """Refuse a preset that needs another channel count than the model's (H, W, C)."""
        if isinstance(self.convention, str):
            need = PRESETS[self.convention][2]
            if need is not None and input_shape[-1] != need:
                raise ValueError(f"preprocess {self.convention!r} ({PRESETS[self.convention][3]}) needs {need} "
                                 f"channels; this model takes {input_shape[-1]}. Valid for it: 'standardize', "
                                 "'unit', 'byte', 'tf' or a callable")

    def to_model(self, images):
        if isinstance(self.convention, str):
            return PRESETS[self.convention][0](images)
        # a user's function runs as it is inside the compiled step (AutoGraph cannot read a lambda's source and
        # would say so on stderr)
        return tf.autograph.experimental.do_not_convert(self.convention)(images)

    def from_model(self, inputs: np.ndarray) -> np.ndarray:
        """RGB images in [0, 1] (float32) of images in the model's input form (presets only)."""
        if not isinstance(self.convention, str):
            raise ValueError(f"preprocess {self.label!r} is a function, which oipwidgets cannot invert: give images "
                             "as RGB in [0, 1] instead")
        return np.clip(PRESETS[self.convention][1](np.asarray(inputs, np.float64)), 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ the climb's side
    def apply(self, images):
        return tf.image.per_image_standardization(images)

    def prepare(self, start):
        return self.view_np(standardize(start))

    def view(self, states):
        return tf.sigmoid(self.contrast * states)

    def view_np(self, states: np.ndarray) -> np.ndarray:
        return (1.0 / (1.0 + np.exp(-self.contrast * np.asarray(states, np.float64)))).astype(np.float32)

    def unview(self, images: np.ndarray) -> np.ndarray:
        return standardize(self.unsmooth(images))

    def smooth(self, images):
        return self.view(Standardize().smooth(images))

    def unsmooth(self, images):
        unit = np.clip(np.asarray(images, np.float64), 1e-4, 1 - 1e-4)
        return (np.log(unit / (1 - unit)) / self.contrast).astype(np.float32)

    def __repr__(self):
        extra = "" if self.contrast == DEFAULT_CONTRAST else f", contrast={self.contrast:g}"
        return f"Preprocess({self.label!r}{extra})"


def preprocess_mode(spec) -> InputMode:
    """The input mode for ``OIPEngine(preprocess=spec)``: "standardize" (the article's ``Standardize``), a preset
    name, a callable (RGB in [0, 1] → model input) or a ``Preprocess``/``InputMode`` object."""
    if isinstance(spec, InputMode):
        return spec
    if isinstance(spec, str) and spec == "standardize":
        return Standardize()
    if isinstance(spec, str) or callable(spec):
        return Preprocess(spec)
    raise TypeError(f"preprocess must be {_CHOICES}; got {type(spec).__name__}")


def engine_mode(preprocess=None, mode=None) -> InputMode:
    """The engine's input mode from its two arguments: ``preprocess`` (the convention) or the older ``input_mode``
    (how the image is kept in range); both at once only when they agree; neither: the article's standardisation."""
    if preprocess is not None and mode is not None:
        a, b = preprocess_mode(preprocess), input_mode(mode)
        if a.key() != b.key():
            raise ValueError(f"give preprocess= or input_mode=, not both (got preprocess={preprocess!r}, "
                             f"input_mode={mode!r}); preprocess names the model's input convention: {_CHOICES}")
        return a
    if preprocess is not None:
        return preprocess_mode(preprocess)
    return input_mode("standardize" if mode is None else mode)


def saturated_share(image: np.ndarray, value_range: tuple | None, margin: float = END_MARGIN) -> float:
    """The share of ``image``'s values within ``margin`` × the range's width of its ends: the given
    ``value_range`` (low, high), or for an unbounded image its own minimum and maximum (what a stretched display
    shows as black and white). 0.0 for a constant image."""
    x = np.asarray(image, np.float64)
    if value_range is None:
        low, high = float(x.min()), float(x.max())
    else:
        low, high = (float(v) for v in value_range)
    width = high - low
    if not math.isfinite(width) or width <= 0 or x.size == 0:
        return 0.0
    near = (x <= low + margin * width) | (x >= high - margin * width)
    return float(near.mean())


def images_in_space(mode: InputMode, raw, scale: float | None = None) -> np.ndarray:
    """Raw images (N, H, W, C) (uint8 0..255 or floats) where an engine with input mode ``mode`` keeps its images:
    standardised per image for the article's ``Standardize``; else RGB in [0, 1] (raw / ``scale``, clipped) mapped
    into the mode's ``value_range``; a mode without a range takes them as they are. ``scale`` None reads integers
    and floats above 1 as 0..255, other floats as 0..1. float32 (N, H, W, C)."""
    if mode.name == "standardize":
        return standardize(raw)
    if mode.value_range is None:
        return np.asarray(raw, np.float32)
    x = np.asarray(raw)
    unit = x.astype(np.float64)
    if scale is None:
        scale = 255.0 if np.issubdtype(x.dtype, np.integer) or (unit.size and unit.max() > 1.0) else 1.0
    unit = np.clip(unit / float(scale), 0.0, 1.0)
    low, high = mode.value_range
    return (low + (high - low) * unit).astype(np.float32)
