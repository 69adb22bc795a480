"""The atlas's Zarr v3 store: its layout, and creating, opening, checking and writing it (spec: docs/atlas-store.md).

Layout (``S`` seeds, ``n`` channels of a layer, ``H×W×C`` the model's input, ``K`` = ``SNAPSHOTS``)::

    my.atlas.zarr/
      zarr.json               root group; attributes: format, recipe, preprocess, input shape, seeds, layers, model
      model.keras             the model the workers load (a plain file beside the hierarchy; absent with model_path=)
      layers/<layer>/         one group per layer ("/" of a nested layer's path written "__")
        oip             (n, S, H, W, C)     float32  the final OIP of each channel and seed (NaN: not computed)
        objective       (n, S)              float64  its final objective (the recipe's regularisers subtracted)
        status          (n, S)              int8     index into the root's "statuses" (-1: not computed)
        steps           (n, S)              int32    updates made (-1: not computed)
        saturated       (n, S)              float32  share of values within 2 % of the range's ends
        snapshots       (n, S, K, H, W, C)  float16  K of the run's snapshot images, spread over the run (NaN: none)
        snapshot_steps  (n, S, K)           int32    their step numbers (-1: none)
        done            (n_blocks, S)       uint8    1 once every array above holds the task's outputs

Dataset examples (``Atlas.add_examples``; written in one go, marked by the root's ``examples`` attribute, last)::

      examples/               the thumbnails of every image that is among some unit's top k
        thumbnail       (M, th, tw, tc)     uint8    the image as the model saw it (its size), shrunk to <= 64 px
        image           (M,)                int64    its position in the data set (ascending)
      layers/<layer>/examples/
        index           (n, k)              int64    the k images that activate each unit most (-1: none)
        activation      (n, k)              float64  their activations (map means; units: the value)
        thumbnail_row   (n, k)              int32    their rows in examples/thumbnail
        map             (n, k, h, w)        float16  their activation maps (layers with maps only)

Every array is chunked (block, 1, …): one task (a block of channels, one seed) writes exactly one chunk of each, so
writers never share a chunk, and ``done`` is chunked (1, 1) and written last. A task whose worker dies leaves at
worst some of its chunks written and its ``done`` entry 0: it is computed again, and overwrites them.
"""

from __future__ import annotations

import os
import shutil
import uuid

import numpy as np

from ..engine.result import STATUSES
from .plan import LayerPlan, Task

__all__ = ["FORMAT", "VERSION", "SNAPSHOTS", "ARRAYS", "STATUSES", "is_url", "normalise", "open_root", "exists",
           "create_root", "add_layer", "resize_seeds", "task_arrays", "write_task", "done_of", "check_writable",
           "check_free_space", "task_bytes", "pick_snapshots", "fs_of", "EXAMPLE_ARRAYS", "EXAMPLES_GROUP",
           "write_examples", "examples_meta", "example_chunks"]

FORMAT = "oipwidgets-atlas"
VERSION = 1
#: snapshots kept per OIP (the run has 2 to ~10; spread over it, the final image is ``oip`` itself)
SNAPSHOTS = 4

#: name → (dtype, fill value, trailing dimension names after (channel, seed)); "image" is (y, x, c) of the input
ARRAYS = {
    "oip": ("float32", float("nan"), ("y", "x", "c")),
    "objective": ("float64", float("nan"), ()),
    "status": ("int8", -1, ()),
    "steps": ("int32", -1, ()),
    "saturated": ("float32", float("nan"), ()),
    "snapshots": ("float16", float("nan"), ("snapshot", "y", "x", "c")),
    "snapshot_steps": ("int32", -1, ("snapshot",)),
}

#: the dataset examples of a layer (group ``<layer>/examples``): name → (dtype, fill, trailing dimension names after
#: (channel, rank)); "map" only for layers with maps
EXAMPLE_ARRAYS = {
    "index": ("int64", -1, ()),
    "activation": ("float64", float("nan"), ()),
    "thumbnail_row": ("int32", -1, ()),
    "map": ("float16", float("nan"), ("y", "x")),
}
#: the group of the thumbnails every layer's examples point into
EXAMPLES_GROUP = "examples"
#: bytes of one chunk of thumbnails or maps, about: a unit's panel reads a few small chunks, never a whole array
_EXAMPLE_CHUNK_BYTES = 1 << 20


