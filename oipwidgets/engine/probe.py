"""Probes: sub-models from a model's input to one of its layers, the thing an OIP objective reads.

Works for Functional and Sequential Keras 3 models of any image size and channel count. A layer can be probed
when its output is 4-D (batch, height, width, maps: map and node objectives) or 2-D (batch, units: unit
objectives); for a dense layer with a softmax or sigmoid the probe can return the score before the activation,
which is what a class objective should climb (a probability saturates at 1).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import keras
import tensorflow as tf

from .validation import is_int

__all__ = ["LayerInfo", "Probe", "probeable_layers", "ensure_built", "make_probe"]

_SATURATING = ("softmax", "sigmoid")


@dataclass(frozen=True)
class LayerInfo:
    """What a probe-able layer offers: its name, kind ("maps" for 4-D, "units" for 2-D output) and shape."""

    name: str
    index: int  # position in model.layers
    kind: str  # "maps" or "units"
    shape: tuple  # output shape without the batch axis: (H, W, maps) or (units,)

    @property
    def size(self) -> int:
        """Number of maps (4-D layers) or units (2-D layers)."""
        return int(self.shape[-1])


def ensure_built(model: keras.Model, input_shape: tuple | None = None) -> keras.Model:
    """Make sure the model has symbolic inputs (a Sequential model built or called knows them).

    A Sequential model that was never built nor called has no input shape: pass ``input_shape`` (H, W, C), and it
    is built here; without it a ValueError asks for it.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if input_shape is not None:
        input_shape = _checked_shape(input_shape)
    try:
        model.inputs  # noqa: B018 - raises on a Sequential model without a known input shape
        has_inputs = model.inputs is not None and len(model.inputs) > 0
    except (AttributeError, ValueError):
        has_inputs = False
    if not has_inputs:
        if input_shape is None:
            raise ValueError(
                f"Model {model.name!r} has no known input shape (a Sequential model that was never built or "
                "called). Pass input_shape=(height, width, channels), e.g. input_shape=(28, 28, 1), or build it "
                "with model.build((None, 28, 28, 1))."
            )
        model.build((None, *tuple(input_shape)))
    if len(model.inputs) != 1:
        raise ValueError(f"Model {model.name!r} has {len(model.inputs)} inputs; OIPs need a one-input image model.")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise ValueError(
            f"Model {model.name!r} takes input of shape {shape}; OIPs need image input (batch, height, width, "
            "channels)."
        )
    first = next((l for l in _all_layers(model) if _config(l).get("data_format") == "channels_first"), None)
    if first is not None:
        raise ValueError(
            f"Model {model.name!r} is channels-first (layer {first.name!r} has data_format='channels_first'); "
            "oipwidgets reads images and maps as (height, width, channels). Rebuild the model with "
            "data_format='channels_last' (the default) and copy the weights over with set_weights."
        )
    if any(s is None for s in shape[1:3]):
        if input_shape is None:
            raise ValueError(
                f"Model {model.name!r} takes images of any size {shape[1:]}; pass input_shape=(height, width, "
                f"{shape[3]}) to say which size to grow OIPs at."
            )
        return _with_fixed_input(model, input_shape)
    if input_shape is not None and input_shape != tuple(shape[1:]):
        raise ValueError(f"input_shape={input_shape} does not match model {model.name!r}, which takes images of "
                         f"shape {tuple(shape[1:])}; leave input_shape out (it is only for models that take any "
                         "image size or were never built)")
    return model


def _checked_shape(input_shape) -> tuple:
    """``input_shape`` as (height, width, channels) of whole numbers >= 1, else a ValueError naming the form."""
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 3 and all(
            is_int(v) and int(v) >= 1 for v in input_shape):
        return tuple(int(v) for v in input_shape)
    raise ValueError(f"input_shape must be (height, width, channels), whole numbers >= 1, e.g. (28, 28, 1); "
                     f"got {input_shape!r}")


_FIXED = weakref.WeakKeyDictionary()  # model → {input_shape: a copy with that fixed input size}


def _with_fixed_input(model: keras.Model, input_shape: tuple) -> keras.Model:
    """A copy of a model with a variable image size (None, None, C), fixed to ``input_shape`` (same layers and
    names, the same weights): its maps then have known sizes. The user's model is left as it is."""
    channels = model.inputs[0].shape[-1]
    if len(input_shape) != 3 or (channels is not None and input_shape[2] != channels):
        raise ValueError(f"input_shape must be (height, width, {channels}) for model {model.name!r}; "
                         f"got {input_shape}")
    copies = _FIXED.setdefault(model, {})
    if input_shape not in copies:
        try:
            copy = keras.models.clone_model(model, input_tensors=keras.Input(shape=input_shape))
            copy.set_weights(model.get_weights())
        except Exception as err:  # noqa: BLE001 - custom layers keras cannot clone: say so plainly
            raise ValueError(
                f"Model {model.name!r} takes images of any size and could not be copied at {input_shape} "
                f"({type(err).__name__}: {err}); build it with keras.Input(shape={input_shape}) instead."
            ) from err
        copies[input_shape] = copy
    return copies[input_shape]


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _config(layer) -> dict:
    try:
        return layer.get_config()
    except Exception:  # noqa: BLE001 - a layer without a config has no data_format either
        return {}


