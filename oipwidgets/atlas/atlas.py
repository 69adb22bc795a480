"""Atlas: the OIP of every channel of a model's layers, for a few seeds, computed on Dask and kept in a Zarr store.

    atlas = Atlas.create("my.atlas.zarr", model, layers="conv", recipe="readable", seeds=(0, 1))
    atlas.compute()                      # a local cluster; or compute(client) / compute("tcp://scheduler:8786")
    Atlas.open("my.atlas.zarr").oips("conv1", seed=0)     # anywhere, without the model

``create`` writes the store's layout and facts (recipe, preprocess, model, layers, seeds; ``store.py``) and the
model file (``model_file.py``); ``compute`` runs the tasks not yet done (``plan.py``) on Dask workers
(``worker.py``), each writing its own chunks and then its done mark, so a failure of any kind, or an interrupt,
loses at most the tasks that were running, and ``compute()`` again finishes the rest. ``create`` on an existing
store adds layers and seeds (only their work is new) and refuses another recipe, preprocess, input shape or model.

The preprocess may be a function (RGB in [0, 1] → the model's input): the store records its qualified name
("mypackage.inputs.to_bgr"), the workers get the function itself with each task (so it must be importable there,
or defined in the notebook), and ``compute()`` on an atlas opened elsewhere needs it again:
``Atlas.open(path, preprocess=to_bgr)`` (a function of another name is refused). Presets need nothing.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from . import model_file, store
from .plan import BUDGET_FRACTION, MAX_BLOCK, LayerPlan, Task, block_size, default_worker_memory, group_name, \
    select_layers, tasks_of

__all__ = ["Atlas", "ComputeReport", "AtlasTaskError"]

_PRESETS_TEXT = "'standardize' (the article's; the default), 'unit', 'byte', 'tf', 'caffe', 'torch' or a function"


@dataclass
class ComputeReport:
    """What one ``compute()`` did: tasks run now and skipped (done before), channels (× seeds) computed now, done
    in all and in the atlas, wall seconds, and the tasks that failed after their retries (task, error text)."""

    tasks_run: int = 0
    tasks_skipped: int = 0
    channels_run: int = 0
    channels_done: int = 0
    channels_total: int = 0
    seconds: float = 0.0
    failed: list = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"{_count(self.tasks_run, 'task')} run ({self.channels_run} channels), {self.tasks_skipped} done "
                f"before; {self.channels_done}/{self.channels_total} channels done; {self.seconds:.1f} s")
        return text + (f"; {_count(len(self.failed), 'task')} failed" if self.failed else "")


class AtlasTaskError(RuntimeError):
    """Some tasks failed after their retries; the others are stored and done. ``report`` says which."""

    def __init__(self, message: str, report: ComputeReport):
        super().__init__(message)
        self.report = report


class Atlas:
    """An atlas store (see the module doc); make one with ``Atlas.create`` or ``Atlas.open``."""

    def __init__(self, url: str, attrs: dict, storage_options: dict | None = None, preprocess_fn=None):
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.attrs = attrs
        self._preprocess_fn = preprocess_fn

    # ----------------------------------------------------------------- making and opening
    @classmethod
    def create(cls, path, model, layers="conv", *, units: bool = False, recipe="readable", seeds=(0,),
               preprocess=None, input_shape=None, block: int | None = None, worker_memory: int | None = None,
               model_path=None, storage_options: dict | None = None) -> Atlas:
        """A new atlas at ``path`` (a folder or an fsspec URL such as "s3://bucket/my.atlas.zarr"), or more layers
        and seeds for the atlas already there (its recipe, preprocess, input shape and model must be the same).

        model: a ``keras.Model`` with one image input, or the path of a .keras/.h5 file.
        layers: "conv" (every layer with maps, 4-D output; ``units=True`` adds the layers of units) or a list of
            layer names (paths for layers of nested models).
        recipe: how each OIP is made: "readable" (the default), "article", a ``Recipe`` or its dict; it must be
            serialisable (named choices only).
        seeds: the start-noise seeds, e.g. (0, 1): one OIP per channel and seed.
        preprocess: the model's input convention (``OIPEngine(preprocess=...)``): "standardize" (the article's; the
            default), "unit", "byte", "tf", "caffe", "torch", or a named function (see the module doc).
        input_shape: (H, W, C) for models that need it (subclassed, or any image size).
        block: channels per task (default: what fits in ``worker_memory``, at most 64; ``plan.py``).
        worker_memory: bytes of memory one worker has, for the block size (default: this machine's memory per core,
            what the local cluster gives a worker).
        model_path: a .keras/.h5 file of this model that every worker can read; by default the model is saved as
            ``model.keras`` into the store.
        """
        from ..engine.engine import OIPEngine
        from ..engine.probe import ensure_built
        from ..engine.recipe import recipe_for
        from ..engine.validation import check_int

        url = store.normalise(path)
        model = _model_of(model)
        recipe = recipe_for(recipe)
        recipe_dict = recipe.to_dict()  # refuses a recipe that holds objects, with what to do
        pre_spec, pre_fn = _preprocess_spec(preprocess)
        seeds = _checked_seeds(seeds)
        if block is not None:
            check_int(block, "block (channels per task)")
        given_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        built = ensure_built(model, given_shape)
        infos = select_layers(OIPEngine.layers(built), layers, units)
        engine_kw = dict(input_shape=given_shape, preprocess=pre_fn or pre_spec["preset"])
        first = OIPEngine(model, infos[0].name, **engine_kw)
        image_shape = list(first.input_shape)
        memory = int(worker_memory) if worker_memory is not None else default_worker_memory()

        def plan_of(info) -> LayerPlan:
            engine = first if info.name == first.layer.name else OIPEngine(model, info.name, **engine_kw)
            size = int(block) if block is not None else block_size(engine.image_bytes, memory, MAX_BLOCK)
            return LayerPlan(name=info.name, group=group_name(info.name), kind=info.kind, channels=info.size,
                             shape=tuple(info.shape), block=min(size, info.size), image_bytes=int(engine.image_bytes))

        store.check_writable(url, storage_options)
        weights = model_file.fingerprint(model)
        if store.exists(url, storage_options):
            atlas = cls.open(url, preprocess=pre_fn, storage_options=storage_options)
            atlas._check_same(recipe, pre_spec, image_shape, weights)
            atlas._grow([i for i in infos if i.name not in atlas.layers], plan_of, seeds)
            return atlas
        fs, fs_path = store.fs_of(url, storage_options)
        if fs.exists(fs_path) and fs.ls(fs_path):
            raise ValueError(f"{url!r} exists and is not an atlas; give a new path (or an atlas made by Atlas.create)")
        try:
            root = store.create_root(url, {
                "recipe": recipe_dict, "recipe_name": recipe.name(), "preprocess": pre_spec,
                "input_shape": image_shape, "value_range": _value_range(first), "seeds": seeds, "layers": [],
                "snapshots": store.SNAPSHOTS,
                "model": {"name": model.name, "fingerprint": weights, "file": None,
                          "input_shape": list(given_shape) if given_shape else None},
                "created": _dt.datetime.now().isoformat(timespec="seconds"), "oipwidgets": _version()},
                storage_options)
            if model_path is None:
                location = model_file.save_into(model, url, storage_options)
            else:
                location = store.normalise(model_path)
            model_file.verify(model_file.model_url(url, location), weights, model, storage_options)
            plans = [plan_of(i) for i in infos]
            _check_groups(plans)
            for plan in plans:
                store.add_layer(root, plan, len(seeds), tuple(image_shape))
            model_attrs = {**root.attrs["model"], "file": location}
            root.attrs.update({"model": model_attrs, "layers": [p.to_dict() for p in plans]})
        except BaseException:  # nothing half-made stays behind
            _remove(url, storage_options)
            raise
        return cls(url, dict(root.attrs), storage_options, pre_fn)

    @classmethod
    def open(cls, path, *, preprocess=None, storage_options: dict | None = None) -> Atlas:
        """The atlas at ``path``, for reading (lazily: arrays are read when asked for) and for ``compute()``; the
        model is not needed. ``preprocess``: the function, when the atlas was made with one and is to be computed
        (its name must be the one stored)."""
        url = store.normalise(path)
        if not store.exists(url, storage_options):
            raise ValueError(f"no atlas at {url!r} (no zarr.json with format {store.FORMAT!r}); make one with "
                             "Atlas.create(path, model, ...)")
        attrs = dict(store.open_root(url, "r", storage_options).attrs)
        if attrs.get("version", 0) > store.VERSION:
            raise ValueError(f"the atlas at {url!r} has format version {attrs['version']}; this oipwidgets reads up "
                             f"to {store.VERSION}: update oipwidgets")
        atlas = cls(url, attrs, storage_options)
        if preprocess is not None:
            spec, fn = _preprocess_spec(preprocess)
            if spec != attrs["preprocess"]:
                raise ValueError(f"the atlas at {url!r} was made with preprocess {_describe(attrs['preprocess'])}; "
                                 f"got {_describe(spec)}")
            atlas._preprocess_fn = fn
        return atlas

    # ----------------------------------------------------------------- facts
    @property
    def recipe(self):
        """The ``Recipe`` every OIP of the atlas is made with."""
        from ..engine.recipe import Recipe

        return Recipe.from_dict(self.attrs["recipe"])

    @property
    def seeds(self) -> list[int]:
        return list(self.attrs["seeds"])

    @property
    def plans(self) -> list[LayerPlan]:
        return [LayerPlan.from_dict(d) for d in self.attrs["layers"]]

    @property
    def layers(self) -> list[str]:
        return [d["name"] for d in self.attrs["layers"]]

    @property
    def input_shape(self) -> tuple:
        """(H, W, C) of every OIP."""
        return tuple(self.attrs["input_shape"])

    @property
    def preprocess(self) -> str:
        """The input convention: a preset's name, or the qualified name of the function."""
        spec = self.attrs["preprocess"]
        return spec.get("preset") or spec.get("callable")

    @property
    def value_range(self) -> tuple | None:
        """(low, high) of the OIPs' values (RGB (0, 1) with a preprocess convention), None for standardised."""
        vr = self.attrs.get("value_range")
        return None if vr is None else tuple(vr)

    def plan(self, layer: str) -> LayerPlan:
        for p in self.plans:
            if p.name == layer:
                return p
        raise ValueError(f"layer {layer!r} is not in this atlas; its layers: {', '.join(self.layers)}")

    def tasks(self, pending: bool = True) -> list[Task]:
        """The atlas's tasks (layer, block, seed), or only those not done yet."""
        everything = tasks_of(self.plans, self.seeds)
        if not pending:
            return everything
        root = self._root("r")
        done = {p.name: store.done_of(root, p, len(self.seeds)) for p in self.plans}
        return [t for t in everything if not done[t.layer][t.block, t.seed_index]]

    def progress(self) -> dict:
        """{layer: (channels done, channels in all)}, counting each channel once per seed."""
        root = self._root("r")
        out = {}
        for p in self.plans:
            done = store.done_of(root, p, len(self.seeds))
            sizes = np.array([p.block_range(b)[1] - p.block_range(b)[0] for b in range(p.n_blocks)])
            out[p.name] = (int((done * sizes[:, None]).sum()), p.channels * len(self.seeds))
        return out

    def info(self) -> str:
        """A few lines: where, recipe, preprocess, seeds, model, and channels done per layer."""
        rec = recipe_text(self.recipe)
        lines = [f"atlas {self.url}",
                 f"  recipe: {rec}",
                 f"  preprocess: {self.preprocess}; images {'x'.join(map(str, self.input_shape))}",
                 f"  seeds: {', '.join(map(str, self.seeds))}",
                 f"  model: {self.attrs['model']['name']} (weights {self.attrs['model']['fingerprint']}, file "
                 f"{self.attrs['model']['file']})"]
        total_done = total = 0
        for p, (done, count) in zip(self.plans, self.progress().values()):
            lines.append(f"  {p.name}: {done}/{count} channels done ({p.channels} {p.kind} × "
                         f"{_count(len(self.seeds), 'seed')}, blocks of {p.block})")
            total_done, total = total_done + done, total + count
        lines.append(f"  all: {total_done}/{total} channels done")
        return "\n".join(lines)

    def __repr__(self) -> str:
        done = self.progress()
        return (f"Atlas({self.url!r}, layers={len(self.layers)}, seeds={self.seeds}, "
                f"done={sum(d for d, _ in done.values())}/{sum(t for _, t in done.values())})")

    # ----------------------------------------------------------------- reading
    def array(self, layer: str, name: str = "oip"):
        """The lazy Zarr array ``name`` of a layer (``store.ARRAYS`` or "done"); index it to read."""
        valid = (*store.ARRAYS, "done")
        if name not in valid:
            raise ValueError(f"unknown array {name!r}; valid: {', '.join(valid)}")
        return self._root("r")[self.plan(layer).group][name]

    def oips(self, layer: str, seed: int | None = None) -> np.ndarray:
        """(channels, H, W, C) float32: the layer's OIPs for ``seed`` (a seed value; default the first); NaN where
        not computed yet."""
        return np.asarray(self.array(layer, "oip")[:, self._seed_index(seed)])

    def oip(self, layer: str, channel: int, seed: int | None = None) -> np.ndarray:
        """(H, W, C) float32: the OIP of one channel."""
        return np.asarray(self.array(layer, "oip")[int(channel), self._seed_index(seed)])

    def objectives(self, layer: str, seed: int | None = None) -> np.ndarray:
        """(channels,) float64: each OIP's final objective (NaN: not computed)."""
        return np.asarray(self.array(layer, "objective")[:, self._seed_index(seed)])

    def statuses(self, layer: str, seed: int | None = None) -> list:
        """Each channel's status name ("max_steps", "dead", …), None where not computed."""
        names = self.attrs["statuses"]
        codes = np.asarray(self.array(layer, "status")[:, self._seed_index(seed)])
        return [names[c] if c >= 0 else None for c in codes]

    # ----------------------------------------------------------------- dataset examples
    def add_examples(self, images, k: int = 9, *, preprocess=None, model=None, client=None, batch_size=None,
                     progress=True, thumbnail_side: int = 64):
        """Find the ``k`` images of ``images`` that activate each unit of every layer most, with their activation
        maps and thumbnails, and store them (replacing examples stored before); returns an ``ExamplesReport``.

        images: an array (N, H, W) or (N, H, W, C), uint8 0..255 or floats (0..1, or 0..255 when the first batch
            has a value above 1); a ``tf.data.Dataset`` of images, batches or (image, label) pairs; or a folder of
            image files. Any size: resized to the model's input (the middle at its aspect ratio). An image's id is
            its position in the set (for a folder: in the sorted list of its files).
        preprocess: the atlas's preprocess function, when it was made with one and opened without it; the images
            always reach the model through the atlas's preprocess (per-image standardisation for "standardize",
            else RGB in [0, 1] through the preset or function).
        model: the atlas's model (checked by its weights' fingerprint); by default the store's model file is loaded.
        client: a ``distributed.Client`` or a scheduler address: shards of the data as tasks, their top k merged
            here; None (the default): in this process.
        batch_size: images per batch (default: what fits in memory, at most 256); progress: a bar of the images
            read (as ``compute``'s); thumbnail_side: the longest side of the stored thumbnails (pixels).

        One streamed pass over the data for all layers; memory: a batch, plus the top k of every unit and their
        thumbnails. The layout is in docs/atlas-store.md ("Dataset examples").
        """
        from .examples import add_examples

        return add_examples(self, images, k, preprocess=preprocess, model=model, client=client,
                            batch_size=batch_size, progress=progress, thumbnail_side=thumbnail_side)

    @property
    def examples_info(self) -> dict | None:
        """What ``add_examples`` recorded (k, images, source, preprocess, layers, …), None without examples."""
        return self.attrs.get("examples") or None

    def has_examples(self, layer: str) -> bool:
        """Whether the dataset examples stored cover ``layer`` (a layer added after ``add_examples`` has none)."""
        info = self.examples_info
        return bool(info) and layer in info.get("layers", ())

    def examples(self, layer: str, channel: int) -> dict | None:
        """The dataset examples of one unit, None without examples for its layer: ``index`` (k,) int64 (ids in the
        data set), ``activation`` (k,) float64, ``map`` (k, h, w) float32 (None for a layer of units) and
        ``thumbnails`` (k, th, tw, tc) uint8, best first. Reads the unit's slices and its k thumbnail rows only."""
        from .reader import AtlasReader

        return AtlasReader(self).examples(layer, channel)

    # ----------------------------------------------------------------- views
    def export_site(self, folder, *, cmap: str = "viridis", progress: bool = False):
        """Write the atlas as a static web site into ``folder`` (plain HTML and PNG files, nothing fetched from
        elsewhere: any static host or file:// shows it): ``index.html``, one index per layer, one page per computed
        unit at ``<layer>/<channel>.html`` with its OIPs per seed, objective, status and dataset examples. Export
        again later to add the units computed since. Returns a ``SiteReport``; see ``oipwidgets.atlas.site``."""
        from .site import export_site

        return export_site(self, folder, cmap=cmap, progress=progress)

    def load_model(self):
        """The atlas's model, loaded from its file (the store's ``model.keras`` or the ``model_path`` given)."""
        model = self.attrs["model"]
        return model_file.load(model_file.model_url(self.url, model["file"]), self.storage_options or None)

    def _seed_index(self, seed) -> int:
        if seed is None:
            return 0
        if seed not in self.seeds:
            raise ValueError(f"seed {seed!r} is not in this atlas; its seeds: {self.seeds}")
        return self.seeds.index(seed)

    def _root(self, mode: str = "r"):
        return store.open_root(self.url, mode, self.storage_options or None)

    # ----------------------------------------------------------------- computing
    def compute(self, client=None, *, retries: int = 2, progress=True, on_task=None) -> ComputeReport:
        """Compute every task not done yet on Dask; returns a ``ComputeReport``.

        client: a ``distributed.Client`` (used as it is), a scheduler address ("tcp://scheduler:8786"), or None for
            a local cluster (one worker process per core) that is shut down afterwards.
        retries: how often Dask re-runs a task that raised (a task whose worker died is re-run by the scheduler).
        progress: a bar of the channels done (a widget in a notebook, text on stderr elsewhere) and the dashboard's
            address; False for none.
        on_task: f(dict) after each finished task (layer, block, seed, channels, statuses, seconds, pid).

        Before any work: the store must be writable and its disk must have room for the remaining work (a
        ValueError says why not), and one image of each layer must fit in the workers' memory. KeyboardInterrupt
        cancels the tasks not finished (the store keeps every finished one); a task that failed after its retries
        is reported by an ``AtlasTaskError`` once the others are done.
        """
        from distributed import as_completed

        from .cluster import connected, worker_memory_limits
        from .progress import ChannelProgress
        from .worker import run_task

        t0 = time.perf_counter()
        job = self._job()
        pending = self.tasks(pending=True)
        total = sum(p.channels for p in self.plans) * len(self.seeds)
        report = ComputeReport(tasks_skipped=len(self.tasks(pending=False)) - len(pending),
                               channels_total=total, channels_done=total - sum(t.channels for t in pending))
        if not pending:
            report.seconds = time.perf_counter() - t0
            return report
        store.check_writable(self.url, self.storage_options or None)
        plans = {p.name: p for p in self.plans}
        need = sum(store.task_bytes(plans[t.layer], self.input_shape, t.channels) for t in pending)
        store.check_free_space(self.url, need)
        with connected(client) as c:
            if progress:
                print(f"Dask dashboard: {c.dashboard_link}", flush=True)
            _check_memory(worker_memory_limits(c), {t.layer for t in pending}, plans)
            bar = ChannelProgress(total, report.channels_done, label="atlas", show=progress)
            futures = {}
            try:
                for t in pending:
                    futures[c.submit(run_task, job, t, retries=retries, pure=False,
                                     key=f"atlas-{t.label}-{uuid.uuid4().hex[:8]}")] = t
                for fut in as_completed(list(futures), loop=c.loop):
                    task = futures[fut]
                    if fut.status != "finished":
                        report.failed.append((task, _error_text(fut)))
                        continue
                    done = fut.result()
                    report.tasks_run += 1
                    report.channels_run += task.channels
                    report.channels_done += task.channels
                    bar.advance(task.channels)
                    if on_task is not None:
                        on_task(done)
            except BaseException as err:
                try:
                    c.cancel(list(futures))
                except Exception:  # noqa: BLE001 - a lost scheduler: nothing left to cancel; report the first error
                    pass
                note = "interrupted" if isinstance(err, KeyboardInterrupt) else f"stopped by {type(err).__name__}"
                bar.close(f"{note}; compute() again to finish the rest")
                raise
            finally:
                report.seconds = time.perf_counter() - t0
        bar.close("" if not report.failed else f"{len(report.failed)} tasks failed")
        if report.failed:
            first = report.failed[0]
            raise AtlasTaskError(f"{len(report.failed)} of {len(pending)} tasks failed after {retries} retries (the "
                                 f"others are stored; compute() again retries these): first, {first[0].label}: "
                                 f"{first[1]}", report)
        return report

    def _job(self):
        from .worker import Job

        spec = self.attrs["preprocess"]
        if "callable" in spec and self._preprocess_fn is None:
            raise ValueError(f"this atlas was made with the preprocess function {spec['callable']!r}; pass it again "
                             "to compute: Atlas.open(path, preprocess=that_function)")
        model = self.attrs["model"]
        shape = model.get("input_shape")
        return Job(store_url=self.url, model_url=model_file.model_url(self.url, model["file"]),
                   fingerprint=model["fingerprint"], preprocess=self._preprocess_fn or spec["preset"],
                   recipe=self.attrs["recipe"], input_shape=tuple(shape) if shape else None,
                   snapshots=int(self.attrs.get("snapshots", store.SNAPSHOTS)),
                   storage_options=self.storage_options)

    # ----------------------------------------------------------------- growing
    def _check_same(self, recipe, pre_spec: dict, image_shape: list, weights: str) -> None:
        """Refuse to add to this atlas with another recipe, preprocess, image shape or model (saying what differs)."""
        where = f"the atlas at {self.url!r}"
        diffs = self.recipe.differences(recipe)
        if diffs:
            text = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in diffs.items())
            raise ValueError(f"{where} was made with another recipe ({text}); give the same recipe to add layers or "
                             "seeds, or make a new atlas at another path")
        if pre_spec != self.attrs["preprocess"]:
            raise ValueError(f"{where} was made with preprocess {_describe(self.attrs['preprocess'])}; got "
                             f"{_describe(pre_spec)}")
        if list(image_shape) != list(self.input_shape):
            raise ValueError(f"{where} holds OIPs of {tuple(self.input_shape)} images; this model takes "
                             f"{tuple(image_shape)}")
        if weights != self.attrs["model"]["fingerprint"]:
            raise ValueError(f"{where} was made with another model (weights fingerprint "
                             f"{self.attrs['model']['fingerprint']}, this one's {weights}); make a new atlas")

    def _grow(self, new_infos: list, plan_of, seeds: list[int]) -> None:
        """Add the layers ``new_infos`` and the seeds not stored yet (the seed axis of every layer grows); the
        root's attributes are written last."""
        root = self._root("r+")
        all_seeds = self.seeds + [s for s in seeds if s not in self.seeds]
        plans = self.plans
        for plan in plans:
            store.resize_seeds(root, plan, len(all_seeds))
        for info in new_infos:
            plan = plan_of(info)
            _check_groups([*plans, plan])
            if plan.group in root:  # left by a create that stopped before recording it
                del root[plan.group]
            store.add_layer(root, plan, len(all_seeds), self.input_shape)
            plans.append(plan)
        root.attrs.update({"seeds": all_seeds, "layers": [p.to_dict() for p in plans]})
        self.attrs = dict(root.attrs)