# ----------------------------------------------------------------- where the store is
def is_url(path: str) -> bool:
    return "://" in str(path)


def normalise(path) -> str:
    """A local path (also a "file://" URL) made absolute (workers may run elsewhere in the file system tree), any
    other URL as it is."""
    text = os.fspath(path)
    if text.startswith("file://"):
        text = text[len("file://"):]
    return text if is_url(text) else os.path.abspath(os.path.expanduser(text))


def fs_of(url: str, storage_options: dict | None = None):
    """(fsspec file system, path in it) of a store URL or local path."""
    from fsspec.core import url_to_fs

    return url_to_fs(url, **(storage_options or {}))


def open_root(url: str, mode: str = "r", storage_options: dict | None = None):
    """The store's root group (``mode``: "r" read, "r+" read and write, "w-" create, failing if it exists)."""
    import zarr

    kwargs = {"storage_options": storage_options} if storage_options and is_url(url) else {}
    return zarr.open_group(url, mode=mode, zarr_format=3, **kwargs)


def exists(url: str, storage_options: dict | None = None) -> bool:
    """Whether an atlas (its root ``zarr.json`` with the atlas format) is at ``url``."""
    fs, path = fs_of(url, storage_options)
    if not fs.exists(path.rstrip("/") + "/zarr.json"):
        return False
    try:
        return open_root(url, "r", storage_options).attrs.get("format") == FORMAT
    except Exception:  # noqa: BLE001 - anything unreadable is no atlas
        return False


# ----------------------------------------------------------------- creating and growing
def create_root(url: str, attrs: dict, storage_options: dict | None = None):
    """A new store at ``url`` with the root attributes ``attrs`` (format, version and status names added); fails
    if something is there already."""
    import zarr

    kwargs = {"storage_options": storage_options} if storage_options and is_url(url) else {}
    return zarr.open_group(url, mode="w-", zarr_format=3,
                           attributes={"format": FORMAT, "version": VERSION, "statuses": list(STATUSES), **attrs},
                           **kwargs)


def add_layer(root, plan: LayerPlan, n_seeds: int, input_shape: tuple, snapshots: int = SNAPSHOTS):
    """The group of ``plan``'s layer with all its arrays (empty: fill values), chunked one task per chunk."""
    group = root.create_group(plan.group, attributes={"layer": plan.to_dict()})
    image = tuple(int(s) for s in input_shape)
    extra = {"y": image[0], "x": image[1], "c": image[2], "snapshot": snapshots}
    for name, (dtype, fill, dims) in ARRAYS.items():
        tail = tuple(extra[d] for d in dims)
        group.create_array(name, shape=(plan.channels, n_seeds, *tail), chunks=(plan.block, 1, *tail), dtype=dtype,
                           fill_value=fill, dimension_names=("channel", "seed", *dims))
    group.create_array("done", shape=(plan.n_blocks, n_seeds), chunks=(1, 1), dtype="uint8", fill_value=0,
                       dimension_names=("block", "seed"))
    return group


def resize_seeds(root, plan: LayerPlan, n_seeds: int) -> None:
    """Grow the seed axis of every array of ``plan``'s layer to ``n_seeds`` (the chunks written stay as they are:
    a chunk's key does not depend on the array's shape)."""
    group = root[plan.group]
    for name in (*ARRAYS, "done"):
        arr = group[name]
        if arr.shape[1] < n_seeds:
            arr.resize((arr.shape[0], n_seeds, *arr.shape[2:]))


