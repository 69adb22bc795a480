"""Soak and peak-memory benchmark: nothing grows over many runs, and big batches stay within the memory budget.

Run: ``.venv/bin/python benchmarks/bench_soak.py [--quick] [--part soak|memory|all]`` (full: 15-25 minutes, most of
it the 224×224 memory cases; ``--quick``: fewer soak iterations and 128×128 only, about 4 minutes).

Soak (one process, the shipped MNIST CNN; runs of 200 steps, zoo runs of 50): (1) one ``OIPExplorer``, 500
``run(wait=True)``, the map and seed changed before every run and the layer every 50 runs; (2) one ``LayerZoo`` run
again 50 times; (3) 50 new ``LayerZoo``, each run once and ``close()``d; (4) 100 fresh ``OIPEngine(model, layer)``,
each one short run, then dropped. Per phase, measured after a warm-up (first traces, top-k examples, worker pool):
RSS (VmRSS after ``gc.collect()``), live widgets (ipywidgets 8's ``_instances``), threads, traced functions (the
tracing counts of the compiled steps cached on the model, ``model._oipwidgets_cache``), the distinct concrete
functions those loops keep, and (for information) the cache keys. TensorFlow's "retracing" warnings are counted
over the whole soak. Targets: RSS growth <= 20 MB, the other counts constant, 0 retracing warnings; the explorer's
``close()`` unregisters its widgets.

Memory (one child process per case, so that one case's peak does not hide the next one's): VGG16 with seeded
random weights (no download), ``OIPEngine(model, "block5_conv3").run_layer(range(n), steps=3)`` for n = 64, 256,
512 maps at 128×128×3 and 224×224×3 under the default memory budget (half the available memory). Reported: the
budget, the engine's estimate per image, images at once (planned and in progress reports), RSS before the run,
peak RSS (ru_maxrss), wall time. The parent polls the child's RSS and kills it above 16 GB (FAIL). Target: the
run completes and its peak above the RSS before it stays within the budget.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import oipwidgets as ow  # noqa: E402 - first: configures TensorFlow's threads before any op runs

import ipywidgets  # noqa: E402
import tensorflow as tf  # noqa: E402

RSS_GROWTH_MB = 20.0
KILL_BYTES = 16 * 2**30  # the parent kills a memory case whose RSS passes this
MEMORY_CASES = [(s, n) for s in (128, 224) for n in (64, 256, 512)]
MEMORY_LAYER = "block5_conv3"


# ------------------------------------------------------------------ measurements
def proc_kb(field: str, pid: int | str = "self") -> int:
    """A ``kB`` field (VmRSS, VmHWM) of /proc/<pid>/status; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def widget_count() -> int:
    """Live ipywidgets (``ipywidgets.widgets.widget._instances`` in ipywidgets 8; ``Widget.widgets`` is deprecated)."""
    instances = getattr(ipywidgets.widgets.widget, "_instances", None)
    return len(instances if instances is not None else ipywidgets.Widget.widgets)


def traced(model) -> tuple[int, int, int]:
    """(traces, concrete functions, cache keys) of the compiled loops cached on ``model`` (``shared`` in engine.py):
    the tracing counts of their tf.functions; the distinct concrete functions the loops keep; and the cache's
    entries plus the loops' per-batch-size keys (several keys share one relaxed-shape concrete function, and the
    batch shrinks as maps stop, so the keys may grow up to one per part size: reported, not judged)."""
    cache = model.__dict__.get("_oipwidgets_cache", {})
    traces, concrete, keys = 0, set(), len(cache)
    for obj in list(cache.values()):
        for name in ("_step", "_steps"):
            fn = getattr(obj, name, None)
            if hasattr(fn, "experimental_get_tracing_count"):
                traces += fn.experimental_get_tracing_count()
        kept = getattr(obj, "_concrete", {})
        concrete |= {id(f) for f in kept.values()}
        keys += len(kept)
    return traces, len(concrete), keys


def measure(model) -> dict:
    gc.collect()
    traces, concrete, keys = traced(model)
    return {"RSS MB": proc_kb("VmRSS") / 1024, "widgets": widget_count(), "threads": threading.active_count(),
            "traced fns": traces, "concrete fns": concrete, "cache keys": keys}