def probeable_layers(model: keras.Model) -> list[LayerInfo]:
    """The layers an objective can read, in model order: 4-D outputs ("maps") and 2-D outputs ("units")."""
    infos = []
    for index, layer in enumerate(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):  # nested models used twice, layers never called
            continue
        if len(shape) == 4 and all(s is not None for s in shape[1:]):
            infos.append(LayerInfo(layer.name, index, "maps", shape[1:]))
        elif len(shape) == 2 and shape[1] is not None:
            infos.append(LayerInfo(layer.name, index, "units", shape[1:]))
    return infos


@dataclass
class Probe:
    """A callable ``images (B, H, W, C) -> activations`` of one layer, with what it reads.

    ``activations`` is (B, h, w, maps) for a "maps" layer and (B, units) for a "units" layer; ``pre_activation``
    says whether a dense layer's softmax/sigmoid was left out.
    """

    model: keras.Model
    layer: LayerInfo
    input_shape: tuple  # (H, W, C)
    pre_activation: bool
    _fn: object

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        out = self._fn(images)
        # mixed-precision models compute in float16/bfloat16: objectives and the ascent work in float32
        return out if out.dtype == tf.float32 else tf.cast(out, tf.float32)


def _find_layer(model: keras.Model, layer: str | int, infos: list[LayerInfo]) -> LayerInfo:
    names = [i.name for i in infos]
    if isinstance(layer, bool) or not isinstance(layer, (str, int)):
        raise TypeError(f"layer must be a layer name or index; got {type(layer).__name__}")
    if isinstance(layer, int):
        n = len(model.layers)
        if not -n <= layer < n:
            raise ValueError(f"layer index {layer} is out of range: the model has {n} layers (0..{n - 1}).")
        name = model.layers[layer].name
    else:
        name = layer
    for info in infos:
        if info.name == name:
            return info
    if any(l.name == name for l in model.layers):
        raise ValueError(
            f"layer {name!r} has no spatial maps or units to probe (its output is neither 4-D nor 2-D); "
            f"valid layers: {', '.join(names)}"
        )
    raise ValueError(f"unknown layer {name!r}; valid layers: {', '.join(names)}")


def make_probe(
    model: keras.Model,
    layer: str | int,
    *,
    input_shape: tuple | None = None,
    pre_activation: bool = True,
    fast: bool = True,
) -> Probe:
    """Build the probe of ``layer`` (name or index into ``model.layers``).

    ``pre_activation``: for a dense layer ending in softmax/sigmoid, return the scores before it (logits).
    ``fast``: when the model starts with a plain stride-1 Conv2D on few channels, compute that convolution's input
    gradient as a matrix product (same values up to float32 rounding, several times faster on CPU).
    Raises ValueError listing the valid layer names for a wrong name.
    """
    model = ensure_built(model, input_shape)
    infos = probeable_layers(model)
    info = _find_layer(model, layer, infos)
    keras_layer = model.get_layer(info.name)
    activation = getattr(keras_layer, "activation", None)
    strip = (
        pre_activation
        and isinstance(keras_layer, keras.layers.Dense)
        and getattr(activation, "__name__", "") in _SATURATING
    )
    if strip:
        sub = keras.Model(model.inputs, keras_layer.input, name=f"probe_{info.name}_input")

        def fn(images, _sub=sub, _layer=keras_layer):
            h = _sub(images, training=False)
            z = tf.matmul(h, _layer.kernel)
            return z + _layer.bias if _layer.use_bias else z

    else:
        fn = _fast_first_conv_probe(model, keras_layer, info) if fast else None
        if fn is None:
            sub = keras.Model(model.inputs, keras_layer.output, name=f"probe_{info.name}")

            def fn(images, _sub=sub):
                return _sub(images, training=False)

    return Probe(model, info, tuple(model.inputs[0].shape[1:]), bool(strip), fn)


