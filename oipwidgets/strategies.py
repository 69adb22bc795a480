"""Start strategies: how the ascent's start image is made and grown (the article's strategy 0 and its plans 1, 2).

* ``"simple"`` (the article's strategy 0): one start noise with all scales, one ascent of ``steps`` steps.
* ``"multiscale"`` (the article's planned strategy 1): start from the coarsest noise scale alone, evolve it, add the
  next finer scale (with its weight) and evolve again, … Stage lengths default to the article's 20, 40, 80, then
  ``steps`` for the last stage. Helps maps of deep layers that respond only to large structures: the coarse stage
  finds a large pattern first and the finer noise only refines it, instead of pixel noise drowning the signal.
* ``"precursor"`` (the article's planned "precursor" search): draw ``precursors`` coarse starts (the noise without
  its finest scale), run each ``precursor_steps`` steps as one batch, keep the one that reached the highest
  objective and continue it for ``steps`` steps. Helps with maps that are "dead" for most noises but fire for some:
  instead of giving up on one unlucky start, it tries several and keeps the best.

Strategies only plan; the engine runs the plan with its compiled loop.
"""

from __future__ import annotations

import numpy as np

from .noise import MultiScaleNoise

__all__ = ["STRATEGIES", "stage_lengths", "coarse_noise", "child_seeds"]

STRATEGIES = ("simple", "multiscale", "precursor")
ARTICLE_STAGES = (20, 40, 80)


def stage_lengths(n_scales: int, steps: int, stages=None) -> tuple[int, ...]:
    """Steps per multiscale stage, one per noise scale; default the article's 20, 40, 80 (doubling on), then ``steps``."""
    if stages is None:
        early = [ARTICLE_STAGES[k] if k < len(ARTICLE_STAGES) else 20 * 2**k for k in range(n_scales - 1)]
        return (*early, steps)
    stages = tuple(int(s) for s in stages)
    if len(stages) != n_scales or any(s < 1 for s in stages):
        raise ValueError(
            f"stages needs one positive step count per noise scale ({n_scales} scales); got {stages!r}"
        )
    return stages


def coarse_noise(noise):
    """The precursor's start noise: the noise without its finest scale (when it has more than one), else itself."""
    if isinstance(noise, MultiScaleNoise) and len([w for w in noise.weights if w > 0]) > 1:
        return noise.without_finest()
    return noise


def child_seeds(seed: int, n: int) -> list[int]:
    """n independent seeds derived from one (numpy SeedSequence): same seed, same children."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]
