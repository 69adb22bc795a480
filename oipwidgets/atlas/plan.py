"""The atlas's plan: which layers, how their channels are cut into blocks, and the tasks (layer, block, seed).

A task is the unit of work, of retry and of resume: the OIPs of one block of consecutive channels of one layer for
one seed, climbed as one batch by one worker. Its outputs fill exactly one chunk of every array of its layer
(``store.py``), so two tasks never write the same chunk, and its ``done`` mark is one chunk of its own.

Block size: as many images as climb at once in a worker's memory, at most ``MAX_BLOCK``. A step's memory per image
is the engine's estimate (``OIPEngine.image_bytes``, ``engine/memory.py``); a worker may use ``BUDGET_FRACTION`` of
its memory limit for it. The block is fixed when a layer enters the store (it is the arrays' chunk size); a
worker with less memory than planned still computes it, in waves (the engine's memory budget).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

__all__ = ["LayerPlan", "Task", "MAX_BLOCK", "BUDGET_FRACTION", "block_size", "default_worker_memory",
           "tasks_of", "select_layers", "group_name"]

#: the largest block: more images per batch gain little on a CPU, and a smaller task loses less to a failure
MAX_BLOCK = 64
#: the share of a worker's memory limit that one task's ascent may take (the rest: the model, Python, Zarr, Dask)
BUDGET_FRACTION = 0.5


@dataclass(frozen=True)
class LayerPlan:
    """One layer of the atlas as the store records it (``store.py``: the root's ``layers`` attribute).

    name: the layer's path in the model ("conv1", "base/block_1"); group: its Zarr group ("layers/conv1");
    kind: "maps" or "units"; channels: maps or units; shape: the layer's output per image, (h, w, maps) or
    (units,); block: channels per task (the chunk size along the channel axis); image_bytes: the engine's
    estimate of one image's ascent step, in bytes.
    """

    name: str
    group: str
    kind: str
    channels: int
    shape: tuple
    block: int
    image_bytes: int

    @property
    def n_blocks(self) -> int:
        return math.ceil(self.channels / self.block)

    def block_range(self, b: int) -> tuple[int, int]:
        """Channels ``lo..hi-1`` of block ``b``."""
        lo = b * self.block
        return lo, min(self.channels, lo + self.block)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LayerPlan:
        return cls(**{**d, "shape": tuple(d["shape"])})


@dataclass(frozen=True)
class Task:
    """One unit of work: channels ``lo..hi-1`` of ``layer`` (its block ``block``) for seed ``seed`` (the seed
    value), which sits at index ``seed_index`` of the store's seed axis."""

    layer: str
    group: str
    block: int
    lo: int
    hi: int
    seed_index: int
    seed: int

    @property
    def channels(self) -> int:
        return self.hi - self.lo

    @property
    def label(self) -> str:
        """A short, key-safe name for Dask's dashboard: "Conv2D_1-b0-s1"."""
        safe = "".join(ch if ch.isalnum() or ch in "_." else "_" for ch in self.layer)
        return f"{safe}-b{self.block}-s{self.seed}"


def default_worker_memory() -> int:
    """The memory limit a worker of the local cluster gets (Dask's "auto": the machine's memory, within a cgroup
    limit, split over one worker per core), in bytes."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as f:
                text = f.read().strip()
            if text.isdigit() and int(text) < 2**60:
                total = min(total, int(text))
        except OSError:
            continue
    from ..engine.runtime import usable_cores

    return int(total // usable_cores())


def block_size(image_bytes: int, worker_memory: int, cap: int = MAX_BLOCK) -> int:
    """Channels per task: the images that fit into ``BUDGET_FRACTION`` of ``worker_memory`` (bytes) at
    ``image_bytes`` each, at least 1 and at most ``cap``."""
    fit = int(BUDGET_FRACTION * worker_memory) // max(1, int(image_bytes))
    return max(1, min(int(cap), fit))


def group_name(layer: str) -> str:
    """The Zarr group of a layer: "layers/" + its path with "/" (a nested model's layer) written as "__"."""
    return "layers/" + layer.replace("/", "__")


def tasks_of(plans: list[LayerPlan], seeds: list[int]) -> list[Task]:
    """Every task of the atlas, layer by layer, block by block, seed by seed (the order they are submitted in)."""
    out = []
    for plan in plans:
        for b in range(plan.n_blocks):
            lo, hi = plan.block_range(b)
            for j, seed in enumerate(seeds):
                out.append(Task(plan.name, plan.group, b, lo, hi, j, int(seed)))
    return out


def select_layers(infos: list, layers="conv", units: bool = False) -> list:
    """The probe-able layers (``OIPEngine.layers(model)``: LayerInfo) the atlas covers, in model order.

    layers: "conv" (every layer with maps: 4-D output; with ``units=True`` also every layer of units) or a list of
    layer names/paths (any probe-able layer, maps or units, in the order given); a ValueError names the valid ones.
    """
    if isinstance(layers, str):
        if layers != "conv":
            raise ValueError(f"layers must be 'conv' (every layer with maps) or a list of layer names; got {layers!r}"
                             f" (for one layer write layers=[{layers!r}])")
        chosen = [i for i in infos if i.kind == "maps" or (units and i.kind == "units")]
        if not chosen:
            raise ValueError("this model has no layer with maps (4-D output); name layers of units with "
                             "layers=[...] or pass units=True")
        return chosen
    names = list(layers)
    if not names:
        raise ValueError("layers is empty: give 'conv' or at least one layer name")
    by_name = {i.name: i for i in infos}
    chosen, seen = [], set()
    for name in names:
        info = by_name.get(name)
        if info is None:  # a unique plain name of a layer inside a nested model
            inner = [i for i in infos if i.name.split("/")[-1] == name]
            if len(inner) > 1:
                raise ValueError(f"layer name {name!r} is ambiguous: {', '.join(i.name for i in inner)}; give the path")
            info = inner[0] if inner else None
        if info is None:
            valid = ", ".join(i.name for i in infos)
            raise ValueError(f"unknown layer {name!r}; layers that can be probed: {valid}")
        if info.name not in seen:
            seen.add(info.name)
            chosen.append(info)
    return chosen
