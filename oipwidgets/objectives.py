"""Objectives: what the ascent climbs, as small objects that compose (``a + b``, ``0.5 * a``, ``-a``).

An objective turns the activations of the probed layer into one score per image, shape (B,). Its numbers (which
map, which node) are kept apart from its structure: ``params(batch)`` gives them as per-image arrays, which the
compiled loop takes as tensors, so one compiled loop serves every map of a layer (a Python int baked into the
graph would make TensorFlow/XLA compile once per map). Different images of a batch can follow different maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .probe import LayerInfo

__all__ = ["Objective", "MapMean", "Node", "Unit", "Sum", "Scaled", "objective_for"]


def _per_image(value, batch: int, what: str) -> np.ndarray:
    """An int or a sequence of ints → int32 array (batch,): one value per image of the batch."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(batch, int(arr))
    elif arr.shape != (batch,):
        raise ValueError(f"{what} has {arr.size} values for a batch of {batch} images; give one or {batch}.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be whole numbers; got {value!r}")
    return arr.astype(np.int32)


def _check_range(values, n: int, what: str, where: str) -> None:
    values = np.atleast_1d(np.asarray(values))
    bad = values[(values < 0) | (values >= n)]
    if bad.size:
        raise ValueError(f"{what} {int(bad[0])} is out of range: {where} has {n} ({0}..{n - 1}).")


class Objective:
    """Base class: ``objective(activations, params) -> scores (B,)``; larger is better."""

    kind = "any"  # "maps" for 4-D activations, "units" for 2-D, "any" for both

    def params(self, batch: int) -> dict:
        """This objective's numbers as per-image arrays (batch,), in a nested dict."""
        return {}

    def key(self) -> tuple:
        """Hashable structure (without the per-image numbers): equal keys share a compiled loop."""
        return (type(self).__name__,)

    def validate(self, layer: LayerInfo, batch: int) -> None:
        """Raise ValueError naming the valid range when this objective does not fit ``layer``."""
        if self.kind != "any" and layer.kind != self.kind:
            need = "spatial maps (4-D output)" if self.kind == "maps" else "units (2-D output)"
            raise ValueError(
                f"{type(self).__name__} needs a layer with {need}; layer {layer.name!r} has {layer.kind} "
                f"of shape {layer.shape}."
            )

    def __call__(self, activations: tf.Tensor, params: dict) -> tf.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    # composition, as lucid's objectives
    def __add__(self, other: Objective) -> Objective:
        return Sum([self, other])

    def __sub__(self, other: Objective) -> Objective:
        return Sum([self, Scaled(other, -1.0)])

    def __mul__(self, factor: float) -> Objective:
        return Scaled(self, float(factor))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return Scaled(self, -1.0)

    def __repr__(self) -> str:
        return self.describe()


class MapMean(Objective):
    """The article's objective: the mean activation of one map over its height and width.

    ``map``: a map index, or one index per image of a batch.
    """

    kind = "maps"

    def __init__(self, map: int | Sequence[int]):
        self.map = map

    def params(self, batch: int) -> dict:
        return {"map": _per_image(self.map, batch, "map index")}

    def validate(self, layer: LayerInfo, batch: int) -> None:
        super().validate(layer, batch)
        _check_range(self.params(batch)["map"], layer.size, "map index", f"layer {layer.name!r} has maps")

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

    def __init__(self, map: int | Sequence[int], row: int | Sequence[int], col: int | Sequence[int]):
        self.map, self.row, self.col = map, row, col

    def params(self, batch: int) -> dict:
        return {
            "map": _per_image(self.map, batch, "map index"),
            "row": _per_image(self.row, batch, "node row"),
            "col": _per_image(self.col, batch, "node column"),
        }

    def validate(self, layer: LayerInfo, batch: int) -> None:
        super().validate(layer, batch)
        p = self.params(batch)
        h, w, n = layer.shape
        _check_range(p["map"], n, "map index", f"layer {layer.name!r} has maps")
        _check_range(p["row"], h, "node row", f"a map of layer {layer.name!r} has rows")
        _check_range(p["col"], w, "node column", f"a map of layer {layer.name!r} has columns")

    def __call__(self, activations, params):
        b = tf.range(tf.shape(activations)[0], dtype=tf.int32)
        idx = tf.stack([b, params["row"], params["col"], params["map"]], axis=1)
        return tf.gather_nd(activations, idx)

    def describe(self) -> str:
        return f"node ({self.row}, {self.col}) of map {self.map}"


class Unit(Objective):
    """One unit of a dense layer (for a class layer: its score before the softmax, when the probe strips it)."""

    kind = "units"

    def __init__(self, unit: int | Sequence[int]):
        self.unit = unit

    def params(self, batch: int) -> dict:
        return {"unit": _per_image(self.unit, batch, "unit index")}

    def validate(self, layer: LayerInfo, batch: int) -> None:
        super().validate(layer, batch)
        _check_range(self.params(batch)["unit"], layer.size, "unit index", f"layer {layer.name!r} has units")

    def __call__(self, activations, params):
        return tf.gather(activations, params["unit"], axis=1, batch_dims=1)

    def describe(self) -> str:
        return f"unit {self.unit}"


class Sum(Objective):
    """The sum of several objectives on the same layer."""

    def __init__(self, terms: Sequence[Objective]):
        flat = []
        for t in terms:
            flat.extend(t.terms if isinstance(t, Sum) else [t])
        self.terms = flat

    def params(self, batch):
        return {str(i): t.params(batch) for i, t in enumerate(self.terms)}

    def key(self):
        return ("Sum",) + tuple(t.key() for t in self.terms)

    def validate(self, layer, batch):
        for t in self.terms:
            t.validate(layer, batch)

    def __call__(self, activations, params):
        return tf.add_n([t(activations, params[str(i)]) for i, t in enumerate(self.terms)])

    def describe(self):
        return " + ".join(t.describe() for t in self.terms)


class Scaled(Objective):
    """An objective times a constant factor (baked into the compiled loop)."""

    def __init__(self, term: Objective, factor: float):
        self.term, self.factor = term, float(factor)

    def params(self, batch):
        return self.term.params(batch)

    def key(self):
        return ("Scaled", self.factor, self.term.key())

    def validate(self, layer, batch):
        self.term.validate(layer, batch)

    def __call__(self, activations, params):
        return self.factor * self.term(activations, params)

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
