"""Parameterisations: how the image is represented while it climbs (lucid's ``param``, Xplique's and MACO's).

The ascent changes a *state* tensor (B, *shape) and the model sees ``to_images(state)`` (B, H, W, C):

* ``Pixel()`` — the article's: the state is the image itself; after each step the input mode brings it back into
  the model's range (re-standardising it by default). Numbers equal the article's loop.
* ``Fourier()`` — the image as a spectrum scaled by 1/f^decay (lucid's ``fft_image``), with colour decorrelation
  for 3-channel models (lucid's ``to_valid_rgb``): steps in this space favour smooth, natural-looking images.
* ``Maco()`` — only the phase of the spectrum climbs; its magnitude is fixed (a 1/f^decay spectrum, or the mean
  magnitude of images the user passes): Fel et al., "Unlocking feature visualization for deeper networks with
  MAgnitude Constrained Optimization", NeurIPS 2023.

A parameterisation is configured by the user (``Fourier(decay=1.0)``) and bound to an image size by the engine
(``bind(height, width, channels)``), which returns an immutable object whose constants (spectral scale, colour
matrix, fixed magnitude) are part of the compiled loop's key.

Spectra are those of ``np.fft.rfft2(…, norm="ortho")`` on the grid (H, W // 2 + 1), frequencies in cycles/pixel
(``np.fft.fftfreq`` down, ``rfftfreq`` across): orthonormal, so an image's sum of squares is its spectrum's (counting
the mirrored half) and a unit step means the same at every image size (lucid's √(H·W) factor).
"""

from __future__ import annotations

import abc

import numpy as np
import tensorflow as tf

from .keys import Frozen
from .validation import check_float, check_int, from_spec

__all__ = ["Parameterization", "Pixel", "Fourier", "Maco", "PARAMETERIZATIONS", "parameterization",
           "LUCID_COLOUR_MATRIX", "colour_matrix_from", "mean_magnitude"]

#: lucid's colour correlation square root (from ImageNet), rows and columns R, G, B (normalised when used)
LUCID_COLOUR_MATRIX = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
MAX_DECAY = 4.0  # decay is in 0..MAX_DECAY: steeper spectra make images of a single blob; < 0 favours pixel noise


class Parameterization(Frozen):
    """Base class. A bound parameterisation knows the image size (``image_shape``: (H, W, C)).

    ``projected``: True when the state is the image and the input mode projects it after each step (the article's
    pixel ascent); False when ``to_images`` itself yields images in the model's range (the input mode's smooth
    form is applied to its output by the loop).
    """

    name = "base"
    projected = False
    image_shape: tuple | None = None
    start_scale = 1.0  # a run's first state is ``from_images(start × start_scale)`` (see _Spectral)

    def bind(self, height: int, width: int, channels: int) -> Parameterization:
        """This parameterisation for images (height, width, channels): a new immutable object."""
        return self

    @abc.abstractmethod
    def state_shape(self) -> tuple:
        """The shape of one image's state (without the batch axis)."""

    @abc.abstractmethod
    def from_images(self, images: np.ndarray) -> np.ndarray:
        """States (B, *state_shape) whose images are ``images`` (B, H, W, C) (numpy, float32), as closely as this
        space can represent them (exact for pixel and fourier; maco keeps only the phase)."""

    @abc.abstractmethod
    def to_images(self, state: tf.Tensor) -> tf.Tensor:
        """Images (B, H, W, C) of states (B, *state_shape), differentiable (tf, in the compiled loop)."""

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _bound(self) -> tuple:
        """(H, W, C), or a ValueError for an object not bound to an image size."""
        if self.image_shape is None:
            raise ValueError(f"{type(self).__name__} is not bound to an image size yet; the engine binds it "
                             "(or call .bind(height, width, channels))")
        return self.image_shape

    def _images(self, images) -> np.ndarray:
        """``images`` as float64 (B, H, W, C) of the bound size, else a ValueError naming the size."""
        x, (h, w, c) = np.asarray(images, np.float64), self._bound()
        if x.ndim != 4 or x.shape[1:] != (h, w, c):
            raise ValueError(f"{type(self).__name__} is bound to images of {h}x{w}x{c}: from_images takes "
                             f"(B, {h}, {w}, {c}); got shape {x.shape}")
        return x


def _shape(height, width, channels) -> tuple:
    return (check_int(height, "image height"), check_int(width, "image width"), check_int(channels, "channels"))


