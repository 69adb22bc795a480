"""The Jupyter widgets: they only drive the engine (in a background worker) and draw its results with bqplot."""

from .activations import ActivationViewer
from .explorer import OIPExplorer
from .zoo import LayerZoo

__all__ = ["ActivationViewer", "LayerZoo", "OIPExplorer"]