# ----------------------------------------------------------------- fast path for the first convolution
# The ascent needs the gradient of the objective with respect to the image. For the model's first convolution that
# is a Conv2DBackpropInput with very few output channels (1 for grey images), which TensorFlow's CPU kernels run at
# a small fraction of the speed of the rest of the network (about 10 GFLOP/s against ~200): it is the largest single
# cost of a step. The same gradient is one matrix product (dy · Wᵀ: every output position's contribution to its
# kh×kw input patch) followed by a sum of the kh·kw shifted patches ("col2im"). The forward pass is unchanged; the
# gradient equals TensorFlow's up to float32 rounding (the terms are summed in another order).
_FAST_MAX_IN_CHANNELS = 4


def _conv_input_grad(dy, kernel, in_shape, pad_before):
    """∂/∂x of a stride-1, VALID convolution given dy (B, h, w, c_out), via matmul + col2im, cropped for SAME."""
    kh, kw, c_in, c_out = (int(d) for d in kernel.shape)
    h, w = int(dy.shape[1]), int(dy.shape[2])
    batch = tf.shape(dy)[0]
    cols = tf.matmul(tf.reshape(dy, [-1, c_out]), tf.reshape(kernel, [kh * kw * c_in, c_out]), transpose_b=True)
    cols = tf.reshape(cols, tf.stack([batch, h, w, kh * kw * c_in]))
    hp, wp = h + kh - 1, w + kw - 1  # the (padded) input's size
    parts = []
    for k in range(kh * kw):
        r, c = divmod(k, kw)
        part = cols[..., k * c_in : (k + 1) * c_in]
        parts.append(tf.pad(part, [[0, 0], [r, kh - 1 - r], [c, kw - 1 - c], [0, 0]]))
    grad = tf.add_n(parts)
    top, left = pad_before
    if top or left or hp != in_shape[0] or wp != in_shape[1]:
        grad = grad[:, top : top + in_shape[0], left : left + in_shape[1], :]
    return grad


def _fast_conv_fn(layer):
    """conv(x) + bias → activation of a Keras Conv2D, with the fast input gradient; None if not applicable."""
    if not isinstance(layer, keras.layers.Conv2D) or type(layer) is not keras.layers.Conv2D:
        return None
    cfg = layer.get_config()
    kernel = layer.kernel
    kh, kw, c_in, _ = (int(d) for d in kernel.shape)
    ok = (
        tuple(cfg.get("strides", (1, 1))) == (1, 1)
        and tuple(cfg.get("dilation_rate", (1, 1))) == (1, 1)
        and cfg.get("groups", 1) == 1
        and cfg.get("data_format") == "channels_last"
        and cfg.get("padding") in ("valid", "same")
        and c_in <= _FAST_MAX_IN_CHANNELS
        and layer.compute_dtype == "float32"
        and kernel.dtype == "float32"
    )
    if not ok:
        return None
    same = cfg["padding"] == "same"
    pads = [[0, 0], [(kh - 1) // 2, kh // 2], [(kw - 1) // 2, kw // 2], [0, 0]]
    activation, use_bias = layer.activation, layer.use_bias

    def conv(x):
        k = tf.convert_to_tensor(layer.kernel)

        @tf.custom_gradient
        def _conv(x):
            xp = tf.pad(x, pads) if same else x
            y = tf.nn.conv2d(xp, k, 1, "VALID")

            def grad(dy):
                return _conv_input_grad(dy, k, tuple(x.shape[1:3]), (pads[1][0], pads[2][0]) if same else (0, 0))

            return y, grad

        y = _conv(x)
        if use_bias:
            y = y + tf.convert_to_tensor(layer.bias)
        return activation(y) if activation is not None else y

    return conv


def _fast_first_conv_probe(model, keras_layer, info):
    """The probe with the fast input gradient when the model's first op on the image is a plain Conv2D; else None.

    The gradient with respect to the convolution's weights is not computed (the ascent never needs it).
    """
    try:
        x_in = model.inputs[0]
        first = None
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            nodes = getattr(layer, "_inbound_nodes", [])
            if any(any(t is x_in for t in node.input_tensors) for node in nodes):
                if first is not None:  # the image feeds more than one layer
                    return None
                first = layer
        if first is None or len(getattr(first, "_inbound_nodes", [])) != 1:
            return None
        conv = _fast_conv_fn(first)
        if conv is None or tuple(first.input.shape[1:]) != tuple(x_in.shape[1:]) or any(
            s is None for s in x_in.shape[1:3]
        ):
            return None
        if first is keras_layer:
            return lambda images, _conv=conv: _conv(images)
        rest = keras.Model(first.output, keras_layer.output, name=f"probe_{info.name}_rest")
        # the rest must not read the image directly (a skip connection from the input)
        if any(isinstance(l, keras.layers.InputLayer) and l.output is x_in for l in rest.layers):
            return None

        def fn(images, _conv=conv, _rest=rest):
            return _rest(_conv(images), training=False)

        return fn
    except Exception:  # noqa: BLE001 - any model this does not understand takes the plain path
        return None
