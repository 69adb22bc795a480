"""Reading an atlas for a view, lazily: a few units at a time, by the chunk slices that hold them.

The viewer shows a page of ~32 units and the site writes a block at a time; neither may read whole arrays of an
atlas of 25,000 units. ``AtlasReader`` opens each array once (its ``zarr.json`` read once) and reads only the
selections asked for (``get_orthogonal_selection``: Zarr fetches just the chunks they touch). A unit counts as
computed for a seed when its block's ``done`` mark is set (values of a block not done are ignored: a task that
died may have left some). ``refresh()`` forgets what may have changed (the root's attributes, seeds and layers
added, and the arrays' shapes) so a view follows a ``compute()`` that runs meanwhile.
"""

from __future__ import annotations

import numpy as np

from . import store

__all__ = ["AtlasReader"]


class AtlasReader:
    """Lazy reads of ``atlas`` (an ``Atlas``): ``page``, ``unit``, ``done``, ``objectives``, ``examples``."""

    def __init__(self, atlas):
        self.atlas = atlas
        self._root = None
        self._arrays: dict = {}

    @property
    def root(self):
        if self._root is None:
            self._root = self.atlas._root("r")
        return self._root

    def refresh(self) -> None:
        """Read the root's attributes again and reopen the arrays (new seeds, layers or examples show)."""
        self._root, self._arrays = None, {}
        self.atlas.attrs = dict(self.root.attrs)

    def array(self, layer: str, name: str):
        """The Zarr array ``name`` of a layer ("oip", "objective", …, "done", or "examples/index" and the others of
        the layer's examples), opened once."""
        key = (layer, name)
        if key not in self._arrays:
            self._arrays[key] = self.root[f"{self.atlas.plan(layer).group}/{name}"]
        return self._arrays[key]

    def _shared(self, name: str):
        key = ("", name)
        if key not in self._arrays:
            self._arrays[key] = self.root[f"{store.EXAMPLES_GROUP}/{name}"]
        return self._arrays[key]

    # ----------------------------------------------------------------- done marks
    def done(self, layer: str, channels) -> np.ndarray:
        """(len(channels), seeds) bool: which of ``channels`` are computed for each seed (one read per block and
        seed touched)."""
        plan = self.atlas.plan(layer)
        channels = np.asarray(channels, np.int64)
        seeds = len(self.atlas.seeds)
        if not len(channels):
            return np.zeros((0, seeds), bool)
        blocks = channels // plan.block
        ublocks, where = np.unique(blocks, return_inverse=True)
        arr = self.array(layer, "done")
        marks = np.asarray(arr.get_orthogonal_selection((ublocks, slice(None))), bool)
        if marks.shape[1] < seeds:
            marks = np.concatenate([marks, np.zeros((marks.shape[0], seeds - marks.shape[1]), bool)], axis=1)
        return marks[where]

    def done_counts(self) -> dict:
        """{layer: (units computed for at least one seed, units)}, from the done marks only."""
        out = {}
        for plan in self.atlas.plans:
            marks = np.asarray(self.array(plan.name, "done")[:], bool).any(axis=1)
            sizes = np.array([plan.block_range(b)[1] - plan.block_range(b)[0] for b in range(plan.n_blocks)])
            out[plan.name] = (int(sizes[marks].sum()), plan.channels)
        return out

    # ----------------------------------------------------------------- units
    def page(self, layer: str, channels, seed_index: int = 0) -> dict:
        """What the tiles of ``channels`` of ``layer`` show for one seed: ``oip`` (m, H, W, C) float32, ``objective``
        (m,) float64, ``status`` (m,) int8 (-1: not computed), ``done`` (m,) bool. Reads the chunks of these
        channels only (images only of the computed ones)."""
        channels = np.asarray(channels, np.int64)
        m = len(channels)
        h, w, c = self.atlas.input_shape
        out = {"oip": np.full((m, h, w, c), np.nan, np.float32), "objective": np.full(m, np.nan),
               "status": np.full(m, -1, np.int8), "done": np.zeros(m, bool)}
        if not m:
            return out
        done = self.done(layer, channels)[:, seed_index]
        out["done"] = done
        if not done.any():
            return out
        picked = channels[done]
        order = np.argsort(picked, kind="stable")
        ordered = picked[order]
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        sel = (ordered, seed_index)
        out["oip"][done] = np.asarray(self.array(layer, "oip").get_orthogonal_selection(sel), np.float32)[back]
        out["objective"][done] = np.asarray(self.array(layer, "objective").get_orthogonal_selection(sel))[back]
        out["status"][done] = np.asarray(self.array(layer, "status").get_orthogonal_selection(sel))[back]
        return out

    def block(self, layer: str, b: int) -> dict:
        """Every seed of block ``b`` (the site's unit of work): ``oip`` (m, S, H, W, C), ``objective``, ``status``,
        ``steps`` (m, S), ``done`` (S,) bool; m the block's channels."""
        plan = self.atlas.plan(layer)
        lo, hi = plan.block_range(b)
        seeds = len(self.atlas.seeds)
        done = self.done(layer, [lo])[0]
        out = {"lo": lo, "hi": hi, "done": done}
        for name in ("oip", "objective", "status", "steps"):
            arr = self.array(layer, name)
            out[name] = np.asarray(arr[lo:hi, :seeds])
        return out

    def unit(self, layer: str, channel: int) -> dict:
        """One unit for every seed: ``oip`` (S, H, W, C), ``objective``, ``status``, ``steps``, ``saturated`` (S,),
        ``done`` (S,) bool."""
        channel = int(channel)
        out = {"done": self.done(layer, [channel])[0]}
        for name in ("oip", "objective", "status", "steps", "saturated"):
            out[name] = np.asarray(self.array(layer, name)[channel])
        return out

    def objectives(self, layer: str, seed_index: int = 0) -> np.ndarray:
        """(channels,) float64: every unit's objective for one seed, NaN where not computed (the whole column of a
        small array: for sorting by objective)."""
        plan = self.atlas.plan(layer)
        values = np.asarray(self.array(layer, "objective")[:, seed_index], np.float64)
        marks = self.done(layer, np.arange(0, plan.channels, plan.block))[:, seed_index]
        return np.where(np.repeat(marks, plan.block)[: plan.channels], values, np.nan)

    # ----------------------------------------------------------------- dataset examples
    def has_examples(self, layer: str) -> bool:
        return self.atlas.has_examples(layer)

    def examples(self, layer: str, channel: int) -> dict | None:
        """The dataset examples of one unit (as ``Atlas.examples``: ``index``, ``activation``, ``map`` or None,
        ``thumbnails``), None when its layer has none; reads the unit's slices and its k thumbnail rows."""
        if not self.has_examples(layer):
            return None
        channel = int(channel)
        rows = np.asarray(self.array(layer, "examples/thumbnail_row")[channel])
        keep = rows >= 0
        thumbs = self._shared("thumbnail")
        if keep.any():
            wanted = rows[keep]
            order = np.argsort(wanted, kind="stable")
            back = np.empty_like(order)
            back[order] = np.arange(len(order))
            picked = np.asarray(thumbs.get_orthogonal_selection((wanted[order],)), np.uint8)[back]
        else:
            picked = np.zeros((0, *thumbs.shape[1:]), np.uint8)
        maps = None
        if self.atlas.plan(layer).kind == "maps":  # (a layer of units has no maps)
            maps = np.asarray(self.array(layer, "examples/map")[channel], np.float32)[keep]
        return {"index": np.asarray(self.array(layer, "examples/index")[channel])[keep],
                "activation": np.asarray(self.array(layer, "examples/activation")[channel])[keep],
                "map": maps, "thumbnails": picked}
