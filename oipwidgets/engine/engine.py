"""OIPEngine: (trained Keras model, layer, map) → OIP, the image that activates the map most, grown out of noise.

The engine ties the parts together: a probe of the layer (``probe``), an objective (``objectives``), start noise
(``noise``), a start strategy (``strategies``), an input mode (``input_modes``) and the compiled loop (``ascent``).
It knows nothing of widgets; views drive it through ``run``/``run_layer``, a progress callback and ``stop()``.

Note for users: after many steps the ascent is chaotic for many maps. A change of one unit in the last place of the
start image can move the final image of about half of the maps of a deep layer by more than 1e-4, so compare OIPs
by the objective they reach, or run them from the same ``start`` image (and the same engine settings).
"""

from __future__ import annotations

import threading
import time

import keras
import numpy as np
import tensorflow as tf

from .ascent import AscentOptions
from .climb import Climb
from .preprocess import engine_mode, saturated_share
from .recipe import MAX_EPSILON, Recipe, recipe_for
from .rescue import best_examples, rescue
from .memory import budget_bytes, image_bytes, images_at_once
from .loop import CONVERGED, DEAD, ERROR, NONFINITE, RUNNING, STOPPED, AscentLoop
from .noise import MultiScaleNoise, SpectralNoise, make_noise
from .objectives import Objective, objective_for
from .probe import LayerInfo, ensure_built, make_probe, probeable_layers
from .result import LayerResult, OIPResult, status_message
from .strategies import Job, strategy_for
from .validation import check_float, check_int, is_int

__all__ = ["OIPEngine", "MAX_EPSILON"]



