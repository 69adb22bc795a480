"""Start strategies: how the ascent's start image is made and grown (the article's strategy 0 and its plans 1, 2).

Each strategy is a small immutable object that owns three things: how it builds the start of a batch, how it runs
its stages with the engine's compiled loop, and which snapshot steps it will produce (``snapshot_plan``), so a
view can lay out its grid before the run.

* ``Simple()`` (the article's strategy 0): one start noise with all scales, one ascent of ``steps`` steps.
* ``Multiscale(stages=(20, 40, 80))`` (the article's planned strategy 1): start from the coarsest noise scale alone,
  evolve it, add the next finer scale (with its weight) and evolve again, … ``stages`` are the lengths of the
  stages before the last one (continued by doubling when the noise has more scales); the last stage has
  ``steps``. Helps maps of deep layers that respond only to large structures.
* ``Precursor(n=8, steps=20)`` (the article's planned "precursor" search): draw ``n`` coarse starts (the noise
  without its finest scale), run each ``steps`` steps as one batch, keep the one that reached the highest objective
  and continue it for the run's ``steps``. Helps with maps that are "dead" for most noises but fire for some.

``strategy_for("simple" | "multiscale" | "precursor" | Strategy)`` turns a name into the default object.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ..models.preprocessing import standardize
from .ascent import AscentOptions, AscentState, Stage, ascend, snapshot_schedule
from .loop import DEAD, RUNNING, STOPPED, AscentLoop
from .noise import MultiScaleNoise
from .validation import check_int, from_spec

__all__ = ["Strategy", "Simple", "Multiscale", "Precursor", "FromData", "Job", "Outcome", "STRATEGIES", "strategy_for",
           "child_seeds"]

ARTICLE_STAGES = (20, 40, 80)


@dataclass
class Job:
    """What a strategy gets from the engine for one batch run.

    loop: the compiled ascent; params: the objective's per-image parameters (tensors); options: how to climb;
    noise: the start noise spec; seeds: one per image; start: given start images (B, H, W, C) or None; steps: the
    run's (last stage's) step count; make_noise(spec, seeds, raw=False): start images (B, H, W, C), in the input
    mode's range unless ``raw``; prepare(images): a standardised image into the input mode's range;
    score(images, params): the objective of each image (B,).
    """

    loop: AscentLoop
    params: dict
    options: AscentOptions
    noise: object
    seeds: list
    start: np.ndarray | None
    steps: int
    make_noise: Callable
    prepare: Callable
    score: Callable
    mode: object = None  # the engine's InputMode (its value_range says how images blend)
    score_images: Callable | None = None  # score(images, params) of images (B, H, W, C), not loop states


@dataclass
class Outcome:
    """What a strategy returns: the final state, the snapshots, each image's start and what it planned."""

    state: AscentState
    snaps: object
    starts: np.ndarray
    plan: dict


class Strategy(abc.ABC):
    """Base class: ``run(job) -> Outcome`` and ``snapshot_plan(steps, noise) -> [global step numbers]``."""

    name = "strategy"
    pixel_only = False  # True when the strategy edits images between stages (only the pixel space can take that)

    def validate(self, noise) -> None:
        """Raise ValueError when this strategy cannot work with ``noise``."""

    @abc.abstractmethod
    def snapshot_plan(self, steps: int, noise=None) -> list[int]:
        """The global step numbers of the snapshots a run of ``steps`` steps will produce (when it runs them all)."""

    def total_steps(self, steps: int, noise=None) -> int:
        """Steps of a whole run (all stages)."""
        return steps

    @abc.abstractmethod
    def run(self, job: Job) -> Outcome:
        """Run a batch to its end (or its cancel)."""

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class Simple(Strategy):
    """The article's strategy 0: one start noise with all its scales, one ascent of ``steps`` steps."""

    name = "simple"

    def snapshot_plan(self, steps, noise=None):
        return snapshot_schedule(steps)

    def run(self, job):
        starts = job.start if job.start is not None else job.make_noise(job.noise, job.seeds)
        state, snaps = ascend(job.loop, AscentState.start(job.loop.states_of(starts)), job.params, job.options,
                              Stage(job.steps))
        return Outcome(state, snaps, starts, {"steps": job.steps})


