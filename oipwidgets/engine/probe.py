"""Probes: functions from a model's input image to one of its layers, the thing an OIP objective reads.

Works for Keras 3 Functional, Sequential and subclassed models of any image size and channel count, and for layers
inside nested models (a base model inside a transfer model, a sub-model a functional model calls, the layers of a
subclassed model). A layer can be probed when its output is 4-D (batch, height, width, maps: map and node objectives)
or 2-D (batch, units: unit objectives).

Names: a layer is named by its path, the names of the models that hold it and its own joined by "/"
("mobilenetv2_1.00_96/block_6_expand_relu"); a layer of the model itself (or of a subclassed model given itself) is
its plain name. A probe may also be asked for by a nested layer's plain name when no other layer has it, by index
into ``model.layers`` or by the layer object.

How a nested layer is reached: a sub-model of the outer graph from its input to the tensor that enters the nested
model, then a sub-model of the nested model from its input to the layer (recursively, for deeper nesting). A
subclassed model has no graph: its layers, their order and shapes are found by one call on a zero batch, and a probe
runs the model and captures the layer's output, ending the forward pass there (``recording``).

Class scores, never probabilities: with ``pre_activation`` a probe of a class layer ending in softmax/sigmoid
returns the scores before it (a probability saturates at 1): for a Dense layer with that activation its ``x·W + b``,
for an ``Activation("softmax")`` or ``Softmax`` layer the tensor that enters it (whatever sits between it and the
last Dense or Conv2D: pooling, Flatten, Reshape). ``Probe.climbed`` says which tensor a probe returns.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras.src.models.functional import Functional
from keras.src.ops.function import make_node_key

from . import recording
from .validation import is_int

__all__ = ["LayerInfo", "Probe", "probeable_layers", "ensure_built", "make_probe", "layer_key", "layer_names"]

_SATURATING = ("softmax", "sigmoid")


@dataclass(frozen=True)
class LayerInfo:
    """What a probe-able layer offers: its name (path), kind ("maps" for 4-D, "units" for 2-D output) and shape."""

    name: str  # the path: "conv1", or "base/block_1" for a layer inside the nested model "base"
    index: int | None  # position in model.layers (of a subclassed model: in its layers); None inside a nested model
    kind: str  # "maps" or "units"
    shape: tuple  # output shape without the batch axis: (H, W, maps) or (units,)
    group: str = ""  # path of the nested model that holds the layer; "" for the model's own layers

    @property
    def size(self) -> int:
        """Number of maps (4-D layers) or units (2-D layers)."""
        return int(self.shape[-1])

    @property
    def label(self) -> str:
        """The name as pickers show it: "base / block_1" for a nested layer, the plain name otherwise."""
        return self.name.replace("/", " / ")


# ----------------------------------------------------------------- building
def ensure_built(model: keras.Model, input_shape: tuple | None = None) -> keras.Model:
    """The model with symbolic inputs of a fixed image size: the model itself, or a stand-in with the same layers.

    A Sequential model that was never built nor called has no input shape: pass ``input_shape`` (H, W, C), and it
    is built here; without it a ValueError asks for it. A model that takes any image size is copied at
    ``input_shape``. A subclassed model is run once on a zero batch of ``input_shape`` (which may be left out when
    the model was already built or called on images of one size) and wrapped in a functional model with one node,
    the model itself, whose layers are then found by running it (``recording``).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if input_shape is not None:
        input_shape = _checked_shape(input_shape)
    if _subclassed(model):
        return _wrapped(model, input_shape)
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
    _check_channels_last(model)
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


def _check_channels_last(model) -> None:
    first = next((l for l in _all_layers(model) if _config(l).get("data_format") == "channels_first"), None)
    if first is not None:
        raise ValueError(
            f"Model {model.name!r} is channels-first (layer {first.name!r} has data_format='channels_first'); "
            "oipwidgets reads images and maps as (height, width, channels). Rebuild the model with "
            "data_format='channels_last' (the default) and copy the weights over with set_weights."
        )


