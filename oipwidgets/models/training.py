"""Training the article's CNN: SGD with momentum, L2-regularised kernels, an exponentially decaying learning rate
and categorical cross-entropy, on per-image standardised images.

Used by ``oipwidgets train`` to rebuild the shipped default models; deterministic for a given seed on one machine,
without reseeding the caller's generators (see ``seeding``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import numpy as np

from .models import build_cnn
from .preprocessing import to_model_input
from .seeding import seeded

__all__ = ["TrainConfig", "TrainResult", "train_cnn", "evaluate", "inference_copy"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (the article's recipe; numbers chosen for the 10,000-image set)."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 0.02  # initial step of SGD
    lr_decay_rate: float = 0.9  # learning rate multiplied by this once per epoch (exponential schedule)
    momentum: float = 0.9
    l2: float = 1e-4  # weight of the L2 penalty on every kernel
    shift: int = 2  # augmentation: random translation of each raw image by up to this many pixels (0: off)
    seed: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    model: keras.Model
    history: dict  # per-epoch "loss" and "accuracy" lists, as keras.callbacks.History.history
    config: TrainConfig


def _compile(model: keras.Model, config: TrainConfig, steps_per_epoch: int) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=config.learning_rate,
        decay_steps=steps_per_epoch,
        decay_rate=config.lr_decay_rate,
        staircase=True,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=config.momentum),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )


def _batches(raw: np.ndarray, onehot: np.ndarray, config: TrainConfig):
    """Shuffled batches of (standardised, randomly shifted) images: shifting acts on the raw pixels, so the
    background that moves in is the image's own zero background, and standardisation comes after it."""
    import tensorflow as tf

    shift = keras.layers.RandomTranslation(
        config.shift / raw.shape[1], config.shift / raw.shape[2], fill_mode="constant", fill_value=0.0,
        interpolation="nearest", seed=config.seed,
    )

    def prepare(img, label):
        if config.shift:
            img = shift(img, training=True)
        return tf.image.per_image_standardization(img), label

    ds = tf.data.Dataset.from_tensor_slices((raw, onehot))
    ds = ds.shuffle(len(raw), seed=config.seed, reshuffle_each_iteration=True).batch(config.batch_size)
    return ds.map(prepare, num_parallel_calls=1, deterministic=True).prefetch(2)


def train_cnn(
    x_train: np.ndarray,
    y_train: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    num_classes: int = 10,
    verbose: int | str = "auto",
    callbacks: list | None = None,
    build=None,
) -> TrainResult:
    """Train a fresh article CNN on raw images.

    x_train: uint8 or float images, (N, H, W) or (N, H, W, C); they are standardised per image here.
    y_train: integer labels (N,) in 0..num_classes-1 (one-hot encoded here for the categorical cross-entropy).
    ``verbose`` is passed to ``keras.Model.fit`` (its progress bar is the CLI's progress display).
    build: ``f(input_shape, num_classes, l2) -> keras.Model`` (default: the article's ``build_cnn``).
    """
    x = to_model_input(x_train)
    y = np.asarray(y_train)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels; they must match.")
    if len(x) == 0:
        raise ValueError("The training set is empty.")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}; got {int(y.min())}..{int(y.max())}")
    with seeded(config.seed):  # as keras.utils.set_random_seed, but the caller's generators are put back after
        model = (build or build_cnn)(input_shape=x.shape[1:], num_classes=num_classes, l2=config.l2)
        steps = int(np.ceil(len(x) / config.batch_size))
        _compile(model, config, steps)
        raw = np.asarray(x_train, dtype=np.float32).reshape(x.shape)
        data = _batches(raw, keras.utils.to_categorical(y, num_classes), config)
        history = model.fit(data, epochs=config.epochs, shuffle=False, verbose=verbose, callbacks=callbacks or [])
    return TrainResult(model=model, history=dict(history.history), config=config)


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> float:
    """Fraction of raw images (standardised here) that the model classifies as their label."""
    probs = model.predict(to_model_input(images), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probs, axis=-1) == np.asarray(labels)))


def inference_copy(model: keras.Model) -> keras.Model:
    """The same architecture and weights without optimizer state or compile settings: small to save and ship."""
    # clone_model keeps a link to the compiled optimizer, whose slots would be saved too
    # (twice the file size); a model rebuilt from its config has none.
    copy = keras.Model.from_config(model.get_config()) if not isinstance(model, keras.Sequential) \
        else keras.Sequential.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy
