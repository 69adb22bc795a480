"""Dataset examples for a map: the images of a set that activate a map (or unit) most, the "top-k" of the map.

An OIP shows the pattern a map looks for; the top-k images of a real data set show where that pattern occurs in
practice. The activation of an image for a map is the mean of the map over its height and width (the quantity the
OIP ascent maximises); for a 2-D "units" layer it is the unit's value (for a dense layer ending in softmax/sigmoid,
the score before it, as the engine's objective).

Raw images (uint8 or float, (N, H, W) for one channel or (N, H, W, C)) are standardised per image with
:func:`oipwidgets.preprocessing.to_model_input` unless ``preprocess=False`` (then they must already be in the
model's input form). Work is done in batches (``batch_size``, default 256), so 10,000 images or more fit in memory.

    >>> best = top_k(model, "Conv2D_3", 12, x_test, k=9)
    >>> best.indices, best.activations        # positions in x_test, sorted by activation, highest first
    >>> everything = top_k_all(model, "Conv2D_3", x_test)   # one TopK per map, one pass over the set
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..models.preprocessing import standardize
from .engine import OIPEngine
from .validation import check_index, check_int, is_int

__all__ = ["TopK", "map_means", "top_k", "top_k_all"]

DEFAULT_BATCH = 256


@dataclass(frozen=True)
class TopK:
    """The k images of a set that activate one map (or unit) most, highest first.

    ``indices``: (k,) int64 positions in the image set; ``activations``: (k,) float64 map means (or unit values);
    ``images``: the k images as given (raw, not standardised), in the same order.
    """

    layer: str
    map: int
    kind: str  # "maps" or "units"
    indices: np.ndarray
    activations: np.ndarray
    images: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __repr__(self) -> str:
        acts = ", ".join(f"{v:.3g}" for v in self.activations[:5]) + (", …" if len(self) > 5 else "")
        what = "unit" if self.kind == "units" else "map"
        return f"TopK({self.layer} {what} {self.map}: k={len(self)}, indices={self.indices[:5].tolist()}…, [{acts}])"


# ----------------------------------------------------------------------------- helpers
def _engine(model_or_engine, layer) -> OIPEngine:
    """An engine probing ``layer``: the given engine when it already does (or ``layer`` is None), else a new one."""
    if isinstance(model_or_engine, OIPEngine):
        eng = model_or_engine
        name = layer
        if is_int(layer):
            try:
                name = eng.model.layers[layer].name
            except IndexError:
                name = None  # the new engine below explains the range
        if layer is None or name == eng.layer.name:
            return eng
        return OIPEngine(eng.model, layer, input_mode=eng.mode, pre_activation=eng.probe.pre_activation)
    if layer is None:
        raise ValueError("give the layer to read (a name such as 'Conv2D_3' or an index into model.layers)")
    return OIPEngine(model_or_engine, layer)


def _check_images(images, input_shape: tuple, preprocess: bool) -> np.ndarray:
    """The image set as an array (N, H, W, C) (a view when possible), with a clear error for a wrong shape."""
    h, w, c = input_shape
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"images must be a numeric array; got dtype {arr.dtype}")
    want = f"(N, {h}, {w}, {c})" + (f" or (N, {h}, {w})" if c == 1 else "")
    if arr.ndim == 3 and c == 1:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[1:] != (h, w, c):
        form = "raw images" if preprocess else "model-ready images"
        raise ValueError(f"{form} for this model must have shape {want}; got shape {np.shape(images)}")
    if arr.shape[0] == 0:
        raise ValueError("the image set is empty (0 images): give at least one image")
    return arr


def _batches(arr: np.ndarray, preprocess: bool, batch_size: int):
    for lo in range(0, arr.shape[0], batch_size):
        chunk = arr[lo : lo + batch_size]
        x = standardize(chunk) if preprocess else np.asarray(chunk, np.float32)
        if not np.all(np.isfinite(x)):
            bad = lo + int(np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(axis=1))[0])
            raise ValueError(f"image {bad} of the set contains NaN or infinite values")
        yield x


def _check_k(k, n: int) -> int:
    k = check_int(k, "k")
    if k > n:
        raise ValueError(f"k={k} is larger than the image set, which has {n} image{'s' if n != 1 else ''}")
    return k


def _means(eng: OIPEngine, arr: np.ndarray, preprocess: bool, batch_size: int) -> np.ndarray:
    out = np.empty((arr.shape[0], eng.size), dtype=np.float64)
    lo = 0
    for x in _batches(arr, preprocess, batch_size):
        acts = eng.probe(tf.constant(x))
        if eng.layer.kind == "maps":
            acts = tf.reduce_mean(acts, axis=[1, 2])
        out[lo : lo + len(x)] = np.asarray(acts, dtype=np.float64)
        lo += len(x)
    return out


def _rank(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, highest first; ties keep the lower index first."""
    if k < values.shape[0]:
        # a partition keeps the work O(N); the boundary value may be shared, so take every value >= it
        cut = np.partition(values, values.shape[0] - k)[values.shape[0] - k]
        cand = np.flatnonzero(values >= cut)
    else:
        cand = np.arange(values.shape[0])
    order = np.lexsort((cand, -values[cand]))
    return cand[order[:k]].astype(np.int64)