class Pixel(Parameterization):
    """The article's: the state is the image (the input mode re-standardises it after each step)."""

    name = "pixel"
    projected = True

    def __init__(self, image_shape: tuple | None = None):
        self.image_shape = None if image_shape is None else _shape(*image_shape)

    def bind(self, height, width, channels):
        return Pixel((height, width, channels))

    def state_shape(self):
        return tuple(self._bound())

    def from_images(self, images):
        return self._images(images).astype(np.float32)

    def to_images(self, state):
        return state


def colour_matrix_from(images) -> np.ndarray:
    """The colour matrix M (3, 3) of a set of images (N, H, W, 3): the symmetric square root of their pixel
    colour covariance C (eigen-decomposition), divided by its largest column norm like lucid's default (which it
    derived from ImageNet the same way, by SVD). Spectral images draw each pixel's colour as M c from
    decorrelated colours c, so white c give colours of covariance ∝ M Mᵀ ∝ C."""
    x = np.asarray(images, np.float64)
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) == 0:
        raise ValueError(f"colour_matrix_from takes colour images (N, H, W, 3); got shape {x.shape}")
    pixels = x.reshape(-1, 3) - x.reshape(-1, 3).mean(axis=0)
    vals, vecs = np.linalg.eigh(pixels.T @ pixels / len(pixels))
    return _normalised(vecs @ np.diag(np.sqrt(np.maximum(vals, 0.0))) @ vecs.T)


def _normalised(matrix) -> np.ndarray:
    """``matrix`` / its largest column norm (lucid's ``max_norm_svd_sqrt``), float32; ValueError if singular."""
    m = np.asarray(matrix, np.float64)
    if m.shape != (3, 3) or not np.all(np.isfinite(m)) or not np.any(m):
        raise ValueError(f"a colour matrix is an invertible 3x3 matrix of finite numbers; got {m.tolist()}")
    m = m / np.max(np.linalg.norm(m, axis=0))
    if np.linalg.cond(m) > 1e6:
        raise ValueError(f"a colour matrix is an invertible 3x3 matrix of finite numbers; got {m.tolist()} "
                         "(singular)")
    return m.astype(np.float32)


