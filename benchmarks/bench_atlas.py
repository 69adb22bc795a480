"""The atlas on Dask (issue 20, item 6): overhead, scaling, a killed worker, resume, and whole atlases.

Work unit (a–d): every layer with maps of the shipped ``mnist`` CNN (256 channels in blocks of 16), seeds 0 and 1 (32 tasks),
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

``--view`` measures browsing and sharing instead (issue 21; ``view_figures``): opening a 25,000-unit atlas in the
viewer, a page, the bytes a page sends to the browser, the dataset-example pass against ``model.predict``, and a
static-site export.

    .venv/bin/python benchmarks/bench_atlas.py --view
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


def in_process(path: str) -> tuple[float, int]:
    """Run every pending task of the atlas at ``path`` here, one after another, after one untimed task of each layer
    (what a worker pays once per layer: the model's load and each layer's first trace); (seconds, channels timed)."""
    import oipwidgets as ow
    from oipwidgets.atlas.worker import run_task

    atlas = ow.Atlas.open(path)
    job, tasks = atlas._job(), atlas.tasks(pending=True)
    firsts = {t.layer: t for t in reversed(tasks)}
    for t in firsts.values():
        run_task(job, t)
    rest = [t for t in tasks if t not in firsts.values()]
    t0 = time.perf_counter()
    for t in rest:
        run_task(job, t)
    return time.perf_counter() - t0, sum(t.channels for t in rest)


def cluster(n: int):
    from distributed import Client

    from oipwidgets.atlas.cluster import local_cluster

    c = local_cluster(n)
    client = Client(c, set_as_default=False)
    client.wait_for_workers(n)  # the warm-up below needs every worker registered
    return c, client


def timed_compute(atlas, client, **kw):
    """compute() after one task of every layer has run on every worker (as ``in_process`` warms itself): (seconds of
    the rest, channels timed, report)."""
    from oipwidgets.atlas.worker import run_task

    tasks, job = atlas.tasks(pending=True), atlas._job()
    workers = list(client.scheduler_info()["workers"])
    layers = list(dict.fromkeys(t.layer for t in tasks))
    futures = []
    for i, w in enumerate(workers):
        for layer in layers:
            t = [x for x in tasks if x.layer == layer][i]
            futures.append(client.submit(run_task, job, t, workers=[w], pure=False, allow_other_workers=False))
    client.gather(futures)
    rest = atlas.tasks(pending=True)
    t0 = time.perf_counter()
    report = atlas.compute(client, progress=False, **kw)
    return time.perf_counter() - t0, sum(t.channels for t in rest), report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--whole-steps", type=int, default=None)
    ap.add_argument("--skip-whole", action="store_true")
    ap.add_argument("--in-process", help=argparse.SUPPRESS)
    ap.add_argument("--view", action="store_true", help="the viewer, site and dataset-example figures instead")
    args = ap.parse_args(argv)
    if args.view:
        view_figures()
        return
    if args.in_process:  # the child of (a): the environment of a worker (TensorFlow at one thread, one core)
        seconds, channels = in_process(args.in_process)
        print(f"{seconds:.3f} {channels}")
        return
    import oipwidgets as ow  # noqa: F401

    tmp = Path(tempfile.mkdtemp(prefix="bench-atlas-"))
    # (a) in-process, in a child with TensorFlow at one intra-op thread (as a worker has)
    base = make(tmp / "a-inprocess.zarr", "mnist", args.steps, seeds=(0, 1))
    n_tasks, n_channels = len(base.tasks()), sum(p.channels for p in base.plans)
    print(f"mnist, every layer with maps ({', '.join(base.layers)}: {n_channels} channels in blocks of {BLOCK}: "
          f"{n_tasks} tasks), seeds 0 and 1, readable recipe at {args.steps} steps; {os.cpu_count()} cores; rates "
          "after one warm-up task of each layer on each worker", flush=True)
    from oipwidgets.atlas.cluster import WORKER_ENV

    env = {**os.environ, **WORKER_ENV}
    out = subprocess.run([sys.executable, __file__, "--in-process", str(base.url)], env=env, capture_output=True,
                         text=True, check=True)
    t_inproc, ch_inproc = (f(v) for f, v in zip((float, int), out.stdout.strip().splitlines()[-1].split()))
    rate_inproc = ch_inproc / t_inproc
    t = time.perf_counter()
    c1, client1 = cluster(1)
    start1 = time.perf_counter() - t
    one = make(tmp / "a-cluster1.zarr", "mnist", args.steps, seeds=(0, 1))
    t_one, ch_one, _ = timed_compute(one, client1)
    rate_one = ch_one / t_one
    print(f"(a) overhead: in-process {rate_inproc:.1f} channels/s ({ch_inproc} in {t_inproc:.1f} s), cluster of 1 "
          f"worker {rate_one:.1f} channels/s ({ch_one} in {t_one:.1f} s; +{start1:.1f} s to start it) -> "
          f"{rate_inproc / rate_one:.3f}x the time  [target <= 1.10]  "
          f"{'PASS' if rate_inproc / rate_one <= 1.10 else 'FAIL'}", flush=True)
    client1.close()
    c1.close()

    # (b) 2 workers
    c2, client2 = cluster(2)
    two = make(tmp / "b-cluster2.zarr", "mnist", args.steps, seeds=(0, 1))
    t_two, ch_two, _ = timed_compute(two, client2)
    ratio = (ch_two / t_two) / rate_one
    print(f"(b) scaling: 1 worker {rate_one:.1f} channels/s, 2 workers {ch_two / t_two:.1f} channels/s ({ch_two} in "
          f"{t_two:.1f} s) -> {ratio:.2f}x throughput  [target >= 1.7] {'PASS' if ratio >= 1.7 else 'FAIL'}",
          flush=True)

    # (c) a worker killed after the second finished task
    fault = make(tmp / "c-fault.zarr", "mnist", args.steps, seeds=(0, 1))
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


# ----------------------------------------------------------------- browsing and sharing (issue 21): --view
def synthetic_store(path, layers: int, channels: int, image=(8, 8, 3), block: int = 64, value_range=True):
    """An atlas store written directly (no model, no climbing): ``layers`` × ``channels`` units of random ``image``
    OIPs, every task done (a quarter of the units dead)."""
    import oipwidgets as ow
    from oipwidgets.atlas import store
    from oipwidgets.atlas.plan import LayerPlan

    rng = np.random.default_rng(0)
    root = store.create_root(str(path), {
        "recipe": ow.Recipe.preset("readable").to_dict(), "recipe_name": "readable",
        "preprocess": {"preset": "unit" if value_range else "standardize"}, "input_shape": list(image),
        "value_range": [0.0, 1.0] if value_range else None, "seeds": [0], "layers": [], "snapshots": store.SNAPSHOTS,
        "model": {"name": "synthetic", "fingerprint": "0" * 16, "file": None, "input_shape": None}})
    plans = []
    for i in range(layers):
        plan = LayerPlan(name=f"block{i}/conv", group=f"layers/block{i}__conv", kind="maps", channels=channels,
                         shape=(4, 4, channels), block=block, image_bytes=1000)
        group = store.add_layer(root, plan, 1, image)
        group["oip"][:] = rng.random((channels, 1, *image), np.float32)
        group["objective"][:] = rng.normal(size=(channels, 1))
        group["status"][:] = rng.choice([1, 1, 1, 2], size=(channels, 1)).astype(np.int8)
        group["done"][:] = 1
        plans.append(plan.to_dict())
    root.attrs.update({"layers": plans})
    return ow.Atlas.open(path)


class _Sent:
    """Counts what widgets send to the browser (``Widget._send``: the JSON message and its binary buffers)."""

    def __init__(self):
        import ipywidgets

        self.bytes = self.messages = 0
        self._widget, self._real = ipywidgets.Widget, ipywidgets.Widget._send
        sent = self

        def counting(widget, msg, buffers=None):
            import json

            sent.messages += 1
            sent.bytes += len(json.dumps(msg, default=str)) + sum(memoryview(b).nbytes for b in buffers or ())
            return sent._real(widget, msg, buffers)

        self._widget._send = counting

    def take(self) -> tuple[int, int]:
        out = (self.bytes, self.messages)
        self.bytes = self.messages = 0
        return out

    def close(self) -> None:
        self._widget._send = self._real


def _state_bytes(widget) -> int:
    """JSON and binary bytes of the state of ``widget`` and every widget it holds: what the browser gets when it
    is displayed."""
    import json

    import ipywidgets
    from ipywidgets.widgets.widget import _remove_buffers

    seen, todo, total = set(), [widget], 0
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        state, _, buffers = _remove_buffers(w.get_state())
        total += len(json.dumps(state, default=str)) + sum(memoryview(b).nbytes for b in buffers)
        for name in w.keys:
            value = getattr(w, name, None)
            items = value.values() if isinstance(value, dict) else \
                value if isinstance(value, (list, tuple)) else [value]
            todo += [v for v in items if isinstance(v, ipywidgets.Widget)]
    return total


def view_figures() -> None:
    """Issue 21's figures, printed: the viewer on a 25,000-unit atlas (open, first page, a page turn, sorting by
    objective, bytes per page), a 28×28 grey atlas's bytes per page, the dataset-example pass against
    ``model.predict`` over the same images, and a static-site export."""
    import statistics

    import oipwidgets as ow
    from oipwidgets.widgets.atlas_viewer import AtlasViewer  # imported before timing: zarr, bqplot

    tmp = Path(tempfile.mkdtemp(prefix="bench-atlas-view-"))
    t = time.perf_counter()
    big = synthetic_store(tmp / "big.atlas.zarr", layers=10, channels=2500)
    print(f"store of 25,000 units (10 layers x 2,500, 8x8 RGB OIPs, blocks of 64) written in "
          f"{time.perf_counter() - t:.1f} s", flush=True)

    sent = _Sent()
    try:
        t = time.perf_counter()
        atlas = ow.Atlas.open(big.url)
        t_open = time.perf_counter() - t
        t = time.perf_counter()
        viewer = AtlasViewer(atlas)
        t_first = time.perf_counter() - t
        shown = _state_bytes(viewer)
        sent.take()
        turns = []
        for _ in range(10):
            t = time.perf_counter()
            viewer.turn(+1)
            turns.append(time.perf_counter() - t)
        turn_bytes, turn_msgs = sent.take()
        png = viewer.page_png_bytes()
        t = time.perf_counter()
        viewer.sort = "objective"
        t_sort = time.perf_counter() - t
        sent.take()
        t = time.perf_counter()
        viewer.go_to("block9/conv:2499")
        t_jump = time.perf_counter() - t
        sent.take()
        t = time.perf_counter()
        viewer.selected = 7
        t_unit = time.perf_counter() - t
        unit_bytes = _state_bytes(viewer.panel) + sent.take()[0]  # its new widgets' state, and the updates
        viewer.close()
        total = t_open + t_first
        print(f"viewer, 25,000 units: Atlas.open {t_open * 1000:.0f} ms, AtlasViewer (widgets + first page) "
              f"{t_first * 1000:.0f} ms -> {total * 1000:.0f} ms  [target < 1 s]  {'PASS' if total < 1 else 'FAIL'}")
        print(f"  page turn (32 tiles): median {statistics.median(turns) * 1000:.0f} ms; sort by objective "
              f"(reads the layer's 2,500 objectives) {t_sort * 1000:.0f} ms; search 'block9/conv:2499' "
              f"{t_jump * 1000:.0f} ms; a unit's panel {t_unit * 1000:.0f} ms")
        print(f"  bytes to the browser: first display {shown / 1e3:.1f} kB (state of every widget, PNGs included); "
              f"a page turn {turn_bytes / 10 / 1e3:.1f} kB in {turn_msgs / 10:.0f} messages (its 32 PNGs: "
              f"{png / 1e3:.1f} kB); a unit's panel (first shown) {unit_bytes / 1e3:.1f} kB", flush=True)

        grey = synthetic_store(tmp / "grey.atlas.zarr", layers=2, channels=64, image=(28, 28, 1), value_range=False)
        viewer = AtlasViewer(grey)
        shown = _state_bytes(viewer)
        sent.take()
        viewer.turn(+1)
        turn_bytes, turn_msgs = sent.take()
        print(f"  28x28 grey OIPs (random: a PNG's worst case): first display {shown / 1e3:.1f} kB, a page turn "
              f"{turn_bytes / 1e3:.1f} kB in {turn_msgs} messages (its 32 PNGs: {viewer.page_png_bytes() / 1e3:.1f} "
              f"kB)", flush=True)
        viewer.close()
    finally:
        sent.close()

    # the dataset-example pass against model.predict over the same images
    from oipwidgets.models.preprocessing import standardize

    model = ow.load_default_model("mnist")
    digits = ow.datasets.samples("mnist")[0]
    rng = np.random.default_rng(0)
    images = np.clip(np.concatenate([digits] * 200).astype(np.int16) + rng.integers(-30, 31, (20000, 28, 28)),
                     0, 255).astype(np.uint8)
    mnist = ow.Atlas.create(tmp / "mnist.atlas.zarr", model, layers="conv", recipe="readable")
    mnist.add_examples(images[:512], k=9, progress=False)  # warm-up: the trace
    passes, predicts = [], []
    for _ in range(3):
        t = time.perf_counter()
        report = mnist.add_examples(images, k=9, progress=False)
        passes.append(time.perf_counter() - t)
        x = standardize(images[..., None])
        model.predict(x[:512], batch_size=256, verbose=0)
        t = time.perf_counter()
        model.predict(x, batch_size=256, verbose=0)
        predicts.append(time.perf_counter() - t)
    t_pass, t_predict = min(passes), min(predicts)
    ratio = t_predict / t_pass
    print(f"dataset examples, mnist, every conv layer ({len(mnist.layers)} layers, {report.units} units), k=9, "
          f"20,000 images: {len(images) / t_pass:.0f} images/s (batches of {report.batch_size}; standardising, "
          f"thumbnails, top-k and the store included) vs model.predict on the standardised images "
          f"{len(images) / t_predict:.0f} images/s -> {ratio:.2f}x  [target >= 0.8]  "
          f"{'PASS' if ratio >= 0.8 else 'FAIL'}", flush=True)

    t = time.perf_counter()
    site = big.export_site(tmp / "site")
    t_site = time.perf_counter() - t
    t = time.perf_counter()
    again = big.export_site(tmp / "site")
    print(f"static site of the 25,000-unit atlas: {site.pages} pages, {site.pictures} PNGs in {t_site:.1f} s; "
          f"exported again (nothing new) in {time.perf_counter() - t:.1f} s ({again.pages} pages rewritten)",
          flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
