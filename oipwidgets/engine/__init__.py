"""The numbers: probes, objectives, start noise, strategies, input modes and the compiled ascent loop.

Nothing here imports ipywidgets, bqplot or traitlets; widgets and outputs drive this package and draw its results.
"""

from .diversity import Direction, Diversity, Neuron
from .engine import OIPEngine
from .input_modes import Clip, Identity, InputMode, Standardize
from .noise import MultiScaleNoise, SpectralNoise
from .objectives import ImageObjective, MapMean, Node, Objective, Unit, wrap_objective
from .optimizers import Adam, Optimizer, RMSAscent
from .parameterizations import Fourier, Maco, Parameterization, Pixel, colour_matrix_from, mean_magnitude
from .regularizers import L1, L2, Blur, TotalVariation
from .result import LayerResult, OIPResult
from .preprocess import PRESETS as PREPROCESS_PRESETS, Preprocess, saturated_share
from .recipe import RECIPES, Recipe
from .strategies import FromData, Multiscale, Precursor, Simple, Strategy
from .transforms import Compose, Jitter, Pad, Rotate, Scale, Transform, standard_transforms

__all__ = [
    "Adam",
    "Blur",
    "Compose",
    "Direction",
    "Diversity",
    "Fourier",
    "FromData",
    "ImageObjective",
    "Jitter",
    "L1",
    "L2",
    "Maco",
    "Neuron",
    "Optimizer",
    "Pad",
    "Parameterization",
    "Pixel",
    "RMSAscent",
    "Rotate",
    "Scale",
    "TotalVariation",
    "Transform",
    "colour_matrix_from",
    "mean_magnitude",
    "standard_transforms",
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
    "Preprocess",
    "PREPROCESS_PRESETS",
    "Recipe",
    "RECIPES",
    "Simple",
    "SpectralNoise",
    "Standardize",
    "Strategy",
    "Unit",
    "saturated_share",
    "wrap_objective",
]
