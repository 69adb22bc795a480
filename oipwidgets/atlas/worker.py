"""What runs on a Dask worker: one task (a block of channels of one layer, one seed) from model file to store.

``run_task(job, task)`` loads the model once per worker process (``model_file.load_cached``), keeps one engine per
(model, layer) so each compiled loop is traced once per process, climbs the block's OIPs as one batch with the
store's recipe and seed, writes them into the task's chunks and then its ``done`` mark (``store.write_task``).
The function is pure in the sense that matters: the same task gives the same images, so a task that ran twice
(retried after its worker died) writes the same values.

Test hook: with ``OIPWIDGETS_ATLAS_FAULTS=1`` in the worker's environment and a file ``FAULT_MARKER`` in a local
store's folder, the first task that finds the marker claims it (renames it) and kills its worker process with
``os._exit(1)`` after writing its data and before its done mark, as a worker lost mid-task would.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from . import model_file, store
from .plan import BUDGET_FRACTION, Task

__all__ = ["Job", "run_task", "FAULT_ENV", "FAULT_MARKER"]

FAULT_ENV = "OIPWIDGETS_ATLAS_FAULTS"
FAULT_MARKER = "fault-exit-once"

_ENGINES: dict = {}  # (model fingerprint, layer, preprocess, input shape, budget) → OIPEngine
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Job:
    """What every task of one ``compute()`` shares (sent with each task; small: the model travels as a file).

    store_url / storage_options: the store; model_url / fingerprint: the model file and its weights' fingerprint;
    input_shape: the ``input_shape=`` the engine needs (subclassed or any-size models), else None; preprocess: a
    preset name or the function; recipe: the recipe's dict; snapshots: snapshots kept per OIP.
    """

    store_url: str
    model_url: str
    fingerprint: str
    preprocess: object
    recipe: dict
    input_shape: tuple | None = None
    snapshots: int = store.SNAPSHOTS
    storage_options: dict = field(default_factory=dict)


def run_task(job: Job, task: Task) -> dict:
    """Compute and store one task; returns what was done: layer, block, seed, channels, statuses (name → count),
    seconds, pid."""
    t0 = time.perf_counter()
    from ..engine.recipe import Recipe

    engine = _engine(job, task.layer)
    result = engine.run_layer(list(range(task.lo, task.hi)), seed=task.seed, recipe=Recipe.from_dict(job.recipe))
    if result.error is not None:  # an exception ended the climb: no done mark, Dask retries the task
        raise RuntimeError(f"{task.label}: the climb ended with {type(result.error).__name__}: {result.error}")
    values = store.task_arrays(result, job.snapshots)
    root = store.open_root(job.store_url, "r+", job.storage_options or None)
    store.write_task(root, task, values, after_data=lambda: _fault_point(job.store_url))
    counts: dict = {}
    for status in result.statuses:
        counts[status] = counts.get(status, 0) + 1
    return {"layer": task.layer, "block": task.block, "seed": task.seed, "channels": task.channels,
            "statuses": counts, "seconds": time.perf_counter() - t0, "pid": os.getpid()}


def _engine(job: Job, layer: str):
    """The worker's engine for ``layer`` of the job's model (made once per process; the model's compiled loops are
    shared by every engine on it). Its memory budget is ``BUDGET_FRACTION`` of the worker's memory limit."""
    from ..engine.engine import OIPEngine

    budget = _worker_budget()
    label = job.preprocess if isinstance(job.preprocess, str) else _qualname(job.preprocess)
    key = (job.fingerprint, layer, label, job.input_shape, budget)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            model = model_file.load_cached(job.model_url, job.fingerprint, job.storage_options or None)
            engine = OIPEngine(model, layer, input_shape=job.input_shape, preprocess=job.preprocess,
                               memory_budget=budget)
            _ENGINES[key] = engine
        return engine


def _worker_budget() -> int | None:
    """Bytes a task's ascent may take: a share of this Dask worker's memory limit (None outside a worker or
    without a limit: the engine's default, half of the memory available)."""
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ImportError, ValueError, AttributeError):
        return None
    return int(BUDGET_FRACTION * limit) if limit else None


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _fault_point(store_url: str) -> None:
    """The test hook (see the module doc): exit this process once, between a task's data and its done mark."""
    if os.environ.get(FAULT_ENV) != "1" or store.is_url(store_url):
        return
    marker = os.path.join(store_url, FAULT_MARKER)
    try:
        os.rename(marker, f"{marker}.taken-by-{os.getpid()}")
    except OSError:
        return  # no marker, or another task claimed it first
    os._exit(1)
