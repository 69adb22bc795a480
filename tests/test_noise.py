import math

import numpy as np
import pytest
import tensorflow as tf

from oipwidgets.engine.noise import DEFAULT_SCALES, DEFAULT_WEIGHTS, MultiScaleNoise, SpectralNoise, make_noise


def neighbour_difference(images: np.ndarray) -> float:
    """Mean absolute difference between horizontally and vertically neighbouring pixels (images are standardised)."""
    x = np.asarray(images, dtype=np.float64)
    return float((np.abs(np.diff(x, axis=1)).mean() + np.abs(np.diff(x, axis=2)).mean()) / 2)


def assert_standardised(images: np.ndarray) -> None:
    x = images.astype(np.float64)
    for img in x:
        assert abs(img.mean()) <= 1e-5
        assert abs(img.std() - 1.0) <= 1e-5


def article_image(seed, weights=DEFAULT_WEIGHTS, size=28, smooth=False) -> np.ndarray:
    """The article's recipe for one 28×28 grey image, built by hand: draws in the same order, bicubic resize, sum."""
    rng = np.random.default_rng(seed)
    flucts = [2.0 * (rng.random((1, d, d, 1)) - 0.5) for d in (3, 7, 14, 28)]
    scaled = [tf.image.resize(f, [size, size], method="bicubic", antialias=True) for f in flucts[:3]]
    scaled.append(tf.constant(flucts[3], dtype=tf.float32))
    data = sum(w * s for w, s in zip(weights, scaled))
    if smooth:
        data = tf.image.resize(data, [size, size], method="bicubic", antialias=True)
    return tf.image.per_image_standardization(data).numpy()


# --- MultiScaleNoise -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 28, 28, 1), (5, 28, 28, 1), (2, 32, 32, 3), (3, 17, 40, 2)])
def test_multiscale_shape_dtype_and_standardised(shape):
    x = MultiScaleNoise().sample(shape, seed=0)
    assert x.shape == shape and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert_standardised(x)


def test_multiscale_seeds():
    noise = MultiScaleNoise()
    a = noise.sample((4, 28, 28, 1), seed=7)
    assert np.array_equal(a, noise.sample((4, 28, 28, 1), seed=7))
    b = noise.sample((4, 28, 28, 1), seed=8)
    assert np.abs(a - b).mean() > 0.5
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(a[i] - a[j]).mean() > 0.5, (i, j)
    # a Generator works as seed and is advanced
    rng = np.random.default_rng(3)
    assert not np.array_equal(noise.sample((1, 28, 28, 1), rng), noise.sample((1, 28, 28, 1), rng))


@pytest.mark.parametrize("seed", [0, 123])
def test_multiscale_matches_article_recipe(seed):
    ours = MultiScaleNoise().sample((1, 28, 28, 1), seed=seed)
    ref = article_image(seed)
    assert np.max(np.abs(ours - ref)) <= 1e-5


def test_smoothed_variant_matches_article_and_is_nearly_unsmoothed():
    ours = MultiScaleNoise(smooth=True).sample((1, 28, 28, 1), seed=5)
    assert np.max(np.abs(ours - article_image(5, smooth=True))) <= 1e-5
    # resizing to the same size is an identity up to float32 rounding, as documented
    assert np.max(np.abs(ours - MultiScaleNoise().sample((1, 28, 28, 1), seed=5))) <= 1e-5


