"""The k images that activate each unit of a layer most, kept while a data set streams past, and merged across
shards: the same result as ranking the whole set at once (``engine.examples.top_k_all``).

Order: by activation, highest first; equal activations by image id, lower first (as ``engine.examples._rank``).
A ``Best`` holds, for the ``n`` units of a layer, the ids (k', n), activations (k', n) and activation maps
(k', n, h, w) of its best k' <= k images so far. ``batch_best`` ranks one batch; ``merge`` combines two ``Best`` of
disjoint images (any order: two batches, two shards), so a streamed pass, or shards merged in any order, end with
exactly the top k of the whole set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Best", "empty", "batch_best", "merge"]


@dataclass
class Best:
    """The best k' images of each of n units: ``ids`` (k', n) int64 (positions in the data set), ``values`` (k', n)
    float64 (their activations), ``maps`` (k', n, h, w) float32 (their activation maps) or None for a layer of
    units; row 0 is each unit's best."""

    ids: np.ndarray
    values: np.ndarray
    maps: np.ndarray | None

    @property
    def rows(self) -> int:
        return int(self.ids.shape[0])


def empty(n: int, map_shape: tuple | None) -> Best:
    """No image yet, for ``n`` units with maps of ``map_shape`` (h, w) (None: units)."""
    maps = None if map_shape is None else np.zeros((0, n, *map_shape), np.float32)
    return Best(np.zeros((0, n), np.int64), np.zeros((0, n), np.float64), maps)


def batch_best(ids: np.ndarray, values: np.ndarray, maps: np.ndarray | None, k: int) -> Best:
    """The best ``k`` of one batch: ``ids`` (B,) ascending, ``values`` (B, n), ``maps`` (B, h, w, n) or None. Only
    the chosen maps are copied."""
    values = np.asarray(values, np.float64)
    order = np.argsort(-values, axis=0, kind="stable")[:k]  # stable: equal values keep the lower id first
    cols = np.arange(values.shape[1])[None, :]
    picked = None
    if maps is not None:
        picked = np.asarray(maps, np.float32).transpose(0, 3, 1, 2)[order, cols]  # (k, n, h, w)
    return Best(np.asarray(ids, np.int64)[order], values[order, cols], picked)


def merge(a: Best, b: Best, k: int) -> Best:
    """The best ``k`` of two ``Best`` of disjoint images (by activation, then by lower id)."""
    if a.rows == 0:
        return b if b.rows <= k else _cut(b, k)
    if b.rows == 0:
        return a if a.rows <= k else _cut(a, k)
    ids = np.concatenate([a.ids, b.ids])
    values = np.concatenate([a.values, b.values])
    order = np.lexsort((ids, -values), axis=0)[:k]
    cols = np.arange(ids.shape[1])[None, :]
    maps = None if a.maps is None else np.concatenate([a.maps, b.maps])[order, cols]
    return Best(ids[order, cols], values[order, cols], maps)


def _cut(best: Best, k: int) -> Best:
    return Best(best.ids[:k], best.values[:k], None if best.maps is None else best.maps[:k])
