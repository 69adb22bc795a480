"""Keras' own architectures, built offline with random weights at small inputs: every parameterisation, the
standard transforms and Adam run on them and return finite images of the model's input shape."""

import keras
import numpy as np
import pytest

import oipwidgets as ow

APPLICATIONS = [
    ("VGG16", keras.applications.VGG16, "block3_conv3", 256),
    ("ResNet50", keras.applications.ResNet50, "conv3_block4_out", 512),
    ("MobileNetV2", keras.applications.MobileNetV2, "block_6_expand_relu", 192),
]


@pytest.mark.parametrize("name, make, layer, maps", APPLICATIONS, ids=[a[0] for a in APPLICATIONS])
def test_every_climb_runs_on_keras_applications(name, make, layer, maps):
    keras.utils.set_random_seed(0)
    model = make(weights=None, include_top=False, input_shape=(64, 64, 3))
    engine = ow.OIPEngine(model, layer, input_mode="identity")
    assert engine.layer.shape[-1] == maps and engine.input_shape == (64, 64, 3)
    for param, transforms in (("pixel", None), ("fourier", "standard"), ("maco", "standard")):
        result = engine.run_layer([0, maps - 1], seed=0, steps=3, param=param, transforms=transforms,
                                  optimizer="adam", epsilon=0.05)
        for r in result:
            assert r.image.shape == (64, 64, 3) and np.all(np.isfinite(r.image)), (name, param)
            assert r.status in ("max_steps", "converged", "dead") and r.steps >= 1, (name, param, r.message)
            assert r.params["param"].startswith(param)
