"""Dataset examples for every unit of an atlas: one streamed pass over a data set for all its layers, the k images
that activate each unit most (with their activation maps and thumbnails) written into the store.

``add_examples(atlas, images, k=9)`` (``Atlas.add_examples``) reads ``images`` (``images.py``: an array, a
``tf.data.Dataset`` or a folder of image files, resized to the model's input) in batches of ``batch_size``; each
batch goes into the engine's image space through the atlas's preprocess (``images.in_space``), through the model
once for every layer (``forward.py``), and into each layer's running top k (``topk.py``); the thumbnails of the
images that are in some top k are kept, the others dropped. Memory: one batch, the top k of every unit (ids,
activations, maps) and those thumbnails. With a Dask client the batches are grouped into shards of
``shard_batches`` batches, each a task (``run_shard``: a worker loads the store's model file once, like
``compute``), at most two per worker in flight, and the shards' top k are merged here: the same result as the pass
in process. Without a client everything runs here.

The store (docs/atlas-store.md, "Dataset examples") gets per layer the ids, activations, thumbnail rows and maps of
each unit's top k, a shared array of thumbnails, and the root attribute ``examples`` (what was done: k, images,
source, pixel scale, the preprocess and image space the images went through, layers, thumbnail shape, seconds),
written last. ``add_examples`` again replaces them.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import model_file, store, topk
from .images import THUMBNAIL_SIDE, image_source, in_space, thumbnail_shape, thumbnails

__all__ = ["ExamplesJob", "ExamplesReport", "add_examples", "run_shard", "MAX_BATCH"]

#: the largest batch of the pass (more gains little on a CPU)
MAX_BATCH = 256
#: the memory one batch of the pass may take at most, bytes (the activations of every layer, about)
BATCH_MEMORY = 1 << 30

_FORWARDS: dict = {}  # in each worker process: (fingerprint, layers, preprocess, input shape) → Forward
_LOCK = threading.Lock()


@dataclass
class ExamplesReport:
    """What one ``add_examples`` did: images read, k, layers and units, thumbnails kept, batch size, shards (0: in
    process), wall seconds."""

    images: int
    k: int
    layers: int
    units: int
    thumbnails: int
    batch_size: int
    shards: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        where = f"{self.shards} shards on Dask" if self.shards else "in process"
        return (f"top {self.k} of {self.images} images for {self.units} units of {self.layers} layers, "
                f"{self.thumbnails} thumbnails; {self.seconds:.1f} s ({self.images_per_second:.0f} images/s, "
                f"batches of {self.batch_size}, {where})")


@dataclass(frozen=True)
class ExamplesJob:
    """What every shard of one pass shares (sent with each shard; the model travels as a file): the model file and
    its fingerprint, the layers, the preprocess (a preset name or the function), the engine's input_shape (or None),
    k, the batch size, the thumbnails' longest side and the store's storage options."""

    model_url: str
    fingerprint: str
    layers: tuple
    preprocess: object
    input_shape: tuple | None
    k: int
    batch_size: int
    side: int = THUMBNAIL_SIDE
    storage_options: dict | None = None


class _Pass:
    """The running state of a pass (or of one shard of it): a ``topk.Best`` per layer, the thumbnails (id → uint8
    image) of the images in some top k, the images seen."""

    def __init__(self, shapes: dict, k: int, side: int):
        self.k, self.side = int(k), int(side)
        self.best = {name: topk.empty(n, map_shape) for name, (n, map_shape) in shapes.items()}
        self.thumbs: dict = {}
        self.seen = 0
        self._kept = 0  # thumbnails after the last pruning

    def add(self, lo: int, raw: np.ndarray, scale: float, forward) -> None:
        """One batch: raw images (b, H, W, C) whose ids are lo..lo+b-1 (higher than every id seen by this pass)."""
        out = forward(in_space(forward.mode, raw, scale))
        ids = np.arange(lo, lo + len(raw), dtype=np.int64)
        new = []
        for name, (means, maps) in out.items():
            merged = topk.merge(self.best[name], topk.batch_best(ids, means, maps, self.k), self.k)
            self.best[name] = merged
            new.append(merged.ids[merged.ids >= lo])
        fresh = np.unique(np.concatenate(new)) if new else ids[:0]
        if len(fresh):
            for i, thumb in zip(fresh.tolist(), thumbnails(raw[fresh - lo], scale, self.side)):
                self.thumbs[i] = thumb
        self.seen += len(raw)
        self._prune_now_and_then()

    def merge(self, other: _Pass) -> None:
        """Take in a shard's state (images disjoint from this one's)."""
        for name, best in other.best.items():
            self.best[name] = topk.merge(self.best[name], best, self.k)
        self.thumbs.update(other.thumbs)
        self.seen += other.seen
        self._prune_now_and_then()

    def _prune_now_and_then(self) -> None:
        """Drop the thumbnails of images no longer in any top k, when their number has doubled since the last time
        (pruning after every batch would cost more than the batch for atlases of many units)."""
        if len(self.thumbs) > 2 * self._kept + 1024:
            self.prune()

    def prune(self) -> None:
        needed = self.needed()
        self.thumbs = {i: self.thumbs[i] for i in needed.tolist()}
        self._kept = len(self.thumbs)

    def needed(self) -> np.ndarray:
        """The ids (ascending) in some top k."""
        parts = [b.ids.ravel() for b in self.best.values()]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


# ----------------------------------------------------------------- on a worker
def _forward(job: ExamplesJob):
    """The worker's ``Forward`` for the job (made once per process: the model file is loaded once, as ``compute``'s
    workers do, and its traced function kept)."""
    from .forward import Forward

    label = job.preprocess if isinstance(job.preprocess, str) else \
        f"{getattr(job.preprocess, '__module__', '?')}.{getattr(job.preprocess, '__qualname__', '?')}"
    key = (job.fingerprint, job.layers, label, job.input_shape)
    with _LOCK:
        fwd = _FORWARDS.get(key)
        if fwd is None:
            model = model_file.load_cached(job.model_url, job.fingerprint, job.storage_options or None)
            fwd = Forward(model, list(job.layers), preprocess=job.preprocess, input_shape=job.input_shape)
            _FORWARDS[key] = fwd
        return fwd


def run_shard(job: ExamplesJob, lo: int, raw: np.ndarray, scale: float) -> _Pass:
    """One shard on a worker: the images ``raw`` (ids lo, lo+1, …) in batches of ``job.batch_size``; returns the
    shard's top k and thumbnails (pruned)."""
    fwd = _forward(job)
    state = _Pass(_shapes(fwd), job.k, job.side)
    for start in range(0, len(raw), job.batch_size):
        state.add(lo + start, raw[start: start + job.batch_size], scale, fwd)
    state.prune()
    return state


