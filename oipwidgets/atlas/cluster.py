"""Where the atlas's tasks run: a Dask client the user gives, a scheduler address, or a local cluster made for one
``compute()`` and shut down after it.

The local cluster: one worker process per core, one thread each, and TensorFlow in each worker set to one intra-op
and one inter-op thread through the workers' environment (``WORKER_ENV``, the Nanny's ``env=``), so the processes
share the cores instead of fighting over them. The scheduler (and its dashboard) runs in the calling process, as
with ``distributed.LocalCluster``; the workers are separate programs (``python -m dask spec``, each a Nanny that
restarts its worker process when it dies), not children forked or spawned from the calling process: a spawned
child re-runs the caller's ``__main__`` script (a script without an ``if __name__ == "__main__":`` guard then
starts clusters recursively and fails), and LocalCluster's Nanny writes its thread settings (``OMP_NUM_THREADS``
and others) into the calling process's environment. Nothing of the calling process changes here: the client is
not made Dask's default scheduler, and the log level that the cluster lowers while it runs is put back (after the
cluster has shut down, so its last comms closing print nothing).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

__all__ = ["WORKER_ENV", "local_cluster", "connected", "worker_memory_limits"]

#: the environment of the local cluster's workers: TensorFlow's thread pools of one thread each, and one core for
#: the engine's split of a batch (``engine.runtime.usable_cores``)
WORKER_ENV = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OIPWIDGETS_CORES": "1"}

log = logging.getLogger(__name__)


def local_cluster(n_workers: int | None = None, env: dict | None = None):
    """A cluster on this machine: ``n_workers`` (default: the usable cores) worker processes with one thread and
    an equal share of the memory each, ``WORKER_ENV`` (and ``env``) in their environment, the scheduler and its
    dashboard here on free ports. Close it with ``cluster.close()``."""
    from distributed import Scheduler, SpecCluster
    from distributed.deploy.subprocess import SubprocessWorker
    from distributed.worker_memory import parse_memory_limit

    from ..engine.runtime import usable_cores

    n = int(n_workers or usable_cores())
    worker = {"cls": SubprocessWorker,
              "options": {"worker_class": "distributed.Nanny",
                          "worker_kwargs": {"nthreads": 1, "host": "127.0.0.1",
                                            "memory_limit": parse_memory_limit("auto", 1, n, logger=log),
                                            "env": {**WORKER_ENV, **(env or {})},
                                            "silence_logs": logging.WARNING}}}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "port": 0, "dashboard_address": ":0"}}
    return SpecCluster(workers={i: worker for i in range(n)}, scheduler=scheduler, worker=worker,
                       silence_logs=logging.WARNING, name="oipwidgets-atlas")


@contextmanager
def connected(client=None, *, n_workers: int | None = None):
    """A ``distributed.Client`` for the block: ``client`` itself when it is one (left open), a new one to a
    scheduler address ("tcp://scheduler:8786", closed afterwards), or for None a new ``local_cluster`` that is
    shut down afterwards (also after an error or KeyboardInterrupt)."""
    from contextlib import ExitStack

    from distributed import Client
    from distributed.utils import silence_logging_cmgr

    cluster = None
    quiet = ExitStack()
    if client is None:
        # the cluster lowers Dask's log handlers to warnings while it runs, but puts them back before its comms
        # have all closed ("Batched Comm Closed" at INFO on stderr, in a notebook's cell); they stay lowered here
        # until it is shut down
        quiet.enter_context(silence_logging_cmgr(logging.WARNING))
        quiet.enter_context(silence_logging_cmgr(logging.WARNING, root="bokeh"))
        cluster = local_cluster(n_workers)
        try:
            own = Client(cluster, set_as_default=False)
            own.wait_for_workers(len(cluster.workers), timeout=120)
        except BaseException:
            cluster.close()
            quiet.close()
            raise
    elif isinstance(client, str):
        own = Client(client, set_as_default=False)
    elif isinstance(client, Client):
        own = None
    else:
        raise TypeError(f"client must be a distributed.Client, a scheduler address such as 'tcp://scheduler:8786', "
                        f"or None for a local cluster; got {type(client).__name__}")
    try:
        yield own if own is not None else client
    finally:
        try:
            if own is not None:
                own.close()
            if cluster is not None:
                cluster.close()
        finally:
            quiet.close()


def worker_memory_limits(client) -> list[int]:
    """The memory limit of each worker the scheduler knows, in bytes (0: no limit)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return [int(w.get("memory_limit") or 0) for w in workers.values()]
