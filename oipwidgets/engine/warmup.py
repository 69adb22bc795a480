"""Warm-up: lucid's redirected ReLU gradient for the first steps of a climb, so maps that no noise fires can start.

A map whose every path from the image runs through ReLUs that are off for the start image gets a gradient of exactly
zero: the article's test then calls it dead, although real images fire it. lucid's answer (``redirected_relu_grad``)
lets the gradient through a ReLU that is off when it would turn the ReLU on (the gradient asks its input to grow),
and only for an image whose ordinary gradient at that ReLU is zero everywhere. After the warm-up the true gradient
is used, so the OIP still maximises the real activation.

For a ReLU at input x receiving the objective's gradient g (ascent: the image moves along +g), per image:
``plain = g · [x > 0]`` (and ``x < max_value`` for ReLU6); ``redirected = g`` except where ``x < 0 and g < 0`` (0);
the warm-up gradient is ``plain`` where ``plain`` has any non-zero value for that image, else ``redirected``.

The ReLUs are the ``activation`` of the model's layers (Conv2D(activation="relu"), Dense, Activation("relu"))
and ``keras.layers.ReLU`` layers without a slope or threshold. ``redirected(model, warm)`` swaps them for a ReLU
with the same forward values for the duration of one call of the model while the compiled step is traced (under a
lock), then puts the originals back: the user's model is unchanged afterwards, and a call from another thread in
the meantime computes the same numbers (the redirection applies only inside the trace that set ``warm``).
"""

from __future__ import annotations

import contextlib
import threading

import keras
import tensorflow as tf

__all__ = ["redirected", "relu_layers", "redirected_relu"]

_LOCK = threading.RLock()
_ACTIVE = threading.local()  # .warm: the boolean tensor of the trace being built in this thread, or None


def _is_relu(fn) -> bool:
    return getattr(fn, "__name__", "") in ("relu", "relu6")


def relu_layers(model: keras.Model) -> list:
    """(layer, kind) for every ReLU of ``model`` (nested models included): kind "activation" (the layer's
    ``activation`` attribute is relu/relu6) or "layer" (a plain ``keras.layers.ReLU``)."""
    found = []
    layers = model._flatten_layers(include_self=False, recursive=True)
    for layer in layers:
        if isinstance(layer, keras.layers.ReLU):
            cfg = layer.get_config()
            if float(cfg.get("negative_slope", 0.0) or 0.0) == 0.0 and float(cfg.get("threshold", 0.0) or 0.0) == 0.0:
                found.append((layer, "layer"))
        elif _is_relu(getattr(layer, "activation", None)):
            found.append((layer, "activation"))
    return found


def redirected_relu(x, max_value=None):
    """relu(x) (min(relu(x), max_value) for ReLU6) whose gradient is redirected while this thread traces a warm-up
    step with ``warm`` true (see the module doc); otherwise the ordinary ReLU gradient."""
    warm = getattr(_ACTIVE, "warm", None)

    @tf.custom_gradient
    def relu(x):
        y = tf.nn.relu(x) if max_value is None else tf.minimum(tf.nn.relu(x), tf.cast(max_value, x.dtype))

        def grad(g):
            on = x > 0 if max_value is None else (x > 0) & (x < max_value)
            zero = tf.zeros_like(g)
            plain = tf.where(on, g, zero)
            if warm is None:
                return plain
            axes = list(range(1, g.shape.rank))
            through = tf.reduce_any(tf.not_equal(plain, 0), axis=axes, keepdims=True)
            lifted = tf.where((x < 0) & (g < 0), zero, g)
            if max_value is not None:
                lifted = tf.where(x >= max_value, zero, lifted)
            return tf.where(tf.logical_and(warm, tf.logical_not(through)), lifted, plain)

        return y, grad

    return relu(x)


def _swapped_activation(original):
    max_value = 6.0 if getattr(original, "__name__", "") == "relu6" else None

    def activation(x, *args, **kwargs):
        if args or kwargs:  # an unusual call (slope, threshold): leave it to the original
            return original(x, *args, **kwargs)
        return redirected_relu(x, max_value)

    activation.__name__ = getattr(original, "__name__", "relu")
    return activation


def _swapped_call(layer):
    max_value = layer.max_value

    def call(inputs):
        return redirected_relu(inputs, None if max_value is None else float(max_value))

    return call


@contextlib.contextmanager
def redirected(model: keras.Model, warm):
    """While the block runs (in this thread), the ReLUs of ``model`` redirect their gradient where ``warm`` (a
    boolean scalar tensor of the step being traced) is true; everything is put back afterwards."""
    with _LOCK:
        found = relu_layers(model)
        saved = []
        _ACTIVE.warm = warm
        try:
            for layer, kind in found:
                if kind == "activation":
                    saved.append((layer, "activation", layer.__dict__.get("activation", _MISSING)))
                    object.__setattr__(layer, "activation", _swapped_activation(layer.activation))
                else:
                    saved.append((layer, "call", layer.__dict__.get("call", _MISSING)))
                    object.__setattr__(layer, "call", _swapped_call(layer))
            yield
        finally:
            for layer, name, old in reversed(saved):
                if old is _MISSING:
                    object.__delattr__(layer, name)
                else:
                    object.__setattr__(layer, name, old)
            _ACTIVE.warm = None


_MISSING = object()
