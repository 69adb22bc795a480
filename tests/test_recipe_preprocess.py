"""The model's input convention (preprocess), the Recipe, the ReLU warm-up, data starts and the rescue of maps that
real images fire (issue 19, items 1, 2 and 5)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import oipwidgets as ow
from oipwidgets.engine import warmup
from oipwidgets.engine.preprocess import IMAGENET_BGR_MEAN, Preprocess, saturated_share
from oipwidgets.engine.recipe import RECIPES, Recipe, recipe_for
from oipwidgets.engine.examples import default_examples
from oipwidgets.models.preprocessing import to_model_input


# ------------------------------------------------------------------ preprocess presets, by hand
def test_presets_map_rgb_to_the_model_input_and_back():
    rgb = np.array([[[[1.0, 0.0, 0.5]]]], np.float32)  # one pixel: R=1, G=0, B=0.5
    caffe = Preprocess("caffe").to_model(tf.constant(rgb)).numpy()[0, 0, 0]
    np.testing.assert_allclose(caffe, [127.5 - IMAGENET_BGR_MEAN[0], 0 - IMAGENET_BGR_MEAN[1],
                                       255 - IMAGENET_BGR_MEAN[2]], rtol=1e-6)
    torch = Preprocess("torch").to_model(tf.constant(rgb)).numpy()[0, 0, 0]
    np.testing.assert_allclose(torch, [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0.5 - 0.406) / 0.225], rtol=1e-6)
    np.testing.assert_allclose(Preprocess("tf").to_model(tf.constant(rgb)).numpy()[0, 0, 0], [1, -1, 0])
    np.testing.assert_allclose(Preprocess("byte").to_model(tf.constant(rgb)).numpy()[0, 0, 0], [255, 0, 127.5])
    for name in ("unit", "byte", "tf", "caffe", "torch"):
        mode = Preprocess(name)
        back = mode.from_model(mode.to_model(tf.constant(rgb)).numpy())
        np.testing.assert_allclose(back, rgb, atol=1e-5, err_msg=name)


def test_bad_preprocess_gets_errors_that_name_the_choices():
    mnist = ow.load_default_model("mnist")
    with pytest.raises(ValueError, match="'caffe'.*needs 3 channels; this model takes 1.*'unit'"):
        ow.OIPEngine(mnist, "Conv2D_3", preprocess="caffe")
    with pytest.raises(ValueError, match="unknown preprocess 'rgb'; valid: 'standardize'.*'torch' or a callable"):
        ow.OIPEngine(mnist, "Conv2D_3", preprocess="rgb")
    with pytest.raises(ValueError, match="give preprocess= or input_mode=, not both"):
        ow.OIPEngine(mnist, "Conv2D_3", preprocess="unit", input_mode="standardize")
    with pytest.raises(ValueError, match="cannot invert"):
        Preprocess(lambda x: x).from_model(np.zeros((1, 2, 2, 3)))


def test_standardize_preset_is_the_article_exactly():
    mnist = ow.load_default_model("mnist")
    a = ow.OIPEngine(mnist, "Conv2D_3").run(5, steps=30, seed=2)
    b = ow.OIPEngine(mnist, "Conv2D_3", preprocess="standardize").run(5, steps=30, seed=2)
    np.testing.assert_array_equal(a.image, b.image)
    assert a.value_range is None and b.params["preprocess"] == "standardize"


def test_saturated_share_by_hand():
    image = np.array([0.0, 0.01, 0.5, 0.99, 1.0, 0.3, 0.7, 0.021])
    assert saturated_share(image, (0.0, 1.0)) == pytest.approx(4 / 8)
    assert saturated_share(image * 255, (0.0, 255.0)) == pytest.approx(4 / 8)
    assert saturated_share(np.array([-2.0, 0.0, 0.1, 2.0]), None) == pytest.approx(2 / 4)  # own min and max
    assert saturated_share(np.zeros(5), None) == 0.0


def _unit_colour_model():
    """The shipped planted colour CNN behind a fixed rescaling: a model that takes RGB in [0, 1] (mid-grey 0.5
    maps to its standardised 0, ±0.25 to ±1) and, like real ones, reacts more to more contrast."""
    planted = ow.load_default_model("planted")
    x = keras.Input((64, 64, 3))
    z = keras.layers.Rescaling(4.0, offset=-2.0, name="rescale")(x)
    return keras.Model(x, planted(z), name="unit_planted")


def test_oips_of_a_unit_range_colour_model_stay_inside_without_living_at_the_ends():
    model = _unit_colour_model()
    unit = ow.OIPEngine(model, "planted_cnn", preprocess="unit")
    shares = {}
    for param in ("fourier", "pixel", "maco"):
        r = unit.run_layer([0, 3, 5], seed=0, recipe="readable", steps=48, param=param)
        shares[param] = np.mean([res.saturated for res in r])
        for res in r:
            assert res.value_range == (0.0, 1.0)
            assert res.image.min() >= 0.0 and res.image.max() <= 1.0
            assert res.saturated <= 0.05, (param, res.saturated)
            assert 0.1 < np.median(np.abs(res.image - 0.5)) < 0.4  # a readable contrast, not pale
            assert res.saturated == pytest.approx(saturated_share(res.image, (0, 1)))
        assert r[0].params["recipe"]["param"] == param
    # the old advice (a sigmoid of unbounded parameters into [0, 1]) lives at the ends
    clipped = ow.OIPEngine(model, "planted_cnn", input_mode="clip").run_layer([0, 3, 5], seed=0, recipe="readable",
                                                                                steps=48)
    assert np.mean([res.saturated for res in clipped]) > max(0.05, 2 * shares["fourier"])


def test_activations_take_images_in_the_engines_space():
    model = _unit_colour_model()
    unit = ow.OIPEngine(model, "planted_cnn", preprocess="byte", pre_activation=False)
    rgb = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_allclose(unit.activations(rgb), model(rgb * 255.0).numpy(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ the recipe
def test_recipe_presets_serialise_and_refuse_bad_fields():
    article, readable = Recipe.preset("article"), Recipe.preset("readable")
    assert article == Recipe() and recipe_for(None) == article
    assert (readable.param, readable.transforms, readable.optimizer) == ("fourier", "standard", "adam")
    for r in RECIPES.values():
        assert Recipe.from_dict(r.to_dict()) == r
        assert Recipe.from_json(r.to_json()) == r
        json.loads(r.to_json())
    changed = readable.replace(steps=64, strategy=ow.Precursor(n=4, steps=5))
    assert Recipe.from_dict(changed.to_dict()) == changed
    assert changed.differences(readable) == {"steps": (64, 256),
                                             "strategy": ({"name": "precursor", "n": 4, "steps": 5}, "simple")}
    assert changed.name() is None and readable.name() == "readable"
    with pytest.raises(TypeError, match="unexpected setting 'colour'; a recipe has: steps, epsilon"):
        readable.replace(colour=1)
    with pytest.raises(ValueError, match="unknown recipe 'best'; valid: article, readable"):
        Recipe.preset("best")
    with pytest.raises(ValueError, match="warmup"):
        Recipe(warmup=-1)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'; valid: rms, adam"):
        Recipe(optimizer="sgd")
    with pytest.raises(ValueError, match="cannot store"):
        Recipe(optimizer=ow.Adam(beta1=0.8)).to_dict()
    with pytest.raises(AttributeError):
        readable.steps = 3


def test_run_takes_a_recipe_and_keyword_overrides():
    engine = ow.OIPEngine(ow.load_default_model("mnist"), "Conv2D_3")
    r = engine.run(5, seed=0, recipe="readable", steps=6)
    assert r.params["recipe"] == Recipe.preset("readable").replace(steps=6).to_dict()
    assert r.params["param"].startswith("fourier") and r.steps == 6
    # the old keywords still work, and equal the same recipe
    old = engine.run_layer([1, 2], seed=0, steps=8, epsilon=0.02, strategy="simple")
    new = engine.run_layer([1, 2], seed=0, recipe=Recipe(steps=8, epsilon=0.02))
    np.testing.assert_array_equal(old.images, new.images)
    with pytest.raises(TypeError, match="unexpected setting 'stepz'"):
        engine.run(5, stepz=3)
    # regulariser weights are subtracted from the objective
    tv = engine.run(5, seed=0, steps=4, tv=0.5)
    assert "total variation" in tv.params["objective"]


# ------------------------------------------------------------------ the warm-up
def _grad(x, g, warm):
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        if warm is None:
            y = warmup.redirected_relu(x)
        else:
            warmup._ACTIVE.warm = tf.constant(warm)
            try:
                y = warmup.redirected_relu(x)
            finally:
                warmup._ACTIVE.warm = None
        total = tf.reduce_sum(y * tf.constant(g, tf.float32))
    return tape.gradient(total, x).numpy(), y.numpy()


def test_redirected_relu_gradient_by_hand():
    x = [[-1.0, -2.0, -3.0], [-1.0, 2.0, -3.0]]
    g = [[1.0, -1.0, 2.0], [1.0, 1.0, -1.0]]
    grad, y = _grad(x, g, True)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    # image 0: no gradient gets through the ReLU, so it is redirected where it asks the input to grow (g > 0)
    np.testing.assert_array_equal(grad[0], [1.0, 0.0, 2.0])
    # image 1: the ordinary gradient is not zero: it is kept
    np.testing.assert_array_equal(grad[1], [0.0, 1.0, 0.0])
    plain, _ = _grad(x, g, False)
    np.testing.assert_array_equal(plain, [[0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(_grad(x, g, None)[0], plain)


def test_warmup_leaves_the_users_model_as_it_was():
    model = ow.load_default_model("mnist")
    before = {l.name: l.__dict__.get("activation") for l in model.layers}
    x = to_model_input(default_examples(model)[:4])
    want = model(x).numpy()
    ow.OIPEngine(model, "Conv2D_3").run(3, seed=0, steps=12, warmup=6)
    assert {l.name: l.__dict__.get("activation") for l in model.layers} == before
    np.testing.assert_array_equal(model(x).numpy(), want)
    relu = keras.layers.ReLU()
    small = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), relu, keras.layers.Conv2D(2, 3)])
    with warmup.redirected(small, tf.constant(True)):
        assert "call" in relu.__dict__
    assert "call" not in relu.__dict__


# ------------------------------------------------------------------ data start and rescue
def test_data_start_picks_the_example_that_fires_each_map_most():
    model = ow.load_default_model("mnist")
    engine = ow.OIPEngine(model, "Conv2D_3")
    examples = to_model_input(default_examples(model)[:30])
    means = engine.activations(examples).mean(axis=(1, 2))
    r = engine.run_layer([4, 9], seed=0, steps=5, strategy=ow.FromData(examples, mix=0.5))
    assert r[0].params["examples"] == [int(np.argmax(means[:, 4])), int(np.argmax(means[:, 9]))]
    with pytest.raises(ValueError, match="mix must be in"):
        ow.FromData(examples, mix=1.5)


def test_no_map_is_dead_that_an_example_fires():
    model = ow.load_default_model("mnist")
    engine = ow.OIPEngine(model, "Conv2D_3")
    examples = to_model_input(default_examples(model))
    best = engine.activations(examples).mean(axis=(1, 2)).max(axis=0)
    plain = engine.run_layer(seed=1, steps=200)
    false_dead = [k for k, r in enumerate(plain) if r.dead and best[k] > 0]
    assert len(false_dead) >= 5  # what the article's test alone reports on this layer
    cured = engine.run_layer(seed=1, steps=200, examples=examples)
    for k, r in enumerate(cured):
        if best[k] > 0:
            assert not r.dead, k
            assert r.final_loss >= best[k] - 1e-6, (k, r.final_loss, best[k])
        assert r.params["best_example"] == pytest.approx(best[k], rel=1e-5, abs=1e-6)
    cures = [r.params.get("cure") for r in cured]
    assert all(cures[k] in ("warm-up", "data start") for k in false_dead)
    untouched = [k for k in range(64) if cures[k] is None]
    np.testing.assert_array_equal(cured.images[untouched], plain.images[untouched])