# ----------------------------------------------------------------- one task
def pick_snapshots(steps: np.ndarray, k: int = SNAPSHOTS) -> np.ndarray:
    """Indices of at most ``k`` of a run's snapshots, spread evenly over it from first to last."""
    n = len(steps)
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def task_arrays(result, snapshots: int = SNAPSHOTS) -> dict:
    """A LayerResult of one task (b OIPs of one seed) as the arrays' values, each shaped (b, 1, …)."""
    b = len(result)
    h, w, c = result[0].image.shape
    out = {
        "oip": np.stack([r.image for r in result]).astype(np.float32)[:, None],
        "objective": np.array([r.final_loss for r in result], np.float64)[:, None],
        "status": np.array([STATUSES.index(r.status) for r in result], np.int8)[:, None],
        "steps": np.array([r.steps for r in result], np.int32)[:, None],
        "saturated": np.array([r.saturated for r in result], np.float32)[:, None],
        "snapshots": np.full((b, 1, snapshots, h, w, c), np.nan, np.float16),
        "snapshot_steps": np.full((b, 1, snapshots), -1, np.int32),
    }
    for i, r in enumerate(result):
        pick = pick_snapshots(np.asarray(r.snapshot_steps), snapshots)
        out["snapshots"][i, 0, : len(pick)] = np.asarray(r.snapshots)[pick].astype(np.float16)
        out["snapshot_steps"][i, 0, : len(pick)] = np.asarray(r.snapshot_steps)[pick]
    return out


def write_task(root, task: Task, values: dict, after_data=None) -> None:
    """Write one task's outputs (``task_arrays``) into its chunks, then (and only then) its ``done`` entry.
    ``after_data()`` runs between the two (the fault tests' hook)."""
    group = root[task.group]
    where = (slice(task.lo, task.hi), slice(task.seed_index, task.seed_index + 1))
    for name in ARRAYS:
        group[name][where] = values[name]
    if after_data is not None:
        after_data()
    group["done"][task.block, task.seed_index] = 1


def done_of(root, plan: LayerPlan, n_seeds: int) -> np.ndarray:
    """(n_blocks, n_seeds) bool: which tasks of the layer are done (seeds beyond the stored axis: not done)."""
    done = np.asarray(root[plan.group]["done"][:], bool)
    if done.shape[1] < n_seeds:
        done = np.concatenate([done, np.zeros((done.shape[0], n_seeds - done.shape[1]), bool)], axis=1)
    return done


# ----------------------------------------------------------------- checks before work
def check_writable(url: str, storage_options: dict | None = None) -> None:
    """Refuse, before any work, a store that cannot be written: a local path under a file or on a read-only
    file system, a folder without write permission, or a remote store that refuses a small probe object. The
    test writes and removes a probe file, so it holds for root too (who passes every permission check)."""
    if not is_url(url):
        existing = next((p for p in (url, *_parents(url)) if os.path.exists(p)), None)
        if existing is not None and not os.path.isdir(existing):
            raise ValueError(f"cannot write the atlas at {url!r}: {existing!r} is a file, not a folder")
        target = url if os.path.isdir(url) else existing
        if target is None:
            raise ValueError(f"cannot write the atlas at {url!r}: no existing folder above it")
        probe = os.path.join(target, f".oipwidgets-probe-{uuid.uuid4().hex}")
        try:
            with open(probe, "wb") as f:
                f.write(b"probe")
            os.remove(probe)
        except OSError as err:
            raise ValueError(f"cannot write the atlas at {url!r}: {target!r} is not writable "
                             f"({err.strerror or err})") from err
        return
    fs, path = fs_of(url, storage_options)
    probe = path.rstrip("/") + f"/.oipwidgets-probe-{uuid.uuid4().hex}"
    try:
        fs.makedirs(path, exist_ok=True)  # a folder on file-like systems; nothing on object stores
        fs.pipe_file(probe, b"probe")
        fs.rm_file(probe)
    except Exception as err:  # noqa: BLE001 - every backend raises its own errors
        raise ValueError(f"cannot write the atlas at {url!r}: {type(err).__name__}: {err}") from err


def _parents(path: str):
    p = os.path.dirname(path)
    while True:
        yield p
        parent = os.path.dirname(p)
        if parent == p:
            return
        p = parent


def task_bytes(plan: LayerPlan, input_shape: tuple, channels: int | None = None,
               snapshots: int = SNAPSHOTS) -> int:
    """Upper bound of what ``channels`` (default: a block) OIPs of one seed take in the store, uncompressed."""
    n = plan.block if channels is None else channels
    image = int(np.prod(input_shape))
    per = image * 4 + snapshots * image * 2 + snapshots * 4 + 8 + 1 + 4 + 4
    return n * per


