"""Objectives: what the ascent climbs, as small objects that compose (``a + b``, ``0.5 * a``, ``-a``).

An objective turns the activations of the probed layer into one score per image, shape (B,). Its numbers (which
map, which node) are kept apart from its structure: ``params(batch)`` gives them as per-image arrays, which the
compiled loop takes as tensors, so one compiled loop serves every map of a layer (a Python int baked into the
graph would make TensorFlow/XLA compile once per map). Different images of a batch can follow different maps.
"""

from __future__ import annotations

import abc
import functools
import inspect
import math
from collections.abc import Sequence
from numbers import Real

import numpy as np
import tensorflow as tf

from .keys import Frozen, structure_key
from .probe import LayerInfo
from .validation import check_index

__all__ = ["Objective", "ImageObjective", "MapObjective", "MapMean", "Node", "Unit", "Sum", "Scaled", "objective_for",
           "wrap_objective"]


def _per_image(value, batch: int | None, what: str) -> np.ndarray:
    """An int or a sequence of ints → int32 array (batch,): one value per image of the batch (``batch`` None:
    only check that the values are whole numbers)."""
    arr = np.asarray(value)
    if arr.ndim > 1 or not (np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.bool_):
        raise ValueError(f"{what} must be a whole number or a list of whole numbers (one per image); got {value!r}")
    if batch is None:
        return arr.astype(np.int32)
    if arr.ndim == 0:
        arr = np.full(batch, int(arr))
    elif arr.shape != (batch,):
        raise ValueError(f"{what} has {arr.size} values for a batch of {batch} images; give one or {batch}.")
    return arr.astype(np.int32)


#: per-image parameter → (axis of the layer's shape that bounds it, how the message names its owner)
_BOUNDS = {
    "map": (-1, "layer {layer!r} has {n} maps"),
    "unit": (-1, "layer {layer!r} has {n} units"),
    "row": (0, "a map of layer {layer!r} has {n} rows"),
    "col": (1, "a map of layer {layer!r} has {n} columns"),
}
_LABELS = {"map": "map index", "unit": "unit index", "row": "node row", "col": "node column"}


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _check_range(values, n: int, what: str, where: str) -> None:
    for value in np.atleast_1d(values):
        check_index(int(value), n, what, where)


class Objective(Frozen):
    """Base class: ``objective(activations, params) -> scores (B,)``; larger is better.

    Objectives are immutable. The attributes named in ``param_names`` are per-image whole numbers (an int, or one
    per image of a batch) that reach the compiled loop as tensors: one compiled loop serves every map. Every other
    public attribute is a constant baked into the loop and part of its ``key()`` (an attribute that cannot be keyed
    fails at construction).
    """

    kind = "any"  # "maps" for 4-D activations, "units" for 2-D, "any" for both
    param_names: tuple = ()
    #: True for a term whose score for one image depends on the other images of the batch (diversity): such a
    #: batch climbs as one piece, never split over threads or memory waves
    couples_batch = False

    def evaluate(self, activations: tf.Tensor, params: dict, images: tf.Tensor) -> tf.Tensor:
        """Scores (B,) given the activations and the images (B, H, W, C) the model saw before any robustness
        transform; the compiled loop calls this. Objectives of the activations only implement ``__call__``."""
        return self(activations, params)

    def params(self, batch: int) -> dict:
        """This objective's numbers as per-image int32 arrays (batch,), in a nested dict."""
        return {name: _per_image(getattr(self, name), batch, _label(name)) for name in self.param_names}

    def _compute_key(self) -> tuple:
        for name in self.param_names:  # whole numbers only: 2.7 is no map
            _per_image(getattr(self, name), None, _label(name))
        return structure_key(self, skip=self.param_names)

    def validate(self, layer: LayerInfo, batch: int) -> None:
        """Raise ValueError naming the valid range when this objective does not fit ``layer``: its kind, and the
        range of its "map", "unit", "row" and "col" parameters."""
        if self.kind != "any" and layer.kind != self.kind:
            need = "spatial maps (4-D output)" if self.kind == "maps" else "units (2-D output)"
            raise ValueError(
                f"{type(self).__name__} needs a layer with {need}; layer {layer.name!r} has {layer.kind} "
                f"of shape {layer.shape}."
            )
        params = self.params(batch) if self.param_names else {}
        for name, values in params.items():
            if name in _BOUNDS:
                axis, owner = _BOUNDS[name]
                n = layer.shape[axis]
                _check_range(values, n, _label(name), owner.format(layer=layer.name, n=n))

    @abc.abstractmethod
    def __call__(self, activations: tf.Tensor, params: dict) -> tf.Tensor:
        """Scores (B,) of the activations (B, h, w, maps) or (B, units), given ``params`` as tensors."""

    def describe(self) -> str:
        return type(self).__name__

    # composition, as lucid's objectives
    def __add__(self, other: Objective) -> Objective:
        return Sum([self, other])

    def __sub__(self, other: Objective) -> Objective:
        return Sum([self, Scaled(other, -1.0)])

    def __mul__(self, factor: float) -> Objective:
        return Scaled(self, factor)

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return Scaled(self, -1.0)

    def __repr__(self) -> str:
        return self.describe()