@dataclass(frozen=True)
class Multiscale(Strategy):
    """Coarsest noise scale first, then each finer scale added with its weight and evolved again.

    stages: the step counts of the stages before the last (the last has the run's ``steps``); with more noise
    scales than ``len(stages) + 1`` the list goes on doubling, with fewer it is cut.
    """

    stages: tuple = ARTICLE_STAGES
    name = "multiscale"
    pixel_only = True

    def __post_init__(self):
        stages = tuple(self.stages)
        if not stages:
            raise ValueError("Multiscale needs at least one early stage length, e.g. stages=(20, 40, 80)")
        stages = tuple(check_int(s, "each multiscale stage length") for s in stages)
        object.__setattr__(self, "stages", stages)

    def validate(self, noise):
        if not isinstance(noise, MultiScaleNoise):
            raise ValueError("strategy 'multiscale' needs a MultiScaleNoise (it adds its scales one by one)")

    def lengths(self, steps: int, n_scales: int) -> tuple[int, ...]:
        """Steps per stage, one per (non-zero-weight) noise scale; the last is ``steps``."""
        early = list(self.stages)
        while len(early) < n_scales - 1:
            early.append(2 * early[-1])
        return (*early[: n_scales - 1], steps)

    def _n_scales(self, noise) -> int:
        return len(noise.split()) if isinstance(noise, MultiScaleNoise) else 1

    def snapshot_plan(self, steps, noise=None):
        lengths = self.lengths(steps, self._n_scales(noise if noise is not None else MultiScaleNoise()))
        plan, offset = [], 0
        for k, n in enumerate(lengths):
            plan += [offset + s for s in (snapshot_schedule(n) if k == len(lengths) - 1 else sorted({0, n - 1}))]
            offset += n
        return plan

    def total_steps(self, steps, noise=None):
        return sum(self.lengths(steps, self._n_scales(noise if noise is not None else MultiScaleNoise())))

    def run(self, job):
        parts = job.noise.split()
        lengths = self.lengths(job.steps, len(parts))
        stage_seeds = [child_seeds(s, len(parts)) for s in job.seeds]
        starts = job.start if job.start is not None else job.make_noise(parts[0], [ss[0] for ss in stage_seeds])
        state, snaps, offset, total = AscentState.start(job.loop.states_of(starts)), None, 0, sum(lengths)
        for k, n in enumerate(lengths):
            if k > 0:
                if state.error is not None or np.all(state.status == STOPPED):
                    break
                extra = job.make_noise(parts[k], [ss[k] for ss in stage_seeds], raw=True)
                mixed = job.loop.states_of(job.prepare(standardize(state.images + parts[k].weights[0] * extra)))
                state.images = np.where((state.status == STOPPED)[:, None, None, None], state.images, mixed)
                state.status[state.status != STOPPED] = RUNNING
            marks = None if k == len(lengths) - 1 else (0, n - 1)
            stage = Stage(n, marks, offset=offset, total=total, index=k, count=len(lengths))
            state, snaps = ascend(job.loop, state, job.params, job.options, stage, snaps)
            offset += n
        return Outcome(state, snaps, starts, {"stages": list(lengths), "scales": [p.scales[0] for p in parts]})


@dataclass(frozen=True)
class Precursor(Strategy):
    """``n`` coarse starts run ``steps`` steps each as one batch; the best one goes on for the run's steps."""

    n: int = 8
    steps: int = 20
    name = "precursor"

    def __post_init__(self):
        object.__setattr__(self, "n", check_int(self.n, "precursor count n"))
        object.__setattr__(self, "steps", check_int(self.steps, "precursor steps"))

    def snapshot_plan(self, steps, noise=None):
        return [self.steps + s for s in snapshot_schedule(steps)]

    def total_steps(self, steps, noise=None):
        return self.steps + steps

    def run(self, job):
        b, n = len(job.seeds), self.n
        cand_seeds = [child_seeds(s, n) for s in job.seeds]
        if job.start is not None:
            cand = np.repeat(job.start, n, axis=0)
        else:
            cand = job.make_noise(_coarse(job.noise), [cs for per in cand_seeds for cs in per])
        pre_params = tf.nest.map_structure(lambda t: tf.repeat(t, n, axis=0), job.params)
        total = self.steps + job.steps
        pre, _ = ascend(job.loop, AscentState.start(job.loop.states_of(cand)), pre_params, job.options,
                        Stage(self.steps, (), total=total, index=0, count=2))
        if pre.error is not None:  # the search itself failed: report its first candidate per map
            pick = np.arange(b) * n
            return Outcome(pre.take(pick), _, cand[pick], {"precursors": n, "precursor_steps": self.steps})
        scores = job.score(pre.images, pre_params).reshape(b, n)
        alive = (pre.status != DEAD).reshape(b, n)
        best = np.argmax(np.where(alive, scores, -np.inf) if alive.any() else scores, axis=1)
        pick = np.arange(b) * n + best
        state = pre.take(pick)
        state.conv_at[:], state.conv_run[:] = -1, 0  # the continuation is a new article loop
        state.status = np.where(state.status == STOPPED, STOPPED, RUNNING).astype(np.int32)
        state, snaps = ascend(job.loop, state, job.params, job.options,
                              Stage(job.steps, offset=self.steps, total=total, index=1, count=2))
        plan = {"precursors": n, "precursor_steps": self.steps, "steps": job.steps,
                "precursor_scores": scores.tolist(), "picked": best.tolist()}
        return Outcome(state, snaps, cand[pick], plan)


