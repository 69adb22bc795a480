"""What the layers of a model without a graph (a subclassed ``keras.Model``) compute, found by running it.

A subclassed model is Python code (its ``call``): which layers it calls, in what order and with what shapes is known
only by running it. While a recording is active, each watched layer's ``call`` is wrapped (an instance attribute
over the class's method) and the wrapper reports the call to what the *current thread* asked for:

- ``survey``: one call of the model on a zero batch; every layer's call count, call order and output shape.
- ``capture_fn``: a function images → one layer's output (or input, for a softmax to leave out), computed by calling
  the model; the forward pass ends at that layer with a private ``_Reached`` (a BaseException: no
  ``except Exception`` in Keras or in the model's code catches or rewraps it). This works eagerly, while
  ``tf.function`` traces (the graph then holds only the ops up to the layer) and under a ``GradientTape``.

Calls from other threads, and calls while nothing is asked, run the layer as it is: the numbers never change. The
wrappers are counted per layer and removed by the last recording that used them (in a ``finally``), so the user's
layers are left exactly as they were, also when probes of one model trace in several threads at once.
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import keras
import tensorflow as tf

__all__ = ["Call", "survey", "capture_fn", "sublayers"]

_LOCAL = threading.local()  # .wish: what the running survey or capture of this thread wants from the layers
_LOCK = threading.Lock()
_PATCHES: dict = {}  # id(layer) → [layer, its own "call" instance attribute (or _NONE), recordings using it]
_NONE = object()


class _Reached(BaseException):
    """The captured layer has run: ends the model's forward pass there (caught by ``capture_fn``)."""


@dataclass(frozen=True)
class Call:
    """How a layer was called during one forward pass: ``order`` of its first call, ``calls`` in the pass, and
    ``shape`` of its (first) output without the batch axis (None when the output is not one tensor)."""

    order: int
    calls: int
    shape: tuple | None


def sublayers(layer) -> list:
    """The layers ``layer`` holds directly (a model's ``layers``, a custom layer's tracked sublayers), no inputs."""
    found = layer.layers if isinstance(layer, keras.Model) else layer._flatten_layers(include_self=False,
                                                                                        recursive=False)
    return [l for l in found if not isinstance(l, keras.layers.InputLayer)]


def _tree(model) -> list:
    """Every layer below ``model`` (depth first, each once)."""
    seen, out, todo = set(), [], list(reversed(sublayers(model)))
    while todo:
        layer = todo.pop()
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
            todo += reversed(sublayers(layer))
    return out


def _reporting(layer, call):
    """``call`` that reports to this thread's wish, if any (else it is just ``call``)."""

    @functools.wraps(call)
    def call_and_report(*args, **kwargs):
        wish = getattr(_LOCAL, "wish", None)
        if wish is None:
            return call(*args, **kwargs)
        return wish.called(layer, call, args, kwargs)

    return call_and_report


@contextmanager
def _recording(layers, wish):
    """While active, calls of ``layers`` in this thread report to ``wish``; the wrappers go with the last user."""
    with _LOCK:
        for layer in layers:
            entry = _PATCHES.get(id(layer))
            if entry is None:
                entry = _PATCHES[id(layer)] = [layer, layer.__dict__.get("call", _NONE), 0]
                object.__setattr__(layer, "call", _reporting(layer, layer.call))  # no tracking: invisible to Keras
            entry[2] += 1
    previous = getattr(_LOCAL, "wish", None)
    _LOCAL.wish = wish
    try:
        yield wish
    finally:
        _LOCAL.wish = previous
        with _LOCK:
            for layer in layers:
                entry = _PATCHES[id(layer)]
                entry[2] -= 1
                if entry[2] == 0:
                    del _PATCHES[id(layer)]
                    if entry[1] is _NONE:
                        object.__delattr__(layer, "call")
                    else:
                        object.__setattr__(layer, "call", entry[1])


class _Survey:
    def __init__(self):
        self.calls: dict = {}  # id(layer) → [order, calls, first output]

    def called(self, layer, call, args, kwargs):
        entry = self.calls.setdefault(id(layer), [len(self.calls), 0, None])  # order of entry: a block before its parts
        out = call(*args, **kwargs)
        entry[1] += 1
        if entry[1] == 1:
            entry[2] = out
        return out


def _shape(out) -> tuple | None:
    shape = getattr(out, "shape", None)
    return None if shape is None or isinstance(out, (list, tuple, dict)) else tuple(shape)[1:]


def survey(model: keras.Model, input_shape: tuple) -> dict:
    """``{id(layer): Call}`` of every layer below ``model`` that ran in one call of it on a zero batch
    (1, *input_shape), in inference mode (nothing is trained or updated)."""
    layers = _tree(model)
    wish = _Survey()
    with _recording(layers, wish):
        model(tf.zeros((1, *input_shape), tf.float32), training=False)
    return {key: Call(order, calls, _shape(out)) for key, (order, calls, out) in wish.calls.items()}


class _Capture:
    def __init__(self, layer, what: str):
        self.layer, self.what, self.value = layer, what, None

    def called(self, layer, call, args, kwargs):
        if layer is not self.layer or self.value is not None:  # other layers, and the layer once captured, as they are
            return call(*args, **kwargs)
        if self.what == "input":
            self.value = args[0] if args else next(iter(kwargs.values()))
        else:
            self.value = call(*args, **kwargs)
        raise _Reached


def capture_fn(model: keras.Model, layer, what: str = "output"):
    """images (B, H, W, C) → the ``what`` ("output" or "input") of ``layer`` (somewhere below ``model``) when
    ``model`` runs on them in inference mode; the layers after it are not run."""
    if what not in ("output", "input"):
        raise ValueError(f"what must be 'output' or 'input'; got {what!r}")

    def fn(images):
        wish = _Capture(layer, what)
        with _recording([layer], wish):
            try:
                model(images, training=False)
            except _Reached:
                pass
        if wish.value is None:
            raise ValueError(f"layer {layer.name!r} was not called when model {model.name!r} ran, so it cannot be "
                             "probed this way; build a functional model of the part you want to probe")
        return wish.value

    return fn
