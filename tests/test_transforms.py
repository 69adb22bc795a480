"""Robustness transforms: exact pixel shifts, identities, rot90, zoom, seeds, shapes, gradients, argument errors."""

import numpy as np
import pytest
import tensorflow as tf

from oipwidgets.engine.transforms import (
    Compose,
    Jitter,
    Pad,
    Rotate,
    Scale,
    Transform,
    _shift,
    _sub_seed,
    standard_transforms,
)


def seed(a, b=0):
    return tf.constant([a, b], tf.int32)


def rand(*shape, s=0):
    return np.random.default_rng(s).random(shape).astype(np.float32)


def name(t):
    return t.describe()


ALL = [Jitter(2), Jitter(3, fill="constant", value=-1.0), Pad(4), Scale([0.9, 1.1]), Rotate([-10, 10]),
       standard_transforms()]


def test_shift_by_one_pixel_moves_the_image_by_exactly_one_pixel():
    x = np.arange(30, dtype=np.float32).reshape(1, 5, 6, 1)
    down = _shift(x, 1, 0, 1).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(down[1:], x[0, :-1, :, 0])
    np.testing.assert_array_equal(down[0], x[0, 1, :, 0])  # the uncovered row: row 1 mirrored about row 0
    left = _shift(x, 0, -1, 2, fill="constant", value=7.0).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(left[:, :-1], x[0, :, 1:, 0])
    np.testing.assert_array_equal(left[:, -1], 7.0)


def test_jitter_draws_whole_pixel_shifts_the_same_for_the_batch():
    x = rand(2, 6, 7, 3)
    seen = set()
    for s in range(16):
        out = Jitter(1)(x, seed(s, 5)).numpy()
        match = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                 if np.array_equal(out[:, 1:-1, 1:-1], np.roll(x, (dy, dx), axis=(1, 2))[:, 1:-1, 1:-1])]
        assert len(match) == 1  # exactly one whole-pixel shift, for both images alike
        seen.add(match[0])
    assert len(seen) >= 4  # the draws vary with the seed


def test_same_seed_same_output_other_seed_other_output_and_batch_split_agrees():
    x = rand(3, 20, 20, 3)
    t = standard_transforms()
    a, b, c = t(x, seed(1, 2)).numpy(), t(x, seed(1, 2)).numpy(), t(x, seed(1, 3)).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    np.testing.assert_allclose(t(x[1:2], seed(1, 2)).numpy(), a[1:2], atol=1e-6)  # one image alone: the same


@pytest.mark.parametrize("t", [Scale(1.0), Rotate(0), Jitter(0), Pad(0), Compose([])], ids=name)
def test_identities(t):
    x = rand(2, 7, 9, 2)
    np.testing.assert_allclose(t(x, seed(4)).numpy(), x, atol=1e-5)


def test_rotate_90_is_rot90():
    x = rand(2, 9, 9, 3)
    np.testing.assert_allclose(Rotate(90)(x, seed(0)).numpy()[:, 1:-1, 1:-1],
                               np.rot90(x, 1, axes=(1, 2))[:, 1:-1, 1:-1], atol=1e-4)
    np.testing.assert_allclose(Rotate(-90)(x, seed(0)).numpy()[:, 1:-1, 1:-1],
                               np.rot90(x, -1, axes=(1, 2))[:, 1:-1, 1:-1], atol=1e-4)


def test_scale_2_doubles_the_side_of_a_centred_square():
    img = np.zeros((1, 16, 16, 1), np.float32)
    img[0, 6:10, 6:10] = 1.0  # side 4 about the centre 7.5
    out = Scale(2.0)(img, seed(0)).numpy()[0, :, :, 0]
    # row 7 samples input columns 7.5 + (x - 7.5) / 2: 4.75, 5.25 → 0 and 0.25 ... 9.75 → 0.25, 10.25 → 0
    np.testing.assert_allclose(out[7], [0, 0, 0, 0.25, 0.75, 1, 1, 1, 1, 1, 1, 0.75, 0.25, 0, 0, 0], atol=1e-6)
    assert (out[7] >= 0.5).sum() == 8 and (out[:, 7] >= 0.5).sum() == 8
    assert out.sum() == pytest.approx(64.0)  # area × 4
    # 0.5 halves it: the square's 16 → 4 of mass
    assert Scale(0.5)(img, seed(0)).numpy()[0, 4:12, 4:12].sum() == pytest.approx(4.0)


