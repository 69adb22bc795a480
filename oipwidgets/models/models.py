"""The article's CNN, loading users' model files, and the pretrained default models shipped in the package.

The default models take per-image standardised input (see :mod:`oipwidgets.preprocessing`), as the article's
CNN did; their layer names are the article's (``Conv2D_1`` … ``Conv2D_3``), so code written against the article
keeps working.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import keras

__all__ = [
    "DEFAULT_MODELS",
    "build_cnn",
    "load_model",
    "load_default_model",
    "default_model_path",
    "model_card",
]

#: Names accepted by :func:`load_default_model`, with the dataset each model was trained on.
DEFAULT_MODELS = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST clothes",
                  "planted": "planted colour gratings (synthetic, 64×64×3, oipwidgets.models.planted)"}

_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def build_cnn(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    l2: float = 1e-4,
) -> keras.Model:
    """Build the article's CNN (untrained): three 3×3 ReLU convolutions with 2×2 max pooling, then a small MLP.

    Input (H, W, C) → Conv2D_1 (32) → MaxPool → Conv2D_2 (64) → MaxPool → Conv2D_3 (64) → Flatten →
    Dense_1 (70, ReLU) → Dense_2 (num_classes, softmax). ``l2`` is the weight of the L2 penalty on every kernel
    (the article's regulariser). For 28×28×1 input the model has 96,844 parameters.
    """
    reg = keras.regularizers.L2(l2) if l2 else None
    conv = dict(kernel_size=(3, 3), activation="relu", kernel_regularizer=reg)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Conv2D(32, name="Conv2D_1", **conv)(inputs)
    x = keras.layers.MaxPooling2D((2, 2), name="MaxPool_1")(x)
    x = keras.layers.Conv2D(64, name="Conv2D_2", **conv)(x)
    x = keras.layers.MaxPooling2D((2, 2), name="MaxPool_2")(x)
    x = keras.layers.Conv2D(64, name="Conv2D_3", **conv)(x)
    x = keras.layers.Flatten(name="Flatten")(x)
    x = keras.layers.Dense(70, activation="relu", kernel_regularizer=reg, name="Dense_1")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="Dense_2")(x)
    return keras.Model(inputs, outputs, name="article_cnn")


def load_model(path: str | os.PathLike, *, safe_mode: bool = True, compile: bool = False) -> keras.Model:
    """Load a Keras model from a ``.keras`` file or a legacy ``.h5`` file (the article saved ``cnn_best.h5``).

    ``safe_mode`` stays on by default: Keras then refuses to run arbitrary code (lambda layers) from the file.
    Raises FileNotFoundError / IsADirectoryError / ValueError naming the path when it is not a model file.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"No model file at {str(p)!r}: the path does not exist.")
    if p.is_dir():
        raise IsADirectoryError(
            f"{str(p)!r} is a directory, not a model file; give a {' or '.join(_MODEL_SUFFIXES)} file "
            "(TensorFlow SavedModel directories are not Keras 3 models; re-save them with model.save('x.keras'))."
        )
    if p.suffix.lower() not in _MODEL_SUFFIXES:
        raise ValueError(
            f"{str(p)!r} does not look like a Keras model file: the suffix must be one of {_MODEL_SUFFIXES}."
        )
    try:
        model = keras.models.load_model(p, safe_mode=safe_mode, compile=compile)
    except Exception as err:  # Keras raises many types for a bad file; users need one clear message
        raise ValueError(f"Could not load a Keras model from {str(p)!r}: {type(err).__name__}: {err}") from err
    if not isinstance(model, keras.Model):
        raise ValueError(f"{str(p)!r} holds a {type(model).__name__}, not a keras.Model.")
    return model


def _check_default_name(name: str) -> str:
    if name not in DEFAULT_MODELS:
        choices = ", ".join(repr(n) for n in DEFAULT_MODELS)
        raise ValueError(f"Unknown default model {name!r}; choose one of {choices}.")
    return name


def default_model_path(name: str = "mnist") -> Path:
    """Path of the shipped ``.keras`` file of a default model (``"mnist"``, ``"fashion"`` or ``"planted"``)."""
    _check_default_name(name)
    return Path(str(resources.files("oipwidgets") / "data" / f"{name}.keras"))


def load_default_model(name: str = "mnist") -> keras.Model:
    """Load a pretrained default model shipped in the package; works offline.

    ``"mnist"``: the article's CNN trained on the first 10,000 MNIST training images; ``"fashion"``: the same
    CNN trained on Fashion-MNIST; both take 28×28×1 input. ``"planted"``: a small conv/BN/ReLU CNN trained on
    generated 64×64×3 colour gratings whose classes have known orientation, frequency and colour axis
    (``oipwidgets.models.planted``), with a ``logits`` layer before its softmax. All take per-image standardised
    input (:func:`oipwidgets.preprocessing.to_model_input`) and output class probabilities. Each call returns a
    new, independent model; :func:`model_card` says how it was made.
    """
    return load_model(default_model_path(name))


def model_card(name: str = "mnist") -> dict:
    """The card of a default model: data, epochs, seed, test accuracy and the command that rebuilds it."""
    _check_default_name(name)
    card = resources.files("oipwidgets") / "data" / f"{name}.card.json"
    return json.loads(card.read_text(encoding="utf-8"))
