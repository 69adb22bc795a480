"""Image regularisers and the batch/direction/centre objectives, against values computed by hand."""

import numpy as np
import pytest
import tensorflow as tf

from oipwidgets.engine.diversity import Direction, Diversity, Neuron
from oipwidgets.engine.objectives import MapMean
from oipwidgets.engine.probe import LayerInfo
from oipwidgets.engine.regularizers import L1, L2, Blur, TotalVariation

# a 2×3 one-channel image and a second one, 2x + 1 (an offset changes no difference, the factor 2 doubles them)
X = np.array([[1.0, 2.0, 4.0],
              [0.0, 3.0, 3.0]], np.float32)
IMAGES = tf.constant(np.stack([X, 2 * X + 1])[..., None])  # (2, 2, 3, 1)


def values(t):
    return np.asarray(t, np.float64)


def test_total_variation_by_hand():
    # vertical pairs |0-1|, |3-2|, |3-4| → mean 1; horizontal |2-1|, |4-2|, |3-0|, |3-3| → mean 6 / 4
    np.testing.assert_allclose(values(TotalVariation().score(IMAGES)), [2.5, 5.0], rtol=1e-6)
    # means, not sums: the image at twice the size (each pixel 2×2) has half the differences per pair
    big = tf.constant(np.repeat(np.repeat(X, 2, 0), 2, 1)[None, :, :, None])
    # vertical: 3 jumps of 1 over 3×6 pairs; horizontal: jumps 1, 2, 3, 0 each on 2 rows over 4×5 pairs
    assert float(TotalVariation().score(big)[0]) == pytest.approx(6 / 18 + 12 / 20)
    assert float(TotalVariation().score(tf.ones((1, 1, 4, 2)))[0]) == 0.0  # one row: no vertical pairs


def test_l1_and_l2_by_hand():
    np.testing.assert_allclose(values(L1().score(IMAGES)), [13 / 6, 32 / 6], rtol=1e-6)  # |3 5 9 1 7 7|
    assert float(L1(1.0).score(IMAGES)[0]) == pytest.approx(9 / 6)  # 0 1 3 1 2 2
    np.testing.assert_allclose(values(L2().score(IMAGES)), [39 / 6, 214 / 6], rtol=1e-6)  # 9 25 81 1 49 49
    assert float(L2(2.0).score(IMAGES)[0]) == pytest.approx(11 / 6)  # 1 0 4 4 1 1
    assert float(L2(-1).score(IMAGES)[0]) == pytest.approx((4 + 9 + 25 + 1 + 16 + 16) / 6)
    with pytest.raises(ValueError, match="L1 constant must be a finite number; got nan"):
        L1(float("nan"))


def test_blur_by_hand_and_its_gradient_is_held_fixed():
    # box means over the neighbours inside the image: corners of a 2×3 image see 4 pixels, the middle column 6
    blurred = np.array([[6 / 4, 13 / 6, 12 / 4], [6 / 4, 13 / 6, 12 / 4]])
    diff = X - blurred  # -1/2, -1/6, 1; -3/2, 5/6, 0
    expected = 0.5 * np.mean(diff ** 2)  # = 19 / 54
    assert expected == pytest.approx(19 / 54)
    np.testing.assert_allclose(values(Blur().score(IMAGES)), [19 / 54, 4 * 19 / 54], rtol=1e-6)
    img = tf.constant(X[None, :, :, None])
    with tf.GradientTape() as tape:
        tape.watch(img)
        score = Blur().score(img)
    # the blurred copy is a constant: the gradient is (x − blur(x)) / 6, not through the blur
    np.testing.assert_allclose(values(tape.gradient(score, img))[0, :, :, 0], diff / 6, atol=1e-6)


def test_composed_objective_evaluates_to_the_hand_combination():
    acts = np.zeros((2, 2, 2, 3), np.float32)
    acts[0, :, :, 0] = [[1, 2], [3, 4]]  # map 0 of image 0: mean 2.5; image 1: 0
    acts[1, :, :, 1] = 9.0  # another map: no effect
    objective = MapMean(0) - 0.05 * TotalVariation()
    params = tf.nest.map_structure(tf.constant, objective.params(2))
    got = objective.evaluate(tf.constant(acts), params, IMAGES)
    np.testing.assert_allclose(values(got), [2.5 - 0.05 * 2.5, 0.0 - 0.05 * 5.0], rtol=1e-6)
    assert "total variation" in objective.describe()
    with pytest.raises(TypeError, match="scores the image"):
        TotalVariation()(tf.constant(acts), {})