def _weights(h: int, w: int) -> np.ndarray:
    """How often each rfft2 coefficient (H, W // 2 + 1) occurs in the full spectrum: 1 on the self-conjugate
    columns (kx = 0 and, for even W, kx = W / 2), else 2 (with its mirror image)."""
    weights = np.full((h, w // 2 + 1), 2.0)
    weights[:, _self_conjugate_columns(w)] = 1.0
    return weights


def _self_conjugate_columns(w: int) -> list:
    return [0, w // 2] if w % 2 == 0 else [0]


def _spectral_scale(h: int, w: int, decay: float) -> np.ndarray:
    """lucid's 1 / max(|f|, 1 / max(H, W))^decay (H, W // 2 + 1), |f| in cycles/pixel: low frequencies count
    more per unit of state; the mean (f = 0) gets the lowest frequency's max(H, W)^decay, not infinity."""
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    return (1.0 / np.maximum(f, 1.0 / max(h, w)) ** decay).astype(np.float32)


def _decorrelated(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Colours c of images x (…, 3) = M c per pixel: x @ inv(Mᵀ) (float64)."""
    return x @ np.linalg.inv(np.asarray(matrix, np.float64).T)


class _Spectral(Parameterization):
    """What Fourier and Maco share: the image size, the colour matrix and the map between pixels and spectra.

    Colours: for 3-channel images with ``decorrelate``, the spectra hold decorrelated colours c and each pixel's
    colour is M c (lucid's ``to_valid_rgb``, x @ Mᵀ), M = ``colour_matrix`` / its largest column norm (lucid's
    ImageNet ``color_correlation_svd_sqrt`` by default, or ``colour_matrix_from(your_images)``). Other channel
    counts have no colour space: their channels are used as they are.
    """

    projected = False
    #: a run starts from its start noise scaled by this (lucid starts from a spectrum of sd 0.01): the pattern the
    #: objective asks for then outgrows the noise within a few steps, whatever the optimiser's step size; the
    #: image the model sees is the same, since the input mode standardises (or squashes) it
    start_scale = 0.01
    _tail: tuple = ()

    def _check(self, decay, decorrelate, colour_matrix, image_shape):
        self.decay = check_float(decay, "decay (the spectrum's exponent)", positive=False, high=MAX_DECAY)
        self.decorrelate = bool(decorrelate)
        self.colour_matrix = _normalised(LUCID_COLOUR_MATRIX if colour_matrix is None else colour_matrix)
        self.image_shape = None if image_shape is None else _shape(*image_shape)

    @property
    def _colours(self) -> bool:
        return self.decorrelate and self._bound()[2] == 3

    def _to_pixels(self, spectrum: tf.Tensor) -> tf.Tensor:
        """Complex spectra (B, C, H, W // 2 + 1) → images (B, H, W, C) (orthonormal inverse rfft2; tf's irfft2d
        divides by H·W), colours recorrelated for RGB."""
        h, w, _ = self._bound()
        x = tf.transpose(tf.signal.irfft2d(spectrum, fft_length=[h, w]), [0, 2, 3, 1]) * float(np.sqrt(h * w))
        return tf.tensordot(x, tf.constant(self.colour_matrix.T), axes=[[-1], [0]]) if self._colours else x

    def _to_spectrum(self, images) -> np.ndarray:
        """Images (B, H, W, C) → complex spectra (B, C, H, W // 2 + 1), the inverse of ``_to_pixels``."""
        x = self._images(images)
        x = _decorrelated(x, self.colour_matrix) if self._colours else x
        return np.fft.rfft2(np.transpose(x, (0, 3, 1, 2)), axes=(2, 3), norm="ortho")

    def state_shape(self):
        h, w, c = self._bound()
        return (c, h, w // 2 + 1) + self._tail


class Fourier(_Spectral):
    """The image as its spectrum times ``scale`` = 1 / max(|f|, 1 / max(H, W))^decay (lucid's ``fft_image``; |f|
    in cycles/pixel), colours recorrelated for RGB models (see ``_Spectral``; skipped for C != 3 or
    ``decorrelate=False``). decay: 0..4 (0: white, 1: lucid's default, natural images fall about so).

    State per image: (C, H, W // 2 + 1, 2), the real and imaginary parts of the spectrum / ``scale``. The scale is
    finite and nonzero everywhere, the mean (f = 0) included, so ``from_images`` is the exact inverse of
    ``to_images``: every image (any mean, any size, odd sizes too) round-trips to float32 rounding. Parts of a state
    that no real image has (the imaginary part at f = 0 and at the Nyquist frequencies, the anti-Hermitian part of
    the self-conjugate columns) do not reach the image; ``from_images`` sets them to 0.
    """

    name = "fourier"
    _tail = (2,)

    def __init__(self, decay: float = 1.0, decorrelate: bool = True, colour_matrix=None, image_shape=None):
        self._check(decay, decorrelate, colour_matrix, image_shape)
        self.scale = None if image_shape is None else _spectral_scale(*self.image_shape[:2], self.decay)

    def bind(self, height, width, channels):
        return Fourier(self.decay, self.decorrelate, self.colour_matrix, (height, width, channels))

    def from_images(self, images):
        spectrum = self._to_spectrum(images) / self.scale
        return np.stack([spectrum.real, spectrum.imag], axis=-1).astype(np.float32)

    def to_images(self, state):
        self._bound()
        scale = tf.constant(self.scale)
        return self._to_pixels(tf.complex(state[..., 0] * scale, state[..., 1] * scale))

    def describe(self):
        colours = self.decorrelate and (self.image_shape is None or self.image_shape[2] == 3)
        return f"fourier (1/f^{self.decay:g}{', decorrelated colours' if colours else ''})"


def mean_magnitude(images, size: tuple | None = None, colour_matrix=LUCID_COLOUR_MATRIX) -> np.ndarray:
    """The mean spectrum magnitude (C, H, W // 2 + 1) of images (N, H, W, C), for ``Maco(magnitude=…)``.

    Each image is standardised (all channels together); for C == 3 and a ``colour_matrix`` its colours are
    decorrelated (inverse of the matrix Maco recorrelates with, lucid's by default; None for Maco(decorrelate=
    False)), as Xplique's ImageNet spectrum is; with ``size`` (H, W) it is first resized (bilinear, antialiased).
    Then the mean |rfft2| (orthonormal) per channel, with the mean (f = 0) set to 0: the input mode sets it.
    """
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or len(x) == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"mean_magnitude takes finite images (N, H, W, C); got shape {x.shape}")
    if size is not None:
        size = (check_int(size[0], "size (height)"), check_int(size[1], "size (width)"))
        if size != x.shape[1:3]:
            x = tf.image.resize(x, size, antialias=True).numpy()
    x = x.astype(np.float64)
    x = (x - x.mean(axis=(1, 2, 3), keepdims=True)) / (x.std(axis=(1, 2, 3), keepdims=True) + 1e-8)
    if colour_matrix is not None and x.shape[-1] == 3:
        x = _decorrelated(x, _normalised(colour_matrix))
    magnitude = np.abs(np.fft.rfft2(np.transpose(x, (0, 3, 1, 2)), axes=(2, 3), norm="ortho")).mean(axis=0)
    magnitude[:, 0, 0] = 0.0
    return magnitude.astype(np.float32)


class Maco(_Spectral):
    """MACO (Fel et al. 2023): the spectrum's magnitude is fixed and only its phase climbs, colours recorrelated
    for RGB as in ``Fourier`` (unless ``decorrelate=False``).

    magnitude: None for lucid's 1/max(|f|, 1/max(H, W))^decay with the mean (f = 0) at 0, scaled so that every
    image has standard deviation 1 per channel (before recorrelation); or an array (C, H, W // 2 + 1) such as
    ``mean_magnitude(your_images, (H, W))`` (decorrelated with the same ``colour_matrix``). Its self-conjugate
    columns (kx = 0 and, for even W, W / 2) are made mirror-symmetric (the mean of the two), as a real image's are.

    State per image: the phase (C, H, W // 2 + 1), radians. On the self-conjugate columns ``to_images`` uses the
    odd part of the phase, (φ(ky) − φ(−ky)) / 2, which makes the spectrum Hermitian there, so the image's |rfft2|
    is exactly the magnitude for every phase (at f = 0 and the Nyquist points the spectrum is real and positive).
    ``from_images`` keeps an image's phase only: the magnitude is replaced by this one's.
    """

    name = "maco"

    def __init__(self, decay: float = 1.0, magnitude=None, decorrelate: bool = True, colour_matrix=None,
                 image_shape=None):
        self._check(decay, decorrelate, colour_matrix, image_shape)
        self.given = magnitude is not None
        self.magnitude = None if magnitude is None else np.asarray(magnitude, np.float32)
        m = self.magnitude
        if m is not None and (m.ndim != 3 or not np.all(np.isfinite(m)) or np.any(m < 0) or not np.any(m)):
            raise ValueError(f"magnitude must be finite values >= 0, not all 0, of shape (channels, H, W // 2 + 1) "
                             f"(mean_magnitude(images, (H, W)) makes one); got shape {m.shape}")
        if self.image_shape is not None:
            h, w, c = self.image_shape
            if m is None:
                m = np.repeat(self._unit_spectrum(h, w)[None], c, axis=0)
            elif m.shape != (c, h, w // 2 + 1):
                raise ValueError(f"magnitude has shape {m.shape}; images of {h}x{w}x{c} need "
                                 f"{(c, h, w // 2 + 1)} (mean_magnitude(images, ({h}, {w})) makes one)")
            cols, mirror = _self_conjugate_columns(w), (-np.arange(h)) % h
            m = m.copy()
            m[:, :, cols] = (m[:, :, cols] + m[:, mirror][:, :, cols]) / 2
            self.magnitude = m.astype(np.float32)

    def _unit_spectrum(self, h: int, w: int) -> np.ndarray:
        """1/f^decay (H, W // 2 + 1), 0 at f = 0, with Σ weight·m² = H·W: by Parseval (orthonormal), an image of
        Hermitian spectrum with this magnitude has mean 0 and standard deviation 1 for any phase."""
        scale = _spectral_scale(h, w, self.decay).astype(np.float64)
        scale[0, 0] = 0.0
        total = np.sum(_weights(h, w) * scale ** 2)
        return scale * np.sqrt(h * w / total) if total > 0 else scale  # total is 0 only for a 1x1 image

    def bind(self, height, width, channels):
        return Maco(self.decay, self.magnitude if self.given else None, self.decorrelate, self.colour_matrix,
                    (height, width, channels))

    def from_images(self, images):
        return np.angle(self._to_spectrum(images)).astype(np.float32)

    def to_images(self, state):
        h, w, _ = self._bound()
        mask = np.zeros((h, w // 2 + 1), bool)
        mask[:, _self_conjugate_columns(w)] = True
        mirrored = tf.gather(state, (-np.arange(h)) % h, axis=-2)
        phase = tf.where(tf.constant(mask), (state - mirrored) / 2, state)
        magnitude = tf.constant(self.magnitude)
        return self._to_pixels(tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase)))

    def describe(self):
        source = "from images" if self.given else f"1/f^{self.decay:g}"
        return f"maco (magnitude {source})"


PARAMETERIZATIONS: dict = {"pixel": Pixel, "fourier": Fourier, "maco": Maco}


def parameterization(spec) -> Parameterization:
    """A Parameterization from a name ("pixel", "fourier", "maco") or a Parameterization object."""
    return from_spec(spec, Parameterization, PARAMETERIZATIONS, "parameterization",
                     "a Parameterization such as Fourier(decay=1.0)")