@dataclass(frozen=True, eq=False, repr=False)
class FromData(Strategy):
    """Start from real images: each image of the batch starts from ``mix`` × an example + (1 − mix) × its noise.

    images: example images (N, H, W, C) in the engine's image space (the model's input form for the article's
    standardisation, RGB in [0, 1] with a ``preprocess``). pick: True to give each image of the batch the example
    that scores highest under its objective (N × batch forward passes, once); False to use ``images[k]`` for image
    k (N must equal the batch). The cure for a map that no noise fires but real images do: the climb starts where
    the map is alive, and the noise keeps it from being a copy of the example. Standardised images blend as
    standardised images; images in a range blend linearly (and stay inside it).
    """

    images: np.ndarray = None
    mix: float = 0.5
    pick: bool = True
    name = "data"

    def __post_init__(self):
        images = np.asarray(self.images, np.float32) if self.images is not None else None
        if images is None or images.ndim != 4 or len(images) == 0 or not np.all(np.isfinite(images)):
            raise ValueError("FromData needs example images (N, H, W, C) of finite values; got "
                             f"{None if images is None else images.shape}")
        object.__setattr__(self, "images", images)
        mix = float(self.mix)
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"FromData mix must be in [0, 1] (the example's share of the start); got {self.mix!r}")
        object.__setattr__(self, "mix", mix)

    def snapshot_plan(self, steps, noise=None):
        return snapshot_schedule(steps)

    def describe(self):
        return f"data ({len(self.images)} examples, mix {self.mix:g})"

    def __repr__(self):
        return f"FromData({len(self.images)} examples, mix={self.mix:g}, pick={self.pick})"

    def chosen(self, job: Job) -> tuple[np.ndarray, np.ndarray]:
        """(examples (B, H, W, C), their indices (B,)): the best-scoring example for each image of the batch, or
        ``images[k]`` for image k when not picking."""
        b, n = len(job.seeds), len(self.images)
        if not self.pick:
            if n != b:
                raise ValueError(f"FromData(pick=False) needs one example per image of the batch: {n} for {b}")
            return self.images, np.arange(b)
        params = tf.nest.map_structure(lambda t: tf.repeat(t, n, axis=0), job.params)
        scores = np.asarray(job.score_images(np.tile(self.images, (b, 1, 1, 1)), params)).reshape(b, n)
        best = np.argmax(scores, axis=1)
        return self.images[best], best

    def run(self, job):
        examples, which = self.chosen(job)
        if job.start is not None:
            noise = job.start
        else:
            noise = job.make_noise(job.noise, job.seeds)
        if job.mode is not None and job.mode.value_range is not None:
            starts = self.mix * examples + (1 - self.mix) * noise
        else:
            starts = job.prepare(standardize(self.mix * standardize(examples) + (1 - self.mix) * standardize(noise)))
        starts = np.asarray(starts, np.float32)
        state, snaps = ascend(job.loop, AscentState.start(job.loop.states_of(starts, keep=True)), job.params,
                              job.options,
                              Stage(job.steps))
        return Outcome(state, snaps, starts, {"steps": job.steps, "examples": which.tolist(), "mix": self.mix})


STRATEGIES = {"simple": Simple, "multiscale": Multiscale, "precursor": Precursor}


def strategy_for(spec) -> Strategy:
    """A Strategy from a name ("simple", "multiscale", "precursor") or a Strategy (returned as it is)."""
    return from_spec(spec, Strategy, STRATEGIES, "strategy", "a Strategy such as Multiscale(stages=(20, 40, 80))")


def _coarse(noise):
    """The precursor's start noise: the noise without its finest scale (when it has more than one), else itself."""
    if isinstance(noise, MultiScaleNoise) and len([w for w in noise.weights if w > 0]) > 1:
        return noise.without_finest()
    return noise


def child_seeds(seed: int, n: int) -> list[int]:
    """n independent seeds derived from one (numpy SeedSequence): same seed, same children."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]