def _checked_shape(input_shape) -> tuple:
    """``input_shape`` as (height, width, channels) of whole numbers >= 1, else a ValueError naming the form."""
    if isinstance(input_shape, (tuple, list)) and len(input_shape) == 3 and all(
            is_int(v) and int(v) >= 1 for v in input_shape):
        return tuple(int(v) for v in input_shape)
    raise ValueError(f"input_shape must be (height, width, channels), whole numbers >= 1, e.g. (28, 28, 1); "
                     f"got {input_shape!r}")


_FIXED = weakref.WeakKeyDictionary()  # model → {input_shape: a copy with that fixed input size}
_SOURCE = weakref.WeakKeyDictionary()  # such a copy → weakref to the model it copies (to find the user's layers)
_LOCK = threading.RLock()


def _with_fixed_input(model: keras.Model, input_shape: tuple) -> keras.Model:
    """A copy of a model with a variable image size (None, None, C), fixed to ``input_shape`` (same layers and
    names, the same weights): its maps then have known sizes. The user's model is left as it is."""
    channels = model.inputs[0].shape[-1]
    if len(input_shape) != 3 or (channels is not None and input_shape[2] != channels):
        raise ValueError(f"input_shape must be (height, width, {channels}) for model {model.name!r}; "
                         f"got {input_shape}")
    with _LOCK:
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
            _SOURCE[copy] = weakref.ref(model)
        return copies[input_shape]


def _subclassed(model) -> bool:
    """True for a model without a graph of layers: a subclass of keras.Model that defines ``call``."""
    return not isinstance(model, (Functional, keras.Sequential))


_WRAPS = weakref.WeakKeyDictionary()  # functional stand-in made by _wrapped → weakref to the subclassed model


def _wrapped(model: keras.Model, input_shape: tuple | None) -> keras.Model:
    """A functional model ``Model(x, model(x))`` for a subclassed ``model`` at ``input_shape`` (default: the size
    it was built or called with), made once per size (kept on the model, goes away with it). The model is run
    once on a zero batch first, so that every layer is built; failures are ValueErrors saying what to do."""
    how = ("or make a functional model of it: x = keras.Input(shape=(height, width, channels)); "
           "functional = keras.Model(x, model.call(x))")
    shape = input_shape or _called_shape(model)
    if shape is None:
        raise ValueError(
            f"Model {model.name!r} is a subclassed model ({type(model).__name__}) whose image size is not known: "
            f"pass input_shape=(height, width, channels), e.g. input_shape=(48, 48, 3), {how}."
        )
    with _LOCK:
        stand_ins = model.__dict__.get("_oipwidgets_functional")
        if stand_ins is None:
            stand_ins = {}
            object.__setattr__(model, "_oipwidgets_functional", stand_ins)  # not tracked by Keras, not saved
        if shape not in stand_ins:
            try:
                model(tf.zeros((1, *shape), tf.float32), training=False)
                stand_in = _functional_of(model, shape)
            except Exception as err:  # noqa: BLE001 - whatever the model's call does not accept: say so plainly
                raise ValueError(
                    f"Subclassed model {model.name!r} ({type(model).__name__}) could not be run on one image of shape "
                    f"{shape} ({type(err).__name__}: {_first_line(err)}); OIPs need a model that takes one image "
                    f"batch (B, H, W, C). Pass the input_shape it takes, {how}."
                ) from err
            _check_channels_last(stand_in)
            _WRAPS[stand_in] = weakref.ref(model)
            stand_ins[shape] = stand_in
        return stand_ins[shape]


def _functional_of(model, shape: tuple) -> keras.Model:
    """``Model(x, model(x))`` for images of ``shape``; with a batch of one when the model's call needs to know the
    batch size (e.g. ``tf.reshape(x, (x.shape[0], -1))``): the stand-in is only read for its input and outputs."""
    try:
        x = keras.Input(shape=shape)
        return keras.Model(x, model(x), name=f"{model.name}_functional")
    except Exception:  # noqa: BLE001 - retried with a known batch size; that error is the one reported
        x = keras.Input(shape=shape, batch_size=1)
        return keras.Model(x, model(x), name=f"{model.name}_functional")


