"""OIPEngine: (trained Keras model, layer, map) → OIP, the image that activates the map most, grown out of noise.

The engine ties the parts together: a probe of the layer (``probe``), an objective (``objectives``), start noise
(``noise``), a start strategy (``strategies``), an input mode (``input_modes``) and the compiled loop (``ascent``).
It knows nothing of widgets; views drive it through ``run``/``run_layer``, a progress callback and ``stop()``.

Note for users: after many steps the ascent is chaotic for many maps. A change of one unit in the last place of the
start image can move the final image of about half of the maps of a deep layer by more than 1e-4, so compare OIPs
by the objective they reach, or run them from the same ``start`` image (and the same engine settings).
"""

from __future__ import annotations

import math
import threading
import time
from numbers import Integral, Real

import keras
import numpy as np
import tensorflow as tf

from .ascent import CONVERGED, DEAD, NONFINITE, RUNNING, STOPPED, AscentLoop, AscentState, ascend
from .input_modes import input_mode as _input_mode
from .noise import MultiScaleNoise, SpectralNoise, make_noise
from .objectives import Objective, objective_for
from .preprocessing import standardize
from .probe import LayerInfo, ensure_built, make_probe, probeable_layers
from .result import LayerResult, OIPResult
from .strategies import STRATEGIES, child_seeds, coarse_noise, stage_lengths

__all__ = ["OIPEngine"]


def _check_int(value, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}; got {value!r}")
    return int(value)


def _check_float(value, name: str, positive: bool = True) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}; got {value!r}")
    return float(value)