@pytest.mark.parametrize("t", ALL, ids=name)
def test_shapes_kept_for_odd_sizes(t):
    x = rand(2, 33, 47, 3)
    out = t(x, seed(9))
    assert out.shape == (2, 33, 47, 3) and out.dtype == tf.float32


def test_gradients_flow_inside_tf_function_and_are_the_exact_adjoint():
    x = tf.constant(rand(2, 17, 19, 3))
    y = tf.constant(rand(2, 17, 19, 3, s=1))
    for t in ALL:
        @tf.function(input_signature=[tf.TensorSpec([None, 17, 19, 3]), tf.TensorSpec([2], tf.int32)])
        def step(img, s, t=t):
            with tf.GradientTape() as tape:
                tape.watch(img)
                inner = tf.reduce_sum(t(img, s) * y)
            return inner, tape.gradient(inner, img)

        inner, grad = step(x, seed(3, 7))
        g = grad.numpy()
        assert np.isfinite(g).all() and np.abs(g).max() > 0, t
        # every transform is linear in the image (constant fills: 0 for Pad, here −1 for the Jitter)
        if "filled with -1" not in t.describe():
            assert float(tf.reduce_sum(x * grad)) == pytest.approx(float(inner), rel=1e-4), t


def test_compose_uses_independent_draws():
    img = np.zeros((1, 15, 15, 1), np.float32)
    img[0, 7, 7] = 1.0
    twice = Compose([Jitter(3, fill="constant"), Jitter(3, fill="constant")])
    totals = set()
    for s in range(24):
        out = twice(img, seed(s)).numpy()[0, :, :, 0]
        r, c = np.argwhere(out == 1.0)[0]
        totals.add((r - 7, c - 7))
        one, two = _sub_seed(seed(s), 0), _sub_seed(seed(s), 1)
        assert not np.array_equal(one.numpy(), two.numpy())
        by_hand = Jitter(3, fill="constant")(Jitter(3, fill="constant")(img, one), two)
        np.testing.assert_array_equal(out, by_hand.numpy()[0, :, :, 0])
    # with the same draw twice every total shift would be even
    assert any(dy % 2 or dx % 2 for dy, dx in totals)


def test_argument_errors_name_the_valid_range():
    with pytest.raises(ValueError, match=r"jitter distance d \(pixels\) must be a whole number >= 0; got -1"):
        Jitter(-1)
    with pytest.raises(ValueError, match="whole number >= 0; got 1.5"):
        Jitter(1.5)
    with pytest.raises(ValueError, match="unknown jitter fill 'wrap'; valid: reflect, constant"):
        Jitter(2, fill="wrap")
    with pytest.raises(ValueError, match="jitter fill value must be a finite number; got nan"):
        Jitter(2, fill="constant", value=float("nan"))
    with pytest.raises(ValueError, match=r"pad width n \(pixels\) must be a whole number >= 0"):
        Pad(-3)
    with pytest.raises(ValueError, match="each of scale factors must be a finite number > 0; got 0"):
        Scale([1.0, 0])
    with pytest.raises(ValueError, match="scale factors must hold at least one number"):
        Scale([])
    with pytest.raises(ValueError, match=r"each of rotation angles \(degrees\) must be a finite number; got inf"):
        Rotate([0, float("inf")])
    with pytest.raises(TypeError, match="Compose takes transforms"):
        Compose([Jitter(1), 3])
    with pytest.raises(ValueError, match="larger than 20 pixels.*fill='constant'"):
        Jitter(20)(rand(1, 20, 30, 1), seed(0))


def test_transforms_are_immutable_keyed_and_described():
    with pytest.raises(AttributeError, match="immutable"):
        Jitter(2).d = 3
    assert Jitter(2).key() != Jitter(3).key() and Scale(2).key() == Scale(2.0).key()
    assert Compose([Jitter(1)]).key() != Compose([Jitter(2)]).key()
    assert all(isinstance(t, Transform) for t in ALL)
    text = standard_transforms().describe()
    assert text.startswith("pad 12 px") and "rotate by -10..10°" in text and text.endswith("jitter ±4 px (reflected)")
    assert Rotate(90).describe() == "rotate by 90°"
