import numpy as np
import pytest
import tensorflow as tf

from oipwidgets.models.preprocessing import standardize, to_model_input


@pytest.mark.parametrize("shape", [(28, 28, 1), (5, 28, 28, 1), (3, 32, 32, 3), (2, 7, 5, 2)])
def test_standardize_equals_tensorflow(shape):
    rng = np.random.default_rng(1)
    x = (rng.normal(3.0, 7.0, size=shape)).astype(np.float32)
    ours = standardize(x)
    ref = tf.image.per_image_standardization(x).numpy()
    assert ours.dtype == np.float32 and ours.shape == shape
    assert np.max(np.abs(ours - ref)) <= 1e-5


def test_standardize_uint8_and_constant_image_match_tensorflow():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(4, 28, 28, 1)).astype(np.uint8)
    x[1] = 17  # a constant image: TF divides by 1/sqrt(N), not by zero
    ref = tf.image.per_image_standardization(x).numpy()
    ours = standardize(x)
    assert np.max(np.abs(ours - ref)) <= 1e-5
    assert np.all(ours[1] == 0)
    assert np.allclose(ours[0].mean(), 0, atol=1e-6) and np.allclose(ours[0].std(), 1, atol=1e-5)


def test_to_model_input_adds_channel_axis():
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    assert to_model_input(x).shape == (2, 28, 28, 1)
    assert to_model_input(x[0]).shape == (1, 28, 28, 1)
    with pytest.raises(ValueError, match="shape"):
        to_model_input(np.zeros(5))
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        standardize(np.zeros((28, 28)))