def test_zero_finest_weight_is_smooth_and_keeps_other_scales():
    shape = (8, 28, 28, 1)
    full = MultiScaleNoise().sample(shape, seed=11)
    coarse = MultiScaleNoise(weights=(0.5, 0.5, 0.5, 0.0)).sample(shape, seed=11)
    # dropping the 28×28 grid roughly halves the pixel-to-pixel jumps (measured ≈ 0.54); the 14×14 grid still jumps
    assert neighbour_difference(coarse) < 0.6 * neighbour_difference(full)
    smoother = MultiScaleNoise(weights=(0.5, 0.5, 0.0, 0.0)).sample(shape, seed=11)
    assert neighbour_difference(smoother) < 0.7 * neighbour_difference(coarse)
    # by hand: the finest grid is still drawn (and ignored), the coarse grids get the same numbers as with weight 0.5
    ref = article_image(11, weights=(0.5, 0.5, 0.5, 0.0))
    assert np.max(np.abs(MultiScaleNoise(weights=(0.5, 0.5, 0.5, 0.0)).sample((1, 28, 28, 1), seed=11) - ref)) <= 1e-5
    # the property: changing the finest weight leaves the coarse part unchanged, so (full - finest part) is coarse
    rng = np.random.default_rng(11)
    draws = [rng.uniform(-1, 1, (8, d, d, 1)) for d in (3, 7, 14, 28)]
    coarse_sum = sum(0.5 * tf.image.resize(d, (28, 28), method="bicubic", antialias=True).numpy() for d in draws[:3])
    full_sum = coarse_sum + 0.5 * draws[3]
    std = lambda x: tf.image.per_image_standardization(x).numpy()  # noqa: E731
    assert np.max(np.abs(coarse - std(coarse_sum))) <= 1e-5
    assert np.max(np.abs(full - std(full_sum))) <= 1e-5
    # and changing a coarse weight does not change the other scales' numbers either
    other = MultiScaleNoise(weights=(0.0, 0.5, 0.5, 0.5)).sample(shape, seed=11)
    coarsest_part = 0.5 * tf.image.resize(draws[0], (28, 28), method="bicubic", antialias=True).numpy()
    assert np.max(np.abs(other - std(full_sum - coarsest_part))) <= 1e-5


def test_scales_larger_than_image_and_any_number_of_scales():
    x = MultiScaleNoise(scales=((40, 40),), weights=(1.0,)).sample((2, 28, 28, 1), seed=0)
    assert x.shape == (2, 28, 28, 1)
    assert_standardised(x)
    many = MultiScaleNoise(scales=((2, 2), (3, 5), (6, 6), (9, 9), (12, 20), (56, 56)), weights=(1, 1, 1, 1, 1, 0.1))
    assert_standardised(many.sample((2, 28, 28, 1), seed=1))


def test_lists_are_converted_to_tuples():
    noise = MultiScaleNoise(scales=[[3, 3], (7, 7)], weights=[1, np.float32(0.5)], smooth=0)
    assert noise.scales == ((3, 3), (7, 7)) and noise.weights == (1.0, 0.5) and noise.smooth is False
    assert type(noise.weights[0]) is float and type(noise.scales[0][0]) is int
    assert hash(noise) == hash(MultiScaleNoise(scales=((3, 3), (7, 7)), weights=(1.0, 0.5)))
    with pytest.raises(AttributeError):
        noise.smooth = True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(scales=((3, 3), (7, 7)), weights=(0.5,)), r"one weight per scale: got 2 scales and 1 weights"),
        (dict(scales=(), weights=()), r"at least one scale"),
        (dict(weights=(0.5, -0.1, 0.5, 0.5)), r"finite number >= 0; got -0\.1"),
        (dict(weights=(0.5, float("nan"), 0.5, 0.5)), r"finite number >= 0; got nan"),
        (dict(weights=(0.5, float("inf"), 0.5, 0.5)), r"finite number >= 0; got inf"),
        (dict(weights=(0, 0, 0, 0)), r"at least one weight must be > 0"),
        (dict(weights=("a", 1, 1, 1)), r"weights must be numbers >= 0"),
        (dict(scales=((3, 3), (0, 7)), weights=(1, 1)), r"pair \(rows, columns\) of positive integers.*\(0, 7\)"),
        (dict(scales=((3, 3), (7,)), weights=(1, 1)), r"pair \(rows, columns\).*\(7,\)"),
        (dict(scales=((3, 3.5),), weights=(1,)), r"positive integers.*3\.5"),
        (dict(scales=((True, 3),), weights=(1,)), r"positive integers"),
        (dict(scales=5, weights=(1,)), r"sequence of \(rows, columns\) pairs"),
    ],
)
def test_multiscale_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiScaleNoise(**kwargs)