def _shapes(fwd) -> dict:
    """layer → (units, (h, w) of its maps or None)."""
    out = {}
    for e in fwd.engines:
        shape = e.layer.shape
        out[e.layer.name] = (e.layer.size, tuple(shape[:2]) if e.layer.kind == "maps" else None)
    return out


# ----------------------------------------------------------------- the pass
def add_examples(atlas, images, k: int = 9, *, preprocess=None, model=None, client=None, batch_size=None,
                 shard_batches: int = 8, progress=True, thumbnail_side: int = THUMBNAIL_SIDE) -> ExamplesReport:
    """Find the ``k`` images of ``images`` that activate each unit of every layer of ``atlas`` most, and store them
    (see the module doc). Arguments as ``Atlas.add_examples``."""
    from ..engine.validation import check_int
    from .progress import ChannelProgress

    t0 = time.perf_counter()
    k = check_int(k, "k (examples per unit)")
    side = check_int(thumbnail_side, "thumbnail_side")
    shard_batches = check_int(shard_batches, "shard_batches")
    plans = atlas.plans
    if not plans:
        raise ValueError("this atlas has no layers yet; add some with Atlas.create(path, model, layers=...)")
    pre = _preprocess_of(atlas, preprocess)
    shape_attr = atlas.attrs["model"].get("input_shape")
    engine_shape = tuple(shape_attr) if shape_attr else None
    source = image_source(images, atlas.input_shape)
    bs = check_int(batch_size, "batch_size") if batch_size is not None else default_batch_size(plans)
    model_url = model_file.model_url(atlas.url, atlas.attrs["model"]["file"])
    fingerprint = atlas.attrs["model"]["fingerprint"]
    job = ExamplesJob(model_url=model_url, fingerprint=fingerprint, layers=tuple(atlas.layers), preprocess=pre,
                      input_shape=engine_shape, k=k, batch_size=bs, side=side,
                      storage_options=atlas.storage_options or None)
    bar = ChannelProgress(source.count or 0, 0, label="examples", show=progress, unit="images")
    try:
        if client is None:
            fwd = _local_forward(atlas, job, model)
            atlas._examples_forward = (_forward_key(job, model), fwd)
            state, shards = _in_process(job, source, fwd, bar), 0
        else:
            state, shards = _on_dask(job, source, client, shard_batches, bar)
    except BaseException as err:
        bar.close("interrupted" if isinstance(err, KeyboardInterrupt) else f"stopped by {type(err).__name__}")
        raise
    if state.seen == 0:
        bar.close("no images")
        raise ValueError("the image set is empty (0 images): give at least one image")
    state.prune()
    ids = state.needed()
    th, tw, tc = thumbnail_shape(atlas.input_shape, side)
    thumbs = np.stack([state.thumbs[i] for i in ids.tolist()]) if len(ids) else np.zeros((0, th, tw, tc), np.uint8)
    seconds = time.perf_counter() - t0
    spec = atlas.attrs["preprocess"]
    meta = {"k": min(k, state.seen), "images": state.seen, "source": source.describe(), "pixel_scale": source.scale,
            "preprocess": spec, "space": _space_text(spec, source.scale),
            "activation": "the mean of a map over its height and width; a unit's value (a class layer with "
                          "softmax/sigmoid: its score before it)",
            "layers": list(atlas.layers), "thumbnail_shape": [th, tw, tc], "thumbnails": int(len(ids)),
            "batch_size": bs, "shards": shards, "seconds": round(seconds, 3),
            "created": _dt.datetime.now().isoformat(timespec="seconds")}
    root = atlas._root("r+")
    store.write_examples(root, plans, state.best, ids, thumbs, meta)
    atlas.attrs = dict(root.attrs)
    bar.close()
    return ExamplesReport(images=state.seen, k=meta["k"], layers=len(plans), units=sum(p.channels for p in plans),
                          thumbnails=int(len(ids)), batch_size=bs, shards=shards, seconds=time.perf_counter() - t0)