class OIPEngine:
    """Gradient ascent on the input of ``model`` to maximise objectives read at ``layer`` (name or index).

    model: any ``keras.Model`` with one image input (B, H, W, C); a Sequential model that was never built needs
        ``input_shape=(H, W, C)``.
    input_mode: what keeps the image in the model's input range after each step: "standardize" (the article's,
        per-image standardisation), "clip" ([0, 1]), "identity", or an ``InputMode`` such as ``Clip(0, 255)``.
    pre_activation: for a dense layer with softmax/sigmoid, climb the score before it.
    jit_compile: compile the step with XLA.
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
    ):
        self.model = ensure_built(model, input_shape)
        self.probe = make_probe(self.model, layer, pre_activation=pre_activation)
        self.layer: LayerInfo = self.probe.layer
        self.input_shape: tuple = tuple(int(s) for s in self.probe.input_shape)
        self.mode = _input_mode(input_mode)
        self.jit_compile = bool(jit_compile)
        self._loops: dict = {}
        self._stop = threading.Event()

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
    def run(
        self,
        map_index: int = 0,
        steps: int = 400,
        epsilon: float = 0.01,
        noise=None,
        start=None,
        seed=None,
        strategy: str = "simple",
        **options,
    ) -> OIPResult:
        """The OIP of one map (or unit): gradient ascent from ``start`` or from ``noise`` drawn with ``seed``.

        steps: ascent steps (for "multiscale": of the last stage; for "precursor": after the precursor search).
        epsilon: step size; each step moves the image by epsilon × the gradient scaled to unit RMS.
        noise: a MultiScaleNoise or SpectralNoise (default: the article's 4 scales sized to the input).
        start: a start image (H, W, C) (or (H, W) for one channel) in the model's input form; overrides noise.
        seed: int for reproducible noise; None draws one (recorded in ``result.params["seed"]``).
        strategy: "simple", "multiscale" or "precursor" (see ``oipwidgets.strategies``).
        options: objective=Objective, node=(row, col), conv_criterion=5e-4, stop_on_convergence=False,
            callback=f(Progress), cancel=Event or callable, stages=(20, 40, 80, steps), precursors=8,
            precursor_steps=20.
        """
        if start is not None:
            start = self._check_start(start, batch=1, single=True)
        return self.run_layer([map_index], start, seeds=[seed], steps=steps, epsilon=epsilon, noise=noise,
                              strategy=strategy, **options)[0]

    def run_layer(
        self,
        maps=None,
        start=None,
        *,
        seeds=None,
        seed=None,
        steps: int = 400,
        epsilon: float = 0.01,
        noise=None,
        strategy: str = "simple",
        objective: Objective | None = None,
        node=None,
        conv_criterion: float = 5e-4,
        stop_on_convergence: bool = False,
        callback=None,
        cancel=None,
        stages=None,
        precursors: int = 8,
        precursor_steps: int = 20,
    ) -> LayerResult:
        """OIPs of many maps (default: all maps of the layer) and/or seeds, as one batch.

        Each image is treated exactly as if run alone (per-image gradient normalisation and standardisation).
        maps: map (or unit) indices, default all. start: one start image per map (N, H, W, C), or one image
        (H, W, C) for all. seed: one seed for all maps (each map starts from the same noise, as ``run(m, seed=seed)``);
        seeds: one seed per map; with one map and several seeds, runs that map once per seed.
        Other arguments as ``run``.
        """
        t0 = time.perf_counter()
        self._stop.clear()
        steps = _check_int(steps, "steps")
        epsilon = _check_float(epsilon, "epsilon")
        conv_criterion = _check_float(conv_criterion, "conv_criterion", positive=False)
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
        if noise is not None and not isinstance(noise, (MultiScaleNoise, SpectralNoise)):
            raise TypeError(f"noise must be a MultiScaleNoise, a SpectralNoise or None; got {type(noise).__name__}")
        h, w, c = self.input_shape
        noise = noise if noise is not None else MultiScaleNoise.for_size(h, w)

        maps = list(range(self.size)) if maps is None else [maps] if isinstance(maps, Integral) else list(maps)
        if seeds is None:
            seeds = [seed]
        seeds = [_fresh_seed() if s is None else _check_int(s, "seed", low=0) for s in seeds]
        if len(maps) == 1 and len(seeds) > 1:
            maps = maps * len(seeds)
        if len(seeds) == 1:
            seeds = seeds * len(maps)
        if len(seeds) != len(maps) or not maps:
            raise ValueError(f"give one seed, or one per map: got {len(seeds)} seeds for {len(maps)} maps")
        b = len(maps)
        objective = objective if objective is not None else self.objective(np.asarray(maps), node)
        objective.validate(self.layer, b)
        if start is not None:
            start = self._check_start(start, batch=b)
        if strategy == "multiscale" and not isinstance(noise, MultiScaleNoise):
            raise ValueError("strategy 'multiscale' needs a MultiScaleNoise (it adds its scales one by one)")
        if strategy != "simple":
            _check_int(precursors, "precursors")
            _check_int(precursor_steps, "precursor_steps")
        cancelled = self._cancelled(cancel)
        loop = self._loop(objective)
        params = tf.nest.map_structure(tf.constant, objective.params(b))
        common = dict(epsilon=epsilon, conv_criterion=conv_criterion, stop_on_convergence=stop_on_convergence,
                      callback=callback, cancelled=cancelled)

        if strategy == "simple":
            starts = start if start is not None else self._noise(noise, seeds)
            state, snaps = ascend(loop, AscentState.start(starts), params, steps=steps, **common)
            plan = {"steps": steps}
        elif strategy == "multiscale":
            parts = noise.split()
            lengths = stage_lengths(len(parts), steps, stages)
            stage_seeds = [child_seeds(s, len(parts)) for s in seeds]
            starts = start if start is not None else self._noise(parts[0], [ss[0] for ss in stage_seeds])
            state, snaps, offset = AscentState.start(starts), None, 0
            total = sum(lengths)
            for k, n in enumerate(lengths):
                if k > 0:
                    if np.all(state.status == STOPPED):
                        break
                    extra = self._noise(parts[k], [ss[k] for ss in stage_seeds], raw=True)
                    mixed = self.mode.prepare(standardize(state.images + parts[k].weights[0] * extra))
                    state.images = np.where((state.status == STOPPED)[:, None, None, None], state.images, mixed)
                    state.status[state.status != STOPPED] = RUNNING
                marks = None if k == len(lengths) - 1 else [0, n - 1]
                state, snaps = ascend(loop, state, params, steps=n, snapshot_steps=marks, offset=offset, total=total,
                                      stage=(k, len(lengths)), snaps=snaps, **common)
                offset += n
            plan = {"stages": list(lengths), "scales": [p.scales[0] for p in parts]}
        else:  # precursor
            cand_seeds = [child_seeds(s, precursors) for s in seeds]
            if start is not None:
                cand = np.repeat(start, precursors, axis=0)
            else:
                cand = self._noise(coarse_noise(noise), [cs for per in cand_seeds for cs in per])
            pre_obj_params = tf.nest.map_structure(lambda t: tf.repeat(t, precursors, axis=0), params)
            pre = AscentState.start(cand)
            pre, _ = ascend(loop, pre, pre_obj_params, steps=precursor_steps, snapshot_steps=[],
                            total=precursor_steps + steps, stage=(0, 2), **common)
            scores = self._score(objective, pre.images, pre_obj_params).reshape(b, precursors)
            alive = (pre.status != DEAD).reshape(b, precursors)
            best = np.argmax(np.where(alive, scores, -np.inf) if alive.any() else scores, axis=1)
            pick = np.arange(b) * precursors + best
            state = AscentState.start(pre.images[pick])
            state.losses = [list(pre.losses[i]) for i in pick]
            state.updates = pre.updates[pick].copy()
            state.last_step, state.last_loss = pre.last_step[pick].copy(), pre.last_loss[pick].copy()
            state.status = np.where(pre.status[pick] == STOPPED, STOPPED, RUNNING).astype(np.int32)
            starts = cand[pick]
            state, snaps = ascend(loop, state, params, steps=steps, offset=precursor_steps,
                                  total=precursor_steps + steps, stage=(1, 2), **common)
            plan = {"precursors": precursors, "precursor_steps": precursor_steps, "steps": steps,
                    "precursor_scores": scores.tolist(), "picked": best.tolist()}

        final = self._score(objective, state.images, params)
        results = []
        for k in range(b):
            results.append(self._result(k, maps[k], seeds[k], starts[k], state, snaps, final[k], plan, dict(
                steps=steps, epsilon=epsilon, noise=noise.describe(), strategy=strategy,
                conv_criterion=conv_criterion, stop_on_convergence=stop_on_convergence,
                objective=objective.describe() if b == 1 else None, node=node,
                start_given=start is not None, input_mode=repr(self.mode))))
        return LayerResult(results, seconds=time.perf_counter() - t0)

    # ----------------------------------------------------------------- helpers
    def _loop(self, objective: Objective) -> AscentLoop:
        key = (objective.key(), self.mode.key())
        if key not in self._loops:
            self._loops[key] = AscentLoop(self.probe, objective, self.mode, jit_compile=self.jit_compile)
        return self._loops[key]

    def _score(self, objective: Objective, images: np.ndarray, params: dict) -> np.ndarray:
        """The objective of each image (B,) float64, through a traced function kept per objective structure."""
        key = ("score", objective.key())
        if key not in self._loops:
            self._loops[key] = tf.function(lambda x, p, _o=objective: _o(self.probe(x), p), reduce_retracing=True)
        return self._loops[key](tf.constant(images, tf.float32), params).numpy().astype(np.float64)

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

    def _result(self, k, index, seed, start, state, snaps, final, plan, params) -> OIPResult:
        code = int(state.status[k])
        losses = np.asarray(state.losses[k], dtype=np.float64)
        steps_done = int(state.updates[k])
        snap_steps, snap_images, snap_losses = list(snaps.steps[k]), list(snaps.images[k]), list(snaps.losses[k])
        last_step = int(state.last_step[k])
        if last_step >= 0 and (not snap_steps or snap_steps[-1] != last_step):
            snap_steps.append(last_step)
            snap_images.append(state.images[k].copy())
            snap_losses.append(float(state.last_loss[k]))
        conv_at = int(state.conv_at[k]) if state.conv_at[k] >= 0 else None
        converged_now = code == CONVERGED or (code == RUNNING and state.conv_run[k] >= 4)
        status = {DEAD: "dead", STOPPED: "stopped", NONFINITE: "stopped"}.get(
            code, "converged" if converged_now else "max_steps"
        )
        what = f"{'unit' if self.layer.kind == 'units' else 'map'} {index} of {self.layer.name}"
        message = {
            "dead": f"{what} never fired for this start (loss and gradient exactly 0 for more than 10 steps): "
            "try coarser noise (larger weights on the coarse scales), strategy='multiscale' or 'precursor', "
            "or another seed.",
            "stopped": f"{what}: stopped after {steps_done} steps"
            + (" (activation or gradient became non-finite)" if code == NONFINITE else " (cancelled)"),
            "converged": f"{what} converged at step {conv_at}",
            "max_steps": f"{what}: {steps_done} steps done, not converged",
        }[status]
        h, w, c = self.input_shape
        return OIPResult(
            image=state.images[k].copy(),
            start=np.asarray(start, np.float32).copy(),
            snapshots=np.array(snap_images, dtype=np.float32).reshape(-1, h, w, c),
            snapshot_steps=np.array(snap_steps, dtype=np.int64),
            snapshot_losses=np.array(snap_losses, dtype=np.float64),
            losses=losses,
            status=status,
            steps=steps_done,
            final_loss=float(final),
            converged_at=conv_at,
            message=message,
            params={"layer": self.layer.name, "map": int(index), "seed": seed, **params, **plan},
        )

    def __repr__(self) -> str:
        return f"OIPEngine(layer={self.layer.name!r}, {self.layer.kind}={self.size}, input={self.input_shape})"


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0])