# ----------------------------------------------------------------- helpers
def recipe_text(recipe) -> str:
    """A recipe as its nearest preset and what differs from it: "readable", "readable with steps=8"."""
    from ..engine.recipe import RECIPES

    name, diffs = min(((n, recipe.differences(r)) for n, r in RECIPES.items()), key=lambda nd: len(nd[1]))
    return name if not diffs else f"{name} with " + ", ".join(f"{k}={a!r}" for k, (a, _) in diffs.items())


def _model_of(model):
    import keras

    if isinstance(model, keras.Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        from ..models.models import load_model

        return load_model(model)
    raise TypeError(f"model must be a keras.Model or the path of a .keras/.h5 file; got {type(model).__name__}")


def _preprocess_spec(preprocess) -> tuple[dict, object]:
    """({"preset": name} or {"callable": qualified name}, the function or None)."""
    from ..engine.preprocess import PRESETS

    if preprocess is None or preprocess == "standardize":
        return {"preset": "standardize"}, None
    if isinstance(preprocess, str):
        if preprocess not in PRESETS:
            raise ValueError(f"unknown preprocess {preprocess!r}; valid: {_PRESETS_TEXT}")
        return {"preset": preprocess}, None
    if callable(preprocess) and hasattr(preprocess, "__qualname__"):
        return {"callable": f"{preprocess.__module__}.{preprocess.__qualname__}"}, preprocess
    raise TypeError(f"preprocess must be {_PRESETS_TEXT} (a named function); got {type(preprocess).__name__}")


def _describe(spec: dict) -> str:
    return repr(spec["preset"]) if "preset" in spec else f"function {spec['callable']!r}"


def _checked_seeds(seeds) -> list[int]:
    from ..engine.validation import is_int

    if is_int(seeds) or isinstance(seeds, str):
        raise ValueError(f"seeds must be a list of seed values, e.g. (0, 1) (for n seeds: range(n)); got {seeds!r}")
    values = list(seeds)
    if not values or not all(is_int(s) and s >= 0 for s in values) or len(set(values)) != len(values):
        raise ValueError(f"seeds must be distinct whole numbers >= 0, at least one; got {seeds!r}")
    return [int(s) for s in values]


def _value_range(engine):
    vr = engine.mode.value_range
    return None if vr is None else [float(v) for v in vr]


def _check_memory(limits: list[int], layers: set, plans: dict) -> None:
    """Refuse, before any task runs, a layer one image of which does not fit in the smallest worker's budget."""
    known = [m for m in limits if m > 0]
    if not known:
        return
    from ..engine.memory import format_bytes

    budget = int(BUDGET_FRACTION * min(known))
    for name in sorted(layers):
        need = plans[name].image_bytes
        if need > budget:
            raise ValueError(f"layer {name!r} needs about {format_bytes(need)} per image for one ascent step, more "
                             f"than a worker's budget of {format_bytes(budget)} ({BUDGET_FRACTION:.0%} of its "
                             f"{format_bytes(min(known))} memory limit); give the workers more memory or leave the "
                             "layer out")


def _check_groups(plans: list) -> None:
    """Two layer paths that differ only in "/" against "__" would share a group: refuse (never seen in practice)."""
    seen = {}
    for p in plans:
        if p.group in seen:
            raise ValueError(f"layers {seen[p.group]!r} and {p.name!r} would share the store group {p.group!r}; "
                             "make an atlas of one of them at a time")
        seen[p.group] = p.name


def _error_text(fut) -> str:
    try:
        err = fut.exception()
    except BaseException as e:  # noqa: BLE001 - cancelled futures raise here
        return f"{type(e).__name__}: {e}"
    return f"{type(err).__name__}: {err}"


def _remove(url: str, storage_options: dict | None) -> None:
    """Remove a store this call created (after a failure while creating it)."""
    try:
        if store.is_url(url):
            fs, path = store.fs_of(url, storage_options)
            fs.rm(path, recursive=True)
        else:
            shutil.rmtree(url, ignore_errors=True)
    except Exception:  # noqa: BLE001 - best effort; the error that led here is the one to report
        pass


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("oipwidgets")
    except Exception:  # noqa: BLE001
        return "unknown"
