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

__all__ = ["Strategy", "Simple", "Multiscale", "Precursor", "Job", "Outcome", "STRATEGIES", "strategy_for",
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
        state, snaps, offset, total = AscentState.start(starts), None, 0, sum(lengths)
        for k, n in enumerate(lengths):
            if k > 0:
                if state.error is not None or np.all(state.status == STOPPED):
                    break
                extra = job.make_noise(parts[k], [ss[k] for ss in stage_seeds], raw=True)
                mixed = job.prepare(standardize(state.images + parts[k].weights[0] * extra))
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