def check_free_space(url: str, need: int) -> None:
    """Refuse, before any work, a local store whose disk has less free space than ``need`` bytes (the remaining
    work's uncompressed size, an upper bound); remote stores are not checked."""
    if is_url(url):
        return
    where = next((p for p in (url, *_parents(url)) if os.path.exists(p)), "/")
    free = shutil.disk_usage(where).free
    if free < need:
        from ..engine.memory import format_bytes

        raise ValueError(f"not enough free disk for the atlas at {url!r}: the remaining work needs up to "
                         f"{format_bytes(need)} (uncompressed), {format_bytes(free)} are free on {where!r}; free "
                         "space, choose another place, or fewer layers or seeds")


# ----------------------------------------------------------------- dataset examples
def example_chunks(block: int, k: int, map_shape: tuple | None) -> int:
    """Channels per chunk of a layer's example arrays: the layer's block, fewer when its k maps are large (a chunk
    stays near 1 MiB, so the panel of one unit reads little)."""
    if not map_shape:
        return int(block)
    per_unit = k * int(np.prod(map_shape)) * 2
    return max(1, min(int(block), _EXAMPLE_CHUNK_BYTES // max(1, per_unit)))


def examples_meta(root) -> dict | None:
    """The root's ``examples`` attribute (what ``add_examples`` recorded), None when the store has no examples."""
    return root.attrs.get("examples") or None


def write_examples(root, plans: list, best: dict, image_ids: np.ndarray, thumbnails: np.ndarray, meta: dict) -> None:
    """Replace the store's dataset examples: the ``examples`` group (thumbnails and their image ids), each layer's
    ``examples`` group (``best[layer]``: a ``topk.Best`` of (k, n) ids, values and (k, n, h, w) maps or None), then
    the root's ``examples`` attribute (``meta``), last: a reader sees the old examples, none, or the new ones whole.

    image_ids: (M,) int64 ascending; thumbnails: (M, th, tw, tc) uint8 in the same order."""
    root.attrs.update({"examples": None})
    for plan in plans:
        if "examples" in root[plan.group]:
            del root[plan.group]["examples"]
    if EXAMPLES_GROUP in root:
        del root[EXAMPLES_GROUP]
    m = int(len(image_ids))
    th, tw, tc = (int(v) for v in thumbnails.shape[1:])
    rows = max(1, min(64, _EXAMPLE_CHUNK_BYTES // 16 // max(1, th * tw * tc)))  # ~64 KiB a chunk: a panel's k rows
    group = root.create_group(EXAMPLES_GROUP)
    group.create_array("thumbnail", shape=(m, th, tw, tc), chunks=(rows, th, tw, tc), dtype="uint8", fill_value=0,
                       dimension_names=("row", "y", "x", "c"))
    group.create_array("image", shape=(m,), chunks=(max(1, min(m, 1 << 16)),), dtype="int64", fill_value=-1,
                       dimension_names=("row",))
    if m:
        group["thumbnail"][:] = thumbnails
        group["image"][:] = np.asarray(image_ids, np.int64)
    for plan in plans:
        b = best[plan.name]
        ids = b.ids.T  # (n, k)
        n, k = ids.shape
        map_shape = None if b.maps is None else tuple(b.maps.shape[2:])
        per = example_chunks(plan.block, max(1, k), map_shape)
        sub = root[plan.group].create_group("examples")
        values = {"index": ids, "activation": b.values.T,
                  "thumbnail_row": np.where(ids >= 0, np.searchsorted(image_ids, ids), -1).astype(np.int32)}
        if map_shape is not None:
            values["map"] = np.ascontiguousarray(b.maps.transpose(1, 0, 2, 3)).astype(np.float16)
        for name, value in values.items():
            dtype, fill, dims = EXAMPLE_ARRAYS[name]
            tail = tuple(value.shape[2:])
            sub.create_array(name, shape=(n, k, *tail), chunks=(per, max(1, k), *tail), dtype=dtype, fill_value=fill,
                             dimension_names=("channel", "rank", *dims))
            if n and k:
                sub[name][:] = value
    root.attrs.update({"examples": meta})