def _first_line(err: Exception) -> str:
    """The message of an error without the call details Keras adds ("Exception encountered when calling ...")."""
    text = str(err)
    if "\x1b[1m" in text:  # Keras puts the original message in bold between its own lines
        text = text.split("\x1b[1m", 1)[1].split("\x1b[0m", 1)[0]
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


def _called_shape(model) -> tuple | None:
    """(H, W, C) of the one image batch a subclassed model was built or called with, when all three are known."""
    shapes = list((getattr(model, "_build_shapes_dict", None) or {}).values())
    if len(shapes) != 1:
        return None
    shape = shapes[0]
    try:
        shape = tuple(shape)
    except TypeError:
        return None
    if len(shape) != 4 or not all(is_int(s) and s >= 1 for s in shape[1:]):
        return None
    return tuple(int(s) for s in shape[1:])


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


# ----------------------------------------------------------------- the layer tree
def _graph(model):
    """The Functional graph of a Functional or built Sequential model; None for a model without one."""
    if isinstance(model, Functional):
        return model
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return None


def _node(graph, layer):
    """The (first) node of ``layer`` in ``graph``: where the graph calls it; None when it does not."""
    keys = graph._nodes
    for i, node in enumerate(layer._inbound_nodes):
        if make_node_key(layer, i) in keys:
            return node
    return None


_SHAPES = weakref.WeakKeyDictionary()  # graph → {input shape: {id(tensor): shape}} (graphs of any image size)
_SURVEYS = weakref.WeakKeyDictionary()  # subclassed model → {input shape: {id(layer): recording.Call}}


def _tensor_shapes(graph, in_shape: tuple) -> dict:
    """``{id(tensor): shape without batch axis}`` of every tensor in ``graph`` when its image is ``in_shape``: read
    from the graph, or computed symbolically (no numbers) when the graph takes images of any size."""
    tensors = [graph.inputs[0]] + [t for layer in graph.layers if not isinstance(layer, keras.layers.InputLayer)
                                   for t in ((_node(graph, layer) or _NoNode).outputs)]
    if tuple(graph.inputs[0].shape[1:]) == in_shape:
        return {id(t): tuple(t.shape[1:]) for t in tensors}
    with _LOCK:
        known = _SHAPES.setdefault(graph, {})
        if in_shape not in known:
            try:
                spec = keras.Model(graph.inputs[0], tensors[1:]).compute_output_spec(
                    keras.KerasTensor((None, *in_shape), dtype=graph.inputs[0].dtype))
                known[in_shape] = {id(graph.inputs[0]): in_shape,
                                   **{id(t): tuple(s.shape[1:]) for t, s in zip(tensors[1:], spec)}}
            except Exception:  # noqa: BLE001 - shapes Keras cannot infer stay unknown: those layers are not offered
                known[in_shape] = {id(t): tuple(t.shape[1:]) for t in tensors}
        return known[in_shape]


class _NoNode:
    outputs = ()


def _survey(model, in_shape: tuple) -> dict:
    with _LOCK:
        known = _SURVEYS.setdefault(model, {})
        if in_shape not in known:
            known[in_shape] = recording.survey(model, in_shape)
        return known[in_shape]


@dataclass
class _Site:
    """One layer in a model's tree: its path, how a probe reaches it and what it gives."""

    path: str
    layer: keras.layers.Layer
    chain: tuple  # ((holder, layer), ...): each model from the outermost down and the layer of it on the way
    index: int | None
    group: str
    shape: tuple | None  # output shape without the batch axis; None when it is not one tensor
    why: str = ""  # why the layer cannot be probed, when it cannot
    expanded: bool = False  # a nested model whose layers follow it

    def info(self) -> LayerInfo | None:
        shape = self.shape
        if self.why or shape is None or any(s is None for s in shape):
            return None
        kind = {3: "maps", 1: "units"}.get(len(shape))
        return LayerInfo(self.path, self.index, kind, shape, self.group) if kind else None


