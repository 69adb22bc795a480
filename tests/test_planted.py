"""The planted data set (classes with known orientation, frequency and colour axis) and its shipped CNN."""

import json

import keras
import numpy as np
import pytest

import oipwidgets
from oipwidgets import cli
from oipwidgets.models import load_default_model, load_model, model_card, planted
from oipwidgets.models.planted import PLANTED_CLASSES, class_table, colour_axis, make_planted
from oipwidgets.models.training import evaluate

# tolerances of the measured planted parameters
ORIENTATION_TOL_DEG, FREQUENCY_TOL, AXIS_MIN_COS = 10.0, 0.15, 0.95


def measure(image: np.ndarray, pad: int = 256) -> tuple[float, float, np.ndarray]:
    """(orientation in degrees 0..180, frequency in cycles/pixel, unit colour axis) of an image's dominant grating:
    the colour axis is the first principal component of its pixel colours; orientation and frequency are the
    position of the peak of the (zero-padded) power spectrum of the image projected on that axis, ignoring
    frequencies below 0.03 cycles/pixel (the patch's own outline)."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    pixels = pixels - pixels.mean(axis=0)
    axis = np.linalg.svd(pixels, full_matrices=False)[2][0]
    plane = (pixels @ axis).reshape(image.shape[:2])
    power = np.abs(np.fft.fft2(plane, s=(pad, pad))) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(pad), np.fft.fftfreq(pad), indexing="ij")
    power[np.hypot(fy, fx) < 0.03] = 0.0
    iy, ix = np.unravel_index(np.argmax(power), power.shape)
    orientation = np.degrees(np.arctan2(fy[iy, ix], fx[iy, ix])) % 180.0
    return float(orientation), float(np.hypot(fy[iy, ix], fx[iy, ix])), axis


def _angle_diff(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


def _matches(measured, c: int) -> bool:
    orientation, frequency, axis = measured
    p = PLANTED_CLASSES[c]
    return (_angle_diff(orientation, p.orientation) <= ORIENTATION_TOL_DEG
            and abs(frequency - p.frequency) <= FREQUENCY_TOL * p.frequency
            and abs(float(axis @ colour_axis(c))) >= AXIS_MIN_COS)


def test_class_table_is_distinct():
    """Every two classes differ clearly in orientation (>= 30°) or colour axis (|cos| <= 0.6)."""
    assert len(PLANTED_CLASSES) >= 8
    table = class_table()
    assert [row["class"] for row in table] == list(range(len(PLANTED_CLASSES)))
    for i, a in enumerate(PLANTED_CLASSES):
        assert 0.06 <= a.frequency <= 0.2
        np.testing.assert_allclose(np.linalg.norm(colour_axis(i)), 1.0)
        np.testing.assert_allclose(table[i]["colour_axis"], colour_axis(i), atol=1e-3)
        for j in range(i):
            b = PLANTED_CLASSES[j]
            other_orientation = _angle_diff(a.orientation, b.orientation) >= 30
            # another class's axis is far outside the measurement tolerance (the two shipped axes: |cos| 0.56)
            other_axis = abs(float(colour_axis(i) @ colour_axis(j))) <= 0.6
            assert other_orientation or other_axis, (i, j)
    json.dumps(table)  # plain data, ready for cards and reports


def test_generator_is_reproducible_and_balanced():
    x, y = make_planted(32, seed=3)
    x2, y2 = make_planted(32, seed=3)
    x3, _ = make_planted(32, seed=4)
    assert x.shape == (32, 64, 64, 3) and x.dtype == np.float32 and y.shape == (32,)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, x3)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y, minlength=8).tolist() == [4] * 8
    # the generator leaves numpy's global state alone
    state = np.random.get_state()[1].copy()
    make_planted(2, seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_images_carry_the_planted_parameters():
    """Measured on images without clutter and distractors (pixel noise kept), each image shows its class's
    orientation (±10°), frequency (±15 %) and colour axis (|cos| >= 0.95), and no other class's combination."""
    x, y = make_planted(24, seed=11, clutter=False, distractors=False)
    for image, c in zip(x, y):
        m = measure(image)
        assert _matches(m, int(c)), (int(c), m[0], m[1], m[2].round(3), PLANTED_CLASSES[c])
        assert not any(_matches(m, k) for k in range(len(PLANTED_CLASSES)) if k != c)


