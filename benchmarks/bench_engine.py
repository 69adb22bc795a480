"""Benchmark of OIPEngine against the article's eager loop and against the machine's arithmetic floor.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--quick] [--model mnist|vgg128]`` (one process; about a minute
for mnist, a few for vgg128; ``--quick`` less).

``--model vgg128``: a 128×128×3 VGG16 (``keras.applications.VGG16(weights=None)``, seeded), layer
``block3_conv3`` (256 maps): (b) one channel and (c) 64 channels, as image-steps per second and % of the FLOP floor
(no eager loop), so scaling with input size is visible next to the article's 28×28 CNN.

(a) the article's way: eager ``tf.GradientTape`` per step on ``keras.Model(model.inputs, layer.output)``, one map,
    400 steps: loss = mean of the map; g = dloss/dimg; g /= sqrt(mean(g²)) + 1e-7; the article's per-step tests
    (relative loss change, the mean gradient read back every step for the dead-map test);
    img = per_image_standardization(img + 0.01·g). Measured twice: in this process, under the thread setting
    oipwidgets applies (one intra-op thread, which also makes this eager loop faster: the strict baseline), and
    in a child process with the other thread setting (a*): TensorFlow's default threads when this process runs
    with the opt-in (``OIPWIDGETS_TF_THREADS=auto``), else the opt-in.
(b) ``engine.run(map, steps=400, seed=…)`` for one map, warm (after one warm-up run).
(c) ``engine.run_layer(steps=400, seed=…)`` for all maps of the layer, warm.
(d) the floor: the forward + input-gradient FLOPs of the convolutions up to the layer, counted from their shapes
    (2·H_out·W_out·kh·kw·C_in·C_out per forward, the same again for its input gradient; pooling, activations,
    bias and the per-step elementwise work are ignored) × maps × 400 steps ÷ the FLOP/s of a large float32 matmul
    (2048×2048 in a tf.function) measured here: the best of one call at a time and one per core at once (the
    machine's best rate).

Medians over repetitions; everything but (a*) in one process, so that the ratios compare like with like. The thread
setting in force (``oipwidgets.engine.runtime``) applies to all four, the eager loop (a) included.
Memory: peak RSS (ru_maxrss) and RSS growth (/proc/self/statm) over 100 repeated ``run`` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import oipwidgets as ow  # noqa: E402 - first: configures TensorFlow's threads before any op runs
from oipwidgets.engine import runtime  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

STEPS = 400
EPSILON = 0.01
LAYER = "Conv2D_3"
MAP = 3
SEED = 1

TARGETS = {
    "layer_vs_eager": 100.0,  # (c) vs maps × (a): at least this speed-up
    "layer_vs_floor": 1.3,  # (c) ÷ (d): at most this (issue 14)
    "run_vs_floor": 3.0,  # (b) ÷ (d for one image): at most this (issue 14)
    "run_vs_eager": 25.0,  # (a) ÷ (b): at least this
    "rss_growth_mb": 20.0,  # over 100 run calls: at most this
}
LARGE = {"layer": "block3_conv3", "map": 3, "maps": 64, "steps": 40}  # --model vgg128


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fmt(ts: list[float]) -> str:
    return f"median {statistics.median(ts):8.4f} s  (min {min(ts):.4f}, max {max(ts):.4f}, n={len(ts)})"


def matmul_rate(threads: int, reps: int = 4, n: int = 2048) -> float:
    """FLOP/s of n×n float32 matmuls in a tf.function, run by ``threads`` Python threads at once."""

    @tf.function
    def mm(a, b):
        return tf.matmul(a, b)

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    mm(a, b).numpy()

    def work():
        for _ in range(reps):
            mm(a, b).numpy()

    best = 0.0
    for _ in range(2):
        ts = [threading.Thread(target=work) for _ in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        best = max(best, threads * reps * 2 * n**3 / (time.perf_counter() - t0))
    return best


def conv_flops(model: keras.Model, layer_name: str) -> tuple[int, list[str]]:
    """Forward + input-gradient FLOPs per image and step of the Conv2D layers up to ``layer_name``."""
    total, lines = 0, []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = (int(d) for d in layer.kernel.shape)
            _, h, w, _ = layer.output.shape
            fwd = 2 * h * w * kh * kw * c_in * c_out
            total += 2 * fwd
            lines.append(f"    {layer.name}: out {h}×{w}×{c_out}, {kh}×{kw}×{c_in}: fwd {fwd / 1e6:.3f} MFLOP, "
                         f"+ input grad {fwd / 1e6:.3f} MFLOP")
        if layer.name == layer_name:
            break
    return total, lines


def eager_article(sub: keras.Model, start: np.ndarray, map_index: int, steps: int) -> np.ndarray:
    """The article's loop in eager TensorFlow, with its per-step tests (as the engine does them), without plotting:
    loss and gradient, the relative loss change against the convergence criterion, the mean gradient for the
    dead-map test, the update and re-standardisation."""
    img = tf.constant(start[None], tf.float32)
    loss_old, n_conv, n_zeros = 0.0, 0, 0
    for j in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = tf.reduce_mean(sub(img)[0, :, :, map_index])
        grad = tape.gradient(loss, img)
        grad /= tf.sqrt(tf.reduce_mean(tf.square(grad))) + 1e-7
        loss_val = float(loss)
        loss_diff, loss_old = loss_val - loss_old, loss_val
        if j > 10 and abs(loss_diff) / (abs(loss_val) + 1e-7) < 5e-4:
            n_conv += 1
        avg_grad = float(tf.reduce_mean(grad))  # read back every step, as the article does
        if loss_val == 0.0 and avg_grad == 0.0:
            n_zeros += 1
            if n_zeros > 10:
                break
        img = tf.image.per_image_standardization(img + EPSILON * grad)
    return img.numpy()


def eager_setup():
    """The default model, the probed sub-model and the benchmark's start image (the engine's seeded noise)."""
    model = ow.load_default_model("mnist")
    engine = ow.OIPEngine(model, LAYER)
    sub = keras.Model(model.inputs, model.get_layer(LAYER).output)
    return model, engine, sub, engine.run(MAP, steps=1, seed=SEED).start


def time_eager(sub, start, reps: int) -> list[float]:
    eager_article(sub, start, MAP, 5)  # warm-up (first-call costs)
    return timed(lambda: eager_article(sub, start, MAP, STEPS), reps)


def eager_other_threads(reps: int) -> list[float] | None:
    """(a*): the eager loop in a child process with the other thread setting (default ↔ opt-in)."""
    other = "off" if tf.config.threading.get_intra_op_parallelism_threads() > 0 else "auto"
    env = dict(os.environ, **{runtime.ENV_VAR: other, "TF_CPP_MIN_LOG_LEVEL": "3"})
    cmd = [sys.executable, str(Path(__file__).resolve()), "--eager-only", str(reps)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  (a*) failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def large(quick: bool, t_start: float) -> int:
    """--model vgg128: one channel and 64 channels of a 128×128×3 VGG16's block3_conv3, against the FLOP floor."""
    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(128, 128, 3))
    engine = ow.OIPEngine(model, LARGE["layer"])
    steps, maps = LARGE["steps"], list(range(LARGE["maps"]))
    per_step, lines = conv_flops(model, LARGE["layer"])
    rate = max(matmul_rate(1), matmul_rate(runtime.usable_cores()))
    print(f"\nVGG16 128×128×3 (random weights, seeded), {LARGE['layer']} ({engine.size} maps), {steps} steps")
    print("\n".join(lines))
    print(f"  per image-step {per_step / 1e9:.3f} GFLOP (convolutions only); matmul rate {rate / 1e9:.1f} GFLOP/s")
    reps = 2 if quick else 3
    engine.run(LARGE["map"], steps=2, seed=SEED)
    tb = timed(lambda: engine.run(LARGE["map"], steps=steps, seed=SEED), reps)
    engine.run_layer(maps, steps=2, seed=SEED)
    tc = timed(lambda: engine.run_layer(maps, steps=steps, seed=SEED), reps)
    print(f"(b) engine.run, 1 channel, {steps} steps:        {fmt(tb)}")
    print(f"(c) engine.run_layer, {len(maps)} channels, {steps} steps: {fmt(tc)}")
    print(f"\n{'':24s}{'image-steps/s':>14s}{'floor s':>10s}{'× floor':>9s}{'% of floor rate':>17s}")
    for name, ts, n in (("(b) 1 channel", tb, 1), (f"(c) {len(maps)} channels", tc, len(maps))):
        t = statistics.median(ts)
        floor = per_step * n * steps / rate
        print(f"{name:24s}{n * steps / t:14.1f}{floor:10.3f}{t / floor:9.2f}{100 * floor / t:16.1f}%")
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f} s")
    return 0


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--model", choices=["mnist", "vgg128"], default="mnist",
                        help="the article's CNN (default) or a 128×128×3 VGG16 with random weights")
    parser.add_argument("--eager-only", type=int, metavar="REPS", help=argparse.SUPPRESS)  # the (a*) child
    args = parser.parse_args(argv)
    if args.eager_only:
        _, _, sub, start = eager_setup()
        print(json.dumps(time_eager(sub, start, args.eager_only)))
        return 0
    reps_a, reps_b, reps_c = (3, 3, 2) if args.quick else (5, 7, 3)

    t_start = time.perf_counter()
    print(f"oipwidgets {ow.__version__}, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    print(f"cores usable {runtime.usable_cores()}, TF intra-op threads "
          f"{tf.config.threading.get_intra_op_parallelism_threads()} (0: TensorFlow's default), inter-op "
          f"{tf.config.threading.get_inter_op_parallelism_threads()}, batch parts for 28×28 / 128×128×3 "
          f"{runtime.workers(64, 784)} / {runtime.workers(64, 128 * 128 * 3)} "
          f"({runtime.ENV_VAR}={os.environ.get(runtime.ENV_VAR, '(unset): TensorFlow untouched')})")
    if args.model == "vgg128":
        return large(args.quick, t_start)

    model, engine, sub, start = eager_setup()
    maps = engine.size

    # (d) floor
    rate1 = matmul_rate(1)
    rate_all = max(rate1, matmul_rate(runtime.usable_cores()))
    per_step, lines = conv_flops(model, LAYER)
    work = per_step * maps * STEPS
    floor = work / rate_all
    print("\n(d) floor")
    print(f"  matmul 2048×2048 float32: {rate1 / 1e9:.1f} GFLOP/s on one thread, "
          f"{rate_all / 1e9:.1f} GFLOP/s at best (one call, or one per core at once: used)")
    print("\n".join(lines))
    print(f"  per image-step {per_step / 1e6:.3f} MFLOP (convolutions only; pooling, activations, bias and "
          f"elementwise work ignored)")
    print(f"  × {maps} maps × {STEPS} steps = {work / 1e9:.1f} GFLOP → floor {floor:.4f} s; one map: "
          f"{floor / maps:.4f} s")

    # (a) the article's eager loop
    ta = time_eager(sub, start, reps_a)
    print(f"\n(a) eager article loop, 1 map, {STEPS} steps: {fmt(ta)}")
    ta_default = eager_other_threads(reps_a)
    if ta_default:
        print(f"(a*) the same, the other thread setting (child): {fmt(ta_default)}")

    # (b) engine.run, one map
    engine.run(MAP, steps=STEPS, seed=SEED)
    tb = timed(lambda: engine.run(MAP, steps=STEPS, seed=SEED), reps_b)
    print(f"(b) engine.run, 1 map, {STEPS} steps:        {fmt(tb)}")

    # (c) engine.run_layer, all maps
    engine.run_layer(steps=STEPS, seed=SEED)
    tc = timed(lambda: engine.run_layer(steps=STEPS, seed=SEED), reps_c)
    print(f"(c) engine.run_layer, {maps} maps, {STEPS} steps: {fmt(tc)}")

    # memory
    rss0 = rss_mb()
    for _ in range(100):
        engine.run(MAP, steps=STEPS, seed=SEED)
    rss1 = rss_mb()
    growth = rss1 - rss0
    print(f"\nmemory: RSS {rss0:.1f} MB → {rss1:.1f} MB over 100 run calls (growth {growth:+.1f} MB); "
          f"peak RSS (ru_maxrss) {peak_mb():.1f} MB")

    a, b, c = statistics.median(ta), statistics.median(tb), statistics.median(tc)
    r_floor = c / floor
    print("\nratios (medians); against (a): the eager loop under the thread setting in force here; (a*): the other")
    baselines = [("(a)", a)] + ([("(a*)", statistics.median(ta_default))] if ta_default else [])
    for name, base in baselines:
        r_layer, r_run = maps * base / c, base / b
        print(f"  (c) vs {maps}×{name + ':':6s}{r_layer:7.1f}× faster   target ≥ {TARGETS['layer_vs_eager']:g}×  "
              f"{verdict(r_layer >= TARGETS['layer_vs_eager'])}")
        print(f"  (b) vs {name + ':':9s}{r_run:7.1f}× faster   target ≥ {TARGETS['run_vs_eager']:g}×   "
              f"{verdict(r_run >= TARGETS['run_vs_eager'])}")
    print(f"  (c) vs (d):     {r_floor:7.2f}× the floor target ≤ {TARGETS['layer_vs_floor']:g}×   "
          f"{verdict(r_floor <= TARGETS['layer_vs_floor'])}")
    r_run_floor = b / (floor / maps)
    print(f"  (b) vs (d)/{maps}:  {r_run_floor:7.2f}× the floor target ≤ {TARGETS['run_vs_floor']:g}×   "
          f"{verdict(r_run_floor <= TARGETS['run_vs_floor'])}")
    print(f"  RSS growth:     {growth:7.1f} MB         target ≤ {TARGETS['rss_growth_mb']:g} MB "
          f"{verdict(growth <= TARGETS['rss_growth_mb'])}")
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
