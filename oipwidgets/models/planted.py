"""A synthetic colour image set whose classes are defined by known features, and the small CNN trained on it.

Each class is an oriented grating with its own orientation, spatial frequency and colour pair (the pair's
difference is the class's colour axis), drawn in a soft round patch at a random place with a random phase, over
smooth colour clutter and faint gratings of other classes, plus pixel noise. Because the features are planted, an
OIP of a class (or of a map that responds to it) can be checked against them: does it show the class's orientation,
frequency and colour axis? ``benchmarks/bench_fidelity.py`` does that.

The eight classes: four orientations (0°, 45°, 90°, 135°, the direction of the wave vector, x to the right, y down)
× two colour axes (red–cyan, blue–yellow), with two frequencies (0.08 and 0.14 cycles/pixel) spread over them, so
every class differs from every other in orientation or colour axis:

    class  orientation  frequency (cycles/px)  colours (first -> second)
    0        0°         0.08                   red (0.92, 0.22, 0.18) -> cyan (0.15, 0.70, 0.72)
    1       45°         0.14                   red -> cyan
    2       90°         0.08                   red -> cyan
    3      135°         0.14                   red -> cyan
    4        0°         0.14                   blue (0.18, 0.28, 0.92) -> yellow (0.88, 0.82, 0.18)
    5       45°         0.08                   blue -> yellow
    6       90°         0.14                   blue -> yellow
    7      135°         0.08                   blue -> yellow

An orientation of 0° gives vertical stripes (the wave runs along x), 90° horizontal ones. The midpoints of both
colour pairs are close to mid-grey, so a class's colours vary along its axis around the image's grey level.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

__all__ = ["PlantedClass", "PLANTED_CLASSES", "SIZE", "LOGITS_LAYER", "LAST_CONV_LAYER", "make_planted",
           "class_samples", "clean_samples", "colour_axis", "class_table", "build_planted_cnn"]

SIZE = 64  # image side, pixels
LOGITS_LAYER, LAST_CONV_LAYER = "logits", "relu4"  # the class scores; the last conv block's maps


@dataclass(frozen=True)
class PlantedClass:
    """orientation: degrees, direction of the wave vector; frequency: cycles/pixel; colours: the two RGB colours
    in [0, 1] the grating swings between."""

    orientation: float
    frequency: float
    colours: tuple


_RED_CYAN = ((0.92, 0.22, 0.18), (0.15, 0.70, 0.72))
_BLUE_YELLOW = ((0.18, 0.28, 0.92), (0.88, 0.82, 0.18))
PLANTED_CLASSES = tuple(
    PlantedClass(orientation=float(45 * (k % 4)), frequency=(0.08, 0.14)[(k + k // 4) % 2],
                 colours=(_RED_CYAN, _BLUE_YELLOW)[k // 4])
    for k in range(8)
)


def colour_axis(c: int) -> np.ndarray:
    """The unit RGB vector (3,) from class ``c``'s first colour to its second, sign-fixed (largest entry > 0)."""
    a, b = (np.asarray(v, np.float64) for v in PLANTED_CLASSES[c].colours)
    axis = (b - a) / np.linalg.norm(b - a)
    return axis * np.sign(axis[np.argmax(np.abs(axis))])


def class_table() -> list[dict]:
    """The classes as plain data (for cards and reports)."""
    return [{"class": k, "orientation_deg": p.orientation, "frequency_cpp": p.frequency,
             "colours": [list(v) for v in p.colours], "colour_axis": colour_axis(k).round(3).tolist()}
            for k, p in enumerate(PLANTED_CLASSES)]


def _grating(p: PlantedClass, size: int, phase: float) -> np.ndarray:
    """The class's full-field grating (size, size, 3) in its colour pair."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    theta = np.radians(p.orientation)
    g = 0.5 * (1 + np.cos(2 * np.pi * p.frequency * (x * np.cos(theta) + y * np.sin(theta)) + phase))
    a, b = (np.asarray(v) for v in p.colours)
    return a + g[..., None] * (b - a)


def _window(rng: np.random.Generator, size: int) -> np.ndarray:
    """A soft disc (size, size) of radius 14–20 px (at 64 px) fully inside the image."""
    r = rng.uniform(0.22, 0.31) * size
    cy, cx = rng.uniform(r, size - r, 2)
    y, x = np.mgrid[0:size, 0:size]
    d = np.hypot(y - cy, x - cx)
    return np.clip((r - d) / 3.0 + 0.5, 0.0, 1.0)


def _clutter(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth low-contrast colour clutter (size, size, 3) around a random grey: 5×5 random colours, bilinearly
    interpolated over the image."""
    coarse = rng.normal(size=(5, 5, 3))
    ramp = np.linspace(0, 4, size)
    m = np.stack([np.interp(ramp, np.arange(5), np.eye(5)[k]) for k in range(5)], axis=1)  # (size, 5)
    up = np.einsum("yi,ijc,xj->yxc", m, coarse, m)
    return rng.uniform(0.35, 0.65) + 0.12 * up