def test_sample_shape_validation():
    for bad in [(28, 28, 1), (1, 28, 28, 0), (1, 28.0, 28, 1), None]:
        with pytest.raises(ValueError, match=r"\(n, H, W, C\)"):
            MultiScaleNoise().sample(bad)


def test_for_size():
    assert MultiScaleNoise.for_size(28, 28) == MultiScaleNoise()
    assert MultiScaleNoise.for_size(28, 28).scales == DEFAULT_SCALES
    assert MultiScaleNoise.for_size(224, 224).scales == ((24, 24), (56, 56), (112, 112), (224, 224))
    assert MultiScaleNoise.for_size(14, 56).scales == ((2, 6), (4, 14), (7, 28), (14, 56))  # 1.5 rounds up
    assert MultiScaleNoise.for_size(2, 2).scales == ((1, 1), (1, 1), (1, 1), (2, 2))
    assert MultiScaleNoise.for_size(32, 32, weights=(1, 1, 1, 0), smooth=True).weights == (1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="positive integer"):
        MultiScaleNoise.for_size(0, 28)


def test_coarsest_without_finest_and_split():
    noise = MultiScaleNoise(scales=((14, 14), (3, 3), (28, 28), (7, 7)), weights=(0.3, 0.1, 0.4, 0.2), smooth=True)
    two = noise.coarsest(2)
    assert two.scales == ((3, 3), (7, 7)) and two.weights == (0.1, 0.2) and two.smooth
    three = noise.without_finest()
    assert three.scales == ((14, 14), (3, 3), (7, 7)) and three.weights == (0.3, 0.1, 0.2)  # given order kept
    assert noise.coarsest(4) == noise
    parts = noise.split()
    assert [p.scales for p in parts] == [((3, 3),), ((7, 7),), ((14, 14),), ((28, 28),)]
    assert [p.weights for p in parts] == [(0.1,), (0.2,), (0.3,), (0.4,)]
    assert MultiScaleNoise(weights=(0.5, 0, 0.5, 0.5)).split()[1].scales == ((14, 14),)  # weight 0 left out
    for k in (0, 5, 1.0):
        with pytest.raises(ValueError, match=r"1 <= k <= 4"):
            noise.coarsest(k)
    with pytest.raises(ValueError, match="at least 2 scales"):
        MultiScaleNoise(scales=((3, 3),), weights=(1,)).without_finest()
    # with the defaults the coarse scales come first: same seed → the full image without its finest detail
    shape = (2, 28, 28, 1)
    assert np.array_equal(
        MultiScaleNoise().without_finest().sample(shape, seed=4),
        MultiScaleNoise(weights=(0.5, 0.5, 0.5, 0)).sample(shape, seed=4),
    )


def test_multiscale_describe():
    assert MultiScaleNoise().describe() == "4 scales 3×3:0.5, 7×7:0.5, 14×14:0.5, 28×28:0.5"
    assert MultiScaleNoise(scales=((3, 5),), weights=(1,), smooth=True).describe() == "1 scale 3×5:1, smoothed"


# --- SpectralNoise ---------------------------------------------------------------------------------------------


def test_spectral_shape_dtype_seeds():
    noise = SpectralNoise()
    x = noise.sample((2, 32, 32, 3), seed=0)
    assert x.shape == (2, 32, 32, 3) and x.dtype == np.float32
    assert_standardised(x)
    assert np.array_equal(x, noise.sample((2, 32, 32, 3), seed=0))
    assert np.abs(x - noise.sample((2, 32, 32, 3), seed=1)).mean() > 0.3
    assert np.abs(x[0] - x[1]).mean() > 0.3
    assert np.abs(x[0, ..., 0] - x[0, ..., 1]).mean() > 0.3  # channels are independent
    assert_standardised(SpectralNoise(1.5).sample((3, 15, 21, 1), seed=2))  # odd sizes


