"""LayerZoo: the OIPs of every map of a layer, computed as one batch and drawn as one tiled bqplot image.

The mosaic is a single ``bqplot.HeatMap`` (tiles separated by blank gaps), labelled with each map's index and final
mean activation, dead maps in red. An invisible ``Scatter`` of one square per tile takes the clicks: clicking a tile
sets ``selected`` (a trait), shows that map's OIP beside the dataset images that activate it most (top-k), and
``open_explorer()`` opens it in an ``OIPExplorer``.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets
import keras
import numpy as np
from bqplot import ColorScale, Figure, HeatMap, Label, LinearScale, Scatter
from traitlets import Bool, Enum, Float, Instance, Int, List, TraitError, Tuple, Unicode, observe, validate

from ..engine.engine import OIPEngine
from ..engine.examples import default_examples, top_k_all
from ..models.models import load_default_model
from ..output.render import COLORMAPS, enhanced, mosaic, plain
from ..engine.result import LayerResult
from ..engine.noise import DEFAULT_WEIGHTS, MultiScaleNoise
from ..engine.strategies import STRATEGIES
from .tilegrid import TileGrid
from .worker import RunsInBackground, Worker

__all__ = ["LayerZoo"]


#: Value of the mosaic's gaps and label rows: below the tiles' 0..1, drawn white. (bqplot's HeatMap paints NaN with a
#: colour of the scheme, so blank space needs a value of its own.)
BLANK = -1 / 8


def _colors_with_blank(cmap: str) -> list[str]:
    """White at BLANK, then 9 colours of ``cmap`` spread evenly over 0..1 (a ColorScale spaces colours evenly)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    scheme = colormaps[cmap]
    return ["#ffffff"] + [to_hex(scheme(i / 8)) for i in range(9)]


