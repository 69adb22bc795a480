"""How the ascent uses the machine's cores (and a GPU), without changing TensorFlow for the rest of the process.

``import oipwidgets`` leaves TensorFlow's threading as it is: the user's own training and inference in the same
notebook keep their speed (``benchmarks/bench_side_effect.py`` measures it). The engine instead picks, for each
batch, how many parts it splits the batch into (``workers``), each run by its own Python thread at the same time:

* a GPU is present: one part (the device runs the batch; the memory budget sizes batches by the GPU's memory,
  ``memory.available_bytes``);
* TensorFlow's default threading (every kernel spread over all cores): images up to SMALL_IMAGE values
  (64×64×3) in a batch of two or more are split over the cores (small kernels gain little from spreading, two
  streams of them keep both cores busy: 1.1× faster for the 64 maps of the article's layer on 2 cores); one image,
  or large images, stay in one part and get all cores on each kernel;
* TensorFlow set to N intra-op threads (by the user, or by ``configure_threads``): cores // N parts.

The fastest setting for many tiny images (28×28) is one intra-op thread per core: 2.2× faster for one map and 1.4×
for a layer of the article's CNN on 2 cores. It is process-wide, so it is opt-in: call
``oipwidgets.configure_threads()`` before anything else runs a TensorFlow op, or set ``OIPWIDGETS_TF_THREADS``:

* ``OIPWIDGETS_TF_THREADS=auto`` (or ``1``): intra-op threads 1, inter-op threads = the usable cores (≤ 8);
* ``OIPWIDGETS_TF_THREADS=N`` (an integer ≥ 1): intra-op threads N;
* unset, ``0`` or ``off`` (default): TensorFlow's threading is not touched.

``import oipwidgets`` applies the variable only when it is set (the user asked for it). TensorFlow fixes its
threading when it runs its first op; after that, ``configure_threads`` changes nothing and says so.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["configure_threads", "configure_from_env", "workers", "usable_cores", "executor", "gpu_present",
           "ENV_VAR", "SMALL_IMAGE"]

ENV_VAR = "OIPWIDGETS_TF_THREADS"
SMALL_IMAGE = 64 * 64 * 3  # values of an image up to which a batch is split over the cores under TF's threading
_MAX_WORKERS = 8

_lock = threading.Lock()
_state = {"configured": None, "workers": None, "executor": None, "gpu": None}


#: a process that shares the machine with others (an atlas worker: one per core) says how many cores are its own
CORES_VAR = "OIPWIDGETS_CORES"


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS tells it, at most ``$OIPWIDGETS_CORES`` when
    that is set (the atlas's worker processes get 1, so one process does not split its batches over the cores the
    other workers use)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = max(1, os.cpu_count() or 1)
    share = os.environ.get(CORES_VAR, "").strip()
    return min(cores, int(share)) if share.isdigit() and int(share) >= 1 else cores


def _context_initialized() -> bool:
    try:
        from tensorflow.python.eager import context

        return bool(context.context()._context_handle is not None)  # noqa: SLF001 - no public test exists
    except Exception:  # noqa: BLE001 - unknown TF internals: assume it is too late to change anything
        return True


def configure_threads(setting: str | int | None = None) -> dict:
    """Opt-in: set TensorFlow's threading, for the whole process, to one intra-op thread per core (see the module
    doc); returns what is in force.

    ``setting``: "auto", an int ≥ 1 (intra-op threads) or 0/"off"; default: the ``OIPWIDGETS_TF_THREADS``
    environment variable, else "auto". Never raises: when TensorFlow is already initialised it changes nothing.
    Returns ``{"intra_op": int (0 = TF default), "inter_op": int, "workers": int, "configured": bool}``.
    """
    import tensorflow as tf

    raw = setting if setting is not None else os.environ.get(ENV_VAR, "auto")  # called: the caller asked for it
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
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "workers": workers(2, 1),  # for a batch of small images
        "configured": configured,
    }


def configure_from_env() -> dict | None:
    """``configure_threads()`` if ``OIPWIDGETS_TF_THREADS`` is set (what ``import oipwidgets`` does), else nothing."""
    if os.environ.get(ENV_VAR, "").strip() == "":
        return None
    return configure_threads()


def gpu_present() -> bool:
    """Whether TensorFlow sees a GPU (looked up once)."""
    with _lock:
        if _state.get("gpu") is None:
            try:
                import tensorflow as tf

                _state["gpu"] = bool(tf.config.list_logical_devices("GPU"))
            except Exception:  # noqa: BLE001 - no TensorFlow device list: plan for the CPU
                _state["gpu"] = False
        return _state["gpu"]


def _intra_op() -> int:
    try:
        import tensorflow as tf

        return int(tf.config.threading.get_intra_op_parallelism_threads())
    except Exception:  # noqa: BLE001
        return 0


def workers(batch: int = 2, image_values: int = 0) -> int:
    """How many parts (and worker threads) a batch of ``batch`` images of ``image_values`` values each (H·W·C) is
    split into, from the work and the device (see the module doc): 1 on a GPU, for one image, or for large images
    under TensorFlow's default threading; else the usable cores (≤ 8) // intra-op threads."""
    if batch < 2 or gpu_present():
        return 1
    intra = _intra_op()
    if intra <= 0:  # TensorFlow's default: all cores on every kernel
        return max(1, min(_MAX_WORKERS, usable_cores())) if 0 < image_values <= SMALL_IMAGE else 1
    return max(1, min(_MAX_WORKERS, usable_cores() // intra))


def executor() -> ThreadPoolExecutor:
    """The shared pool of worker threads that run the parts of a split batch (created on first use)."""
    with _lock:
        if _state["executor"] is None:
            _state["executor"] = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="oipwidgets")
        return _state["executor"]