class ImageObjective(Objective):
    """Base of the terms that score the image itself (regularisers such as ``TotalVariation``): ``score(images)``
    (B, H, W, C) → (B,), composed with the others (``ow.MapMean(3) - 0.05 * ow.TotalVariation()``)."""

    @abc.abstractmethod
    def score(self, images: tf.Tensor) -> tf.Tensor:
        """One number per image (B,), larger for more of the property (subtract the term to penalise it)."""

    def __call__(self, activations, params):
        raise TypeError(f"{type(self).__name__} scores the image; call evaluate(activations, params, images)")

    def evaluate(self, activations, params, images):
        return self.score(images)


class MapObjective(Objective):
    """Base of the objectives of one map per image: ``map`` is a map index, or one index per image of a batch."""

    kind = "maps"
    param_names = ("map",)

    def __init__(self, map: int | Sequence[int]):
        self.map = map


class MapMean(MapObjective):
    """The article's objective: the mean activation of one map over its height and width."""

    def __call__(self, activations, params):
        # a one-hot weighted sum of the map means picks each image's map: the same value as a gather, with a
        # gradient of a few broadcasts instead of a scatter (fewer ops in the compiled step)
        pick = tf.one_hot(params["map"], tf.shape(activations)[3], dtype=activations.dtype)
        return tf.reduce_sum(tf.reduce_mean(activations, axis=[1, 2]) * pick, axis=1)

    def describe(self) -> str:
        return f"mean of map {self.map}"


class Node(Objective):
    """One node (neuron) of a map: the activation at (row, col) of map ``map``."""

    kind = "maps"
    param_names = ("map", "row", "col")

    def __init__(self, map: int | Sequence[int], row: int | Sequence[int], col: int | Sequence[int]):
        self.map, self.row, self.col = map, row, col

    def __call__(self, activations, params):
        b = tf.range(tf.shape(activations)[0], dtype=tf.int32)
        idx = tf.stack([b, params["row"], params["col"], params["map"]], axis=1)
        return tf.gather_nd(activations, idx)

    def describe(self) -> str:
        return f"node ({self.row}, {self.col}) of map {self.map}"


class Unit(Objective):
    """One unit of a dense layer (for a class layer: its score before the softmax, when the probe strips it)."""

    kind = "units"
    param_names = ("unit",)

    def __init__(self, unit: int | Sequence[int]):
        self.unit = unit

    def __call__(self, activations, params):
        return tf.gather(activations, params["unit"], axis=1, batch_dims=1)

    def describe(self) -> str:
        return f"unit {self.unit}"


class Sum(Objective):
    """The sum of several objectives on the same layer."""

    def __init__(self, terms: Sequence[Objective]):
        flat = []
        for t in terms:
            if not isinstance(t, Objective):
                raise TypeError(f"objectives add up with other objectives (ow.MapMean(3) + ow.MapMean(5)); got "
                                f"{t!r} of type {type(t).__name__}")
            flat.extend(t.terms if isinstance(t, Sum) else [t])
        self.terms = tuple(flat)

    def params(self, batch):
        return {str(i): t.params(batch) for i, t in enumerate(self.terms)}

    def validate(self, layer, batch):
        for t in self.terms:
            t.validate(layer, batch)

    @property
    def couples_batch(self):
        return any(t.couples_batch for t in self.terms)

    def __call__(self, activations, params):
        return tf.add_n([t(activations, params[str(i)]) for i, t in enumerate(self.terms)])

    def evaluate(self, activations, params, images):
        return tf.add_n([t.evaluate(activations, params[str(i)], images) for i, t in enumerate(self.terms)])

    def describe(self):
        return " + ".join(t.describe() for t in self.terms)


