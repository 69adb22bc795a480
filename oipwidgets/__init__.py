"""oipwidgets: Jupyter widgets that show which input patterns (OIPs) activate the maps of a trained Keras CNN.

Start with ``load_default_model("mnist")`` (a pretrained copy of the article's CNN, shipped in the package)
or any ``keras.Model`` of your own.
"""

# Nothing process-wide changes on import: TensorFlow's threading and log level stay the user's. Only when the user
# sets OIPWIDGETS_TF_THREADS (an opt-in, see oipwidgets.engine.runtime) is the threading set, first, since it can
# only be set before TensorFlow's first op. TensorFlow's native start-up lines (oneDNN, CUDA probing, "failed call
# to cuInit") are held back while it loads and finds its devices (oipwidgets.quiet: descriptor 2 is pointed back
# afterwards; shown if the import fails).
from .quiet import native_stderr_held as _held  # noqa: E402

with _held():
    from .engine.runtime import configure_from_env as _configure_from_env

    _configure_from_env()  # only when OIPWIDGETS_TF_THREADS is set
    import tensorflow as _tf

    _tf.config.list_physical_devices()  # the device search (cuInit) happens here, not in the user's first cell

from .engine import *  # noqa: E402,F401,F403  (the public engine API, listed in engine.__all__)
from .models import DEFAULT_MODELS, build_cnn, datasets, load_default_model, load_model, model_card, preprocessing  # noqa: E402
from .widgets import ActivationViewer, LayerZoo, OIPExplorer  # noqa: E402
from .engine.runtime import configure_threads  # noqa: E402  (the opt-in, process-wide thread setting)
from . import engine as _engine, widgets as _widgets  # noqa: E402

__version__ = "0.1.0"

__all__ = [*_engine.__all__, *_widgets.__all__, "DEFAULT_MODELS", "build_cnn", "datasets", "load_default_model",
           "load_model", "model_card", "preprocessing", "configure_threads"]


def __getattr__(name: str):
    """``ow.Atlas`` (``oipwidgets.atlas``: every channel of a model on Dask, in Zarr) and ``ow.AtlasViewer`` (its
    notebook viewer) are loaded on first use, so ``import oipwidgets`` loads neither Dask nor Zarr (the ``atlas``
    extra)."""
    if name == "Atlas":
        from .atlas import Atlas

        return Atlas
    if name == "AtlasViewer":
        from .widgets.atlas_viewer import AtlasViewer

        return AtlasViewer
    raise AttributeError(f"module 'oipwidgets' has no attribute {name!r}")
