"""ActivationViewer: what a real input image does inside the CNN (the article's parts IV and VI).

Choose an input image; see every map of a conv layer for it as one tiled grid (one colour scale spanning that
layer's activations for this image, so maps compare directly), the activations of a dense layer as bars, and the
class probabilities. All values shown are exactly the model's outputs (``activations()`` returns them).
"""

from __future__ import annotations

import ipywidgets as widgets
import keras
import numpy as np
from bqplot import Axis, Bars, Figure, LinearScale, OrdinalScale
from traitlets import Enum, Int, Unicode, validate

from ..models.models import load_default_model
from ..models.preprocessing import to_model_input
from ..engine.probe import Probe, ensure_built, make_probe, probeable_layers
from ..engine.validation import check_index, check_int
from ..output.render import COLORMAPS, plain_display, tile_scale
from .base import check_layer, trait_check
from .controls import layer_options
from .layout import CONTROL_STYLE, section
from .tilegrid import TileGrid

__all__ = ["ActivationViewer"]


class ActivationViewer(widgets.VBox):
    """Activations of one input image across a conv layer's maps, a dense layer and the class outputs.

    model: a ``keras.Model`` (default: the shipped MNIST CNN); images: raw images (N, H, W[, C]) (default: the
    shipped MNIST samples for a 28×28×1 model), standardised per image unless ``preprocess=False``; labels and
    class_names: optional, for captions.
    """

    image_index = Int(0)
    layer = Unicode(help="conv-like layer whose maps are shown")
    dense_layer = Unicode(help="2-D layer whose units are shown as bars")
    colormap = Enum(COLORMAPS, default_value="viridis")

    def __init__(self, model: keras.Model | None = None, images=None, *, labels=None, class_names=None,
                 preprocess: bool = True, input_shape=None, cols: int = 8, **kwargs):
        self.model = ensure_built(load_default_model("mnist") if model is None else model, input_shape)
        shape = tuple(self.model.inputs[0].shape[1:])
        if images is None:
            if shape != (28, 28, 1):
                raise ValueError(f"give images for this model (input {shape}); the shipped samples are 28×28×1")
            from ..models.datasets import CLASS_NAMES, samples

            images, labels = samples("mnist")
            class_names = class_names or CLASS_NAMES["mnist"]
        images = np.asarray(images)
        given = images.shape
        if images.ndim == 3 and shape[-1] == 1:
            images = images[..., None]
        if images.ndim != 4 or len(images) == 0 or images.shape[1:] != shape:
            raise ValueError(
                f"images must be a non-empty array (N, {', '.join(map(str, shape))}) for this model"
                + (f" or (N, {shape[0]}, {shape[1]})" if shape[-1] == 1 else "")
                + f"; got shape {given}"
            )
        if images.dtype.kind not in "biuf":
            raise ValueError(f"images must be an array of numbers; got dtype {images.dtype}")
        if not np.all(np.isfinite(images)):
            raise ValueError(f"images contain NaN or infinite values (in {int(np.sum(~np.isfinite(images)))} pixels)")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"labels must have one entry per image ({len(images)}); got {len(labels)}")
        self.cols = check_int(cols, "cols")
        self.images = images
        self.inputs = to_model_input(images) if preprocess else images.astype(np.float32)
        self.labels = None if labels is None else np.asarray(labels)
        infos = probeable_layers(self.model)
        self._maps = {i.name: i for i in infos if i.kind == "maps"}
        self._units = {i.name: i for i in infos if i.kind == "units"}
        if not self._maps:
            raise ValueError(f"model {self.model.name!r} has no conv-like layer (4-D output) to show")
        n_out = int(self.model.outputs[0].shape[-1])
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(n_out)]
        self._probes = {}
        for name in kwargs:
            if not self.has_trait(name):
                raise TypeError(f"ActivationViewer has no setting {name!r}")
        super().__init__()
        # initial values first (validated, no observer yet), then the view, then the observers
        self.layer = next((n for n in self._maps if n == "Conv2D_3"), list(self._maps)[-1])
        dense = [n for n in self._units if n != self.model.layers[-1].name] or list(self._units)
        self.dense_layer = dense[-1] if dense else ""
        with self.hold_trait_notifications():
            for name, value in kwargs.items():  # trait values given as keywords: ActivationViewer(image_index=3)
                setattr(self, name, value)
        self._build()
        self._update()
        self.observe(lambda change: self._update(), names=["image_index", "layer", "dense_layer"])
        self.observe(self._on_colormap, names="colormap")

    @validate("image_index")
    def _check_index(self, proposal):
        n = len(self.images)
        return trait_check(check_index, proposal["value"], n, "image index", f"{n} images")

    @validate("layer")
    def _check_layer(self, proposal):
        return check_layer(proposal["value"], self._maps, "conv layer", "; layers with maps")

    @validate("dense_layer")
    def _check_dense(self, proposal):
        return proposal["value"] and check_layer(proposal["value"], self._units, "dense layer", "; layers with units")

    # ------------------------------------------------------------------ numbers
    def _probe(self, name: str) -> Probe:
        """The layer's own output (after its activation: exactly what the model computes), also for a layer
        inside a nested model (``name`` is its path)."""
        if name not in self._probes:
            self._probes[name] = make_probe(self.model, name, pre_activation=False, fast=False)
        return self._probes[name]

    def activations(self, index: int | None = None) -> dict:
        """Exactly what is shown for image ``index`` (default: the current one): ``maps`` (h, w, maps) of ``layer``,
        ``dense`` (units,) of ``dense_layer``, ``probabilities`` (classes,) of the model output."""
        i = self.image_index if index is None else index
        x = self.inputs[i : i + 1]
        out = {"maps": np.asarray(self._probe(self.layer)(x))[0]}
        if self.dense_layer:
            out["dense"] = np.asarray(self._probe(self.dense_layer)(x))[0]
        out["probabilities"] = np.asarray(self.model(x, training=False))[0]
        return out

    # ------------------------------------------------------------------ view
    def _build(self):
        style, width = CONTROL_STYLE, widgets.Layout  # each control keeps a readable width; the row wraps
        self.index_slider = widgets.IntSlider(min=0, max=len(self.images) - 1, description="image", style=style,
                                              layout=width(width="300px", min_width="220px"))
        self.layer_dropdown = widgets.Dropdown(options=layer_options(self._maps), description="maps of",
                                               style=style, layout=width(width="260px", min_width="200px"))
        self.dense_dropdown = widgets.Dropdown(options=layer_options(self._units), description="units of",
                                               style=style, layout=width(width="260px", min_width="200px"))
        for trait, control in [("image_index", self.index_slider), ("layer", self.layer_dropdown),
                               ("dense_layer", self.dense_dropdown)]:
            widgets.link((self, trait), (control, "value"))
        h, w, _ = self.model.inputs[0].shape[1:]
        # the input image: grey ones in grey, colour ones in colour, ~84–140 px (tile_scale)
        self.input_grid = TileGrid(1, 1, (int(h), int(w)), scale=tile_scale(int(h), int(w)), scheme="Greys",
                                   css_class="oip-input")
        self.caption = widgets.HTML(layout=widgets.Layout(max_width="160px"))  # wraps under the input image
        self.maps_box = widgets.Box()
        self.maps_grid = None  # made by _update, for the shape of the layer's maps
        self.dense_x, self.dense_y = OrdinalScale(), LinearScale()
        self.dense_bars = Bars(x=np.arange(1), y=np.zeros(1, np.float32), scales={"x": self.dense_x, "y": self.dense_y},
                               colors=["#2a788e"])
        self.dense_figure = Figure(marks=[self.dense_bars], title="dense layer",
                                   axes=[Axis(scale=self.dense_x, label="unit", num_ticks=10),
                                         Axis(scale=self.dense_y, side="left", tick_format=".2g")],
                                   fig_margin={"top": 30, "bottom": 35, "left": 50, "right": 10},
                                   layout=widgets.Layout(width="440px", height="220px"))
        self.prob_x, self.prob_y = OrdinalScale(), LinearScale(min=0.0, max=1.0)
        self.prob_bars = Bars(x=self.class_names, y=np.zeros(len(self.class_names), np.float32),
                              scales={"x": self.prob_x, "y": self.prob_y}, colors=["#7ad151"])
        self.prob_figure = Figure(marks=[self.prob_bars], title="class probabilities",
                                  axes=[Axis(scale=self.prob_x), Axis(scale=self.prob_y, side="left")],
                                  fig_margin={"top": 30, "bottom": 35, "left": 50, "right": 10},
                                  layout=widgets.Layout(width="400px", height="220px"))
        wrap = widgets.Layout  # rows that wrap instead of cutting their content in a narrow notebook
        self.children = [
            section("input & layers", [widgets.HBox([self.index_slider, self.layer_dropdown, self.dense_dropdown],
                                                    layout=wrap(flex_flow="row wrap"))]),
            widgets.HBox([widgets.VBox([self.input_grid.figure, self.caption]), self.maps_box],
                         layout=wrap(flex_flow="row wrap", align_items="flex-start")),
            widgets.HBox([self.dense_figure, self.prob_figure], layout=wrap(flex_flow="row wrap")),
        ]
        self.add_class("oip-activations")

    def _on_colormap(self, change):
        self.maps_grid.scheme = change["new"]

    def _update(self):
        acts = self.activations()
        maps = acts["maps"]
        h, w, n = maps.shape
        cols = min(self.cols, n)
        grid = self.maps_grid
        if grid is None or grid.h != h or grid.w != w or len(grid.tiles) != -(-n // cols) * cols:
            # screen pixels per map pixel: small maps drawn larger (~60 px; at least ×2 up to 30-px maps, as always),
            # large maps (colour nets) shrunk to ~60 px and sent as PNGs of at most 1.25× that
            n_px = max(h, w)
            scale = max(2.0, min(12.0, 60.0 / n_px)) if n_px <= 30 else 60.0 / n_px
            if self.maps_grid is not None:
                self.maps_grid.close()
            grid = TileGrid(-(-n // cols), cols, (h, w), scheme=self.colormap, scale=scale, gap=6 / scale,
                            label_space=13 / scale, css_class="oip-maps")
            self.maps_grid = grid
            self.maps_box.children = [grid.figure]
        lo, hi = float(maps.min()), float(maps.max())
        with grid.figure.hold_sync():
            grid.colors.min, grid.colors.max = lo, hi if hi > lo else lo + 1.0  # raw activations, one range
            for m in range(n):  # grey tiles coloured in Python; tiles that look the same are not sent again
                grid.set_tile(m, maps[:, :, m], f"{m}")
        self.input_grid.set_tile(0, plain_display(self.images[self.image_index]), "input")
        probs = acts["probabilities"]
        pred = int(np.argmax(probs))
        label = "" if self.labels is None else f"label {self.class_names[int(self.labels[self.image_index])]}, "
        self.caption.value = (f"{label}predicted <b>{self.class_names[pred]}</b> ({probs[pred]:.1%}); "
                              f"maps of {self.layer}: {lo:.3g} … {hi:.3g}")
        if "dense" in acts:
            self.dense_bars.x = np.arange(len(acts["dense"]))
            self.dense_bars.y = acts["dense"].astype(np.float32)
            self.dense_figure.title = f"{self.dense_layer}: {len(acts['dense'])} units"
        self.prob_bars.y = probs.astype(np.float32)