def _make(eng: OIPEngine, index: int, values: np.ndarray, images: np.ndarray, k: int) -> TopK:
    idx = _rank(values, k)
    return TopK(eng.layer.name, int(index), eng.layer.kind, idx, values[idx].copy(), np.asarray(images)[idx])


def _check_map(eng: OIPEngine, map_index) -> int:
    what = "unit" if eng.layer.kind == "units" else "map"
    return check_index(map_index, eng.size, f"{what} index", f"layer {eng.layer.name!r} has {eng.size} {what}s")


# ----------------------------------------------------------------------------- public API
def map_means(engine_or_model, images, *, layer=None, preprocess: bool = True,
              batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """The mean activation of every map (or the value of every unit) for every image: (N, maps) float64.

    engine_or_model: an ``OIPEngine`` (its layer is read unless ``layer`` names another) or a ``keras.Model``
    with ``layer``. images: raw (N, H, W) / (N, H, W, C) images, standardised per image when ``preprocess``.
    """
    eng = _engine(engine_or_model, layer)
    arr = _check_images(images, eng.input_shape, preprocess)
    return _means(eng, arr, preprocess, check_int(batch_size, "batch_size"))


def top_k(model_or_engine, layer, map_index: int, images, k: int = 9, *, preprocess: bool = True,
          batch_size: int = DEFAULT_BATCH) -> TopK:
    """The k images of ``images`` that activate map ``map_index`` of ``layer`` most, sorted highest first.

    model_or_engine: a ``keras.Model`` or an ``OIPEngine`` (then ``layer`` may be None for the engine's layer).
    layer: name or index of a layer with maps (4-D output: mean over height and width) or units (2-D: the value).
    images: a set of raw images, uint8 or float, (N, H, W) for one channel or (N, H, W, C); standardised per
        image (``to_model_input``) when ``preprocess``, else already in the model's input form.
    Raises ValueError for an empty set, k < 1 or k larger than the set, a map index out of range, or images whose
    shape does not fit the model.
    """
    eng = _engine(model_or_engine, layer)
    index = _check_map(eng, map_index)
    arr = _check_images(images, eng.input_shape, preprocess)
    k = _check_k(k, arr.shape[0])
    values = _means(eng, arr, preprocess, check_int(batch_size, "batch_size"))[:, index]
    return _make(eng, index, values, images, k)


def top_k_all(model_or_engine, layer, images, k: int = 9, *, maps=None, preprocess: bool = True,
              batch_size: int = DEFAULT_BATCH) -> list[TopK]:
    """``top_k`` for many maps at once (default: every map of the layer) with one pass over the images.

    Returns one ``TopK`` per map, in the order of ``maps``. Other arguments as ``top_k``.
    """
    eng = _engine(model_or_engine, layer)
    indices = list(range(eng.size)) if maps is None else [_check_map(eng, m) for m in maps]
    arr = _check_images(images, eng.input_shape, preprocess)
    k = _check_k(k, arr.shape[0])
    means = _means(eng, arr, preprocess, check_int(batch_size, "batch_size"))
    return [_make(eng, m, means[:, m], images, k) for m in indices]


def default_examples(model) -> np.ndarray | None:
    """The shipped MNIST sample images (raw uint8, (100, 28, 28)) for a 28×28×1 model, else None."""
    from ..models.datasets import samples

    shape = tuple(model.inputs[0].shape[1:])
    return samples("mnist")[0] if shape == (28, 28, 1) else None