def test_spectral_larger_alpha_is_smoother():
    diffs = [neighbour_difference(SpectralNoise(a).sample((8, 32, 32, 1), seed=3)) for a in (0.0, 1.0, 2.0)]
    assert diffs[0] > 1.5 * diffs[1] > 1.5 * 1.5 * diffs[2], diffs
    # alpha = 0 is white noise: neighbours are independent N(0, 1), so E|a - b| = 2 / sqrt(pi)
    assert diffs[0] == pytest.approx(2 / math.sqrt(math.pi), rel=0.05)


def radial_power_slope(images: np.ndarray, fmin=0.04, fmax=0.3) -> float:
    """Slope of log power vs log frequency of the radially averaged power spectrum, averaged over images."""
    x = images[..., 0].astype(np.float64)
    n = x.shape[-1]
    power = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0)
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    edges = np.arange(1, n // 2) / n
    fs, ps = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        ring = (f >= lo) & (f < hi)
        fs.append(f[ring].mean())
        ps.append(power[ring].mean())
    fs, ps = np.array(fs), np.array(ps)
    sel = (fs > fmin) & (fs < fmax)
    return float(np.polyfit(np.log(fs[sel]), np.log(ps[sel]), 1)[0])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_spectral_power_slope(alpha):
    x = SpectralNoise(alpha).sample((16, 64, 64, 1), seed=0)
    assert radial_power_slope(x) == pytest.approx(-2 * alpha, abs=0.2)


def test_spectral_fmin_flattens_low_frequencies():
    # with fmin = 0.25 every frequency below 0.25 cycles/pixel gets the same amplitude: flat low-frequency spectrum
    x = SpectralNoise(2.0, fmin=0.25).sample((16, 64, 64, 1), seed=0)
    assert abs(radial_power_slope(x, fmin=0.03, fmax=0.2)) < 0.3
    assert radial_power_slope(SpectralNoise(2.0).sample((16, 64, 64, 1), seed=0), 0.03, 0.2) < -3.5


def test_spectral_validation_and_describe():
    for bad in (float("nan"), float("inf"), "1", None):
        with pytest.raises(ValueError, match="alpha must be a finite number"):
            SpectralNoise(bad)
    for bad in (0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="fmin must be None or a frequency > 0 and <= 0.5"):
            SpectralNoise(1.0, fmin=bad)
    assert SpectralNoise(1).alpha == 1.0 and type(SpectralNoise(1).alpha) is float
    assert SpectralNoise().describe() == "1/f^1.0 spectral noise"
    assert SpectralNoise(0.5, fmin=0.05).describe() == "1/f^0.5 spectral noise, fmin 0.05"


# --- make_noise ------------------------------------------------------------------------------------------------


def test_make_noise():
    shape = (2, 56, 56, 1)
    assert np.array_equal(make_noise(None, shape, seed=1), MultiScaleNoise.for_size(56, 56).sample(shape, seed=1))
    assert np.array_equal(make_noise(SpectralNoise(2), shape, seed=1), SpectralNoise(2).sample(shape, seed=1))
    assert np.max(np.abs(make_noise(MultiScaleNoise(), (1, 28, 28, 1), 2) - article_image(2))) <= 1e-5
    for bad in ("multiscale", {"alpha": 1}, 1.0, MultiScaleNoise):
        with pytest.raises(TypeError, match="MultiScaleNoise, a SpectralNoise or None"):
            make_noise(bad, shape)
    with pytest.raises(ValueError, match=r"\(n, H, W, C\)"):
        make_noise(None, (56, 56))
