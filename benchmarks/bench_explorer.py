"""Kernel-side speed of OIPExplorer: time from Run to the first grid update, grid updates per second, bytes per update.

Run: .venv/bin/python benchmarks/bench_explorer.py [--skip-mnist] [--skip-224]
No browser: comm messages are counted where ipywidgets sends them (``Widget._send``), JSON plus binary buffers.
Targets: first update <= 0.3 s warm; >= 15 updates/s during a run; small messages: tiles are 8-bit PNGs (grey ones
as palette PNGs, 224-px ones downsampled to 140 px), at most 300 KB per live update for a 224×224×3 model.

Cases: the shipped MNIST CNN (28×28×1, as always) and a random 224×224×3 conv net (a few strided convolutions:
the payload depends on the input size, not on the model; a real ImageNet net would only make each step slower).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import ipywidgets
import keras

import oipwidgets as ow


class Wire:
    """Counts the messages and bytes the widgets send to the front end."""

    def __init__(self):
        self.messages, self.bytes = 0, 0
        self._orig = ipywidgets.Widget._send

    def __enter__(self):
        wire = self

        def send(widget, msg, buffers=None):
            wire.messages += 1
            wire.bytes += len(json.dumps(msg, default=str)) + sum(memoryview(b).nbytes for b in (buffers or []))

        ipywidgets.Widget._send = send
        return self

    def __exit__(self, *exc):
        ipywidgets.Widget._send = self._orig


def per_update(ex, wire: Wire) -> list[int]:
    """Patch ``ex._on_progress`` to record the bytes each live update sends (its return value fills up)."""
    sizes = []
    original = ex._on_progress

    def counting(p, run_id):
        before = wire.bytes
        original(p, run_id)
        if wire.bytes > before:
            sizes.append(wire.bytes - before)

    ex._on_progress = counting
    return sizes


def random_224_model() -> keras.Model:
    inp = keras.Input((224, 224, 3))
    x = keras.layers.Conv2D(8, 5, strides=2, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv3")(x)
    out = keras.layers.Dense(10, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out, name="random224")


def case_224() -> bool:
    """A 224×224×3 explorer: bytes per live update (target <= 300 KB) and per final redraw of the grid."""
    keras.utils.set_random_seed(0)
    ex = ow.OIPExplorer(random_224_model(), "conv3", map_index=3, seed=1, steps=40)
    ex.run(wait=True)  # warm: traces the compiled loop
    ex.steps = 400
    with Wire() as wire:
        sizes = per_update(ex, wire)
        t0 = time.perf_counter()
        ex.run()
        time.sleep(6.0)
        ex.stop()
        ex.wait()
        seconds = time.perf_counter() - t0
        total = wire.bytes
    final = total - sum(sizes)
    worst = max(sizes) if sizes else 0
    print(f"224x224x3: {len(sizes)} live updates in {seconds:.1f} s ({ex.status}); bytes per live update: "
          f"mean {statistics.mean(sizes) / 1024:.1f} KiB, max {worst / 1024:.1f} KiB (target <= 300 KB) "
          f"{'PASS' if worst <= 300_000 else 'MISS'}; final redraw of the grid {final / 1024:.1f} KiB "
          f"(tiles already drawn live are not sent again)")
    print(f"224x224x3 tile: {ex.grid.scale:g} screen px per image px, PNG {ex.grid.png_size[0]}x{ex.grid.png_size[1]}, "
          f"last PNG {ex.grid.png_nbytes(0) / 1024:.1f} KiB (start tile)")
    ex.close()
    return worst <= 300_000


def main() -> None:
    if "--skip-mnist" not in sys.argv:
        mnist()
    if "--skip-224" not in sys.argv:
        case_224()


def mnist() -> None:
    ex = ow.OIPExplorer(map_index=5, seed=1)
    ex.run(wait=True)  # warm: traces the compiled loop
    firsts = []
    for _ in range(5):
        ex.steps = 400
        ex.run(wait=True)
        firsts.append(ex._live["first_update"])
    print(f"first grid update after Run (warm, median of 5): {statistics.median(firsts) * 1000:.1f} ms "
          f"(target <= 300 ms) {'PASS' if statistics.median(firsts) <= 0.3 else 'MISS'}")

    draws = []
    original = ex._draw_tile

    def counting(*args):
        draws.append(time.perf_counter())
        original(*args)

    ex._draw_tile = counting
    ex.steps = 200_000
    with Wire() as wire:
        sizes = per_update(ex, wire)
        ex.run()
        time.sleep(5.0)
        ex.stop()
        ex.wait()
    print(f"long run: {ex.status}")
    # one grid update draws 1 tile (2 marks: plain and enhanced) plus the loss curve and progress bar
    live = [t for t in draws]
    span = live[-1] - live[0] if len(live) > 1 else float("nan")
    rate = (len(live) - 1) / span if len(live) > 1 else 0.0
    print(f"grid updates per second during a run: {rate:.1f} (target >= 15) {'PASS' if rate >= 15 else 'MISS'}")
    mean_bytes = wire.bytes / max(1, len(live))
    print(f"bytes sent per update: {mean_bytes / 1024:.1f} KiB in {wire.messages / max(1, len(live)):.1f} messages "
          f"(two 28x28 tiles as palette PNGs; as float32 they were {2 * 28 * 28 * 4 / 1024:.1f} KiB of pixels; the "
          f"loss curve grows with the run)")
    if sizes:
        print(f"bytes per live update (measured at _on_progress): mean {statistics.mean(sizes) / 1024:.1f} KiB, "
              f"max {max(sizes) / 1024:.1f} KiB")
    ex._draw_tile = original
    del ex._on_progress


if __name__ == "__main__":
    main()