class LayerZoo(RunsInBackground, widgets.VBox):
    """All OIPs of one layer (default ``Conv2D_3`` of the shipped MNIST model) with a progress bar.

    examples: raw images (N, H, W[, C]) whose top-k per map are shown for the selected map (default: the shipped
    MNIST samples for 28×28×1 models; pass e.g. ``datasets.samples("fashion")[0]``). ``zoo.run(wait=True)`` runs from
    code and returns the ``LayerResult``.
    """

    layer = Unicode(help="the layer whose maps are shown")
    steps = Int(400)
    noise_scales = List(Tuple(Int(), Int()), help="(rows, cols) grids of the start noise, coarse to fine")
    noise_weights = List(Float(), help="one weight >= 0 per noise scale")
    epsilon = Float(0.01)
    seed = Int(0)
    strategy = Enum(tuple(STRATEGIES), default_value="simple")
    sort = Enum(("map", "activation"), default_value="map", help="tile order: by map index or by final activation")
    colormap = Enum(COLORMAPS, default_value="viridis")
    contrast = Bool(False, help="show the contrast-enhanced rendering")
    selected = Int(None, allow_none=True, help="the map whose tile was clicked")
    k = Int(8, help="how many dataset examples to show for the selected map")
    result = Instance(LayerResult, allow_none=True, read_only=True)
    status = Unicode("ready", read_only=True)
    running = Bool(False, read_only=True)

    def __init__(self, model: keras.Model | None = None, layer: str | None = None, *, examples=None, cols: int = 8,
                 input_shape=None, **kwargs):
        self.model = load_default_model("mnist") if model is None else model
        infos = OIPEngine.layers(self.model, input_shape)
        self._infos = {i.name: i for i in infos if i.kind == "maps"}
        if not self._infos:
            raise ValueError(
                "LayerZoo needs a model with conv-like layers (4-D output: batch, height, width, maps); "
                f"{self.model.name!r} has none"
            )
        self._input_shape = input_shape
        self.examples = default_examples(self.model) if examples is None else np.asarray(examples)
        if self.examples is not None and len(self.examples) == 0:
            raise ValueError("examples is an empty image set; give at least one image or None")
        self.cols = int(cols)
        self._engines: dict[str, OIPEngine] = {}
        self._worker = Worker("oipwidgets-zoo")
        self._run_id = 0
        self._order = np.arange(0)
        self._topk = None
        super().__init__()
        self.layer = layer or ("Conv2D_3" if "Conv2D_3" in self._infos else list(self._infos)[-1])
        h, w, _ = self._engine().input_shape
        self.noise_scales = list(MultiScaleNoise.for_size(h, w).scales)
        self.noise_weights = list(DEFAULT_WEIGHTS)
        self._build()
        for name, value in kwargs.items():
            if not self.has_trait(name):
                raise TypeError(f"LayerZoo has no setting {name!r}")
            setattr(self, name, value)

    @validate("layer")
    def _check_layer(self, proposal):
        if proposal["value"] not in self._infos:
            raise TraitError(
                f"unknown layer {proposal['value']!r} for a zoo; layers with maps: {', '.join(self._infos)}"
            )
        return proposal["value"]

    @validate("selected")
    def _check_selected(self, proposal):
        v = proposal["value"]
        n = self._infos[self.layer].size
        if v is not None and not 0 <= v < n:
            raise TraitError(f"selected map {v} is out of range: layer {self.layer!r} has {n} maps (0..{n - 1})")
        return v

    @validate("k")
    def _check_k(self, proposal):
        n = 0 if self.examples is None else len(self.examples)
        if proposal["value"] < 1 or (n and proposal["value"] > n):
            raise TraitError(f"k must be between 1 and the number of example images ({n}); got {proposal['value']}")
        return proposal["value"]

    # ------------------------------------------------------------------ view
    def _engine(self) -> OIPEngine:
        if self.layer not in self._engines:
            self._engines[self.layer] = OIPEngine(self.model, self.layer, input_shape=self._input_shape)
        return self._engines[self.layer]

    def _build(self):
        style = {"description_width": "60px"}
        self.layer_dropdown = widgets.Dropdown(options=list(self._infos), description="layer", style=style)
        self.steps_text = widgets.BoundedIntText(min=1, max=1_000_000, description="steps", style=style,
                                                 layout=widgets.Layout(width="160px"))
        self.seed_text = widgets.IntText(description="seed", style=style, layout=widgets.Layout(width="140px"))
        self.scales_text = widgets.Text(description="scales", style=style, continuous_update=False,
                                        layout=widgets.Layout(width="260px"))
        self.weights_text = widgets.Text(description="weights", style=style, continuous_update=False,
                                         layout=widgets.Layout(width="260px"))
        self._sync_noise_texts()
        self.scales_text.observe(self._on_noise_text, "value")
        self.weights_text.observe(self._on_noise_text, "value")
        self.strategy_dropdown = widgets.Dropdown(options=list(STRATEGIES), description="strategy", style=style,
                                                  layout=widgets.Layout(width="220px"))
        self.sort_buttons = widgets.ToggleButtons(options=[("by map", "map"), ("by activation", "activation")],
                                                  style={"button_width": "100px"})
        self.contrast_box = widgets.Checkbox(description="contrast", indent=False, layout=widgets.Layout(width="90px"))
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.explorer_button = widgets.Button(description="Open in explorer", icon="search", disabled=True)
        self.progress = widgets.FloatProgress(min=0.0, max=1.0, layout=widgets.Layout(width="100%"))
        self.status_line = widgets.HTML("ready")
        for trait, control in [("layer", self.layer_dropdown), ("steps", self.steps_text), ("seed", self.seed_text),
                               ("strategy", self.strategy_dropdown), ("sort", self.sort_buttons),
                               ("contrast", self.contrast_box)]:
            widgets.link((self, trait), (control, "value"))
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.explorer_button.on_click(lambda _: self._show_explorer())

        self.xs, self.ys = LinearScale(), LinearScale(reverse=True)
        self.colors = ColorScale(colors=_colors_with_blank(self.colormap), min=BLANK, max=1.0)
        self.heatmap = HeatMap(x=np.arange(2, dtype=np.float32), y=np.arange(2, dtype=np.float32),
                               color=np.full((2, 2), BLANK, np.float32),  # (1, 1) would be squeezed by bqplot
                               scales={"x": self.xs, "y": self.ys, "color": self.colors})
        self.labels = Label(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), text=[],
                            scales={"x": self.xs, "y": self.ys}, align="middle", default_size=10,
                            font_weight="normal", colors=["#333333"])
        self.hits = Scatter(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                            scales={"x": self.xs, "y": self.ys}, marker="square", default_opacities=[0.02],
                            colors=["white"], stroke="white", interactions={"click": "select"},
                            selected_style={"opacity": 1.0, "fill": "none", "stroke": "red", "stroke-width": 3},
                            unselected_style={"opacity": 0.02})
        self.hits.observe(self._on_hit, "selected")
        self.figure = Figure(marks=[self.heatmap, self.labels, self.hits], axes=[], padding_x=0.0, padding_y=0.0,
                             fig_margin={"top": 4, "bottom": 4, "left": 4, "right": 4})
        self.figure.add_class("oip-zoo")
        self.detail_box = widgets.VBox()
        self.explorer_area = widgets.VBox()
        self._layout_mosaic()
        self.children = [
            widgets.HBox([self.layer_dropdown, self.steps_text, self.strategy_dropdown, self.seed_text]),
            widgets.HBox([self.scales_text, self.weights_text]),
            widgets.HBox([self.run_button, self.stop_button, self.sort_buttons, self.contrast_box,
                          self.explorer_button]),
            self.progress,
            self.status_line,
            # bqplot draws the HeatMap on a canvas above the SVG marks; let clicks through to the tile squares
            widgets.HTML("<style>.oip-zoo canvas { pointer-events: none; }</style>"),
            self.figure,
            self.detail_box,
            self.explorer_area,
        ]
        self.add_class("oip-layer-zoo")

    def _geometry(self):
        h, w, _ = self._engine().input_shape
        n = self._infos[self.layer].size
        cols = min(self.cols, n)
        rows = -(-n // cols)
        label = max(4, h // 3)
        return n, rows, cols, h, w, label

    def _layout_mosaic(self):
        """Scales, figure size, label and click positions for the current layer (tiles in ``self._order``)."""
        n, rows, cols, h, w, label = self._geometry()
        if len(self._order) != n:
            self._order = np.arange(n)
        gap = 2
        self._tile = (h, w, gap, label)
        width, height = cols * (w + gap) - gap, rows * (h + label + gap) - gap
        scale = max(1.0, min(3.0, 84.0 / max(h, w)))
        with self.figure.hold_sync():
            self.xs.min, self.xs.max = 0.0, float(width)
            self.ys.min, self.ys.max = 0.0, float(height)
            self.figure.max_aspect_ratio = 1e6  # widen first: bqplot refuses min > max at any moment
            self.figure.min_aspect_ratio = width / height
            self.figure.max_aspect_ratio = width / height
            self.figure.layout.width = f"{width * scale + 8:.0f}px"
            self.figure.layout.height = f"{height * scale + 8:.0f}px"
            cx = np.array([(i % cols) * (w + gap) + w / 2 for i in range(n)], np.float32)
            top = np.array([(i // cols) * (h + label + gap) for i in range(n)], np.float32)
            self.hits.x, self.hits.y = cx, top + h / 2
            self.hits.default_size = int((min(h, w) * scale) ** 2)
            self.labels.x, self.labels.y = cx, top + h + label * 0.8
            self.labels.text = [str(int(m)) for m in self._order]
            self.labels.colors = ["#333333"]
        self._draw_images(np.full((n, h, w), BLANK, np.float32))

    def _draw_images(self, tiles: np.ndarray):
        """Tiles (n, h, w) in 0..1 (BLANK: empty), in map order → the one mosaic HeatMap (gaps and label rows blank)."""
        n, rows, cols, h, w, label = self._geometry()
        gap = self._tile[2]
        ordered = tiles[self._order]
        padded = np.full((n, h + label, w), BLANK, np.float32)
        padded[:, :h] = ordered
        img = mosaic(padded, cols, gap=gap, fill=BLANK)
        with self.heatmap.hold_sync():
            self.heatmap.x = np.arange(img.shape[1], dtype=np.float32) + 0.5
            self.heatmap.y = np.arange(img.shape[0], dtype=np.float32) + 0.5
            self.heatmap.color = img

    def _render(self, images: np.ndarray) -> np.ndarray:
        fn = enhanced if self.contrast else plain
        return np.stack([fn(im) for im in images]).astype(np.float32)

    # ------------------------------------------------------------------ state changes
    @observe("layer")
    def _layer_changed(self, change):
        if self._worker.busy:
            self._worker.cancel(wait=True)
        self._topk = None
        self.selected = None
        if hasattr(self, "figure"):
            self.set_trait("result", None)
            self._order = np.arange(self._infos[change["new"]].size)
            self._layout_mosaic()

    @observe("sort", "contrast")
    def _view_changed(self, change):
        if self.result is not None:
            self._draw_result(self.result)

    @observe("colormap")
    def _colormap_changed(self, change):
        self.colors.colors = _colors_with_blank(change["new"])

    def _on_hit(self, change):
        picked = change["new"]
        if picked is not None and len(picked):
            self.selected = int(self._order[int(picked[0])])

    @observe("selected")
    def _selected_changed(self, change):
        if not hasattr(self, "explorer_button"):
            return
        m = change["new"]
        self.explorer_button.disabled = m is None
        if m is None:
            self.detail_box.children = []
            self.hits.selected = None
            return
        position = int(np.flatnonzero(self._order == m)[0])
        if self.hits.selected is None or list(self.hits.selected) != [position]:
            self.hits.selected = [position]
        self._show_detail(m)

    # ------------------------------------------------------------------ noise settings
    def noise(self) -> MultiScaleNoise:
        """The start noise of the current settings (ValueError naming the problem when they do not fit)."""
        return MultiScaleNoise(scales=tuple(self.noise_scales), weights=tuple(self.noise_weights))

    def _sync_noise_texts(self):
        from .explorer import format_scales

        self.scales_text.value = format_scales(self.noise_scales)
        self.weights_text.value = ", ".join(f"{v:g}" for v in self.noise_weights)

    def _on_noise_text(self, change):
        from .explorer import parse_scales

        try:
            scales = parse_scales(self.scales_text.value)
            weights = [float(v) for v in self.weights_text.value.replace(";", ",").split(",") if v.strip()]
            MultiScaleNoise(scales=scales, weights=weights)  # validates: one weight >= 0 per scale, not all 0
        except ValueError as exc:
            self._set_status(f"error: {exc}", "#b00020")
            return
        self.noise_scales, self.noise_weights = scales, weights

    @observe("noise_scales", "noise_weights")
    def _noise_changed(self, change):
        if hasattr(self, "weights_text") and len(self.noise_scales) == len(self.noise_weights):
            self._sync_noise_texts()

    # ------------------------------------------------------------------ running
    def run(self, wait: bool = False) -> LayerResult | None:
        """Compute the OIPs of all maps of the layer as one batch (cancelling a running zoo)."""
        engine = self._engine()
        self._worker.cancel(wait=True)
        self._run_id += 1
        run_id = self._run_id
        try:
            noise = self.noise()
        except ValueError as exc:
            self._set_status(f"error: {exc}", "#b00020")
            if wait:
                raise
            return None
        args = dict(steps=self.steps, epsilon=self.epsilon, seed=self.seed, strategy=self.strategy, noise=noise)
        self.set_trait("running", True)
        self.stop_button.disabled = False
        self.progress.value, self.progress.bar_style = 0.0, ""
        self._set_status(f"running: {self._infos[self.layer].size} maps of {self.layer}, {self.strategy}, "
                         f"{self.steps} steps")
        self._order = np.arange(self._infos[self.layer].size)
        self._layout_mosaic()
        lock = threading.Lock()

        def on_progress(p):
            if run_id != self._run_id:
                return
            with lock:
                self.progress.value = min(1.0, p.step / max(1, p.total))
                if p.snapshot is not None:
                    self._draw_images(self._render(p.snapshot[1]))

        def job(cancel):
            return engine.run_layer(**args, callback=on_progress, cancel=cancel)

        return self._launch(job, run_id, wait)

    def _on_done(self, result, error, run_id):
        if run_id != self._run_id:
            return
        self.set_trait("running", False)
        self.stop_button.disabled = True
        if error is not None:
            self.progress.bar_style = "danger"
            self._set_status(f"error: {type(error).__name__}: {error}", "#b00020")
            return
        self.set_trait("result", result)
        self._topk = None
        self._draw_result(result)
        dead = [r.params["map"] for r in result if r.status == "dead"]
        self.progress.value = 1.0
        self.progress.bar_style = "warning" if any(r.status == "stopped" for r in result) else "success"
        self._set_status(
            f"{len(result)} maps in {result.seconds:.1f} s; dead for this noise: "
            + (", ".join(map(str, dead)) if dead else "none")
            + ". Click a tile to see its OIP beside the images that activate it most."
        )
        if self.selected is not None:
            self._show_detail(self.selected)

    def _draw_result(self, result: LayerResult):
        losses = result.final_losses
        self._order = np.argsort(-losses, kind="stable") if self.sort == "activation" else np.arange(len(result))
        self._layout_mosaic()
        with self.figure.hold_sync():
            self._draw_images(self._render(result.images))
            texts, colours = [], []
            for m in self._order:
                r = result[int(m)]
                texts.append(f"{m}: dead" if r.status == "dead" else f"{m}: {r.final_loss:.2f}")
                colours.append("#d00000" if r.status == "dead" else "#333333")
            self.labels.text = texts
            self.labels.colors = colours
            if self.selected is not None:
                self.hits.selected = [int(np.flatnonzero(self._order == self.selected)[0])]

    # ------------------------------------------------------------------ details: OIP + top-k examples
    def top_examples(self, map_index: int):
        """The ``k`` example images that activate ``map_index`` most (a ``TopK``), computed once for all maps."""
        if self.examples is None:
            return None
        if self._topk is None or self._topk[0] != self.layer:
            self._topk = (self.layer, top_k_all(self._engine(), None, self.examples, k=min(self.k, len(self.examples))))
        return self._topk[1][map_index]

    def _show_detail(self, m: int):
        h, w, _ = self._engine().input_shape
        top = self.top_examples(m)
        n_ex = 0 if top is None else len(top.indices)
        grid = TileGrid(1, 1 + n_ex, (h, w), scheme=self.colormap, scale=2.0, css_class="oip-zoo-detail")
        if self.result is not None:
            r = self.result[m]
            grid.set_tile(0, plain(r.image), "OIP dead" if r.dead else f"OIP {r.final_loss:.2f}")
        if top is not None:
            for j, (idx, act, img) in enumerate(zip(top.indices, top.activations, top.images)):
                grid.set_tile(1 + j, plain(np.asarray(img, np.float32)), f"#{idx}: {act:.2f}")
        title = widgets.HTML(f"<b>map {m} of {html.escape(self.layer)}</b>: its OIP"
                             + (f" and the {n_ex} example images that activate it most" if n_ex else ""))
        self.detail_grid = grid
        self.detail_box.children = [title, grid.figure]

    def open_explorer(self, map_index: int | None = None):
        """An ``OIPExplorer`` on the same model, layer and settings, set to ``map_index`` (default: the selected map)."""
        from .explorer import OIPExplorer

        m = self.selected if map_index is None else map_index
        if m is None:
            raise ValueError("no map selected: click a tile or pass map_index")
        return OIPExplorer(self.model, self.layer, input_shape=self._input_shape, map_index=int(m), seed=self.seed,
                           noise_scales=list(self.noise_scales), noise_weights=list(self.noise_weights),
                           steps=self.steps, strategy=self.strategy, epsilon=self.epsilon, colormap=self.colormap)

    def _show_explorer(self):
        self.explorer_area.children = [self.open_explorer()]

    def _set_status(self, text: str, colour: str = "#333") -> None:
        self.set_trait("status", text)
        self.status_line.value = f'<span class="oip-status" style="color:{colour}">{html.escape(text)}</span>'
