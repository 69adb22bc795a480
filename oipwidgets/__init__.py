"""oipwidgets: Jupyter widgets that show which input patterns (OIPs) activate the maps of a trained Keras CNN.

Start with ``load_default_model("mnist")`` (a pretrained copy of the article's CNN, shipped in the package)
or any ``keras.Model`` of your own.
"""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) is noise in a notebook; users can still set it.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# One intra-op thread per batch part, one part per core (see oipwidgets.runtime; OIPWIDGETS_TF_THREADS overrides).
# Done first: TensorFlow's threading can only be set before its first op; it is left alone if that already ran.
from .runtime import configure_threads as _configure_threads  # noqa: E402

_configure_threads()

from . import datasets, preprocessing  # noqa: E402
from .engine import OIPEngine  # noqa: E402
from .activations import ActivationViewer  # noqa: E402
from .explorer import OIPExplorer  # noqa: E402
from .zoo import LayerZoo  # noqa: E402
from .input_modes import Clip, Identity, Standardize  # noqa: E402
from .models import DEFAULT_MODELS, build_cnn, load_default_model, load_model, model_card  # noqa: E402
from .noise import MultiScaleNoise, SpectralNoise  # noqa: E402
from .objectives import MapMean, Node, Unit  # noqa: E402
from .result import LayerResult, OIPResult  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ActivationViewer",
    "LayerZoo",
    "Clip",
    "Identity",
    "LayerResult",
    "MapMean",
    "MultiScaleNoise",
    "Node",
    "OIPEngine",
    "OIPExplorer",
    "OIPResult",
    "SpectralNoise",
    "Standardize",
    "Unit",
    "DEFAULT_MODELS",
    "build_cnn",
    "datasets",
    "load_default_model",
    "load_model",
    "model_card",
    "preprocessing",
]
