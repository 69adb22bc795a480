"""TensorFlow threading for the ascent: one intra-op thread per worker, one worker per core.

An OIP step on a 28×28 image is a chain of some hundred tiny kernels. Splitting each kernel over the cores (TF's
default) costs more in hand-offs than it gains: on a 2-core machine a single image runs about 3× faster with one
intra-op thread. A batch (all maps of a layer) uses the cores instead by splitting the batch into one part per core,
each run by its own Python worker thread (``AscentLoop`` does that; the images are independent).

``import oipwidgets`` calls ``configure_threads()``, which sets this up only while TensorFlow's runtime context is
not yet initialised (threading can only be set before the first op runs) and never fails:

* ``OIPWIDGETS_TF_THREADS=auto`` (default): intra-op threads 1, inter-op threads = workers = the usable cores
  (at most 8).
* ``OIPWIDGETS_TF_THREADS=N`` (an integer ≥ 1): intra-op threads N, workers = usable cores // N (at least 1).
* ``OIPWIDGETS_TF_THREADS=0`` or ``off``: leave TensorFlow's threading alone (its default: all cores per kernel);
  batches are then not split.

If TensorFlow already ran an op before ``oipwidgets`` was imported, its threading stays as it is and batches are
split only if it happens to use one intra-op thread. ``workers()`` tells how many parts a batch is split into.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["configure_threads", "workers", "usable_cores", "executor", "ENV_VAR"]

ENV_VAR = "OIPWIDGETS_TF_THREADS"
_MAX_WORKERS = 8

_lock = threading.Lock()
_state = {"configured": None, "workers": None, "executor": None}


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _context_initialized() -> bool:
    try:
        from tensorflow.python.eager import context

        return bool(context.context()._context_handle is not None)  # noqa: SLF001 - no public test exists
    except Exception:  # noqa: BLE001 - unknown TF internals: assume it is too late to change anything
        return True


def configure_threads(setting: str | int | None = None) -> dict:
    """Set TensorFlow's threading for the ascent (see the module doc); returns what is in force.

    ``setting``: "auto", an int ≥ 1 (intra-op threads) or 0/"off"; default: the ``OIPWIDGETS_TF_THREADS``
    environment variable, else "auto". Never raises: when TensorFlow is already initialised it changes nothing.
    Returns ``{"intra_op": int (0 = TF default), "inter_op": int, "workers": int, "configured": bool}``.
    """
    import tensorflow as tf

    raw = setting if setting is not None else os.environ.get(ENV_VAR, "auto")
    raw = str(raw).strip().lower()
    cores = usable_cores()
    with _lock:
        configured = False
        if raw not in ("0", "off", "none", "false", "") and not _context_initialized():
            try:
                intra = 1 if raw == "auto" else max(1, int(raw))
            except ValueError:
                intra = 1
            try:
                tf.config.threading.set_intra_op_parallelism_threads(intra)
                tf.config.threading.set_inter_op_parallelism_threads(max(2, min(_MAX_WORKERS, cores)))
                configured = True
            except (RuntimeError, ValueError):  # initialised meanwhile: leave it
                configured = False
        _state["configured"] = configured
        _state["workers"] = None  # recomputed from what is in force
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "workers": workers(),
        "configured": configured,
    }


def workers() -> int:
    """How many parts (and worker threads) a batch is split into: usable cores // intra-op threads, ≤ 8.

    1 (no split) while TensorFlow uses its default intra-op threading (0), which already spreads each kernel.
    """
    with _lock:
        if _state["workers"] is None:
            try:
                import tensorflow as tf

                intra = tf.config.threading.get_intra_op_parallelism_threads()
            except Exception:  # noqa: BLE001
                intra = 0
            _state["workers"] = 1 if intra <= 0 else max(1, min(_MAX_WORKERS, usable_cores() // intra))
        return _state["workers"]


def executor() -> ThreadPoolExecutor:
    """The shared pool of worker threads that run the parts of a split batch (created on first use)."""
    with _lock:
        if _state["executor"] is None:
            _state["executor"] = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="oipwidgets")
        return _state["executor"]
