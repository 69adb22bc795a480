"""Parameterisations (engine/parameterizations.py): pixel, fourier and maco map to the input space and back as
documented, and their images have the spectrum and colours they claim."""

import numpy as np
import pytest
import tensorflow as tf

from oipwidgets.engine.parameterizations import (LUCID_COLOUR_MATRIX, PARAMETERIZATIONS, Fourier, Maco, Pixel,
                                                 colour_matrix_from, mean_magnitude, parameterization)


def images_of(space, state) -> np.ndarray:
    return space.to_images(tf.constant(state, tf.float32)).numpy()


def rfft(images: np.ndarray) -> np.ndarray:
    """Orthonormal rfft2 (B, C, H, W // 2 + 1) of images (B, H, W, C)."""
    return np.fft.rfft2(np.transpose(images, (0, 3, 1, 2)).astype(np.float64), axes=(2, 3), norm="ortho")


def radial_slope(images: np.ndarray) -> float:
    """Slope of log power against log |f| (0.05..0.4 cycles/pixel) of grey images (N, H, W)."""
    power = np.mean(np.abs(np.fft.fft2(images - images.mean(axis=(1, 2), keepdims=True))) ** 2, axis=0)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(images.shape[1]), np.fft.fftfreq(images.shape[2]), indexing="ij"))
    sel = (f > 0.05) & (f < 0.4)
    return float(np.polyfit(np.log(f[sel]), np.log(power[sel]), 1)[0])


@pytest.mark.parametrize("shape", [(33, 47, 3), (32, 32, 1), (16, 24, 3)])
def test_fourier_and_pixel_round_trip_exactly(shape):
    # any image, its mean included (the scale at f = 0 is max(H, W)^decay, not infinite)
    x = (np.random.default_rng(0).normal(size=(2, *shape)) + [[[[3.0]]], [[[-1.5]]]]).astype(np.float32)
    for space in (Fourier().bind(*shape), Fourier(decay=2.0, decorrelate=False).bind(*shape),
                  Fourier(decay=0.0).bind(*shape), Pixel().bind(*shape)):
        state = space.from_images(x)
        assert state.shape == (2, *space.state_shape()) and state.dtype == np.float32
        np.testing.assert_allclose(images_of(space, state), x, atol=2e-5)
        np.testing.assert_array_equal(state, space.from_images(x.copy()))  # same image, same state


def test_same_noise_gives_the_same_states_and_images():
    noise = lambda: np.random.default_rng(7).normal(size=(2, 16, 20, 3)).astype(np.float32)  # noqa: E731
    for space in (Fourier().bind(16, 20, 3), Maco().bind(16, 20, 3), Pixel().bind(16, 20, 3)):
        a, b = space.from_images(noise()), space.from_images(noise())
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(images_of(space, a), images_of(space, b))


def test_one_fourier_coefficient_is_a_cosine_of_the_documented_amplitude():
    # state 1 at (ky, kx) = (0, 4) of a 32x32 image: spectrum 1 × scale, scale = 1 / (4/32)^1 = 8; the orthonormal
    # inverse rfft2 of a real coefficient c at kx (and its mirror) is 2c / √(32·32) cos(2π kx x / W) = 0.5 cos(…)
    space = Fourier(decay=1.0, decorrelate=False).bind(32, 32, 1)
    assert space.scale[0, 4] == pytest.approx(8.0) and space.scale[0, 0] == pytest.approx(32.0)
    state = np.zeros((1, *space.state_shape()), np.float32)
    state[0, 0, 0, 4, 0] = 1.0
    expected = 0.5 * np.cos(2 * np.pi * 4 * np.arange(32) / 32)
    np.testing.assert_allclose(images_of(space, state)[0, :, :, 0], np.tile(expected, (32, 1)), atol=1e-6)
    state[0, 0, 0, 4, 0] = 0.0
    state[0, 0, 0, 0, 0] = 1.0  # the mean: 32 × 1 / 32
    np.testing.assert_allclose(images_of(space, state), 1.0, atol=1e-6)


@pytest.mark.parametrize("decay", [0.5, 1.0, 1.5])
def test_fourier_images_fall_as_one_over_f_to_the_decay(decay):
    space = Fourier(decay=decay, decorrelate=False).bind(64, 64, 1)
    state = np.random.default_rng(1).normal(size=(16, *space.state_shape()))
    assert abs(radial_slope(images_of(space, state)[..., 0]) + 2 * decay) < 0.3