class Scaled(Objective):
    """An objective times a constant factor (baked into the compiled loop)."""

    def __init__(self, term: Objective, factor: float):
        if not isinstance(factor, (Real, np.floating, np.integer)) or isinstance(factor, (bool, np.bool_)):
            raise TypeError(f"an objective is scaled by a number (0.5 * ow.MapMean(3)); got {factor!r}")
        if not math.isfinite(float(factor)):
            raise ValueError(f"the factor of an objective must be a finite number; got {factor!r}")
        self.term, self.factor = term, float(factor)

    def params(self, batch):
        return self.term.params(batch)

    def validate(self, layer, batch):
        self.term.validate(layer, batch)

    @property
    def couples_batch(self):
        return self.term.couples_batch

    def __call__(self, activations, params):
        return self.factor * self.term(activations, params)

    def evaluate(self, activations, params, images):
        return self.factor * self.term.evaluate(activations, params, images)

    def describe(self):
        return f"{self.factor:g} × ({self.term.describe()})"


def objective_for(layer: LayerInfo, index, node: tuple[int, int] | None = None) -> Objective:
    """The default objective for a map/unit index of ``layer``: map mean, one node of a map, or one unit."""
    if node is not None:
        if layer.kind != "maps":
            raise ValueError(f"node={node} needs a layer with spatial maps; {layer.name!r} has units.")
        row, col = node
        return Node(index, row, col)
    return MapMean(index) if layer.kind == "maps" else Unit(index)


class FunctionObjective(Objective):
    """An objective made from a plain function by ``wrap_objective`` (see there)."""

    def __init__(self, fn, kind: str, param_names: tuple, arguments: dict):
        self.fn, self.kind, self.param_names = fn, kind, tuple(param_names)
        for name in self.param_names:
            setattr(self, name, arguments[name])
        self.constants = {k: v for k, v in arguments.items() if k not in self.param_names}

    def __call__(self, activations, params):
        return self.fn(activations, **params, **self.constants)

    def describe(self):
        args = {**{n: getattr(self, n) for n in self.param_names}, **self.constants}
        return f"{self.fn.__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def wrap_objective(kind: str = "any", params: Sequence[str] = ()):
    """Turn ``fn(activations, **arguments) -> scores (B,)`` into a factory of objectives (lucid's idea).

    ``params`` names the arguments that are per-image whole numbers (map or unit indices: tensors in the compiled
    loop, so one loop serves all of them); all other arguments are constants baked into the loop (part of its key).
    ``kind``: "maps" (4-D activations), "units" (2-D) or "any". A "map" or "unit" parameter is range-checked.

        @wrap_objective(kind="maps", params=("map",))
        def map_max(activations, map):
            pick = tf.one_hot(map, tf.shape(activations)[-1], dtype=activations.dtype)
            return tf.reduce_sum(tf.reduce_max(activations, axis=[1, 2]) * pick, axis=1)

        engine.run_layer([0, 1, 2, 3], objective=map_max([0, 1, 2, 3]))
    """
    if kind not in ("maps", "units", "any"):
        raise ValueError(f"kind must be 'maps', 'units' or 'any'; got {kind!r}")
    params = tuple(params)

    def decorate(fn):
        signature = inspect.signature(fn)
        names = list(signature.parameters)[1:]
        missing = [p for p in params if p not in names]
        if missing:
            raise ValueError(f"{fn.__name__} has no argument {missing[0]!r}; its arguments: {', '.join(names)}")
        taken = [p for p in params if hasattr(FunctionObjective, p)]
        if taken:
            raise ValueError(f"a per-image parameter cannot be called {taken[0]!r}: rename the argument")

        @functools.wraps(fn)
        def make(*args, **kwargs) -> Objective:
            bound = signature.bind(None, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(list(bound.arguments.items())[1:])
            return FunctionObjective(fn, kind, params, arguments)

        return make

    return decorate