def _sites(model: keras.Model) -> list[_Site]:
    """Every layer of a built model (``ensure_built``) in model order, each nested model followed by its layers."""
    shape = tuple(model.inputs[0].shape[1:])
    inner = _WRAPS.get(model)
    if inner is not None and inner() is not None:  # a subclassed model's stand-in: its layers by their own names
        return _call_sites(inner(), shape, "", ((model, inner()),), top=True)
    return _graph_sites(model, shape, "", (), top=True)


def _graph_sites(model, in_shape: tuple, prefix: str, chain: tuple, top: bool) -> list[_Site]:
    graph = _graph(model)
    shapes = _tensor_shapes(graph, in_shape)
    sites = []
    for index, layer in enumerate(model.layers):
        node = None if isinstance(layer, keras.layers.InputLayer) else _node(graph, layer)
        if node is None:
            continue
        outs = node.outputs
        site = _Site(prefix + layer.name, layer, chain + ((model, layer),), index if top else None, prefix[:-1],
                     shapes.get(id(outs[0])) if len(outs) == 1 else None)
        sites.append(site)
        if isinstance(layer, keras.Model):
            ins = node.input_tensors
            if len(ins) == 1 and shapes.get(id(ins[0])) is not None:
                inner = _nested_sites(layer, shapes[id(ins[0])], site.path + "/", site.chain)
                site.expanded = bool(inner)
                sites += inner
    return sites


def _nested_sites(model, in_shape: tuple, prefix: str, chain: tuple) -> list[_Site]:
    """The layers of a nested model that gets images of ``in_shape``; none when they cannot be found."""
    graph = _graph(model)
    if any(s is None for s in in_shape) or (graph is not None and len(graph.inputs) != 1):
        return []
    if graph is not None:
        return _graph_sites(model, in_shape, prefix, chain, top=False)
    try:
        return _call_sites(model, in_shape, prefix, chain, top=False)
    except Exception:  # noqa: BLE001 - a nested model that cannot run on its own: its layers are not offered
        return []


def _call_sites(model, in_shape: tuple, prefix: str, chain: tuple, top: bool) -> list[_Site]:
    """The layers of a model without a graph, in the order of their first call in one forward pass."""
    calls = _survey(model, in_shape)
    index = {id(layer): i for i, layer in enumerate(model.layers)} if top else {}
    sites = []

    def walk(holder, path):
        for layer in recording.sublayers(holder):
            call = calls.get(id(layer))
            why = ("" if call is not None and call.calls == 1 else
                   f"{model.name!r} does not call it when it runs" if call is None else
                   f"{model.name!r} calls it {call.calls} times in one forward pass; a probe needs a layer called "
                   "once")
            site = _Site(path + layer.name, layer, chain + ((model, layer),), index.get(id(layer)), path[:-1],
                         call.shape if call is not None else None, why)
            sites.append(site)
            before = len(sites)
            walk(layer, site.path + "/")
            site.expanded = len(sites) > before and any(s.shape is not None for s in sites[before:])

    walk(model, prefix)
    order = {id(s.layer): calls[id(s.layer)].order if id(s.layer) in calls else len(calls) + k
             for k, s in enumerate(sites)}
    return sorted(sites, key=lambda s: order[id(s.layer)])


def probeable_layers(model: keras.Model) -> list[LayerInfo]:
    """The layers an objective can read, in model order (a subclassed model's: in the order its ``call`` runs them):
    4-D outputs ("maps") and 2-D outputs ("units"); after a nested model (listed itself when its output is 4-D or
    2-D), the layers inside it, named by path."""
    return [info for info in (site.info() for site in _sites(model)) if info is not None]


def layer_names(model: keras.Model) -> list[str]:
    """The paths of every layer of a built model (``ensure_built``), probe-able or not, in model order."""
    return [site.path for site in _sites(model)]


def _top_layers(model) -> list:
    """``model.layers`` of what the user gave: of the subclassed model for a stand-in made by ``ensure_built``."""
    inner = _WRAPS.get(model)
    return inner().layers if inner is not None and inner() is not None else model.layers


