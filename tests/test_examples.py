"""Top-k dataset examples of a map against brute-force numpy on tiny models with known weights, and their errors."""

import keras
import numpy as np
import pytest

import oipwidgets as ow
from oipwidgets.engine.examples import TopK, map_means, top_k, top_k_all
from oipwidgets.models.preprocessing import to_model_input


def tiny_model(channels=1, seed=0, size=6):
    """Input (size, size, C) → conv (2 maps, 3×3, ReLU) → Flatten → dense (4, linear) → out (3, softmax)."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input(shape=(size, size, channels))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    x = keras.layers.Dense(4, name="dense")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


def numpy_forward(model, x):
    """Brute force: conv (valid, stride 1) + ReLU, and the two dense layers (the last one before its softmax)."""
    kernel, bias = model.get_layer("conv").get_weights()
    kh, kw, _, maps = kernel.shape
    n, h, w, _ = x.shape
    conv = np.zeros((n, h - kh + 1, w - kw + 1, maps), np.float64)
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            patch = x[:, i : i + kh, j : j + kw, :].astype(np.float64)
            conv[:, i, j, :] = np.einsum("nabc,abcf->nf", patch, kernel) + bias
    conv = np.maximum(conv, 0)
    wd, bd = model.get_layer("dense").get_weights()
    dense = conv.reshape(n, -1) @ wd + bd
    wo, bo = model.get_layer("out").get_weights()
    return {"conv": conv, "dense": dense, "out": dense @ wo + bo}


def expected_order(values):
    return np.lexsort((np.arange(len(values)), -values))


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def raw():
    return np.random.default_rng(1).integers(0, 256, size=(40, 6, 6), dtype=np.uint8)


# ------------------------------------------------------------------ correctness
def test_known_ordering_with_a_sum_kernel():
    """Constant images through a 3×3 all-ones linear conv: the map mean is 9·value, so the order is known."""
    inputs = keras.Input(shape=(5, 5, 1))
    outputs = keras.layers.Conv2D(1, 3, name="sum")(inputs)
    model = keras.Model(inputs, outputs)
    model.get_layer("sum").set_weights([np.ones((3, 3, 1, 1), np.float32), np.zeros(1, np.float32)])
    values = np.array([0.5, -2.0, 3.0, 1.0, 2.5, -1.0], np.float32)
    images = np.ones((6, 5, 5, 1), np.float32) * values[:, None, None, None]
    best = top_k(model, "sum", 0, images, k=3, preprocess=False)
    assert isinstance(best, TopK) and len(best) == 3
    assert best.indices.tolist() == [2, 4, 3]
    np.testing.assert_allclose(best.activations, 9 * values[[2, 4, 3]], rtol=1e-6)
    np.testing.assert_array_equal(best.images, images[[2, 4, 3]])


@pytest.mark.parametrize("map_index", [0, 1])
def test_top_k_of_a_map_matches_brute_force(model, raw, map_index):
    best = top_k(model, "conv", map_index, raw, k=7)
    means = numpy_forward(model, to_model_input(raw))["conv"].mean(axis=(1, 2))[:, map_index]
    order = expected_order(means)[:7]
    np.testing.assert_array_equal(best.indices, order)
    np.testing.assert_allclose(best.activations, means[order], rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(best.activations) <= 0)
    np.testing.assert_array_equal(best.images, raw[order])  # the raw images, as given
    assert best.layer == "conv" and best.map == map_index and best.kind == "maps"


def test_units_layer_uses_the_unit_value_before_softmax(model, raw):
    ref = numpy_forward(model, to_model_input(raw))
    for layer in ("dense", "out"):  # "out" ends in softmax: the score before it, as the engine's objective
        best = top_k(model, layer, 2, raw, k=5)
        order = expected_order(ref[layer][:, 2])[:5]
        np.testing.assert_array_equal(best.indices, order)
        np.testing.assert_allclose(best.activations, ref[layer][order, 2], rtol=1e-4, atol=1e-5)
        assert best.kind == "units"


def test_map_means_batches_and_preprocess_flag(model, raw):
    ref = numpy_forward(model, to_model_input(raw))["conv"].mean(axis=(1, 2))
    engine = ow.OIPEngine(model, "conv")
    for batch in (1, 7, 256):
        np.testing.assert_allclose(map_means(engine, raw, batch_size=batch), ref, rtol=1e-4, atol=1e-5)
    model_ready = to_model_input(raw)
    np.testing.assert_allclose(map_means(engine, model_ready, preprocess=False), ref, rtol=1e-4, atol=1e-5)
    # preprocess=False really skips the standardisation
    np.testing.assert_allclose(
        map_means(engine, raw, preprocess=False),
        numpy_forward(model, raw[..., None].astype(np.float32))["conv"].mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)
    assert map_means(model, raw, layer="dense").shape == (40, 4)


def test_large_set_is_processed_in_bounded_batches(model):
    images = np.random.default_rng(3).integers(0, 256, size=(10_000, 6, 6), dtype=np.uint8)
    engine = ow.OIPEngine(model, "conv")
    seen = []
    probe = engine.probe

    class Recorder:
        pre_activation = probe.pre_activation

        def __call__(self, x):
            seen.append(int(x.shape[0]))
            return probe(x)

    engine.probe = Recorder()
    best = top_k(engine, None, 1, images, k=9, batch_size=512)
    assert max(seen) <= 512 and sum(seen) == 10_000
    means = numpy_forward(model, to_model_input(images))["conv"].mean(axis=(1, 2))[:, 1]
    np.testing.assert_allclose(best.activations, np.sort(means)[::-1][:9], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(means[best.indices], best.activations, rtol=1e-4, atol=1e-5)  # right images


def test_ties_keep_the_lower_index_first(model, raw):
    images = np.concatenate([raw[:5], raw[:5], raw[:5]])  # every image three times
    best = top_k(model, "conv", 0, images, k=6)
    first = best.indices[0] % 5
    assert best.indices[:3].tolist() == [first, first + 5, first + 10]


def test_top_k_all_matches_top_k_and_colour_images():
    model = tiny_model(channels=3, seed=4, size=7)
    images = np.random.default_rng(5).random((30, 7, 7, 3)).astype(np.float32) * 255
    everything = top_k_all(model, "conv", images, k=4)
    assert [t.map for t in everything] == [0, 1]
    for t in everything:
        one = top_k(model, "conv", t.map, images, k=4)
        np.testing.assert_array_equal(t.indices, one.indices)
        np.testing.assert_allclose(t.activations, one.activations, rtol=1e-6)
    ref = numpy_forward(model, to_model_input(images))["conv"].mean(axis=(1, 2))
    np.testing.assert_array_equal(everything[1].indices, expected_order(ref[:, 1])[:4])
    assert [t.map for t in top_k_all(model, "conv", images, k=2, maps=[1])] == [1]


def test_engine_of_another_layer_is_replaced(model, raw):
    engine = ow.OIPEngine(model, "dense")
    best = top_k(engine, "conv", 1, raw, k=3)
    assert best.layer == "conv" and best.kind == "maps"
    assert top_k(engine, None, 3, raw, k=3).layer == "dense"


def test_default_mnist_model_against_keras_sub_model():
    model = ow.load_default_model("mnist")
    images, _ = ow.datasets.samples("mnist")
    sub = keras.Model(model.inputs, model.get_layer("Conv2D_3").output)
    means = sub.predict(to_model_input(images), verbose=0).mean(axis=(1, 2))
    everything = top_k_all(model, "Conv2D_3", images, k=5, batch_size=32)
    assert len(everything) == 64
    for m in (3, 17, 63):
        np.testing.assert_allclose(everything[m].activations, np.sort(means[:, m])[::-1][:5], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ errors
def test_errors_name_the_problem(model, raw):
    with pytest.raises(ValueError, match="empty"):
        top_k(model, "conv", 0, raw[:0], k=1)
    with pytest.raises(ValueError, match="k must be a whole number >= 1; got 0"):
        top_k(model, "conv", 0, raw, k=0)
    with pytest.raises(ValueError, match=r"k=41 .*40 images"):
        top_k(model, "conv", 0, raw, k=41)
    with pytest.raises(ValueError, match=r"map index 2 is out of range.*0\.\.1"):
        top_k(model, "conv", 2, raw)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        top_k(model, "conv", -1, raw)
    with pytest.raises(ValueError, match=r"unit index 4 .*0\.\.3"):
        top_k(model, "dense", 4, raw)
    with pytest.raises(ValueError, match=r"\(N, 6, 6, 1\) or \(N, 6, 6\); got shape \(40, 5, 5\)"):
        top_k(model, "conv", 0, raw[:, :5, :5])
    with pytest.raises(ValueError, match=r"got shape \(40, 6, 6, 3\)"):
        top_k(model, "conv", 0, np.repeat(raw[..., None], 3, axis=-1))
    with pytest.raises(ValueError, match=r"got shape \(6, 6\)"):
        top_k(model, "conv", 0, raw[0])
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        top_k(model, "nope", 0, raw)
    bad = raw.astype(np.float32)
    bad[7, 2, 2] = np.nan
    with pytest.raises(ValueError, match="image 7 .*NaN"):
        top_k(model, "conv", 0, bad, preprocess=False)
    with pytest.raises(ValueError, match="batch_size"):
        map_means(ow.OIPEngine(model, "conv"), raw, batch_size=0)
    with pytest.raises(ValueError, match="give the layer"):
        map_means(model, raw)
