"""One forward pass of a batch for every layer of an atlas: each layer's activations as its OIPs' objectives read
them, for the dataset examples (``examples.py``).

The activation of an image for a channel is the quantity the OIP ascent maximises (``engine.examples``): the mean of
a map over its height and width, or a unit's value (for a class layer ending in softmax/sigmoid, the score before
it: the engine's probe). The layers of a functional model that the engine probes at their own output share one
multi-output ``keras.Model`` (a class layer's score before its softmax from the layer's input, as the probe computes
it), so the network runs once per batch however many layers the atlas has; any other layer (inside a nested model,
of a subclassed model) runs through its engine probe.
Everything is one ``tf.function`` (traced once, for any batch size): images in the engine's image space in, per
layer (means (B, n), maps (B, h, w, n) or None) out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Forward"]


class Forward:
    """``Forward(model, layers, preprocess=..., input_shape=None)``: ``forward(images)`` → {layer: (means (B, n)
    float64, maps (B, h, w, n) float32 or None)} for images (B, H, W, C) in the engine's image space (``mode``).

    layers: layer names or paths (as the atlas stores them); preprocess: the engine's input convention (a preset
    name or a function); input_shape: the engine's ``input_shape=`` for models that need it.
    """

    def __init__(self, model, layers, *, preprocess="standardize", input_shape=None):
        import keras
        import tensorflow as tf

        from ..engine.engine import OIPEngine

        self.engines = [OIPEngine(model, name, input_shape=input_shape, preprocess=preprocess) for name in layers]
        self.layers = [e.layer.name for e in self.engines]
        self.mode = self.engines[0].mode
        self.input_shape = self.engines[0].input_shape
        built = self.engines[0].model
        reads = {e.layer.name: _read_in_graph(built, e) for e in self.engines}
        joint = {name: how for name, how in reads.items() if how is not None}
        self.joint = None
        if joint:
            try:
                tensors = [built.get_layer(name).input if how[0] in ("input", "dense") else built.get_layer(name).output
                           for name, how in joint.items()]
                self.joint = keras.Model(built.inputs, tensors, name="oipwidgets_atlas_examples")
            except Exception:  # noqa: BLE001 - no graph, a shared layer, …: each layer through its probe
                joint = {}
        self._joint = joint
        self._probed = [e for e in self.engines if e.layer.name not in joint]
        spec = tf.TensorSpec((None, *self.input_shape), tf.float32)  # one trace for every batch size
        self._fn = tf.function(self._call, input_signature=[spec])

    def _call(self, images):
        import tensorflow as tf

        x = self.mode.to_model(images)
        outs = {}
        if self.joint is not None:
            values = self.joint(x, training=False)
            values = values if isinstance(values, (list, tuple)) else [values]
            for (name, how), value in zip(self._joint.items(), values):
                if how[0] == "dense":  # a class layer's score before its softmax: x·W + b, as the probe computes it
                    layer = how[1]
                    value = tf.matmul(value, tf.cast(layer.kernel, value.dtype))
                    value = value + tf.cast(layer.bias, value.dtype) if layer.use_bias else value
                outs[name] = value
        for e in self._probed:
            outs[e.layer.name] = e.probe(x)
        result = {}
        for name in self.layers:
            a = tf.cast(outs[name], tf.float32)
            result[name] = (tf.reduce_mean(a, axis=[1, 2]), a) if len(a.shape) == 4 else (a, None)
        return result

    def __call__(self, images: np.ndarray) -> dict:
        import tensorflow as tf

        out = self._fn(tf.constant(np.asarray(images, np.float32)))
        return {name: (np.asarray(m, np.float64), None if a is None else np.asarray(a))
                for name, (m, a) in out.items()}


def _read_in_graph(built, engine):
    """How the shared multi-output model gives what the engine's probe reads, for a top-level layer of a functional
    model: ("output", None) the layer's output; ("dense", layer) a Dense class layer's score before its
    softmax/sigmoid (its input, then x·W + b); ("input", None) the input of a separate Softmax/Activation layer;
    None: only its probe can (a layer inside a nested model, a subclassed model's layer, anything else)."""
    import keras

    name = engine.layer.name
    if "/" in name:
        return None
    try:
        layer = built.get_layer(name)
    except ValueError:
        return None
    climbed = engine.probe.climbed
    if climbed == repr(name):
        return ("output", None)
    if isinstance(layer, keras.layers.Dense) and climbed.startswith(f"{name!r} before its "):
        return ("dense", layer)
    if climbed.startswith(f"input of {name!r} "):
        return ("input", None)
    return None
