"""Maps called dead that a real image fires, before and after the cure (issue 19, item 5).

At the zoo's default settings (the article's recipe, 200 steps) for seeds 0–2, all maps of a layer climb as one
batch once without examples (the article's dead test alone) and once with ``examples=`` (``engine/rescue.py``: a
map that an example fires is re-run with a ReLU warm-up, then from a data start; a map below its best example is
re-run from a data start). Printed per model, layer and seed: maps reported dead, of those fired by an example,
maps below their best example's objective, maps cured and the time of each pass. Examples: the 100 shipped MNIST
samples for ``mnist``; 96 generated planted images (12 per class) for ``planted``.

    .venv/bin/python benchmarks/bench_dead.py [--models mnist,planted] [--steps 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import oipwidgets as ow
from oipwidgets.engine.examples import default_examples
from oipwidgets.models.planted import make_planted
from oipwidgets.models.preprocessing import to_model_input

CASES = {"mnist": ["Conv2D_1", "Conv2D_2", "Conv2D_3"], "planted": ["relu2", "relu3", "relu4"]}


def examples_for(name: str, model) -> np.ndarray:
    if name == "mnist":
        return to_model_input(default_examples(model))
    images, _ = make_planted(96, seed=7)
    return to_model_input(images)


def figures(result, best) -> tuple:
    dead = np.array([r.dead for r in result])
    activation = np.array([r.params.get("activation", r.final_loss) for r in result])
    fired = best > 0
    return (int(dead.sum()), int((dead & fired).sum()), int(((activation < best - 1e-6) & fired).sum()),
            sum(1 for r in result if r.params.get("cure")))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mnist,planted")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"article's recipe, {args.steps} steps; 'fired': maps an example fires; 'below': maps whose OIP ends "
          "below their best example's objective")
    print(f"{'model':8s} {'layer':9s} {'seed':>4s} | {'dead':>4s} {'fired':>5s} {'below':>5s} {'s':>5s} | "
          f"{'dead':>4s} {'fired':>5s} {'below':>5s} {'cured':>5s} {'s':>5s}   (without | with the cure)")
    totals = np.zeros(7, int)
    for name in args.models.split(","):
        model = ow.load_default_model(name)
        examples = examples_for(name, model)
        for layer in CASES[name]:
            engine = ow.OIPEngine(model, layer)
            best = engine.activations(examples).mean(axis=(1, 2)).max(axis=0)
            for seed in (0, 1, 2):
                t = time.perf_counter()
                plain = engine.run_layer(seed=seed, steps=args.steps)
                t_plain = time.perf_counter() - t
                t = time.perf_counter()
                cured = engine.run_layer(seed=seed, steps=args.steps, examples=examples)
                t_cured = time.perf_counter() - t
                a, b = figures(plain, best)[:3], figures(cured, best)
                totals += np.array([*a, *b])
                print(f"{name:8s} {layer:9s} {seed:4d} | {a[0]:4d} {a[1]:5d} {a[2]:5d} {t_plain:5.1f} | "
                      f"{b[0]:4d} {b[1]:5d} {b[2]:5d} {b[3]:5d} {t_cured:5.1f}", flush=True)
    print(f"{'all':8s} {'':9s} {'':4s} | {totals[0]:4d} {totals[1]:5d} {totals[2]:5d} {'':5s} | {totals[3]:4d} "
          f"{totals[4]:5d} {totals[5]:5d} {totals[6]:5d}")


if __name__ == "__main__":
    main()