class OIPEngine:
    """Gradient ascent on the input of ``model`` to maximise objectives read at ``layer`` (name or index).

    model: any ``keras.Model`` with one image input (B, H, W, C); a Sequential model that was never built needs
        ``input_shape=(H, W, C)``.
    preprocess: the model's input convention (``preprocess.py``): "standardize" (the article's per-image
        standardisation; the default), "unit" (RGB in [0, 1]), "byte" ([0, 255]), "tf" ([-1, 1]), "caffe" (BGR
        minus the ImageNet mean), "torch" (ImageNet mean/std) or a callable mapping RGB in [0, 1] to the model's
        input. With a convention other than "standardize" OIPs are RGB images in [0, 1] kept off the range's ends.
    input_mode: the older way to say how the image is kept in range after each step: "standardize", "clip"
        ([0, 1]), "identity", or an ``InputMode`` such as ``Clip(0, 255)`` (give it or ``preprocess``).
    pre_activation: for a dense layer with softmax/sigmoid, climb the score before it.
    jit_compile: compile the step with XLA.
    memory_budget: how much memory a batch run may take: bytes (int), a fraction of the memory available when a
        run starts (float in (0, 1]), or None for half of it. Larger batches climb in waves that fit; a layer
        whose single image does not fit is refused with what it needs (``oipwidgets.engine.memory``).
    """

    def __init__(
        self,
        model: keras.Model,
        layer,
        *,
        input_shape=None,
        preprocess=None,
        input_mode=None,
        pre_activation: bool = True,
        jit_compile: bool = False,
        memory_budget=None,
    ):
        self.model = ensure_built(model, input_shape)
        self.probe = shared(self.model, ("probe", _layer_key(self.model, layer), bool(pre_activation)),
                            lambda: make_probe(self.model, layer, pre_activation=pre_activation))
        self.layer: LayerInfo = self.probe.layer
        self.input_shape: tuple = tuple(int(s) for s in self.probe.input_shape)
        self.mode = engine_mode(preprocess, input_mode)
        self.mode.check(self.input_shape)
        self.jit_compile = bool(jit_compile)
        budget_bytes(memory_budget)  # checked now, measured at each run
        self.memory_budget = memory_budget
        self.image_bytes = image_bytes(self.probe.shapes, self.input_shape)
        self._stop = threading.Event()

    def images_at_once(self) -> int:
        """How many images may climb at the same time under the memory budget now; ValueError when not even one
        fits (naming what one needs)."""
        what = f"layer {self.layer.name!r} at {'x'.join(map(str, self.input_shape))}"
        return images_at_once(self.image_bytes, budget_bytes(self.memory_budget), what)

    # ----------------------------------------------------------------- introspection
    @staticmethod
    def layers(model: keras.Model, input_shape=None) -> list[LayerInfo]:
        """The layers of ``model`` that can be probed: 4-D outputs (maps) and 2-D outputs (units), in model order;
        the layers inside a nested model follow it, named by path ("base/block_1"); a subclassed model's layers are
        found by running it once on a zero batch (``input_shape`` when its image size is not known yet)."""
        return probeable_layers(ensure_built(model, input_shape))

    @property
    def size(self) -> int:
        """Number of maps (or units) of the layer."""
        return self.layer.size

    def activations(self, images) -> np.ndarray:
        """The probed layer's output for images (N, H, W, C) in the engine's image space: the model's input form
        for the article's standardisation and input modes, RGB in [0, 1] with a ``preprocess`` convention (the
        space OIPs are in)."""
        images = np.asarray(images, np.float32)
        if images.shape[1:] != self.input_shape:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.input_shape))}); got {images.shape}")
        return np.asarray(self.probe(self.mode.to_model(tf.constant(images))))

    def objective(self, index, node=None) -> Objective:
        """The default objective for map/unit ``index`` (or one per image): map mean, node (row, col), or unit."""
        return objective_for(self.layer, index, node)

    def start_images(self, noise=None, seeds=(0,)) -> np.ndarray:
        """The start images (N, H, W, C) that ``run(..., noise=noise, seed=s)`` with strategy "simple" uses."""
        h, w, _ = self.input_shape
        return self._noise(noise if noise is not None else MultiScaleNoise.for_size(h, w), list(seeds))

    def stop(self) -> None:
        """Ask a running ``run``/``run_layer`` (in another thread) to stop after its current chunk (< 0.1 s)."""
        self._stop.set()

    # ----------------------------------------------------------------- runs
    def run(self, map_index: int = 0, steps: int | None = None, epsilon: float | None = None, noise=None, start=None,
            seed=None, strategy=None, *, node=None, recipe=None, **settings) -> OIPResult:
        """The OIP of one map (or unit): gradient ascent from ``start`` or from ``noise`` drawn with ``seed``.

        recipe: how the OIP is made (``recipe.py``): "article" (the default), "readable", a Recipe or its dict;
        steps, epsilon, strategy and every other recipe field given here override it.
        steps: ascent steps (for "multiscale": of the last stage; for "precursor": after the precursor search).
        epsilon: step size; each step moves the image by epsilon × the gradient scaled to unit RMS.
        noise: a MultiScaleNoise or SpectralNoise (default: the article's 4 scales sized to the input).
        start: a start image (H, W, C) (or (H, W) for one channel) in the engine's image space; overrides noise.
        seed: int for reproducible noise; None draws one (recorded in ``result.params["seed"]``).
        strategy: "simple", "multiscale", "precursor" or a Strategy object such as ``Precursor(n=16)``.
        node: (row, col) to climb one node of the map instead of its mean.
        settings: objective=Objective, callback=f(Progress), cancel=Event or callable, and recipe fields
            (param, transforms, optimizer, conv_criterion, stop_on_convergence, warmup, tv, blur, …).
        """
        if start is not None:
            start = self._check_start(start, batch=1, single=True)
        if node is not None and settings.get("objective") is None:
            settings["objective"] = objective_for(self.layer, map_index, node)
        given = {k: v for k, v in (("steps", steps), ("epsilon", epsilon), ("strategy", strategy)) if v is not None}
        return self.run_layer([map_index], start, seed=[seed], noise=noise, recipe=recipe, **given, **settings)[0]

    def run_layer(self, maps=None, start=None, *, seed=None, recipe=None, objective: Objective | None = None,
                  noise=None, callback=None, cancel=None, examples=None, **settings) -> LayerResult:
        """OIPs of many maps (default: all maps of the layer) and/or seeds, as one batch.

        Each image is treated exactly as if run alone (per-image gradient normalisation and standardisation).
        maps: map (or unit) indices, default all. start: one start image per map (N, H, W, C), or one image
        (H, W, C) for all. seed: one int for all maps (each map starts from the same noise, as
        ``run(m, seed=seed)``) or a list with one seed per map; with one map and several seeds, runs that map once
        per seed. recipe: how the OIPs are made ("article" by default, "readable", a Recipe or its dict).
        objective: what to climb (default: each map's mean, or each unit; the recipe's regularisers are
        subtracted). callback: f(Progress) after each chunk; cancel: a threading.Event or a callable returning
        True to stop. examples: real images (N, H, W, C) in the engine's image space; a map that stays dead
        although one of them fires it, or ends below the best one's objective, is run again with a cure
        (``rescue.py``; ``params["cure"]`` says which, ``params["best_example"]`` the best example's objective).

        settings: any field of the recipe overrides it (``Recipe.field_names()``): steps=400, epsilon=0.01,
        strategy="simple", param="pixel" | "fourier" | "maco" | a Parameterization, transforms=None | "standard"
        | a Transform, optimizer="rms" | "adam" (epsilon is then its learning rate), conv_criterion=5e-4 (relative
        loss change that counts as converged), stop_on_convergence=False, warmup=0 (steps of redirected ReLU
        gradient), tv/blur/l1/l2 (regulariser weights), decay (the spectrum's exponent).
        """
        t0 = time.perf_counter()
        self._stop.clear()
        recipe = recipe_for(recipe).replace(**settings)
        strategy = recipe.strategy_object()
        if noise is not None and not isinstance(noise, (MultiScaleNoise, SpectralNoise)):
            raise TypeError(f"noise must be a MultiScaleNoise, a SpectralNoise or None; got {type(noise).__name__}")
        h, w, c = self.input_shape
        noise = noise if noise is not None else MultiScaleNoise.for_size(h, w)
        strategy.validate(noise)
        options = AscentOptions(epsilon=recipe.epsilon, conv_criterion=recipe.conv_criterion,
                                stop_on_convergence=recipe.stop_on_convergence, callback=callback,
                                cancelled=self._cancelled(cancel), at_once=self.images_at_once())
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be a function taking a Progress, or None; got {type(callback).__name__}")
        maps, seeds = self._batch(maps, seed)
        b = len(maps)
        given = objective is not None
        objective_given = objective
        objective = self._checked_objective(objective, maps)
        penalty = recipe.regularizer()
        if penalty is not None:
            objective = objective - penalty
        climb = recipe.climb(self.input_shape)
        climb.check(strategy, objective, b, options.at_once)
        if start is not None:
            start = self._check_start(start, batch=b)
        params = tf.nest.map_structure(tf.constant, objective.params(b))
        loop = self._loop(objective, climb, recipe.warmup)
        job = Job(loop=loop, params=params, options=options, noise=noise, seeds=seeds, start=start,
                  steps=recipe.steps, make_noise=self._noise, prepare=self.mode.prepare,
                  score=lambda states, p: self._score(objective, loop.images_of(states), p), mode=self.mode,
                  score_images=lambda images, p: self._score(objective, images, p))
        out = strategy.run(job)
        out.state.images = loop.images_of(out.state.images)  # from here on: images in the engine's image space
        final = self._final_scores(objective, out.state, params)
        common = dict(steps=recipe.steps, epsilon=recipe.epsilon, noise=noise.describe(),
                      strategy=strategy.describe(), conv_criterion=recipe.conv_criterion,
                      stop_on_convergence=recipe.stop_on_convergence,
                      objective=objective.describe() if b == 1 or given or penalty is not None else None,
                      start_given=start is not None, input_mode=repr(self.mode), preprocess=self._preprocess_name(),
                      value_range=self.mode.value_range, warmup=recipe.warmup, recipe=_recipe_record(recipe),
                      climbed=self.probe.climbed, **climb.describe())
        results = [self._result(k, maps[k], seeds[k], out, final[k], common) for k in range(b)]
        result = LayerResult(results, seconds=time.perf_counter() - t0, error=out.state.error)
        if examples is not None and result.error is None:
            result = self._rescued(result, examples, objective_given, maps, seeds, start, recipe, noise, cancel)
            result.seconds = time.perf_counter() - t0
        return result

    def _rescued(self, result, examples, objective, maps, seeds, start, recipe, noise, cancel) -> LayerResult:
        """``result`` after ``rescue.rescue``: maps and examples are compared by the objective without the recipe's
        regularisers (what the map itself does: a real photo pays a higher blur penalty than a smooth OIP)."""
        b = len(maps)
        examples = self._check_start(examples, batch=len(np.asarray(examples)))
        base = self._checked_objective(objective, maps)
        base_params = tf.nest.map_structure(tf.constant, base.params(b))
        best, which = best_examples(lambda im, p: self._score(base, im, p), base_params, examples, b)

        def measure(images, idx):
            sub = tf.nest.map_structure(lambda t: tf.gather(t, np.asarray(idx)), base_params)
            return self._score(base, np.asarray(images, np.float32), sub)

        run = dict(maps=maps, seeds=seeds, start=start, recipe=recipe, objective=objective, noise=noise,
                   cancel=cancel)
        return rescue(self, result, examples, best, which, run, measure)

    def _preprocess_name(self) -> str:
        """How results name the model's input convention: a preset's name, a function's, or the input mode."""
        label = getattr(self.mode, "label", None)
        return label if label is not None else ("standardize" if self.mode.name == "standardize" else repr(self.mode))

    def _checked_objective(self, objective, maps: list) -> Objective:
        """``objective`` (default: each map's mean, or each unit) checked against this layer and batch."""
        if objective is None:
            objective = self.objective(np.asarray(maps))
        if not isinstance(objective, Objective):
            raise TypeError(f"objective must be an Objective such as ow.MapMean(3), ow.Node(3, (5, 5)) or "
                            f"ow.Unit(2), or None for each map's mean; got {objective!r}")
        objective.validate(self.layer, len(maps))
        return objective

    def _batch(self, maps, seed) -> tuple[list, list]:
        """Map indices and one seed per image (fresh seeds for None), checked."""
        maps = list(range(self.size)) if maps is None else [maps] if is_int(maps) else list(maps)
        seeds = list(seed) if isinstance(seed, (list, tuple, np.ndarray)) else [seed]
        seeds = [_fresh_seed() if s is None else check_int(s, "seed", low=0) for s in seeds]
        if len(maps) == 1 and len(seeds) > 1:
            maps = maps * len(seeds)
        if len(seeds) == 1:
            seeds = seeds * len(maps)
        if len(seeds) != len(maps) or not maps:
            raise ValueError(f"give one seed, or one per map: got {len(seeds)} seeds for {len(maps)} maps")
        return maps, seeds

    # ----------------------------------------------------------------- helpers
    def _loop(self, objective: Objective, climb: Climb | None = None, warmup: int = 0) -> AscentLoop:
        """The compiled loop for this probe, objective structure, input mode, climb (default: the article's) and
        warm-up, shared by every engine on the same model (a new engine per run costs no new trace)."""
        climb = climb or Climb.make("pixel", None, "rms", self.input_shape)
        key = ("loop", self.layer.name, self.probe.pre_activation, objective.key(), self.mode.key(), self.jit_compile,
               climb.key(), int(warmup))
        return shared(self.model, key, lambda: AscentLoop(
            self.probe, objective, self.mode, jit_compile=self.jit_compile, space=climb.space,
            optimizer=climb.optimizer, transform=climb.transform, warmup=warmup))

    def _final_scores(self, objective: Objective, state, params: dict) -> np.ndarray:
        """The objective of each final image; a stopped image keeps the last objective it measured (a stop must not
        wait for one more pass through a large model)."""
        final = np.array([lk[-1] if lk else np.nan for lk in state.losses], np.float64)
        ended = (state.status == STOPPED) | (state.status == ERROR)
        score = np.flatnonzero(~ended | ((state.status == STOPPED) & np.isnan(final)))
        if score.size:
            sub = tf.nest.map_structure(lambda t: tf.gather(t, score), params)
            final[score] = self._score(objective, state.images[score], sub)
        return final

    def _score(self, objective: Objective, images: np.ndarray, params: dict) -> np.ndarray:
        """The objective of each image (B,) float64, computed eagerly (once per run: a traced function per model
        and objective would cost more in tracing than it saves), in groups that fit the memory budget."""
        size = len(images) if objective.couples_batch else self.images_at_once()  # diversity: the batch as one
        flat = tf.nest.flatten(params)
        out = []
        for lo in range(0, len(images), size):
            part = tf.nest.pack_sequence_as(params, [t[lo : lo + size] for t in flat])
            x = tf.constant(images[lo : lo + size], tf.float32)
            out.append(np.asarray(objective.evaluate(self.probe(self.mode.to_model(x)), part, x)))
        return np.concatenate(out).astype(np.float64)

    def _cancelled(self, cancel):
        if cancel is None:
            return self._stop.is_set
        check = cancel.is_set if hasattr(cancel, "is_set") else cancel
        if not callable(check):
            raise TypeError("cancel must be a threading.Event or a callable returning True to stop")
        return lambda: self._stop.is_set() or bool(check())

    def _noise(self, spec, seeds, raw: bool = False) -> np.ndarray:
        """One start image per seed (equal seeds give equal images), in the input mode's range unless ``raw``."""
        h, w, c = self.input_shape
        cache = {}
        for s in seeds:
            if s not in cache:
                cache[s] = make_noise(spec, (1, h, w, c), seed=s)[0]
        images = np.stack([cache[s] for s in seeds]).astype(np.float32)
        return images if raw else self.mode.prepare(images)

    def _check_start(self, start, batch: int, single: bool = False) -> np.ndarray:
        h, w, c = self.input_shape
        arr = np.asarray(start, dtype=np.float32)
        if arr.ndim == 2 and c == 1:
            arr = arr[..., None]
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim == 4 and arr.shape[0] == 1 and batch > 1:
            arr = np.repeat(arr, batch, axis=0)
        want = (batch, h, w, c)
        if arr.shape != want:
            what = f"({h}, {w}, {c})" if single or batch == 1 else f"({batch}, {h}, {w}, {c}) or ({h}, {w}, {c})"
            raise ValueError(f"start image must have shape {what} for this model and layer; got {np.shape(start)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("start image contains NaN or infinite values")
        return arr

    def _result(self, k, index, seed, out, final, common) -> OIPResult:
        state, snaps = out.state, out.snaps
        code = int(state.status[k])
        steps_done = int(state.updates[k])
        snap_steps, snap_images, snap_losses = list(snaps.steps[k]), list(snaps.images[k]), list(snaps.losses[k])
        last_step = int(state.last_step[k])
        if last_step >= 0 and (not snap_steps or snap_steps[-1] != last_step):
            snap_steps.append(last_step)
            snap_images.append(state.images[k].copy())
            snap_losses.append(float(state.last_loss[k]))
        conv_at = int(state.conv_at[k]) if state.conv_at[k] >= 0 else None
        converged_now = code == CONVERGED or (code == RUNNING and state.conv_run[k] >= 4)
        status = {DEAD: "dead", STOPPED: "stopped", NONFINITE: "nonfinite", ERROR: "error"}.get(
            code, "converged" if converged_now else "max_steps"
        )
        what = f"{'unit' if self.layer.kind == 'units' else 'map'} {index} of {self.layer.name}"
        h, w, c = self.input_shape
        image = state.images[k].copy()
        return OIPResult(
            image=image,
            start=np.asarray(out.starts[k], np.float32).copy(),
            snapshots=np.array(snap_images, dtype=np.float32).reshape(-1, h, w, c),
            snapshot_steps=np.array(snap_steps, dtype=np.int64),
            snapshot_losses=np.array(snap_losses, dtype=np.float64),
            losses=np.asarray(state.losses[k], dtype=np.float64),
            status=status,
            steps=steps_done,
            final_loss=float(final),
            converged_at=conv_at,
            message=status_message(status, what, steps_done, conv_at, state.error),
            saturated=saturated_share(image, self.mode.value_range),
            value_range=self.mode.value_range,
            params={"layer": self.layer.name, "map": int(index), "seed": seed, **common, **out.plan},
        )

    def __repr__(self) -> str:
        return f"OIPEngine(layer={self.layer.name!r}, {self.layer.kind}={self.size}, input={self.input_shape})"


_SHARED_LOCK = threading.Lock()


def shared(model: keras.Model, key: tuple, make):
    """The object cached on ``model`` under ``key``, made by ``make()`` the first time.

    Probes and compiled loops live on the model they belong to (an attribute Keras does not track or save), so
    engines made again and again for one model share them, and they go away with the model.
    """
    with _SHARED_LOCK:
        cache = model.__dict__.get("_oipwidgets_cache")
        if cache is None:
            cache = {}
            object.__setattr__(model, "_oipwidgets_cache", cache)
        if key not in cache:
            cache[key] = make()
        return cache[key]


def _recipe_record(recipe: Recipe):
    """What a result records of its recipe: its dict, or its description when it holds objects."""
    try:
        return recipe.to_dict()
    except ValueError:
        return recipe.describe()


def _layer_key(model: keras.Model, layer):
    """A layer given by path, name, index or object, as its path (the probe check explains bad values)."""
    from .probe import layer_key

    return layer_key(model, layer)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])