def _find_site(model: keras.Model, layer, sites: list[_Site]) -> _Site:
    """The site of ``layer`` (path, plain name unique in the model, index into model.layers, or layer object)."""
    valid = [s.path for s in sites if s.info() is not None]
    if isinstance(layer, bool) or not (isinstance(layer, (str, keras.layers.Layer)) or is_int(layer)):
        raise TypeError(f"layer must be a layer name (or path such as 'base/conv1'), an index into model.layers or a "
                        f"keras layer of the model; got {type(layer).__name__}")
    if is_int(layer):
        top = _top_layers(model)
        n = len(top)
        if not -n <= layer < n:
            raise ValueError(f"layer index {layer} is out of range: the model has {n} layers (0..{n - 1}).")
        layer = top[int(layer)]
    if isinstance(layer, keras.layers.InputLayer):
        raise ValueError(f"layer {layer.name!r} is the model's input, not a layer to probe; valid layers: "
                         f"{', '.join(valid)}")
    if isinstance(layer, keras.layers.Layer):
        found = [s for s in sites if s.layer is layer]
        if not found:
            path = _path_in_source(model, layer)
            if path is None:
                raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is not a layer of model "
                                 f"{model.name!r}; valid layers: {', '.join(valid)}")
            found = [s for s in sites if s.path == path]
        site = found[0] if found else None
        name = layer.name
    else:
        name = layer
        found = [s for s in sites if s.path == name]
        if not found and "/" not in name:
            found = [s for s in sites if s.layer.name == name]
            if len(found) > 1:
                raise ValueError(f"layer name {name!r} is used in several models: give its path, one of "
                                 f"{', '.join(s.path for s in found)}")
        site = found[0] if found else None
    if site is None:
        raise ValueError(f"unknown layer {name!r}; valid layers: {', '.join(valid)}")
    if site.info() is None:
        why = site.why or "its output is neither 4-D nor 2-D"
        raise ValueError(f"layer {site.path!r} has no spatial maps or units to probe ({why}); valid layers: "
                         f"{', '.join(valid)}")
    return site


def _path_in_source(model, layer) -> str | None:
    """The path of ``layer`` in the model that ``model`` is a fixed-size copy of (its layers are other objects)."""
    source = _SOURCE.get(model)
    source = source() if source is not None else None
    if source is None:
        return None

    def walk(holder, prefix):
        for sub in (holder.layers if isinstance(holder, keras.Model) else []):
            if sub is layer:
                return prefix + sub.name
            found = walk(sub, prefix + sub.name + "/")
            if found:
                return found
        return None

    return walk(source, "")


def layer_key(model: keras.Model, layer):
    """``layer`` (path, unique plain name, index into model.layers or layer object) as its path in the built
    ``model``; a value that names no probe-able layer comes back as it is (``make_probe`` explains it)."""
    try:
        return _find_site(model, layer, _sites(model)).path
    except (TypeError, ValueError):
        return layer


# ----------------------------------------------------------------- probes
@dataclass
class Probe:
    """A callable ``images (B, H, W, C) -> activations`` of one layer, with what it reads.

    ``activations`` is (B, h, w, maps) for a "maps" layer and (B, units) for a "units" layer; ``pre_activation``
    says whether a softmax/sigmoid was left out; ``climbed`` names the tensor returned ("'conv1'", "'dense' before
    its softmax", "input of 'predictions' (softmax)"); ``shapes`` are the per-image output shapes of the layers a
    call computes (for the memory estimate).
    """

    model: keras.Model
    layer: LayerInfo
    input_shape: tuple  # (H, W, C)
    pre_activation: bool
    _fn: object
    climbed: str = ""
    shapes: tuple = ()

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        out = self._fn(images)
        # mixed-precision models compute in float16/bfloat16: objectives and the ascent work in float32
        return out if out.dtype == tf.float32 else tf.cast(out, tf.float32)


