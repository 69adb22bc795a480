"""Objectives for many images and big maps: diversity across a batch (lucid's ``diversity``), a direction in channel
space (lucid's ``direction``) and the neuron at a map's centre (lucid's ``neuron``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .objectives import MapObjective, Objective

__all__ = ["Diversity", "Direction", "Neuron"]


class Diversity(Objective):
    """Makes the images of a batch differ (lucid's ``diversity``): image b scores −(mean over b' ≠ b of the cosine
    similarity of G_b and G_b'), G_b the Gram matrix (maps × maps, summed over positions) of its activations
    flattened. In [−1, 1]: −1 for a batch of identical images, 0 for orthogonal Grams and for a batch of one.

    Add it (``objective + 0.1 * ow.Diversity()``; lucid subtracts its similarity, which has the other sign and
    sums over b' / B). The images' scores depend on each other, so such a batch climbs as one piece
    (``couples_batch``). On a dense layer (B, units) the activations are one position: G_b = a_b a_bᵀ, whose
    cosine similarity is the square of the activations' (a weak push; prefer a conv layer's maps).
    """

    kind = "any"
    couples_batch = True

    def __call__(self, activations, params):
        b = tf.shape(activations)[0]
        c = activations.shape[-1]
        flat = tf.reshape(activations, [b, -1, c])  # (B, positions, maps)
        gram = tf.reshape(tf.matmul(flat, flat, transpose_a=True), [b, c * c])
        gram = tf.math.l2_normalize(gram, axis=1)  # a zero Gram stays 0: similarity 0 to every other
        sim = tf.matmul(gram, gram, transpose_b=True)  # (B, B) cosine similarities
        others = tf.reduce_sum(sim, axis=1) - tf.linalg.diag_part(sim)
        return -others / tf.maximum(tf.cast(b, activations.dtype) - 1.0, 1.0)

    def describe(self):
        return "diversity"


class Direction(Objective):
    """A direction in channel space (lucid's ``direction``): per image (B,), the mean over positions of
    ⟨activation, v / |v|⟩ for maps (B, h, w, C), or the dot product for units (B, C).

    ``vector``: (C,) finite numbers, not all 0; kept normalised, so a vector and its multiples are one objective.
    """

    def __init__(self, vector: Sequence[float]):
        v = np.asarray(vector, np.float64) if not isinstance(vector, str) else np.asarray([])
        if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)) or not np.any(v):
            raise ValueError(f"a direction is a 1-D vector of finite numbers, one per channel, not all 0; got "
                             f"{vector!r}")
        self.vector = (v / np.linalg.norm(v)).astype(np.float32)

    def validate(self, layer, batch):
        super().validate(layer, batch)
        if len(self.vector) != layer.shape[-1]:
            raise ValueError(f"the direction has {len(self.vector)} values but layer {layer.name!r} has "
                             f"{layer.shape[-1]} channels; give one value per channel")

    def __call__(self, activations, params):
        dots = tf.tensordot(activations, tf.constant(self.vector, activations.dtype), axes=[[-1], [0]])
        return dots if dots.shape.rank == 1 else tf.reduce_mean(dots, axis=list(range(1, dots.shape.rank)))

    def describe(self):
        return f"direction over {len(self.vector)} channels"


class Neuron(MapObjective):
    """A neuron at the map centre (lucid's ``neuron`` without x, y): the activation of map ``map`` at row h // 2,
    column w // 2 of its (h, w) map."""

    def __call__(self, activations, params):
        shape = tf.shape(activations)
        centre = activations[:, shape[1] // 2, shape[2] // 2, :]  # (B, maps)
        return tf.gather(centre, params["map"], axis=1, batch_dims=1)

    def describe(self):
        return f"centre neuron of map {self.map}"
