"""Results of the ascent: one OIP (``OIPResult``) and the OIPs of many maps run as one batch (``LayerResult``).

Step numbers follow the article: step j (0-based) measures the loss of the current image, then updates it; a
snapshot "at step j" is the image after the update of step j. ``losses[j]`` is the objective measured at step j.
``steps`` counts the updates made. A run that stops on convergence or on a dead map measures one more loss than it
makes updates (it stops before updating).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["STATUSES", "STATUS_LABELS", "status_message", "status_summary", "OIPResult", "LayerResult"]

#: Why a run ended: criterion met and stopping on it, all steps done, the map never fired, cancelled, or the image
#: or its gradient became NaN/infinite (too large a step for an unbounded input mode, or a model that overflows).
STATUSES = ("converged", "max_steps", "dead", "stopped", "nonfinite", "error")

#: Short labels for tiles and tables.
STATUS_LABELS = {"converged": "converged", "max_steps": "max steps", "dead": "DEAD", "stopped": "stopped",
                 "nonfinite": "NaN/inf", "error": "error"}

DEAD_ADVICE = ("try coarser noise (larger weights on the coarse scales), strategy='multiscale' or 'precursor', "
               "or another seed")


def status_message(status: str, what: str, steps: int, converged_at: int | None = None,
                   error: BaseException | None = None) -> str:
    """The full sentence a result carries: ``what`` names the map ("map 5 of Conv2D_3"), ``steps`` the updates
    made, ``error`` what ended an "error" run."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
    return {
        "dead": f"{what} never fired for this start (loss and gradient exactly 0 for more than 10 steps): "
        f"{DEAD_ADVICE}.",
        "stopped": f"{what}: stopped after {steps} steps (cancelled)",
        "error": f"{what}: ended by an error after {steps} steps (kept): {type(error).__name__}: {error}",
        "nonfinite": f"{what}: stopped after {steps} steps: the activation, its gradient or the image became NaN or "
        "infinite (try a smaller epsilon, or an input mode that bounds the image such as 'standardize' or Clip)",
        "converged": f"{what} converged at step {converged_at}",
        "max_steps": f"{what}: {steps} steps done, not converged",
    }[status]


def status_summary(result: OIPResult) -> str:
    """The short line a widget shows for a finished run, with the objective reached."""
    text = {
        "converged": f"converged at step {result.converged_at}",
        "max_steps": f"done: {result.steps} steps, not converged",
        "dead": "dead map: try coarser noise (more weight on the coarse scales) or the multiscale/precursor strategy",
        "stopped": f"stopped after {result.steps} steps",
        "nonfinite": f"NaN/infinite after {result.steps} steps: try a smaller epsilon or a bounding input mode",
        "error": result.message,
    }[result.status]
    return f"{text} — final objective {result.final_loss:.4g}"


@dataclass
class OIPResult:
    """One OIP: the final image (H, W, C) float32 and how it got there."""

    image: np.ndarray  # (H, W, C) float32, the image after the last update
    start: np.ndarray  # (H, W, C) float32, the image the ascent started from
    snapshots: np.ndarray  # (k, H, W, C) float32, images after the updates of `snapshot_steps`
    snapshot_steps: np.ndarray  # (k,) int, 0-based step numbers
    snapshot_losses: np.ndarray  # (k,) float, loss measured at those steps (before their update)
    losses: np.ndarray  # (n,) float64, the objective at each step
    status: str  # one of STATUSES
    steps: int  # updates made
    final_loss: float  # the objective of `image` itself (for a stopped run: the last objective it measured)
    converged_at: int | None = None  # first step at which the convergence test held 4 times in a row
    message: str = ""
    params: dict = field(default_factory=dict)  # layer, map, epsilon, noise, seed, strategy, recipe, …
    #: share of the image's values within 2 % of its range's ends (``value_range``, else its own min and max)
    saturated: float = 0.0
    #: (low, high) of the image space (RGB (0, 1) with a ``preprocess`` convention), None when unbounded
    value_range: tuple | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {self.status!r}")

    @property
    def dead(self) -> bool:
        return self.status == "dead"

    def to_npz(self, path) -> Path:
        """Save images, snapshots, steps, losses and parameters (as JSON) to an ``.npz`` file; returns the path."""
        path = Path(path)
        np.savez_compressed(
            path,
            image=self.image,
            start=self.start,
            snapshots=self.snapshots,
            snapshot_steps=self.snapshot_steps,
            snapshot_losses=self.snapshot_losses,
            losses=self.losses,
            meta=np.array(
                json.dumps(
                    {
                        "status": self.status,
                        "steps": self.steps,
                        "final_loss": self.final_loss,
                        "converged_at": self.converged_at,
                        "message": self.message,
                        "saturated": self.saturated,
                        "value_range": self.value_range,
                        "params": self.params,
                    },
                    default=_jsonable,
                )
            ),
        )
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path) -> OIPResult:
        """Read a result written by ``to_npz``."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in ("image", "start", "snapshots", "snapshot_steps", "snapshot_losses", "losses")}
        if meta.get("value_range") is not None:
            meta["value_range"] = tuple(meta["value_range"])
        return cls(**arrays, **meta)

    def __repr__(self) -> str:
        where = self.params.get("layer"), self.params.get("map")
        return (
            f"OIPResult(layer={where[0]!r}, map={where[1]!r}, status={self.status!r}, steps={self.steps}, "
            f"final_loss={self.final_loss:.4g})"
        )


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


@dataclass
class LayerResult:
    """The OIPs of several maps (or seeds) run as one batch, in the order asked for."""

    results: list[OIPResult]
    seconds: float = 0.0  # wall time of the batch run
    error: BaseException | None = None  # what ended the run early (status "error"; the steps done are kept)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i) -> OIPResult:
        return self.results[i]

    def __iter__(self):
        return iter(self.results)

    @property
    def images(self) -> np.ndarray:
        """(N, H, W, C) float32 final images."""
        return np.stack([r.image for r in self.results])

    @property
    def final_losses(self) -> np.ndarray:
        return np.array([r.final_loss for r in self.results])

    @property
    def statuses(self) -> list[str]:
        return [r.status for r in self.results]

    @property
    def maps(self) -> list:
        return [r.params.get("map") for r in self.results]

    def __repr__(self) -> str:
        counts = {s: self.statuses.count(s) for s in STATUSES if s in self.statuses}
        return f"LayerResult({len(self)} OIPs, {counts}, {self.seconds:.2f} s)"
