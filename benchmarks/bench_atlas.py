"""The atlas on Dask (issue 20, item 6): overhead, scaling, a killed worker, resume, and whole atlases.

Work unit (a–d): every conv layer of the shipped ``mnist`` CNN (160 channels in blocks of 16: 10 tasks), seed 0,
the readable recipe at ``--steps`` steps. Printed, all measured in this run:

(a) overhead: the same tasks run one after another in one process (``worker.run_task``, the same climb and the same
    Zarr writes, TensorFlow at one thread as in a worker) ÷ through a cluster of one worker process with one
    thread (a given ``Client``; the cluster's start-up is printed apart). Target: cluster ≤ 1.10× in-process.
(b) scaling: throughput of 2 worker processes ÷ 1 (one thread each). Target ≥ 1.7× on 2 cores.
(c) fault: one worker process killed (SIGKILL) after the second task finished: the atlas completes, nothing is
    missing, and every OIP equals (a)'s undisturbed run (max |difference| printed).
(d) resume: a compute interrupted (KeyboardInterrupt) after half the tasks, then run again: the second run runs
    only the missing tasks.
(e) whole atlases of the shipped ``mnist`` and ``planted`` models: every layer with maps, 2 seeds, the readable
    recipe (``--whole-steps``, default the preset's 256): time and channels/s on a 2-worker cluster.

    .venv/bin/python benchmarks/bench_atlas.py [--steps 64] [--whole-steps 256] [--skip-whole]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 16


def make(path, model_name, steps, seeds=(0,), layers="conv", block=BLOCK):
    import oipwidgets as ow

    recipe = ow.Recipe.preset("readable") if steps is None else ow.Recipe.preset("readable").replace(steps=steps)
    return ow.Atlas.create(path, ow.load_default_model(model_name), layers=layers, recipe=recipe, seeds=seeds,
                           block=block)


def in_process(path: str) -> float:
    """Run every pending task of the atlas at ``path`` here, one after another; the wall seconds."""
    import oipwidgets as ow
    from oipwidgets.atlas.worker import run_task

    atlas = ow.Atlas.open(path)
    job, tasks = atlas._job(), atlas.tasks(pending=True)
    run_task(job, tasks[0])  # the same warm-up a worker pays once: model load and first trace, not timed
    t0 = time.perf_counter()
    for t in tasks[1:]:
        run_task(job, t)
    return time.perf_counter() - t0


def cluster(n: int):
    from distributed import Client

    from oipwidgets.atlas.cluster import local_cluster

    c = local_cluster(n)
    return c, Client(c, set_as_default=False)


def timed_compute(atlas, client, warm_first=True, **kw):
    """compute() with the first task run (and traced) on every worker first when ``warm_first``: seconds of the
    rest, as ``in_process`` times them."""
    tasks = atlas.tasks(pending=True)
    if warm_first:  # one task per worker warms it (model load, trace), as in_process's untimed first task
        from oipwidgets.atlas.worker import run_task

        job = atlas._job()
        workers = list(client.scheduler_info()["workers"])
        futures = [client.submit(run_task, job, t, workers=[w], pure=False, allow_other_workers=False)
                   for t, w in zip(tasks, workers)]
        client.gather(futures)
    t0 = time.perf_counter()
    report = atlas.compute(client, progress=False, **kw)
    return time.perf_counter() - t0, report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--whole-steps", type=int, default=None)
    ap.add_argument("--skip-whole", action="store_true")
    ap.add_argument("--in-process", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.in_process:  # the child of (a): TensorFlow at one thread, as in a worker
        print(f"{in_process(args.in_process):.3f}")
        return
    import oipwidgets as ow  # noqa: F401

    tmp = Path(tempfile.mkdtemp(prefix="bench-atlas-"))
    print(f"mnist, every conv layer (160 channels, blocks of {BLOCK}: 10 tasks), seed 0, readable recipe at "
          f"{args.steps} steps; 2 cores", flush=True)

    # (a) in-process, in a child with TensorFlow at one intra-op thread (as a worker has)
    base = make(tmp / "a-inprocess.zarr", "mnist", args.steps)
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--in-process", str(base.url)], env=env, capture_output=True,
                         text=True, check=True)
    t_inproc = float(out.stdout.strip().splitlines()[-1])
    t = time.perf_counter()
    c1, client1 = cluster(1)
    start1 = time.perf_counter() - t
    one = make(tmp / "a-cluster1.zarr", "mnist", args.steps)
    t_one, _ = timed_compute(one, client1)
    print(f"(a) overhead: in-process {t_inproc:.1f} s, cluster of 1 worker {t_one:.1f} s (+{start1:.1f} s to start "
          f"it) -> {t_one / t_inproc:.3f}x  [target <= 1.10]  {'PASS' if t_one <= 1.10 * t_inproc else 'FAIL'}",
          flush=True)
    client1.close()
    c1.close()

    # (b) 2 workers
    c2, client2 = cluster(2)
    two = make(tmp / "b-cluster2.zarr", "mnist", args.steps)
    t_two, _ = timed_compute(two, client2)
    ratio = t_one / t_two
    print(f"(b) scaling: 1 worker {t_one:.1f} s, 2 workers {t_two:.1f} s -> {ratio:.2f}x throughput  [target >= 1.7] "
          f"{'PASS' if ratio >= 1.7 else 'FAIL'}", flush=True)

    # (c) a worker killed after the second finished task
    fault = make(tmp / "c-fault.zarr", "mnist", args.steps)
    pids = list(client2.run(os.getpid).values())
    seen = []

    def kill_one(done):
        seen.append(done)
        if len(seen) == 2:
            victim = next((p for p in pids if p != done["pid"]), pids[0])
            os.kill(victim, signal.SIGKILL)

    t = time.perf_counter()
    report = fault.compute(client2, progress=False, on_task=kill_one)
    t_fault = time.perf_counter() - t
    diffs = [float(np.max(np.abs(fault.oips(layer) - base.oips(layer)))) for layer in base.layers]
    missing = report.channels_total - report.channels_done
    print(f"(c) fault: killed worker pid after task 2; completed in {t_fault:.1f} s, {report.tasks_run} tasks, "
          f"{missing} channels missing, max |OIP - undisturbed| = {max(diffs):.2e}  "
          f"{'PASS' if missing == 0 and max(diffs) <= 1e-5 else 'FAIL'}", flush=True)

    # (d) interrupted halfway, then resumed
    resume = make(tmp / "d-resume.zarr", "mnist", args.steps)
    total = len(resume.tasks(pending=True))
    count = []

    def interrupt(done):
        count.append(done)
        if len(count) == total // 2:
            raise KeyboardInterrupt

    try:
        resume.compute(client2, progress=False, on_task=interrupt)
    except KeyboardInterrupt:
        pass
    done_before = total - len(resume.tasks(pending=True))
    second = resume.compute(client2, progress=False)
    ok = second.tasks_run == total - done_before and second.channels_done == second.channels_total
    print(f"(d) resume: {total} tasks; interrupted with {done_before} done; the second compute ran "
          f"{second.tasks_run} (= {total} - {done_before}) and skipped {second.tasks_skipped}  "
          f"{'PASS' if ok else 'FAIL'}", flush=True)

    # (e) whole atlases
    if not args.skip_whole:
        for name in ("mnist", "planted"):
            whole = make(tmp / f"e-{name}.zarr", name, args.whole_steps, seeds=(0, 1), block=None)
            t = time.perf_counter()
            rep = whole.compute(client2, progress=False)
            dt = time.perf_counter() - t
            print(f"(e) whole atlas of {name}: {len(whole.layers)} layers, {rep.channels_total} channels x seeds, "
                  f"{rep.tasks_run} tasks, {dt:.1f} s, {rep.channels_total / dt:.2f} channels/s "
                  f"({whole.recipe.steps} steps each)", flush=True)
    client2.close()
    c2.close()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