class RetraceCounter(logging.Handler):
    """Counts TensorFlow's "... triggered tf.function retracing" warnings (tf.get_logger())."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        if "retracing" in record.getMessage().lower():
            self.count += 1


# ------------------------------------------------------------------ soak
def soak_phase(model, name: str, warmup: int, iters: int, step) -> tuple:
    """``step(i)`` for i < warmup (not measured), then measured from ``warmup`` to ``warmup + iters``."""
    for i in range(warmup):
        step(i)
    before = measure(model)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + iters):
        step(i)
    return name, iters, before, measure(model), time.perf_counter() - t0


def run_soak(args) -> list[tuple]:
    model = ow.load_default_model("mnist")
    rows = []

    ex = ow.OIPExplorer(model, steps=args.steps)
    layers = list(ex._infos)  # Conv2D_1..3 (maps) and the dense layers (units)
    every = 50

    def explore(i):
        # warm-up: one run on each layer first, so every layer's first trace and top-k are done before measuring
        layer = layers[i % len(layers)] if i < len(layers) else layers[(i // every) % len(layers)]
        if ex.layer != layer:
            ex.layer = layer
        ex.map_index = (7 * i + 1) % ex._infos[layer].size
        ex.seed = i
        r = ex.run(wait=True)
        assert r is not None and r.steps > 0, (i, r and r.status)

    rows.append(soak_phase(model, "explorer runs", len(layers) + 5, args.explorer, explore))
    widgets_with_explorer = widget_count()
    ex.close()
    rows.append(("explorer close()", 1, {"widgets": widgets_with_explorer}, {"widgets": widget_count()}, 0.0))
    del ex

    zoo = ow.LayerZoo(model, "Conv2D_3", steps=args.zoo_steps)

    def rerun(i):
        zoo.seed = i
        assert len(zoo.run(wait=True)) == 64

    rows.append(soak_phase(model, "zoo re-runs", 3, args.zoos, rerun))
    zoo.close()
    del zoo

    def fresh_zoo(i):
        z = ow.LayerZoo(model, "Conv2D_3", steps=args.zoo_steps, seed=i)
        assert len(z.run(wait=True)) == 64
        z.close()

    rows.append(soak_phase(model, "new zoo + close", 3, args.zoos, fresh_zoo))

    def fresh_engine(i):
        e = ow.OIPEngine(model, "Conv2D_3" if i % 2 else "Conv2D_2")
        assert e.run(i % 32, steps=args.steps, seed=i).steps > 0

    rows.append(soak_phase(model, "fresh engines", 4, args.engines, fresh_engine))
    return rows


def print_soak(rows, retraces: int) -> bool:
    print(f"\n{'phase':18s} {'iters':>5s} {'time s':>7s}  {'metric':14s} {'before':>9s} {'after':>9s} "
          f"{'growth':>8s}  {'target':12s} verdict")
    ok_all = True
    for name, iters, before, after, seconds in rows:
        first = True
        for metric in before:
            b, a = before[metric], after[metric]
            growth = a - b
            if metric == "RSS MB":
                ok, target, cells = growth <= RSS_GROWTH_MB, f"<= {RSS_GROWTH_MB:g} MB", (f"{b:9.1f}", f"{a:9.1f}",
                                                                                        f"{growth:+8.1f}")
            elif metric == "cache keys":
                ok, target, cells = True, "info", (f"{b:9d}", f"{a:9d}", f"{growth:+8d}")
            elif name == "explorer close()":
                ok, target, cells = a < b, "drops", (f"{b:9d}", f"{a:9d}", f"{growth:+8d}")
            else:
                ok, target, cells = growth == 0, "constant", (f"{b:9d}", f"{a:9d}", f"{growth:+8d}")
            ok_all &= ok
            head = f"{name:18s} {iters:5d} {seconds:7.1f}" if first else " " * 32
            verdict = "-" if target == "info" else "PASS" if ok else "FAIL"
            print(f"{head}  {metric:14s} {cells[0]} {cells[1]} {cells[2]}  {target:12s} {verdict}")
            first = False
    ok = retraces == 0
    print(f"{'whole soak':18s} {'':5s} {'':7s}  {'retrace warns':14s} {'':9s} {retraces:9d} {'':8s}  "
          f"{'0':12s} {'PASS' if ok else 'FAIL'}")
    return ok_all and ok


# ------------------------------------------------------------------ peak memory, one child per case
def one_case(size: int, n: int, steps: int) -> dict:
    """In the child: VGG16 (random seeded weights) at size×size×3, run_layer on the first n maps of block5_conv3."""
    import keras

    from oipwidgets.engine import memory

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    engine = ow.OIPEngine(model, MEMORY_LAYER)
    budget = memory.budget_bytes(engine.memory_budget)
    planned = engine.images_at_once()
    seen = set()
    gc.collect()
    rss0 = proc_kb("VmRSS") * 1024
    t0 = time.perf_counter()
    out = engine.run_layer(list(range(n)), steps=steps, seed=1, callback=lambda p: seen.add(p.at_once))
    wall = time.perf_counter() - t0
    return {"budget": budget, "per_image": engine.image_bytes,
            "planned": planned, "seen": sorted(seen), "rss0": rss0, "wall": wall,
            "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "hwm": proc_kb("VmHWM") * 1024,
            "statuses": {s: out.statuses.count(s) for s in set(out.statuses)}, "error": repr(out.error)}


def spawn_case(size: int, n: int, steps: int, timeout: float) -> dict:
    """Run one case in a child process; a watchdog thread kills it above KILL_BYTES of RSS."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one-case", f"{size},{n},{steps}"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    watch = {"max": 0, "killed": False}

    def watchdog():
        while child.poll() is None:
            rss = proc_kb("VmRSS", child.pid) * 1024
            watch["max"] = max(watch["max"], rss)
            if rss > KILL_BYTES:
                watch["killed"] = True
                child.kill()
                return
            time.sleep(0.1)

    dog = threading.Thread(target=watchdog, daemon=True)
    dog.start()
    t0 = time.perf_counter()
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        stdout, stderr = child.communicate()
        return {"fail": f"timed out after {timeout:.0f} s", "watch": watch["max"]}
    dog.join()
    if watch["killed"] or child.returncode != 0:
        why = "killed above 16 GB RSS" if watch["killed"] else (stderr.strip().splitlines() or ["?"])[-1]
        return {"fail": why, "watch": watch["max"], "total": time.perf_counter() - t0}
    return dict(json.loads(stdout.strip().splitlines()[-1]), watch=watch["max"], total=time.perf_counter() - t0)