def _image(rng, c: int, size: int, clutter: bool, distractors: bool, noise: float,
           classes=PLANTED_CLASSES) -> np.ndarray:
    img = _clutter(rng, size) if clutter else np.full((size, size, 3), 0.5)
    if distractors:
        others = [k for k in range(len(classes)) if k != c]
        for k in rng.choice(others, size=rng.integers(1, 3), replace=False):
            w = rng.uniform(0.15, 0.3) * _window(rng, size)[..., None]
            img = (1 - w) * img + w * _grating(classes[k], size, rng.uniform(0, 2 * np.pi))
    w = _window(rng, size)[..., None]
    img = (1 - w) * img + w * _grating(classes[c], size, rng.uniform(0, 2 * np.pi))
    return np.clip(img + noise * rng.normal(size=img.shape), 0.0, 1.0)


def make_planted(n: int, *, size: int = SIZE, seed: int = 0, classes=PLANTED_CLASSES, clutter: bool = True,
                 distractors: bool = True, noise: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, size, size, 3) float32 in [0, 1] and their labels (n,) int64, every class equally often
    (shuffled), reproducible from ``seed`` (its own generator: no global state).

    ``clutter=False`` puts the patch on plain grey, ``distractors=False`` leaves out the faint gratings of other
    classes, ``noise`` is the standard deviation of the pixel noise (0: none): with all three off an image shows
    exactly its class's planted grating. ``classes``: the class definitions (default: :data:`PLANTED_CLASSES`).
    """
    classes = tuple(classes)
    if len(classes) < 2:
        raise ValueError(f"make_planted needs at least 2 classes; got {len(classes)}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(classes)
    rng.shuffle(labels)
    images = np.stack([_image(rng, int(c), size, clutter, distractors, noise, classes) for c in labels]) if n \
        else np.zeros((0, size, size, 3))
    return images.astype(np.float32), labels.astype(np.int64)


def class_samples(c: int, n: int, *, seed: int = 0, **kwargs) -> np.ndarray:
    """``n`` images (n, SIZE, SIZE, 3) of class ``c`` as in the data set (clutter, distractors, noise)."""
    rng = np.random.default_rng([seed, c])
    opts = {"clutter": True, "distractors": True, "noise": 0.03, **kwargs}
    return np.stack([_image(rng, c, SIZE, **opts) for _ in range(n)]).astype(np.float32)


def clean_samples(c: int, n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` images of class ``c``'s grating alone (no clutter, no distractors, no noise): the planted features."""
    return class_samples(c, n, seed=seed, clutter=False, distractors=False, noise=0.0)


def build_planted_cnn(input_shape=(SIZE, SIZE, 3), num_classes: int = len(PLANTED_CLASSES), l2: float = 1e-4):
    """Conv/BN/ReLU blocks (16, 32, 64, 64 maps; max-pooling after the first three) → global average → ``logits``
    (Dense, the class scores before the softmax) → ``probs`` (Softmax). Takes per-image standardised images."""
    reg = keras.regularizers.L2(l2)
    inp = keras.Input(input_shape, name="image")
    x = inp
    for k, maps in enumerate((16, 32, 64, 64), start=1):
        x = keras.layers.Conv2D(maps, 3, padding="same", use_bias=False, kernel_regularizer=reg, name=f"conv{k}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{k}")(x)
        x = keras.layers.ReLU(name=f"relu{k}")(x)
        if k < 4:
            x = keras.layers.MaxPooling2D(name=f"pool{k}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(num_classes, kernel_regularizer=reg, name="logits")(x)
    return keras.Model(inp, keras.layers.Softmax(name="probs")(x), name="planted_cnn")
