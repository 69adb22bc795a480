"""The shipped CNNs and their data: the article's architecture, training, default models, data sets, IDX files."""

from . import datasets, idx, planted, preprocessing
from .models import DEFAULT_MODELS, build_cnn, default_model_path, load_default_model, load_model, model_card

__all__ = [
    "DEFAULT_MODELS",
    "build_cnn",
    "datasets",
    "default_model_path",
    "idx",
    "load_default_model",
    "load_model",
    "model_card",
    "planted",
    "preprocessing",
]
