"""The fidelity benchmark's measurements (benchmarks/bench_fidelity.py) on hand-made gratings, and its --quick run:
the readable setting recovers the planted features of two classes of the shipped planted model."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_fidelity as fid  # noqa: E402

sys.path.pop(0)


def grating(orient_deg, freq, colours=((1, 0, 0), (0, 1, 1)), size=64):
    y, x = np.mgrid[0:size, 0:size]
    t = np.radians(orient_deg)
    g = 0.5 * (1 + np.cos(2 * np.pi * freq * (x * np.cos(t) + y * np.sin(t))))
    a, b = (np.asarray(c, float) for c in colours)
    return a + g[..., None] * (b - a)


@pytest.mark.parametrize("orient, freq", [(0, 0.125), (45, 0.0884), (90, 0.0625), (135, 0.1768)])
def test_the_measurements_read_a_known_grating(orient, freq):
    image = grating(orient, freq)
    axis = fid.colour_axis_of(image)
    np.testing.assert_allclose(abs(axis @ (np.array([-1, 1, 1]) / np.sqrt(3))), 1.0, atol=1e-6)
    got_orient, got_freq = fid.dominant(image, axis)
    assert fid.angle_diff(got_orient, orient) < 3 and abs(got_freq - freq) < 0.01
    assert fid.band_share(image, axis, orient, freq) > 0.9  # a pure grating lies in its band
    assert fid.band_share(image, axis, (orient + 90) % 180, freq) < 0.05
    assert fid.colour_share(image, axis) > 0.999
    assert fid.colour_share(image, np.array([0.0, 1.0, -1.0]) / np.sqrt(2)) < 1e-6  # G - B is constant here


def test_quick_run_recovers_two_classes_under_the_readable_setting():
    settings = fid.settings()
    table, pictures = fid.run([0, 1], 512, {k: settings[k] for k in ("pixel", "fourier+transforms")})
    best = table["fourier+transforms"]
    assert best["recovered_units"] == 1.0
    assert best["colour"] >= table["real samples"]["colour"]
    assert pictures["fourier+transforms"].shape == (2, 64, 64, 3)
