"""A real trained colour CNN nobody here tuned for: MTCNN's O-Net (mtcnn 1.0, MIT; its weights ship inside the
wheel), a subclassed keras.Model that takes 48×48 RGB as (x·255 − 127.5) / 128 and ends in a face softmax. The
photo is matplotlib's sample of Grace Hopper (public domain), which ships with matplotlib."""

import os

import matplotlib
import numpy as np
import pytest
from PIL import Image

import oipwidgets as ow

FACE_BOX = (178, 110, 173, 220)  # x, y, w, h of the face in grace_hopper.jpg (found by mtcnn's detector)


def mtcnn_input(x):
    """mtcnn 1.0's normalisation (mtcnn/utils/images.py) of RGB in [0, 1]."""
    return (x * 255.0 - 127.5) / 128.0


@pytest.fixture(scope="module")
def onet():
    from mtcnn.network.onet import ONet
    from mtcnn.utils.tensorflow import load_weights

    model = ONet()
    model.build()
    model.set_weights(load_weights("onet.lz4"))
    return model


@pytest.fixture(scope="module")
def photo():
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def _crop(photo, box, size=48):
    x, y, w, h = box
    part = Image.fromarray((photo[y : y + h, x : x + w] * 255).round().astype(np.uint8))
    return np.asarray(part.resize((size, size), Image.BILINEAR), np.float32) / 255.0


def _crops(photo, n, seed=0):
    rng = np.random.default_rng(seed)
    h, w, _ = photo.shape
    out = []
    for _ in range(n):
        side = int(rng.integers(40, min(h, w)))
        y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
        out.append(_crop(photo, (x, y, side, side)))
    return np.stack(out)


def test_a_subclassed_model_with_real_weights_is_probed_and_its_face_score_climbed(onet, photo):
    engine = ow.OIPEngine(onet, "fc6-3", preprocess=mtcnn_input, input_shape=(48, 48, 3))
    assert engine.probe.climbed == "'fc6-3' before its softmax"
    face = _crop(photo, FACE_BOX)[None]
    scores = engine.activations(face)[0]
    assert scores[1] - scores[0] > 4  # the real face is a face for the O-Net: its preprocess is right
    r = engine.run(1, seed=0, recipe="readable", steps=64)
    assert r.params["preprocess"] == "mtcnn_input" and r.params["climbed"] == "'fc6-3' before its softmax"
    assert r.image.shape == (48, 48, 3) and 0 <= r.image.min() and r.image.max() <= 1
    assert r.saturated <= 0.05
    assert r.final_loss > scores[1]  # the OIP is more of a face to the O-Net than the real face


def test_real_conv_maps_get_readable_oips_that_fire_at_least_as_the_best_real_crop(onet, photo):
    engine = ow.OIPEngine(onet, "conv4", preprocess=mtcnn_input, input_shape=(48, 48, 3))
    crops = _crops(photo, 48)
    maps = [0, 40, 80, 120]
    best = engine.activations(crops).mean(axis=(1, 2))[:, maps].max(axis=0)
    out = engine.run_layer(maps, seed=0, recipe="readable", steps=64, examples=crops)
    for k, r in enumerate(out):
        assert r.saturated <= 0.05, (maps[k], r.saturated)
        assert 0.1 < np.median(np.abs(r.image - 0.5)) < 0.4
        assert r.params["best_example"] == pytest.approx(best[k], rel=1e-4, abs=1e-5)
        assert r.params["activation"] >= best[k] - 1e-5, (maps[k], r.params["activation"], best[k])
    # the layer list of a subclassed model, and the error without an input shape
    names = [i.name for i in ow.OIPEngine.layers(onet, (48, 48, 3))]
    assert names[:4] == ["conv1", "prelu1", "maxpooling1", "conv2"] and "fc6-3" in names