def _saturating(layer) -> str:
    """'softmax' or 'sigmoid' when ``layer`` ends in one (a Dense or Activation layer with it, a Softmax layer)."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, (keras.layers.Dense, keras.layers.Activation)):
        name = getattr(getattr(layer, "activation", None), "__name__", "")
        return name if name in _SATURATING else ""
    return ""


def make_probe(
    model: keras.Model,
    layer,
    *,
    input_shape: tuple | None = None,
    pre_activation: bool = True,
    fast: bool = True,
) -> Probe:
    """Build the probe of ``layer``: a path or name, an index into ``model.layers`` or a layer object.

    ``pre_activation``: for a class layer ending in softmax/sigmoid (a Dense layer with it, a separate Activation or
    Softmax layer, a nested model ending in one), return the scores before it.
    ``fast``: when the model starts with a plain stride-1 Conv2D on few channels, compute that convolution's input
    gradient as a matrix product (same values up to float32 rounding, several times faster on CPU).
    Raises ValueError listing the valid layer names for a wrong name.
    """
    model = ensure_built(model, input_shape)
    sites = _sites(model)
    site = _find_site(model, layer, sites)
    info = site.info()
    chain, path = site.chain, site.path
    target = chain[-1][1]
    while pre_activation and isinstance(target, keras.Model) and _graph(target) is not None and len(
            _graph(target).outputs) == 1:  # a nested model ending in a softmax: climb its class layer
        end = _graph(target).outputs[0]._keras_history.operation
        if not _saturating(end) or _node(_graph(target), end) is None:
            break
        chain, path, target = chain + ((target, end),), f"{path}/{end.name}", end
    activation = _saturating(target)
    strip = bool(pre_activation and activation)
    dense = strip and isinstance(target, keras.layers.Dense)
    fn = _chain_fn(chain, "input" if strip else "output", info.name)
    if dense:
        def fn(images, _h=fn, _layer=target):
            h = _h(images)
            z = tf.matmul(h, tf.cast(_layer.kernel, h.dtype))
            return z + tf.cast(_layer.bias, h.dtype) if _layer.use_bias else z

        climbed = f"{path!r} before its {activation}"
    elif strip:
        climbed = f"input of {path!r} ({activation})"
    else:
        climbed = f"{path!r}" + (f" (after its {activation})" if activation else "")
        if fast and len(chain) == 1:
            node = _node(_graph(model), target)
            fn = _fast_first_conv_probe(model, target, node.outputs[0], info) or fn
    shapes = []
    for s in sites:
        if s is site:
            break
        if s.shape is not None and not s.expanded and all(d is not None for d in s.shape):
            shapes.append(s.shape)
    shapes.append(info.shape)
    return Probe(model, info, tuple(model.inputs[0].shape[1:]), strip, fn, climbed, tuple(shapes))


def _chain_fn(chain: tuple, what: str, name: str):
    """images → the ``what`` ("output"/"input") of the chain's last layer: for each model on the way a sub-model
    from its input to the tensor entering the next one, composed; a model without a graph is run and the layer's
    tensor captured (``recording``), at any depth below it."""
    parts = []
    for k, (holder, layer) in enumerate(chain):
        graph = _graph(holder)
        if graph is None:
            parts.append(recording.capture_fn(holder, chain[-1][1], what))
            break
        node = _node(graph, layer)
        last = k == len(chain) - 1
        tensors = node.outputs if last and what == "output" else node.input_tensors
        if len(tensors) != 1:
            raise ValueError(f"layer {layer.name!r} takes {len(tensors)} inputs; a probe can only follow one image "
                             "tensor into it")
        if tensors[0] is not graph.inputs[0]:
            sub = keras.Model(graph.inputs[0], tensors[0], name=f"probe_{name.replace('/', '__')}_{k}")
            parts.append(lambda x, _sub=sub: _sub(x, training=False))
    if not parts:
        return lambda images: images
    if len(parts) == 1:
        return parts[0]

    def fn(images, _parts=tuple(parts)):
        for part in _parts:
            images = part(images)
        return images

    return fn


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


def _fast_first_conv_probe(model, keras_layer, output, info):
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
        rest = keras.Model(first.output, output, name=f"probe_{info.name}_rest")
        # the rest must not read the image directly (a skip connection from the input)
        if any(isinstance(l, keras.layers.InputLayer) and l.output is x_in for l in rest.layers):
            return None

        def fn(images, _conv=conv, _rest=rest):
            return _rest(_conv(images), training=False)

        return fn
    except Exception:  # noqa: BLE001 - any model this does not understand takes the plain path
        return None
