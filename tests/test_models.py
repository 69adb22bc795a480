
import keras
import numpy as np
import pytest

import oipwidgets
from oipwidgets.models import datasets
from oipwidgets.models import build_cnn, load_default_model, load_model, model_card
from oipwidgets.models.preprocessing import to_model_input
from oipwidgets.models.training import TrainConfig, evaluate, inference_copy, train_cnn

ARTICLE_LAYERS = [
    ("Conv2D_1", (None, 26, 26, 32), 320),
    ("MaxPool_1", (None, 13, 13, 32), 0),
    ("Conv2D_2", (None, 11, 11, 64), 18496),
    ("MaxPool_2", (None, 5, 5, 64), 0),
    ("Conv2D_3", (None, 3, 3, 64), 36928),
    ("Flatten", (None, 576), 0),
    ("Dense_1", (None, 70), 40390),
    ("Dense_2", (None, 10), 710),
]


def test_architecture_is_the_articles():
    model = build_cnn()
    got = [(l.name, tuple(l.output.shape), l.count_params()) for l in model.layers[1:]]
    assert got == ARTICLE_LAYERS
    assert model.count_params() == 96844
    assert model.get_layer("Conv2D_3").activation is keras.activations.relu
    assert model.get_layer("Dense_2").activation is keras.activations.softmax


def test_input_shape_is_configurable():
    model = build_cnn(input_shape=(32, 32, 3))
    assert tuple(model.input.shape) == (None, 32, 32, 3)
    assert tuple(model.get_layer("Conv2D_1").output.shape) == (None, 30, 30, 32)
    assert tuple(model.get_layer("Conv2D_3").output.shape) == (None, 4, 4, 64)


def test_short_training_lowers_the_loss(bars):
    x, y = bars
    result = train_cnn(x, y, TrainConfig(epochs=3, batch_size=32, seed=3), num_classes=2, verbose=0)
    losses = result.history["loss"]
    assert len(losses) == 3
    assert losses[-1] < 0.7 * losses[0]
    assert evaluate(result.model, x, y) > 0.9


def test_training_rejects_bad_labels(bars):
    x, y = bars
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        train_cnn(x, y + 1, TrainConfig(epochs=1), num_classes=2, verbose=0)
    with pytest.raises(ValueError, match="256 images but 10 labels"):
        train_cnn(x, y[:10], TrainConfig(epochs=1), num_classes=2, verbose=0)


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_default_models_classify_their_samples(name):
    model = load_default_model(name)
    images, labels = datasets.samples(name)
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert len(images) == len(labels) and len(images) >= 90
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels).max() <= 10
    assert evaluate(model, images, labels) >= 0.95
    assert model.get_layer("Conv2D_3").output.shape[-1] == 64


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_default_model_cards(name):
    card = model_card(name)
    assert card["dataset"] == name
    assert card["test_accuracy"] >= (0.985 if name == "mnist" else 0.905)
    assert card["command"].startswith(f"oipwidgets train --dataset {name}")
    for key in ("training", "train_images", "test_images", "versions"):
        assert key in card
    assert card["training"]["epochs"] >= 1 and "seed" in card["training"]
    # small files: weights only, no optimizer state
    assert oipwidgets.models.default_model_path(name).stat().st_size < 600_000


def test_default_model_unknown_name():
    with pytest.raises(ValueError, match="'mnist', 'fashion'"):
        load_default_model("cifar")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_save_load_round_trip(tmp_path, suffix):
    model = inference_copy(build_cnn())
    path = tmp_path / f"cnn_best{suffix}"
    model.save(path)
    loaded = load_model(path)
    x = to_model_input(np.random.default_rng(0).integers(0, 255, (3, 28, 28)))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]


def test_load_model_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.keras"):
        load_model(tmp_path / "nothere.keras")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_model(tmp_path)
    fake = tmp_path / "notes.keras"
    fake.write_text("not a model")
    with pytest.raises(ValueError, match="notes.keras"):
        load_model(fake)
    other = tmp_path / "weights.npz"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"suffix must be one of \('.keras', '.h5', '.hdf5'\)"):
        load_model(other)


def test_safe_mode_is_on_by_default(tmp_path):
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ValueError, match="lambda.keras"):
        load_model(path)
    assert isinstance(load_model(path, safe_mode=False), keras.Model)


def test_training_is_seeded_as_keras_would_and_leaves_the_callers_generators_alone(bars):
    """train_cnn gives the weights of a run under keras.utils.set_random_seed(seed), yet the notebook's own
    Python, NumPy, TensorFlow and Keras random sequences continue exactly where they were."""
    import random

    import tensorflow as tf

    x, y = bars[0][:64], bars[1][:64]
    config = TrainConfig(epochs=1, batch_size=32, seed=5)

    def draws():
        return (random.random(), float(np.random.rand()), float(tf.random.uniform([])),
                float(keras.random.uniform([])))

    keras.utils.set_random_seed(123)
    expected_draws = [draws(), draws()]

    keras.utils.set_random_seed(123)
    first = draws()
    ours = train_cnn(x, y, config, num_classes=2, verbose=0)
    second = draws()
    assert [first, second] == expected_draws

    keras.utils.set_random_seed(config.seed)  # the old behaviour: a process-wide reseed before training
    reference = train_cnn(x, y, config, num_classes=2, verbose=0)
    for a, b in zip(ours.model.get_weights(), reference.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert ours.history["loss"] == reference.history["loss"]
