"""Rescue: no map is called dead that a real image fires, and no OIP ends below the best real image.

The article's dead test is right about the start it saw: the map's gradient was exactly zero. It is wrong about the
map when a real image fires it. ``run_layer(..., examples=images)`` checks each finished map against the example
images it is given (the zoo's and the explorer's strips) and runs again, with a cure, every map that

* stayed dead although an example fires it: first with lucid's ReLU warm-up (``warmup.py``) for
  ``RESCUE_WARMUP`` steps (or the recipe's, if longer), then, if still dead, from its best example blended with
  its noise (``FromData``);
* ended below its best example's objective: from its best example blended with its noise;
* and when that blended start does not do it either: from the best example itself (which fires the map, so the
  climb starts alive).

Maps and examples are compared by the objective without the recipe's regularisers (``params["activation"]``; a
photo pays more blur penalty than a smooth OIP). The better of the tries (any live map beats a dead one) is kept, and
its ``params["cure"]`` says which cure made it ("warm-up" or "data start"), so a view can say so on the tile. A map that no example fires
stays as it was: dead is then the honest answer for those images.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .objectives import Objective
from .result import LayerResult, OIPResult
from .strategies import FromData

__all__ = ["rescue", "best_examples", "RESCUE_WARMUP", "RESCUE_MIX"]

RESCUE_WARMUP = 50  # steps of redirected ReLU gradient for a dead map (MNIST Conv2D_3: 0 dead after 200 steps)
RESCUE_MIX = 0.5  # the example's share of a data start


class _Subset(Objective):
    """The images ``idx`` of a batch objective: the same compiled structure (and key), their parameters only."""

    def __init__(self, term: Objective, idx, batch: int):
        self.term = term
        self._idx, self._batch = np.asarray(idx), int(batch)
        self.kind = term.kind

    def _compute_key(self):
        return self.term.key()

    def params(self, batch):
        return tf.nest.map_structure(lambda a: np.asarray(a)[self._idx], self.term.params(self._batch))

    def validate(self, layer, batch):
        self.term.validate(layer, self._batch)

    def __call__(self, activations, params):
        return self.term(activations, params)

    def evaluate(self, activations, params, images):
        return self.term.evaluate(activations, params, images)

    def describe(self):
        return self.term.describe()


def best_examples(score_images, params: dict, examples: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(best score (B,), index of the best example (B,)) of ``examples`` (N, H, W, C) under each image's objective
    (``score_images(images, params)``, params per image of the batch): N × B forward passes."""
    n = len(examples)
    rep = tf.nest.map_structure(lambda t: tf.repeat(t, n, axis=0), params)
    scores = np.asarray(score_images(np.tile(examples, (batch, 1, 1, 1)), rep), np.float64).reshape(batch, n)
    return scores.max(axis=1), scores.argmax(axis=1)


def _better(new: OIPResult, old: OIPResult) -> bool:
    """A live map beats a dead one; else the higher objective (without regularisers) wins."""
    if old.status == "dead":
        return new.status != "dead" or new.params["activation"] > old.params["activation"]
    return new.status != "dead" and new.params["activation"] > old.params["activation"]


def rescue(engine, result: LayerResult, examples: np.ndarray, best: np.ndarray, which: np.ndarray, run: dict,
           measure) -> LayerResult:
    """``result`` with its dead-but-fired and below-example maps run again with a cure (see the module doc).

    best, which: each image's best example objective and its index (``best_examples``); run: the arguments of the
    original ``run_layer`` call (maps, seeds, start, recipe, objective (the user's, or None), noise, cancel);
    measure(images, idx): the objective without regularisers of images (n, H, W, C) for the batch positions
    ``idx``, which every result records as ``params["activation"]`` and which decides between tries.
    """
    results = list(result.results)
    b = len(results)
    recipe, objective = run["recipe"], run["objective"]
    if objective is not None and objective.couples_batch:
        return result  # diversity: the images of the batch climb together, none can be re-run alone
    for k, value in enumerate(measure(np.stack([r.image for r in results]), np.arange(b))):
        results[k].params["activation"] = float(value)
        results[k].params["best_example"] = float(best[k])
    fired = best > 0

    def retry(idx, label, **change):
        idx = np.asarray(idx)
        sub = None if objective is None else _Subset(objective, idx, b)
        # the same start images as the first try (no noise drawn again): only the cure differs
        start = np.stack([result.results[k].start for k in idx]) if run["start"] is None else run["start"][idx]
        again = engine.run_layer([run["maps"][k] for k in idx], start, seed=[run["seeds"][k] for k in idx],
                                 objective=sub, noise=run["noise"], cancel=run["cancel"],
                                 recipe=recipe.replace(**change))
        values = measure(again.images, idx)
        for k, r, value in zip(idx, again, values):
            r.params["activation"], r.params["best_example"] = float(value), float(best[k])
            # the result records the recipe it was asked for (a data start's examples are no part of it)
            r.params["recipe"], r.params["cure_recipe"] = results[k].params.get("recipe"), r.params.get("recipe")
            if _better(r, results[k]):
                r.params["cure"] = label
                results[k] = r

    def pending(condition):
        return [k for k in range(b) if condition(results[k], k)]

    dead = pending(lambda r, k: r.status == "dead" and fired[k])
    if dead:
        retry(dead, "warm-up", warmup=max(recipe.warmup, RESCUE_WARMUP))
    def weak():
        return pending(lambda r, k: fired[k] and r.status not in ("stopped", "error", "nonfinite")
                       and (r.status == "dead" or r.params["activation"] < best[k]))

    for mix in (RESCUE_MIX, 1.0):  # blended with the noise; then, if that start does not fire, the example itself
        todo = weak()
        if todo:
            picks = examples[which[np.asarray(todo)]]
            retry(todo, "data start", strategy=FromData(picks, mix=mix, pick=False))
    return LayerResult(results, seconds=result.seconds, error=result.error)
