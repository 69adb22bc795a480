"""Start images for the OIP ascent: random noise with chosen long-range correlations.

Gradient ascent grows an OIP out of a start image, and which maps respond at all depends on that start: maps of
deep layers often stay silent for white (pixel-independent) noise and only fire for noise that varies on large
distance scales. Two kinds of noise are offered, both as small frozen dataclasses whose ``sample(shape, seed)``
returns a batch of per-image standardised float32 images of shape (n, H, W, C):

* ``MultiScaleNoise`` – the article's recipe: uniform random numbers on a few coarse grids (e.g. 3×3 … 28×28
  cells), each scaled smoothly (bicubic) to the image size, weighted and summed.
* ``SpectralNoise`` – Gaussian noise with a power-law spectrum, amplitude ∝ 1/f^alpha (f in cycles per pixel).

``make_noise(spec, shape, seed)`` samples either, with ``None`` meaning the article's default for the image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
import tensorflow as tf

from ..models.preprocessing import standardize
from .validation import is_int

__all__ = ["MultiScaleNoise", "SpectralNoise", "make_noise", "DEFAULT_SCALES", "DEFAULT_WEIGHTS"]

#: The article's grids for 28×28 images, (rows, columns) of random cells each, coarse to fine.
DEFAULT_SCALES: tuple[tuple[int, int], ...] = ((3, 3), (7, 7), (14, 14), (28, 28))
#: The article's weight of each grid.
DEFAULT_WEIGHTS: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5)
_DEFAULT_SIDE = 28  # the image side the default scales belong to
#: A noise grid may have at most this many times the image's cells per side (finer grids only cost memory).
MAX_SCALE_FACTOR = 4
#: The range of SpectralNoise's exponent: beyond it the spectrum spans more than float64 holds for large images.
ALPHA_RANGE = (-4.0, 8.0)


def _check_shape(shape) -> tuple[int, int, int, int]:
    """Validate a batch shape (n, H, W, C) of positive integers; return it as a tuple of ints."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if dims is None or len(dims) != 4 or not all(is_int(d) and d >= 1 for d in dims):
        raise ValueError(
            f"shape must be (n, H, W, C): four positive integers (images, height, width, channels); got {shape!r}"
        )
    return tuple(int(d) for d in dims)  # type: ignore[return-value]


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic, antialiased resize of (n, h, w, C) to (n, *size, C), as the article does; float32 numbers."""
    return tf.image.resize(x, size, method="bicubic", antialias=True).numpy()


def _format_number(x: float) -> str:
    """Short text for a number that still reads as a float: 1 → '1.0', 0.25 → '0.25'."""
    text = f"{x:g}"
    return text if "." in text or "e" in text else text + ".0"


@dataclass(frozen=True)
class MultiScaleNoise:
    """The article's start image: a weighted sum of uniform noise on several coarse grids, each scaled to the image.

    scales: (rows, columns) of random cells per grid; any number of grids, any sizes (grids larger than the image
        are scaled down). A grid of exactly the image size is used as it is, without interpolation.
    weights: one weight >= 0 per grid (not all zero); a larger weight gives that length scale more amplitude.
    smooth: the article's "smoothed" variant: the sum goes once more through a bicubic resize to the image size.
        Resizing to the same size is an identity up to float32 rounding (about 1e-7), so this changes practically
        nothing; it is kept for fidelity to the article.

    Lists are accepted and stored as tuples. ``sample`` gives per-image standardised images (mean 0, std 1).
    """

    scales: tuple[tuple[int, int], ...] = DEFAULT_SCALES
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    smooth: bool = False

    def __post_init__(self) -> None:
        try:
            scales = tuple(tuple(s) for s in self.scales)
        except TypeError:
            raise ValueError(
                f"scales must be a sequence of (rows, columns) pairs of positive integers; got {self.scales!r}"
            ) from None
        if len(scales) == 0:
            raise ValueError(
                "MultiScaleNoise needs at least one scale; got none (give 1 or more (rows, columns) pairs)."
            )
        for s in scales:
            if len(s) != 2 or not all(is_int(v) and v >= 1 for v in s):
                raise ValueError(
                    f"each scale must be a pair (rows, columns) of positive integers (>= 1); got {s!r}"
                )
        scales = tuple((int(h), int(w)) for h, w in scales)
        try:
            weights = tuple(float(v) for v in self.weights)
        except (TypeError, ValueError):
            raise ValueError(f"weights must be numbers >= 0; got {self.weights!r}") from None
        if len(weights) != len(scales):
            raise ValueError(
                f"MultiScaleNoise needs one weight per scale: got {len(scales)} scales and {len(weights)} weights."
            )
        for v in weights:
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"each weight must be a finite number >= 0; got {v!r} in weights {weights!r}")
        if not any(v > 0 for v in weights):
            raise ValueError(f"at least one weight must be > 0 (all weights are zero: {weights!r}).")
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "smooth", bool(self.smooth))

    @classmethod
    def for_size(cls, height: int, width: int, *, weights=DEFAULT_WEIGHTS, smooth: bool = False) -> MultiScaleNoise:
        """The article's default grids scaled to a (height, width) image.

        The grid sides are 3/28, 7/28, 14/28 and 28/28 of the image sides, rounded half up and at least 1 cell;
        for 28×28 this is exactly the default ((3,3), (7,7), (14,14), (28,28)); for 224×224 (24, 56, 112, 224).
        """
        if not (is_int(height) and is_int(width) and height >= 1 and width >= 1):
            raise ValueError(f"for_size needs a positive integer height and width; got {height!r}, {width!r}")
        scales = tuple(
            (max(1, math.floor(height * h / _DEFAULT_SIDE + 0.5)), max(1, math.floor(width * w / _DEFAULT_SIDE + 0.5)))
            for h, w in DEFAULT_SCALES
        )
        return cls(scales=scales, weights=weights, smooth=smooth)

    def _by_area(self) -> list[int]:
        """Scale indices from coarse to fine (fewest cells first); ties keep their given order."""
        return sorted(range(len(self.scales)), key=lambda i: self.scales[i][0] * self.scales[i][1])

    def coarsest(self, k: int) -> MultiScaleNoise:
        """The same noise with only the k coarsest scales (fewest cells h*w), weights and ``smooth`` kept.

        The kept scales stay in their given order, so when the coarse scales come first (as in the defaults) the
        same seed gives them the same random numbers as in the full noise: the result is the full image without its
        finest detail. Used for the coarse "precursor" start.
        """
        n = len(self.scales)
        if not (is_int(k) and 1 <= k <= n):
            raise ValueError(f"coarsest(k) needs 1 <= k <= {n} (the number of scales); got {k!r}")
        keep = sorted(self._by_area()[:k])
        return MultiScaleNoise(
            scales=tuple(self.scales[i] for i in keep), weights=tuple(self.weights[i] for i in keep), smooth=self.smooth
        )

    def without_finest(self) -> MultiScaleNoise:
        """The same noise without its finest scale (``coarsest(len(scales) - 1)``); needs at least 2 scales."""
        if len(self.scales) < 2:
            raise ValueError(f"without_finest() needs at least 2 scales; this noise has 1: {self.scales!r}")
        return self.coarsest(len(self.scales) - 1)

    def split(self) -> tuple[MultiScaleNoise, ...]:
        """One single-scale noise per scale, coarse to fine (by h*w), each with its weight; used level by level.

        Scales of weight 0 contribute nothing and are left out (a single-scale noise needs a weight > 0).
        """
        return tuple(
            MultiScaleNoise(scales=(self.scales[i],), weights=(self.weights[i],), smooth=self.smooth)
            for i in self._by_area()
            if self.weights[i] > 0
        )

    def sample(self, shape, seed=None) -> np.ndarray:
        """Draw n start images; float32 of ``shape`` = (n, H, W, C), each image with mean 0 and std 1.

        For each scale (h, w), in the given order, uniform numbers in [-1, 1) of shape (n, h, w, C) are drawn from
        ``np.random.default_rng(seed)``, resized bicubically (antialiased) to (H, W) unless already that size,
        multiplied by the weight and summed. Scales of weight 0 still draw their numbers, so changing one weight
        leaves the other scales' noise unchanged for the same seed. Same seed and shape → same images.
        seed: int, None (fresh entropy) or a ``np.random.Generator`` (which is advanced).
        """
        n, height, width, channels = _check_shape(shape)
        limit = (MAX_SCALE_FACTOR * height, MAX_SCALE_FACTOR * width)
        for h, w in self.scales:
            if h > limit[0] or w > limit[1]:
                raise ValueError(
                    f"noise scale {h}x{w} is far finer than the {height}x{width} image: a grid may have at most "
                    f"{MAX_SCALE_FACTOR}x the image's cells per side ({limit[0]}x{limit[1]}); the image size itself "
                    "is the finest scale that shows"
                )
        rng = np.random.default_rng(seed)
        total = np.zeros((n, height, width, channels), dtype=np.float64)
        for (h, w), weight in zip(self.scales, self.weights):
            cells = rng.uniform(-1.0, 1.0, size=(n, h, w, channels))
            layer = cells if (h, w) == (height, width) else _resize(cells, (height, width))
            total += weight * layer
        if self.smooth:
            total = _resize(total, (height, width))
        return standardize(total)

    def describe(self) -> str:
        """One line for a status display, e.g. '4 scales 3×3:0.5, 7×7:0.5, 14×14:0.5, 28×28:0.5'."""
        n = len(self.scales)
        parts = ", ".join(f"{h}×{w}:{v:g}" for (h, w), v in zip(self.scales, self.weights))
        return f"{n} scale{'s' if n != 1 else ''} {parts}" + (", smoothed" if self.smooth else "")


@dataclass(frozen=True)
class SpectralNoise:
    """Gaussian noise with a power-law spectrum: Fourier amplitude ∝ 1/f^alpha, f in cycles per pixel.

    alpha: 0 gives white noise, 1 "pink" (1/f) noise, 2 "brown" noise; larger alpha → smoother images with more
        long-range correlation. The power spectrum falls as f^(-2*alpha).
    fmin: frequencies below fmin (cycles/pixel) get the amplitude of fmin, which tames the blow-up towards f = 0;
        default (None) 1/max(H, W), the lowest frequency the image holds. The mean (f = 0) is always set to 0.
    """

    alpha: float = 1.0
    fmin: float | None = None

    def __post_init__(self) -> None:
        alpha = self.alpha
        low, high = ALPHA_RANGE
        if (not isinstance(alpha, Real) or isinstance(alpha, (bool, np.bool_)) or not math.isfinite(alpha)
                or not low <= alpha <= high):
            raise ValueError(f"alpha must be a finite number from {low:g} to {high:g} (0 = white noise, 1 = pink, "
                             f"larger = smoother); got {self.alpha!r}")
        object.__setattr__(self, "alpha", float(self.alpha))
        if self.fmin is not None:
            if (
                not isinstance(self.fmin, Real)
                or isinstance(self.fmin, (bool, np.bool_))
                or not math.isfinite(self.fmin)
                or not 0 < self.fmin <= 0.5
            ):
                raise ValueError(f"fmin must be None or a frequency > 0 and <= 0.5 cycles/pixel (the highest an image "
                                 f"has); got {self.fmin!r}")
            object.__setattr__(self, "fmin", float(self.fmin))

    def sample(self, shape, seed=None) -> np.ndarray:
        """Draw n images; float32 of ``shape`` = (n, H, W, C), each image with mean 0 and std 1.

        Per image and channel, standard complex Gaussian coefficients on the rfft2 grid (H, W//2 + 1) are
        multiplied by 1/max(f, fmin)^alpha, the f = 0 term is zeroed, and ``np.fft.irfft2`` gives the (H, W) image.
        seed: int, None or a ``np.random.Generator``; same seed and shape → same images.
        """
        n, height, width, channels = _check_shape(shape)
        rng = np.random.default_rng(seed)
        fy = np.fft.fftfreq(height)[:, None]
        fx = np.fft.rfftfreq(width)[None, :]
        f = np.sqrt(fy**2 + fx**2)
        fmin = self.fmin if self.fmin is not None else 1.0 / max(height, width)
        amplitude = (fmin / np.maximum(f, fmin)) ** self.alpha  # ≤ 1 for alpha ≥ 0: no overflow
        amplitude[0, 0] = 0.0
        amplitude /= np.sqrt(np.mean(amplitude**2))  # unit RMS: the image's spread stays far from float limits
        coeff_shape = (n, channels, height, width // 2 + 1)
        coeffs = rng.standard_normal(coeff_shape) + 1j * rng.standard_normal(coeff_shape)
        images = np.fft.irfft2(coeffs * amplitude, s=(height, width), axes=(-2, -1), norm="ortho")
        return standardize(np.transpose(images, (0, 2, 3, 1)))

    def describe(self) -> str:
        """One line for a status display, e.g. '1/f^1.0 spectral noise'."""
        text = f"1/f^{_format_number(self.alpha)} spectral noise"
        return text if self.fmin is None else f"{text}, fmin {self.fmin:g}"


def make_noise(spec, shape, seed=None) -> np.ndarray:
    """Sample start images from a noise spec: a MultiScaleNoise, a SpectralNoise, or None.

    None means the article's default grids scaled to the image size (``MultiScaleNoise.for_size(H, W)``).
    shape: (n, H, W, C); returns float32 of that shape, each image standardised.
    """
    if spec is not None and not isinstance(spec, (MultiScaleNoise, SpectralNoise)):
        raise TypeError(
            f"make_noise takes a MultiScaleNoise, a SpectralNoise or None as spec; got {type(spec).__name__}"
        )
    dims = _check_shape(shape)
    if spec is None:
        spec = MultiScaleNoise.for_size(dims[1], dims[2])
    return spec.sample(dims, seed=seed)
