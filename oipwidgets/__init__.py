"""oipwidgets: Jupyter widgets that show which input patterns (OIPs) activate the maps of a trained Keras CNN.

Start with ``load_default_model("mnist")`` (a pretrained copy of the article's CNN, shipped in the package)
or any ``keras.Model`` of your own.
"""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) is noise in a notebook; users can still set it.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# One intra-op thread per batch part, one part per core (see oipwidgets.runtime; OIPWIDGETS_TF_THREADS overrides).
# Done first: TensorFlow's threading can only be set before its first op; it is left alone if that already ran.
# TensorFlow's native start-up lines (oneDNN, CUDA probing, "failed call to cuInit") are held back while it loads
# and finds its devices (oipwidgets.quiet: descriptor 2 is pointed back afterwards; shown if the import fails).
from .quiet import native_stderr_held as _held  # noqa: E402

with _held():
    from .engine.runtime import configure_threads as _configure_threads

    _configure_threads()
    import tensorflow as _tf

    _tf.config.list_physical_devices()  # the device search (cuInit) happens here, not in the user's first cell

from .engine import *  # noqa: E402,F401,F403  (the public engine API, listed in engine.__all__)
from .models import DEFAULT_MODELS, build_cnn, datasets, load_default_model, load_model, model_card, preprocessing  # noqa: E402
from .widgets import ActivationViewer, LayerZoo, OIPExplorer  # noqa: E402
from . import engine as _engine, widgets as _widgets  # noqa: E402

__version__ = "0.1.0"

__all__ = [*_engine.__all__, *_widgets.__all__, "DEFAULT_MODELS", "build_cnn", "datasets", "load_default_model",
           "load_model", "model_card", "preprocessing"]