@pytest.mark.parametrize("shape", [(32, 32, 1), (17, 22, 2), (15, 15, 3)])
def test_maco_images_have_exactly_the_fixed_magnitude_for_any_phase(shape):
    space = Maco(decay=1.0, decorrelate=False).bind(*shape)
    phase = np.random.default_rng(2).uniform(-4, 4, size=(3, *space.state_shape()))
    images = images_of(space, phase)
    np.testing.assert_allclose(np.abs(rfft(images)), np.broadcast_to(space.magnitude, (3, *space.state_shape())),
                               atol=1e-4)
    # the default 1/f magnitude gives images of mean 0 and standard deviation 1 per channel, whatever the phase
    np.testing.assert_allclose(images.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(images.std(axis=(1, 2)), 1.0, atol=1e-4)
    # from_images keeps the phase: an image that has this magnitude comes back exactly
    np.testing.assert_allclose(images_of(space, space.from_images(images)), images, atol=1e-4)


def test_mean_magnitude_is_the_mean_spectrum_magnitude_of_the_images():
    rng = np.random.default_rng(3)
    images = np.cumsum(rng.normal(size=(5, 16, 16, 3)), axis=1).astype(np.float32)  # red-ish spectra
    mean = mean_magnitude(images, colour_matrix=None)
    standard = (images - images.mean(axis=(1, 2, 3), keepdims=True)) / images.std(axis=(1, 2, 3), keepdims=True)
    expected = np.abs(rfft(standard)).mean(axis=0)
    expected[:, 0, 0] = 0.0
    np.testing.assert_allclose(mean, expected, rtol=1e-4, atol=1e-5)
    assert mean.shape == (3, 16, 9) and mean_magnitude(images, (8, 10)).shape == (3, 8, 6)
    space = Maco(magnitude=mean, decorrelate=False).bind(16, 16, 3)
    np.testing.assert_allclose(space.magnitude, mean, atol=1e-6)  # a real image's magnitude is already symmetric
    phase = rng.uniform(-3, 3, size=(2, *space.state_shape()))
    np.testing.assert_allclose(np.abs(rfft(images_of(space, phase))), np.broadcast_to(mean, (2, 3, 16, 9)),
                               atol=1e-4)
    # decorrelated (the default): the magnitude of the images' colours c, x = M c, the colours Maco recorrelates
    m = Maco().bind(16, 16, 3).colour_matrix
    decorrelated = np.abs(rfft(standard @ np.linalg.inv(m.astype(np.float64)).T)).mean(axis=0)
    decorrelated[:, 0, 0] = 0.0
    np.testing.assert_allclose(mean_magnitude(images), decorrelated, rtol=1e-4, atol=1e-4)


def test_colour_decorrelation_and_the_matrix_from_images():
    space, plain = Fourier(decay=0.0).bind(32, 32, 3), Fourier(decay=0.0, decorrelate=False).bind(32, 32, 3)
    m = space.colour_matrix
    # lucid's matrix divided by its largest column norm, √(0.26² + 0.27² + 0.27²) = 0.46195 (the first column)
    np.testing.assert_allclose(m, LUCID_COLOUR_MATRIX / 0.461952, rtol=1e-5)
    # a pixel's colour is M c for its decorrelated colour c
    state = np.random.default_rng(4).normal(size=(32, *space.state_shape()))
    colours, white = images_of(space, state).reshape(-1, 3), images_of(plain, state).reshape(-1, 3)
    np.testing.assert_allclose(colours, white @ m.T, atol=1e-5)
    # white spectra → decorrelated colours of covariance σ² I → pixel colours of covariance σ² M Mᵀ
    sigma2 = np.trace(np.cov(white.T)) / 3
    np.testing.assert_allclose(np.cov(white.T), sigma2 * np.eye(3), atol=0.05 * sigma2)
    np.testing.assert_allclose(np.cov(colours.T), sigma2 * m @ m.T, atol=0.03 * sigma2)
    # images of a known colour covariance C: colour_matrix_from gives M with M Mᵀ ∝ C and unit largest column
    root = np.array([[1.0, 0.3, 0.0], [0.3, 0.8, -0.2], [0.0, -0.2, 0.5]])
    images = (np.random.default_rng(5).normal(size=(20, 16, 16, 3)) @ root.T + [1.0, -2.0, 0.5]).astype(np.float32)
    got = colour_matrix_from(images).astype(np.float64)
    c = root @ root.T
    assert np.max(np.linalg.norm(got, axis=0)) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(got @ got.T / np.trace(got @ got.T), c / np.trace(c), atol=0.01)  # 5120 pixels
    # a user's matrix is used (normalised) and round-trips
    custom = Fourier(colour_matrix=got).bind(16, 16, 3)
    np.testing.assert_allclose(images_of(custom, custom.from_images(images[:2])), images[:2], atol=2e-5)
    # one channel: no colour space, decorrelate is ignored
    grey = np.random.default_rng(6).normal(size=(1, 8, 8, 1))
    np.testing.assert_array_equal(Fourier().bind(8, 8, 1).from_images(grey),
                                  Fourier(decorrelate=False).bind(8, 8, 1).from_images(grey))


def test_spectral_images_are_differentiable_in_a_compiled_function():
    for space in (Fourier().bind(12, 10, 3), Maco().bind(12, 10, 3)):
        state = tf.Variable(np.random.default_rng(8).normal(size=(2, *space.state_shape())), dtype=tf.float32)

        @tf.function
        def grad(s):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(space.to_images(s)[:, 3:6, 2:4, 1])
            return tape.gradient(loss, s)

        g = grad(state).numpy()
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_bad_settings_name_the_valid_choices():
    for bad in (float("nan"), -1.0, 9.0, "1", True):
        with pytest.raises((ValueError, TypeError), match=r"decay .* must be a finite number >= 0 and <= 4"):
            Fourier(decay=bad)
    with pytest.raises(ValueError, match=r"decay .* >= 0 and <= 4; got -0.5"):
        Maco(decay=-0.5)
    with pytest.raises(ValueError, match=r"magnitude has shape \(3, 16, 9\); images of 32x32x3 need \(3, 32, 17\)"):
        Maco(magnitude=np.ones((3, 16, 9))).bind(32, 32, 3)
    for bad in (np.ones((16, 9)), -np.ones((1, 4, 3)), np.zeros((1, 4, 3)), np.full((1, 4, 3), np.nan)):
        with pytest.raises(ValueError, match="magnitude must be finite values >= 0, not all 0"):
            Maco(magnitude=bad)
    for unbound in (Fourier().to_images, Maco().to_images, Fourier().from_images, Pixel().from_images):
        with pytest.raises(ValueError, match=r"not bound to an image size yet.*\.bind\(height, width, channels\)"):
            unbound(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"bound to images of 8x8x3: from_images takes \(B, 8, 8, 3\); got shape"):
        Fourier().bind(8, 8, 3).from_images(np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"image width must be a whole number >= 1; got 0"):
        Fourier().bind(8, 0, 3)
    with pytest.raises(ValueError, match=r"unknown parameterization 'nope'; valid: pixel, fourier, maco"):
        parameterization("nope")
    for singular in (np.zeros((3, 3)), np.ones((3, 3)), np.eye(2)):
        with pytest.raises(ValueError, match="invertible 3x3"):
            Fourier(colour_matrix=singular)


def test_registry_and_keys():
    assert list(PARAMETERIZATIONS) == ["pixel", "fourier", "maco"]
    assert isinstance(parameterization("fourier"), Fourier) and isinstance(parameterization("maco"), Maco)
    assert Fourier().bind(32, 32, 3).key() == Fourier(decay=1.0).bind(32, 32, 3).key()
    assert Fourier().bind(32, 32, 3).key() != Fourier(decay=1.5).bind(32, 32, 3).key()
    assert Fourier().bind(32, 32, 3).key() != Fourier().bind(32, 48, 3).key()
    assert Fourier().bind(32, 32, 3).key() != Fourier(colour_matrix=np.eye(3)).bind(32, 32, 3).key()
    assert Maco().bind(8, 8, 3).key() == Maco().bind(8, 8, 3).key() != Maco(decay=2.0).bind(8, 8, 3).key()
    images = np.random.default_rng(9).normal(size=(2, 8, 8, 3))
    assert Maco(magnitude=mean_magnitude(images)).bind(8, 8, 3).key() != Maco().bind(8, 8, 3).key()
    with pytest.raises(AttributeError, match="immutable"):
        Fourier().decay = 2.0
