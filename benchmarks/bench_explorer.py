"""Kernel-side speed of OIPExplorer: time from Run to the first grid update, grid updates per second, bytes per update.

Run: .venv/bin/python benchmarks/bench_explorer.py
No browser: comm messages are counted where ipywidgets sends them (``Widget._send``), JSON plus binary buffers.
Targets: first update <= 0.3 s warm; >= 15 updates/s during a run; small messages (float32 tiles).
"""

from __future__ import annotations

import json
import statistics
import time

import ipywidgets

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


def main() -> None:
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
    per_update = wire.bytes / max(1, len(live))
    print(f"bytes sent per update: {per_update / 1024:.1f} KiB in {wire.messages / max(1, len(live)):.1f} messages "
          f"(two 28x28 float32 tiles = {2 * 28 * 28 * 4 / 1024:.1f} KiB of pixels; the loss curve grows with the run)")
    ex._draw_tile = original


if __name__ == "__main__":
    main()
