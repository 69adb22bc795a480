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
from .input_modes import input_mode as _input_mode
from .memory import budget_bytes, image_bytes, images_at_once
from .loop import CONVERGED, DEAD, ERROR, NONFINITE, RUNNING, STOPPED, AscentLoop
from .noise import MultiScaleNoise, SpectralNoise, make_noise
from .objectives import Objective, objective_for
from .probe import LayerInfo, ensure_built, make_probe, probeable_layers
from .result import LayerResult, OIPResult, status_message
from .strategies import Job, strategy_for
from .validation import check_float, check_int, is_int

__all__ = ["OIPEngine", "MAX_EPSILON"]

#: The largest step size taken: the gradient is scaled to unit RMS, so a step of 1000 already moves every pixel far
#: beyond any trained input range; larger ones only overflow float32.
MAX_EPSILON = 1000.0


class OIPEngine:
    """Gradient ascent on the input of ``model`` to maximise objectives read at ``layer`` (name or index).

    model: any ``keras.Model`` with one image input (B, H, W, C); a Sequential model that was never built needs
        ``input_shape=(H, W, C)``.
    input_mode: what keeps the image in the model's input range after each step: "standardize" (the article's,
        per-image standardisation), "clip" ([0, 1]), "identity", or an ``InputMode`` such as ``Clip(0, 255)``.
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
        input_mode="standardize",
        pre_activation: bool = True,
        jit_compile: bool = False,
        memory_budget=None,
    ):
        self.model = ensure_built(model, input_shape)
        self.probe = shared(self.model, ("probe", _layer_key(self.model, layer), bool(pre_activation)),
                            lambda: make_probe(self.model, layer, pre_activation=pre_activation))
        self.layer: LayerInfo = self.probe.layer
        self.input_shape: tuple = tuple(int(s) for s in self.probe.input_shape)
        self.mode = _input_mode(input_mode)
        self.jit_compile = bool(jit_compile)
        budget_bytes(memory_budget)  # checked now, measured at each run
        self.memory_budget = memory_budget
        self.image_bytes = image_bytes(self.model, self.layer.index, self.input_shape)
        self._stop = threading.Event()

    def images_at_once(self) -> int:
        """How many images may climb at the same time under the memory budget now; ValueError when not even one
        fits (naming what one needs)."""
        what = f"layer {self.layer.name!r} at {'x'.join(map(str, self.input_shape))}"
        return images_at_once(self.image_bytes, budget_bytes(self.memory_budget), what)

    # ----------------------------------------------------------------- introspection
    @staticmethod
    def layers(model: keras.Model, input_shape=None) -> list[LayerInfo]:
        """The layers of ``model`` that can be probed: 4-D outputs (maps) and 2-D outputs (units)."""
        return probeable_layers(ensure_built(model, input_shape))

    @property
    def size(self) -> int:
        """Number of maps (or units) of the layer."""
        return self.layer.size

    def activations(self, images) -> np.ndarray:
        """The probed layer's output for input images (N, H, W, C) already in the model's input form."""
        images = np.asarray(images, np.float32)
        if images.shape[1:] != self.input_shape:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.input_shape))}); got {images.shape}")
        return np.asarray(self.probe(tf.constant(images)))

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
    def run(self, map_index: int = 0, steps: int = 400, epsilon: float = 0.01, noise=None, start=None, seed=None,
            strategy="simple", *, node=None, **options) -> OIPResult:
        """The OIP of one map (or unit): gradient ascent from ``start`` or from ``noise`` drawn with ``seed``.

        steps: ascent steps (for "multiscale": of the last stage; for "precursor": after the precursor search).
        epsilon: step size; each step moves the image by epsilon × the gradient scaled to unit RMS.
        noise: a MultiScaleNoise or SpectralNoise (default: the article's 4 scales sized to the input).
        start: a start image (H, W, C) (or (H, W) for one channel) in the model's input form; overrides noise.
        seed: int for reproducible noise; None draws one (recorded in ``result.params["seed"]``).
        strategy: "simple", "multiscale", "precursor" or a Strategy object such as ``Precursor(n=16)``.
        node: (row, col) to climb one node of the map instead of its mean.
        options: objective=Objective, conv_criterion=5e-4, stop_on_convergence=False, callback=f(Progress),
            cancel=Event or callable, param="pixel", transforms=None, optimizer="rms" (see ``run_layer``).
        """
        if start is not None:
            start = self._check_start(start, batch=1, single=True)
        if node is not None and options.get("objective") is None:
            options["objective"] = objective_for(self.layer, map_index, node)
        return self.run_layer([map_index], start, seed=[seed], steps=steps, epsilon=epsilon, noise=noise,
                              strategy=strategy, **options)[0]

    def run_layer(self, maps=None, start=None, *, seed=None, steps: int = 400, epsilon: float = 0.01, noise=None,
                  strategy="simple", objective: Objective | None = None, conv_criterion: float = 5e-4,
                  stop_on_convergence: bool = False, callback=None, cancel=None, param="pixel", transforms=None,
                  optimizer="rms") -> LayerResult:
        """OIPs of many maps (default: all maps of the layer) and/or seeds, as one batch.

        Each image is treated exactly as if run alone (per-image gradient normalisation and standardisation).
        maps: map (or unit) indices, default all. start: one start image per map (N, H, W, C), or one image
        (H, W, C) for all. seed: one int for all maps (each map starts from the same noise, as
        ``run(m, seed=seed)``) or a list with one seed per map; with one map and several seeds, runs that map once
        per seed. objective: what to climb (default: each map's mean, or each unit). conv_criterion: relative loss
        change that counts as converged; stop_on_convergence: end a map's run there. callback: f(Progress) after
        each chunk; cancel: a threading.Event or a callable returning True to stop. Other arguments as ``run``.

        How the image climbs (``climb.py``): param: "pixel" (the article's), "fourier", "maco" or a
        Parameterization; transforms: None (the article's), "standard" (lucid's set) or a Transform;
        optimizer: "rms" (the article's step, epsilon × gradient / RMS) or "adam" (epsilon is its learning rate).
        """
        t0 = time.perf_counter()
        self._stop.clear()
        steps = check_int(steps, "steps")
        strategy = strategy_for(strategy)
        if noise is not None and not isinstance(noise, (MultiScaleNoise, SpectralNoise)):
            raise TypeError(f"noise must be a MultiScaleNoise, a SpectralNoise or None; got {type(noise).__name__}")
        h, w, c = self.input_shape
        noise = noise if noise is not None else MultiScaleNoise.for_size(h, w)
        strategy.validate(noise)
        options = AscentOptions(epsilon=check_float(epsilon, "epsilon", high=MAX_EPSILON),
                                conv_criterion=check_float(conv_criterion, "conv_criterion", positive=False),
                                stop_on_convergence=bool(stop_on_convergence), callback=callback,
                                cancelled=self._cancelled(cancel), at_once=self.images_at_once())
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be a function taking a Progress, or None; got {type(callback).__name__}")
        maps, seeds = self._batch(maps, seed)
        b = len(maps)
        given = objective is not None
        objective = self._checked_objective(objective, maps)
        climb = Climb.make(param, transforms, optimizer, self.input_shape)
        climb.check(strategy, objective, b, options.at_once)
        if start is not None:
            start = self._check_start(start, batch=b)
        params = tf.nest.map_structure(tf.constant, objective.params(b))
        loop = self._loop(objective, climb)
        job = Job(loop=loop, params=params, options=options, noise=noise, seeds=seeds, start=start,
                  steps=steps, make_noise=self._noise, prepare=self.mode.prepare,
                  score=lambda states, p: self._score(objective, loop.images_of(states), p))
        out = strategy.run(job)
        out.state.images = loop.images_of(out.state.images)  # from here on: images in the model's input space
        final = self._final_scores(objective, out.state, params)
        common = dict(steps=steps, epsilon=options.epsilon, noise=noise.describe(), strategy=strategy.describe(),
                      conv_criterion=options.conv_criterion, stop_on_convergence=options.stop_on_convergence,
                      objective=objective.describe() if b == 1 or given else None, start_given=start is not None,
                      input_mode=repr(self.mode), **climb.describe())
        results = [self._result(k, maps[k], seeds[k], out, final[k], common) for k in range(b)]
        return LayerResult(results, seconds=time.perf_counter() - t0, error=out.state.error)

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
    def _loop(self, objective: Objective, climb: Climb | None = None) -> AscentLoop:
        """The compiled loop for this probe, objective structure, input mode and climb (default: the article's),
        shared by every engine on the same model (a new engine per run costs no new trace)."""
        climb = climb or Climb.make("pixel", None, "rms", self.input_shape)
        key = ("loop", self.layer.name, self.probe.pre_activation, objective.key(), self.mode.key(), self.jit_compile,
               climb.key())
        return shared(self.model, key, lambda: AscentLoop(
            self.probe, objective, self.mode, jit_compile=self.jit_compile, space=climb.space,
            optimizer=climb.optimizer, transform=climb.transform))

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
            out.append(np.asarray(objective.evaluate(self.probe(x), part, x)))
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
        return OIPResult(
            image=state.images[k].copy(),
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


def _layer_key(model: keras.Model, layer):
    """A layer given by name or index, as its name (the probe check explains bad values)."""
    if is_int(layer) and -len(model.layers) <= layer < len(model.layers):
        return model.layers[layer].name
    return layer


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])
