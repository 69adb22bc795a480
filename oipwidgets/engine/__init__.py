"""The numbers: probes, objectives, start noise, strategies, input modes and the compiled ascent loop.

Nothing here imports ipywidgets, bqplot or traitlets; widgets and outputs drive this package and draw its results.
"""

from .engine import OIPEngine
from .input_modes import Clip, Identity, InputMode, Standardize
from .noise import MultiScaleNoise, SpectralNoise
from .objectives import MapMean, Node, Objective, Unit, wrap_objective
from .result import LayerResult, OIPResult
from .strategies import Multiscale, Precursor, Simple, Strategy

__all__ = [
    "Clip",
    "Identity",
    "InputMode",
    "LayerResult",
    "MapMean",
    "Multiscale",
    "MultiScaleNoise",
    "Node",
    "OIPEngine",
    "OIPResult",
    "Objective",
    "Precursor",
    "Simple",
    "SpectralNoise",
    "Standardize",
    "Strategy",
    "Unit",
    "wrap_objective",
]
