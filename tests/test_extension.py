"""Extension points: user objectives (wrap_objective, subclasses), abstract bases, compiled-loop keys, strategies."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import oipwidgets as ow
from oipwidgets.engine.ascent import snapshot_schedule


@ow.wrap_objective(kind="maps", params=("map",))
def map_max(activations, map):
    """The largest value of each image's map."""
    pick = tf.one_hot(map, tf.shape(activations)[-1], dtype=activations.dtype)
    return tf.reduce_sum(tf.reduce_max(activations, axis=[1, 2]) * pick, axis=1)


@ow.wrap_objective(kind="maps", params=("map",))
def map_power(activations, map, power=2.0):
    """The mean of each image's map raised to ``power`` (a constant of the compiled loop)."""
    pick = tf.one_hot(map, tf.shape(activations)[-1], dtype=activations.dtype)
    return tf.reduce_sum(tf.reduce_mean(tf.nn.relu(activations) ** power, axis=[1, 2]) * pick, axis=1)


def eager_step(model, layer, score, start, epsilon=0.01):
    """One step of the article's ascent in plain eager TensorFlow for an arbitrary per-image score."""
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    img = tf.constant(start, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(img)
        total = tf.reduce_sum(score(sub(img)))
    grad = tape.gradient(total, img)
    grad /= tf.sqrt(tf.reduce_mean(tf.square(grad), axis=[1, 2, 3], keepdims=True)) + 1e-7
    return tf.image.per_image_standardization(img + epsilon * grad).numpy()


def test_custom_objective_batched_over_4_maps_matches_eager_reference(mnist, engine):
    maps = [3, 17, 40, 63]
    start = ow.MultiScaleNoise().sample((4, 28, 28, 1), seed=11)
    got = engine.run_layer(maps, start, steps=1, objective=map_max(maps))
    pick = tf.one_hot(maps, 64)
    ref = eager_step(mnist, "Conv2D_3", lambda a: tf.reduce_sum(tf.reduce_max(a, axis=[1, 2]) * pick, axis=1), start)
    assert np.abs(got.images - ref).max() <= 1e-5
    assert got[0].params["objective"] == "map_max(map=[3, 17, 40, 63])"  # a given objective is recorded
    # it is a different objective from the map mean: the images differ
    mean = engine.run_layer(maps, start, steps=1)
    assert np.abs(mean.images - got.images).max() > 1e-3


def test_constants_are_part_of_the_compiled_loop_key(mnist, engine):
    """Two objectives that differ only in a constant never share a compiled loop (the old trap)."""
    start = ow.MultiScaleNoise().sample((1, 28, 28, 1), seed=2)
    a, b = map_power(5, power=1.0), map_power(5, power=3.0)
    assert a.key() != b.key() and map_power(7, power=1.0).key() == a.key()  # the map is a parameter
    ra = engine.run(5, steps=1, start=start[0], objective=a)
    rb = engine.run(5, steps=1, start=start[0], objective=b)
    for power, r in ((1.0, ra), (3.0, rb)):
        ref = eager_step(mnist, "Conv2D_3", lambda x, p=power: tf.reduce_mean(tf.nn.relu(x[..., 5]) ** p, axis=[1, 2]),
                         start)
        assert np.abs(r.image - ref[0]).max() <= 1e-5


def test_subclass_constants_in_init_get_their_own_loop(mnist, engine):
    class Shifted(ow.Objective):
        kind = "maps"
        param_names = ("map",)

        def __init__(self, map, shift):
            self.map, self.shift = map, shift

        def __call__(self, activations, params):
            pick = tf.one_hot(params["map"], tf.shape(activations)[-1], dtype=activations.dtype)
            return tf.reduce_sum(tf.reduce_mean((activations - self.shift) ** 2, axis=[1, 2]) * pick, axis=1)

    assert Shifted(1, 0.0).key() != Shifted(1, 2.0).key()
    start = ow.MultiScaleNoise().sample((1, 28, 28, 1), seed=4)
    r0 = engine.run(1, steps=1, start=start[0], objective=Shifted(1, 0.0))
    r2 = engine.run(1, steps=1, start=start[0], objective=Shifted(1, 2.0))
    ref = eager_step(mnist, "Conv2D_3", lambda a: tf.reduce_mean((a[..., 1] - 2.0) ** 2, axis=[1, 2]), start)
    assert np.abs(r2.image - ref[0]).max() <= 1e-5
    assert np.abs(r0.image - r2.image).max() > 1e-4


def test_objectives_are_immutable_abstract_and_keyable():
    with pytest.raises(AttributeError, match="immutable"):
        ow.MapMean(3).map = 4

    class NoCall(ow.Objective):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoCall()

    class Unkeyable(ow.Objective):
        def __init__(self):
            self.table = {1: [2, {3}]}  # a set cannot be part of a key

        def __call__(self, activations, params):
            return tf.reduce_mean(activations, axis=[1, 2, 3])

    with pytest.raises(TypeError, match="cannot be part of the compiled-loop key"):
        Unkeyable()
    with pytest.raises(ValueError, match="whole number"):
        ow.MapMean(2.7)
    with pytest.raises(ValueError, match="whole number"):
        map_max(1.5)
    with pytest.raises(ValueError, match="no argument 'unit'"):
        ow.wrap_objective(params=("unit",))(lambda activations, map: activations)


def test_input_modes_are_abstract_and_keyed_by_their_constants():
    class NoApply(ow.InputMode):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoApply()
    assert ow.Clip(0, 1).key() != ow.Clip(0, 255).key()
    assert ow.Clip(0, 255).key() == ow.Clip(0.0, 255.0).key()
    assert ow.Standardize().key() != ow.Identity().key()


def test_strategy_objects_and_names(engine):
    assert isinstance(ow.engine.strategies.strategy_for("precursor"), ow.Precursor)
    with pytest.raises(ValueError, match="unknown strategy 'fancy'.*simple, multiscale, precursor"):
        engine.run(1, steps=2, strategy="fancy")
    with pytest.raises(ValueError, match="precursor count n must be a whole number >= 1"):
        ow.Precursor(n=0)
    assert ow.Simple().snapshot_plan(400) == snapshot_schedule(400) == [0, 6, 12, 24, 48, 96, 192, 399]
    plan = ow.Multiscale().snapshot_plan(100, ow.MultiScaleNoise())
    assert plan[:6] == [0, 19, 20, 59, 60, 139] and plan[-1] == 239
    r = engine.run(2, steps=30, seed=3, strategy=ow.Simple())
    assert r.snapshot_steps.tolist() == ow.Simple().snapshot_plan(30)
    assert r.params["strategy"] == "simple"