def run_memory(args) -> bool:
    from oipwidgets.engine.memory import format_bytes as fb

    cases = [(s, n) for s, n in MEMORY_CASES if not args.quick or s == 128]
    print(f"\npeak memory: VGG16 (random weights) {MEMORY_LAYER}, run_layer(range(n), steps={args.mem_steps}), "
          f"default budget; one child process per case, killed above {fb(KILL_BYTES)}")
    print(f"{'input':9s} {'maps':>4s} {'budget':>8s} {'per img':>8s} {'at once':>8s} {'seen':>9s} {'RSS0':>8s} "
          f"{'peak':>8s} {'peak-RSS0':>9s} {'wall s':>7s} {'child s':>7s}  statuses / verdict")
    ok_all = True
    for size, n in cases:
        r = spawn_case(size, n, args.mem_steps, timeout=args.timeout)
        label = f"{size}x{size}x3"
        if "fail" in r:
            ok_all = False
            print(f"{label:9s} {n:4d} {'':45s} {fb(r['watch']):>8s}  FAIL: {r['fail']} (peak: parent's polling)")
            continue
        used = r["peak"] - r["rss0"]
        ok = used <= r["budget"] and r["error"] == "None"
        ok_all &= ok
        seen = "/".join(map(str, r["seen"]))
        print(f"{label:9s} {n:4d} {fb(r['budget']):>8s} {fb(r['per_image']):>8s} {r['planned']:8d} {seen:>9s} "
              f"{fb(r['rss0']):>8s} {fb(r['peak']):>8s} {fb(used):>9s} {r['wall']:7.1f} {r['total']:7.1f}  "
              f"{r['statuses']} {'PASS' if ok else 'FAIL'}")
    return ok_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations; memory cases at 128x128 only")
    parser.add_argument("--part", choices=("soak", "memory", "all"), default="all")
    parser.add_argument("--steps", type=int, default=200, help="steps of each explorer and engine run")
    parser.add_argument("--zoo-steps", type=int, default=50, help="steps of each zoo run")
    parser.add_argument("--mem-steps", type=int, default=3, help="steps of each memory case")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per memory case")
    parser.add_argument("--one-case", help=argparse.SUPPRESS)  # the child of a memory case: "size,n,steps"
    args = parser.parse_args(argv)
    if args.one_case:
        print(json.dumps(one_case(*map(int, args.one_case.split(",")))))
        return 0
    args.explorer, args.zoos, args.engines = (100, 10, 20) if args.quick else (500, 50, 100)
    t0 = time.perf_counter()
    from oipwidgets.engine.memory import available_bytes, format_bytes

    print(f"oipwidgets {ow.__version__}, TensorFlow {tf.__version__}, ipywidgets {ipywidgets.__version__}, "
          f"{os.cpu_count()} cores, {format_bytes(available_bytes())} available")
    ok = True
    if args.part in ("soak", "all"):
        counter = RetraceCounter()
        tf.get_logger().addHandler(counter)
        try:
            rows = run_soak(args)
        finally:
            tf.get_logger().removeHandler(counter)
        ok &= print_soak(rows, counter.count)
    if args.part in ("memory", "all"):
        ok &= run_memory(args)
    print(f"\noverall: {'PASS' if ok else 'FAIL'}; total benchmark time {time.perf_counter() - t0:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