def diversity(acts):
    return values(Diversity()(tf.constant(np.asarray(acts, np.float32)), {}))


def test_diversity_by_hand():
    one = np.random.default_rng(0).random((1, 3, 3, 4))
    np.testing.assert_allclose(diversity(np.repeat(one, 3, axis=0)), [-1, -1, -1], atol=1e-6)  # all the same
    a, b, c = (np.zeros((1, 2, 2, 2)) for _ in range(3))
    a[0, 0, 0] = [1, 0]  # Gram [[1, 0], [0, 0]]
    b[0, 1, 1] = [1, 1]  # Gram [[1, 1], [1, 1]]: cosine with a's 1 / 2
    c[0, 0, 1] = [0, 2]  # Gram [[0, 0], [0, 4]]: orthogonal to a's, cosine with b's 1 / 2
    np.testing.assert_allclose(diversity(np.concatenate([a, c])), [0, 0], atol=1e-7)
    np.testing.assert_allclose(diversity(np.concatenate([a, b, c])), [-0.25, -0.5, -0.25], atol=1e-6)
    np.testing.assert_allclose(diversity(one), [0.0], atol=1e-7)  # a batch of one
    assert Diversity.couples_batch and (MapMean(0) + 0.1 * Diversity()).couples_batch
    assert not MapMean(0).couples_batch
    Diversity().validate(LayerInfo("dense", 3, "units", (10,)), 2)  # a dense layer: one position
    u, v = np.array([[1.0, 2.0, 0.0]]), np.array([[2.0, 1.0, 0.0]])  # cosine 0.8 → Gram cosine 0.64
    np.testing.assert_allclose(diversity(np.concatenate([u, v])), [-0.64, -0.64], atol=1e-6)


def test_direction_by_hand_and_its_length_check():
    d = Direction([3.0, 0.0, 4.0])  # unit vector (0.6, 0, 0.8)
    acts = np.zeros((1, 1, 2, 3), np.float32)
    acts[0, 0, 0] = [1, 2, 3]  # 0.6 + 2.4 = 3
    acts[0, 0, 1] = [0, 1, 0]  # 0
    np.testing.assert_allclose(values(d(tf.constant(acts), {})), [1.5], rtol=1e-6)
    dense = tf.constant([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(values(d(dense, {})), [3.0, 1.4], rtol=1e-6)
    assert d.key() == Direction([6, 0, 8]).key() != Direction([3, 0, 5]).key()
    d.validate(LayerInfo("conv", 2, "maps", (5, 5, 3)), 1)
    with pytest.raises(ValueError, match="direction has 3 values but layer 'dense' has 4 channels"):
        d.validate(LayerInfo("dense", 3, "units", (4,)), 1)
    with pytest.raises(ValueError, match="not all 0"):
        Direction([0, 0])
    with pytest.raises(ValueError, match="1-D vector"):
        Direction([[1, 2]])


def test_neuron_is_the_centre_activation():
    acts = np.random.default_rng(1).random((2, 3, 4, 5)).astype(np.float32)
    acts[0, 1, 2, 1], acts[1, 1, 2, 4] = 7.0, -3.0  # centre: row 3 // 2 = 1, column 4 // 2 = 2
    n = Neuron([1, 4])
    got = n(tf.constant(acts), {"map": tf.constant(n.params(2)["map"])})
    np.testing.assert_allclose(values(got), [7.0, -3.0])
    assert Neuron(1).key() == Neuron(3).key()  # the map is a per-image parameter, not a constant
    with pytest.raises(ValueError, match=r"map index 5 is out of range: layer 'conv' has 5 maps \(0..4\)"):
        Neuron(5).validate(LayerInfo("conv", 2, "maps", (3, 4, 5)), 1)
    with pytest.raises(ValueError, match="Neuron needs a layer with spatial maps"):
        Neuron(0).validate(LayerInfo("dense", 3, "units", (10,)), 1)