def _local_forward(atlas, job: ExamplesJob, model):
    """The ``Forward`` of this process for the job: kept on the ``Atlas`` object (another ``add_examples`` of the
    same atlas, layers and preprocess reuses it and its traced function), made from ``model`` or the store's model
    file."""
    from .forward import Forward

    kept = getattr(atlas, "_examples_forward", None)
    if kept is not None and kept[0] == _forward_key(job, model):
        return kept[1]
    if model is None:
        model = model_file.load(job.model_url, job.storage_options)
    else:
        from .atlas import _model_of

        model = _model_of(model)
        got = model_file.fingerprint(model)
        if got != job.fingerprint:
            raise ValueError(f"the model given has other weights (fingerprint {got}) than the atlas's "
                             f"({job.fingerprint}); give the atlas's model, or none (the store's model file is used)")
    return Forward(model, list(job.layers), preprocess=job.preprocess, input_shape=job.input_shape)


def _in_process(job: ExamplesJob, source, fwd, bar) -> _Pass:
    state = _Pass(_shapes(fwd), job.k, job.side)
    for lo, raw in source.batches(job.batch_size):
        state.add(lo, raw, source.scale, fwd)
        bar.advance(len(raw))
    return state


def _on_dask(job: ExamplesJob, source, client, shard_batches: int, bar) -> tuple[_Pass, int]:
    """Shards of ``shard_batches`` batches as tasks, at most two per worker in flight, merged as they finish."""
    from distributed import as_completed

    from .cluster import connected

    state = None
    shards = 0
    with connected(client) as c:
        workers = max(1, len(c.scheduler_info(n_workers=-1).get("workers", {})))
        running: dict = {}
        finished = as_completed(loop=c.loop)

        def take(fut) -> None:
            nonlocal state
            n = running.pop(fut)
            part = fut.result()
            if state is None:
                state = part
            else:
                state.merge(part)
            bar.advance(n)

        try:
            for lo, raw in _shards(source, job.batch_size, shard_batches):
                fut = c.submit(run_shard, job, lo, raw, source.scale, pure=False, retries=1)
                running[fut] = len(raw)
                finished.add(fut)
                shards += 1
                while len(running) >= 2 * workers:
                    take(next(finished))
            while running:
                take(next(finished))
        except BaseException:
            c.cancel(list(running))
            raise
    return (state or _Pass({}, job.k, job.side)), shards


