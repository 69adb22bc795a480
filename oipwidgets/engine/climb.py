"""How an image climbs: its parameterisation, the robustness transforms it must survive, and the optimiser.

The article's climb is ``Climb.make("pixel", None, "rms", …)``: the image itself, no transform, a step of epsilon ×
the gradient scaled to unit RMS, re-standardised after each step. The field's readable-image recipe (lucid,
Xplique) is ``Climb.make("fourier", "standard", "adam", …)``; MACO's is ``"maco"`` with transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

from .optimizers import Optimizer, optimizer as _optimizer
from .parameterizations import Parameterization, parameterization
from .transforms import Transform

__all__ = ["Climb", "transform_for"]


def transform_for(spec, image_shape: tuple | None = None) -> Transform | None:
    """None (no transform), "standard" (lucid's standard set sized to ``image_shape`` (H, W, C), see
    ``transforms.standard_transforms``) or a Transform; else a ValueError naming the choices."""
    if spec is None or isinstance(spec, Transform):
        return spec
    if isinstance(spec, str) and spec == "standard":
        from .transforms import standard_transforms

        return standard_transforms(None if image_shape is None else min(image_shape[:2]))
    raise ValueError(f"unknown transforms {spec!r}; valid: None, 'standard' or a Transform such as Jitter(4)")


@dataclass(frozen=True)
class Climb:
    """A bound parameterisation (``space``), a transform (or None) and an optimiser, all immutable and keyed."""

    space: Parameterization
    transform: Transform | None
    optimizer: Optimizer

    @classmethod
    def make(cls, param, transforms, optimizer, image_shape: tuple) -> Climb:
        """Validated from names or objects; the parameterisation bound to ``image_shape`` (H, W, C)."""
        return cls(parameterization(param).bind(*image_shape), transform_for(transforms, image_shape),
                   _optimizer(optimizer))

    @property
    def article(self) -> bool:
        """True for the article's pixel climb with its RMS step and no transform."""
        return self.space.projected and self.transform is None and self.optimizer.name == "rms"

    def check(self, strategy, objective, batch: int, at_once: int | None) -> None:
        """Refuse, before any work, what this climb cannot run: a strategy that edits images in pixel space with
        another parameterisation, a coupled objective (diversity) whose batch exceeds the memory budget."""
        if getattr(strategy, "pixel_only", False) and not (self.space.projected and self.optimizer.slots == 0):
            raise ValueError(f"strategy {strategy.describe()!r} adds noise to the image between stages, which only "
                             f"the 'pixel' parameterisation with the 'rms' step can take; use 'simple' or "
                             f"'precursor' with {self.space.describe()!r} and {self.optimizer.describe()!r}")
        if objective.couples_batch and at_once is not None and batch > at_once:
            raise ValueError(f"{objective.describe()} compares the {batch} images of its batch, which must climb "
                             f"together, but the memory budget allows {at_once} at once; use fewer images or a "
                             "larger memory_budget")

    def key(self) -> tuple:
        return (self.space.key(), None if self.transform is None else self.transform.key(), self.optimizer.key())

    def describe(self) -> dict:
        """What a result records of this climb."""
        return {"param": self.space.describe(), "optimizer": self.optimizer.describe(),
                "transforms": None if self.transform is None else self.transform.describe()}