def test_default_images_have_clutter():
    """By default the patch lies on coloured clutter (not plain grey as with clutter and distractors off)."""
    clean, _ = make_planted(8, seed=5, clutter=False, distractors=False, noise=0.0)
    busy, _ = make_planted(8, seed=5)
    outside = np.all(np.abs(clean - 0.5) < 1e-6, axis=-1)  # plain grey outside the patch
    assert outside.mean() > 0.4
    assert np.std(busy[outside]) > 0.02


def test_shipped_model_and_card():
    model = load_default_model("planted")
    assert tuple(model.input.shape) == (None, 64, 64, 3)
    logits = model.get_layer("logits")
    assert isinstance(logits, keras.layers.Dense) and logits.activation is keras.activations.linear
    assert logits.units == len(PLANTED_CLASSES)
    assert isinstance(model.get_layer("probs"), keras.layers.Softmax)
    assert [model.get_layer(f"conv{k}").filters for k in range(1, 5)] == [16, 32, 64, 64]
    assert oipwidgets.models.default_model_path("planted").stat().st_size < 1_000_000

    x, y = make_planted(400, seed=20_251)  # neither the training (0) nor the card's test seed (1)
    assert evaluate(model, x, y) >= 0.9

    card = model_card("planted")
    assert card["dataset"] == "planted" and card["test_accuracy"] >= 0.9
    assert card["command"].startswith("oipwidgets train --dataset planted")
    assert card["classes"] == json.loads(json.dumps(class_table()))
    assert card["training"]["epochs"] >= 1 and "seed" in card["training"]
    assert "64x64x3" in card["input"] and "standardised" in card["input"]


def test_engine_runs_on_the_logits():
    r = oipwidgets.OIPEngine(load_default_model("planted"), "logits").run(0, steps=20, seed=0)
    assert r.image.shape == (64, 64, 3)
    assert np.all(np.isfinite(r.image))


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "0"], "--epochs must be a whole number >= 1"),
    (["--batch-size", "-3"], "--batch-size must be"),
    (["--seed", "-1"], "--seed must be"),
    (["--data", "somewhere"], "the planted set is generated"),
])
def test_train_planted_rejects_bad_arguments_before_work(tmp_path, monkeypatch, capsys, extra, message):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(planted, "make_planted", no_work)
    out = tmp_path / "p.keras"
    assert cli.main(["train", "--dataset", "planted", "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_train_planted_writes_model_and_card(tmp_path, monkeypatch, capsys):
    """The train command builds the planted CNN on generated data (tiny sets here) and writes its card."""
    monkeypatch.setattr(cli, "PLANTED_TRAIN", (48, 0))
    monkeypatch.setattr(cli, "PLANTED_TEST", (16, 1))
    out = tmp_path / "p.keras"
    argv = ["train", "--dataset", "planted", "--epochs", "1", "--batch-size", "16", "--out", str(out),
            "--verbose", "0"]
    assert cli.main(argv) == 0
    card = json.loads((tmp_path / "p.card.json").read_text())
    assert card["command"] == "oipwidgets " + " ".join(argv)
    assert card["train_images"] == 48 and card["test_images"] == 16
    assert card["classes"] == json.loads(json.dumps(class_table()))
    assert card["architecture"].startswith("planted CNN")
    model = load_model(out)
    assert isinstance(model.get_layer("logits"), keras.layers.Dense)
    assert "planted CNN" in capsys.readouterr().out