def _shards(source, batch_size: int, shard_batches: int):
    """(first id, raw images) of ``shard_batches`` batches at a time, read in order from the source."""
    parts, lo = [], None
    for first, raw in source.batches(batch_size):
        lo = first if lo is None else lo
        parts.append(raw)
        if len(parts) == shard_batches:
            yield lo, np.concatenate(parts)
            parts, lo = [], None
    if parts:
        yield lo, np.concatenate(parts)


# ----------------------------------------------------------------- helpers
def _forward_key(job: ExamplesJob, model) -> tuple:
    label = job.preprocess if isinstance(job.preprocess, str) else id(job.preprocess)
    return job.fingerprint, job.layers, label, job.input_shape, None if model is None else id(model)


def default_batch_size(plans: list) -> int:
    """Images per batch: what fits in ``BATCH_MEMORY`` (and a quarter of the memory available) at the engine's
    estimate of one image's step for the deepest layer plus every layer's activations, at most ``MAX_BATCH``."""
    from ..engine.memory import budget_bytes

    per = max(p.image_bytes for p in plans) + sum(4 * int(np.prod(p.shape)) for p in plans)
    budget = min(BATCH_MEMORY, budget_bytes(0.25))
    return int(max(1, min(MAX_BATCH, budget // max(1, per))))


def _preprocess_of(atlas, preprocess):
    """The preprocess the images go through: the atlas's preset, or its function (given here, to ``Atlas.create``
    or to ``Atlas.open``; its qualified name must be the stored one)."""
    from .atlas import _describe, _preprocess_spec

    stored = atlas.attrs["preprocess"]
    if preprocess is not None:
        spec, fn = _preprocess_spec(preprocess)
        if spec != stored:
            raise ValueError(f"the atlas was made with preprocess {_describe(stored)}; got {_describe(spec)} (the "
                             "examples go through the atlas's own preprocess)")
        return fn or spec["preset"]
    if "callable" in stored:
        if atlas._preprocess_fn is None:
            raise ValueError(f"this atlas was made with the preprocess function {stored['callable']!r}; pass it: "
                             "atlas.add_examples(images, preprocess=that_function)")
        return atlas._preprocess_fn
    return stored["preset"]


def _space_text(spec: dict, scale) -> str:
    if spec.get("preset") == "standardize":
        return "each image standardised (mean 0, standard deviation 1 over its pixels and channels) from its raw values"
    how = f"preset {spec['preset']!r}" if "preset" in spec else f"function {spec['callable']!r}"
    return f"RGB in [0, 1] (raw values / {scale:g}, clipped), then the {how} into the model's input"
