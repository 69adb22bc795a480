"""LayerZoo: the OIPs of every map of a layer, computed as one batch and drawn as one tiled bqplot image.

The mosaic is a single ``bqplot.HeatMap`` (tiles separated by blank gaps; for colour models a single PNG on a
``bqplot.Image``, ``ImageMosaic``, so OIPs show in colour), labelled with each map's index and final
mean activation, dead maps in red. An invisible ``Scatter`` of one square per tile takes the clicks: clicking a tile
sets ``selected`` (a trait), shows that map's OIP beside the dataset images that activate it most (top-k), and
``open_explorer()`` opens it in an ``OIPExplorer``. Settings, engines, worker and status are ``OIPWidgetBase``'s.
A map that stays dead (or ends below its best example) although an example image fires it is re-run by the engine
with a cure; its tile says which ("↻ warm-up", "↻ data start"), and so do the detail view and the status line.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import keras
import numpy as np
from traitlets import Bool, Enum, Instance, Int, TraitError, Unicode, validate

from ..engine.noise import MultiScaleNoise
from ..engine.result import STATUS_LABELS, LayerResult
from ..engine.validation import check_int
from ..output.render import enhanced_display, plain_display, tile_scale
from .base import OIPWidgetBase, close_tree, trait_check
from .controls import add_setting_controls, format_scales, format_weights, parse_scales, parse_weights
from .layout import CONTROL_STYLE, fill, refit, section
from .mosaic import Mosaic
from .recipes import cure_note, cure_sentence, cure_summary, recipe_controls
from .tilegrid import ImageMosaic, reuse_grid

__all__ = ["LayerZoo"]

#: statuses whose final loss says nothing: the tile is labelled with the status instead, in red
NO_LOSS = ("dead", "nonfinite", "error")
SECTION_WIDTH = "270px"  # each group of controls; the groups wrap to the next line in a narrow notebook
MUTED = 0.2  # contrast left to the tiles of maps without an OIP (dead, non-finite, error), around mid-grey


class LayerZoo(OIPWidgetBase):
    """All OIPs of one layer (default ``Conv2D_3`` of the shipped MNIST model) with a progress bar.

    examples: raw images (N, H, W[, C]) whose top-k per map are shown for the selected map (default: the shipped
    MNIST samples for 28×28×1 models; pass e.g. ``datasets.samples("fashion")[0]``); the best of them also go to the
    engine's rescue of maps they fire (``rescue``). ``zoo.run(wait=True)`` runs from code and returns the
    ``LayerResult``. recipe: "article" (the default), "readable", a ``Recipe`` or its dict (sets the climb traits;
    ``zoo.recipe`` is the Recipe of the traits). preprocess: the model's input convention, as for ``OIPEngine``
    ("standardize", "unit", "byte", "tf", "caffe", "torch" or a callable): OIPs are then RGB in [0, 1], drawn as
    they are.
    """

    layer = Unicode(help="the layer whose maps are shown")
    sort = Enum(("map", "activation"), default_value="map", help="tile order: by map index or by final activation")
    contrast = Bool(False, help="show the contrast-enhanced rendering")
    selected = Int(None, allow_none=True, help="the map whose tile was clicked")
    k = Int(8, help="how many dataset examples to show for the selected map")
    result = Instance(LayerResult, allow_none=True, read_only=True)

    _layer_kinds = ("maps",)
    _layers_text = " for a zoo; layers with maps"
    _no_layers = ("LayerZoo needs a model with conv-like layers (4-D output: batch, height, width, maps); "
                  "{model!r} has none")
    _worker_name = "oipwidgets-zoo"

    def __init__(self, model: keras.Model | None = None, layer: str | None = None, *, examples=None, cols: int = 8,
                 input_shape=None, **kwargs):
        self.cols = trait_check(check_int, cols, "cols")
        self._syncing = False  # True while the noise texts and traits are being synced (one direction at a time)
        super().__init__(model, layer, input_shape=input_shape, examples=examples, **kwargs)

    @validate("selected")
    def _check_selected(self, proposal):
        return None if proposal["value"] is None else self._check_map(proposal["value"], "selected map")

    @validate("k")
    def _check_k(self, proposal):
        n = 0 if self.examples is None else len(self.examples)
        try:
            return trait_check(check_int, proposal["value"], "k", low=1, high=n or None)
        except TraitError as exc:
            raise TraitError(f"{exc} (there are {n} example images)") from None

    # ------------------------------------------------------------------ view
    def _build(self):
        style = CONTROL_STYLE
        self.scales_text = widgets.Text(description="scales", style=style, continuous_update=False, layout=fill())
        self.weights_text = widgets.Text(description="weights", style=style, continuous_update=False, layout=fill())
        self._show_noise()
        self.scales_text.observe(self._on_noise_text, "value")
        self.weights_text.observe(self._on_noise_text, "value")
        self.sort_buttons = widgets.ToggleButtons(options=[("by map", "map"), ("by activation", "activation")],
                                                  style={"button_width": "118px"}, layout=fill())
        self.contrast_box = widgets.Checkbox(description="contrast", indent=False, layout=fill())
        add_setting_controls(self, dict.fromkeys(("layer", "steps", "strategy", "seed", "param", "transforms",
                                                  "optimizer", "smoothness"), "fill"),
                             style=style, layers=self._infos, on_error=self._report,
                             extra={"sort": self.sort_buttons, "contrast": self.contrast_box})
        recipe_controls(self, style, fill, self._report)
        self._build_run_controls()
        refit(self.seed_text, flex="1 1 auto")
        refit(self.new_seed_button, flex="0 0 auto", min_width="auto")
        for w in (self.run_button, self.stop_button):
            refit(w, flex="1 1 0")
        refit(self.progress)
        self.explorer_button = widgets.Button(description="Open in explorer", icon="search", disabled=True,
                                              layout=fill())
        self.explorer_button.on_click(lambda _: self._show_explorer())
        colour = self._engine().input_shape[-1] == 3  # colour models: one RGB PNG, grey ones: the colour-mapped HeatMap
        self.mosaic = (ImageMosaic if colour else Mosaic)(self.colormap, css_class="oip-zoo")
        self.mosaic.on_click(self._on_tile_click)
        self.figure = self.mosaic.figure
        self.detail_box = widgets.VBox()
        self.detail_grid, self.detail_title = None, self._own(widgets.HTML())
        self.explorer_area = widgets.VBox()
        self._layout_mosaic(np.arange(self._infos[self.layer].size))
        columns = [  # three columns of grouped controls, side by side; they wrap when the notebook is narrow
            [section("model & layer", [self.layer_dropdown]),
             section("display", [self.sort_buttons, self.contrast_box, self.explorer_button])],
            [section("start noise", [self.scales_text, self.weights_text,
                                     widgets.HBox([self.seed_text, self.new_seed_button], layout=fill())]),
             section("run", [widgets.HBox([self.run_button, self.stop_button], layout=fill()), self.progress])],
            [section("ascent", [self.recipe_dropdown, self.steps_text, self.strategy_dropdown, self.param_dropdown,
                                self.transforms_dropdown, self.optimizer_dropdown, self.smoothness_text,
                                self.blur_text, self.warmup_text])],
        ]
        self.children = [
            widgets.HBox([widgets.VBox(c, layout=widgets.Layout(width=SECTION_WIDTH, flex=f"0 1 {SECTION_WIDTH}",
                                                                margin="0 8px 0 0")) for c in columns],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")),
            self.status_line,
            # bqplot draws the HeatMap on a canvas above the SVG marks; let clicks through to the tile squares
            widgets.HTML("<style>.oip-zoo canvas { pointer-events: none; }</style>"),
            self.figure,
            self.detail_box,
            self.explorer_area,
        ]
        self.add_class("oip-layer-zoo")

    def _connect(self):
        super()._connect()
        self.observe(self._on_layer, names="layer")
        self.observe(self._on_view, names=["sort", "contrast"])
        self.observe(lambda change: self.mosaic.set_colormap(change["new"]), names="colormap")
        self.observe(self._on_selected, names="selected")

    def _layout_mosaic(self, order):
        h, w, _ = self._engine().input_shape
        self.mosaic.layout(order, (h, w), self.cols)
        self.mosaic.select(self.selected)

    def _render(self, images: np.ndarray) -> np.ndarray:
        """Display values of the tiles: (n, h, w) for grey images, (n, h, w, 3) in colour for 3-channel ones; plain
        tiles as they are in the engine's value range when it has one (RGB in [0, 1]), else each stretched."""
        if self.contrast:
            return np.stack([enhanced_display(im) for im in images]).astype(np.float32)
        span = self._value_range
        return np.stack([plain_display(im, span) for im in images]).astype(np.float32)

    # ------------------------------------------------------------------ state changes
    def _on_layer(self, change):
        self._cancel_running()
        self.selected = None
        self.set_trait("result", None)
        self._layout_mosaic(np.arange(self._infos[change["new"]].size))

    def _on_view(self, change):
        if self.result is not None:
            self._draw_result(self.result)

    def _on_tile_click(self, position: int):
        self.selected = int(self.mosaic.order[position])

    def _on_selected(self, change):
        m = change["new"]
        self.explorer_button.disabled = m is None
        self.mosaic.select(m)
        if m is None:
            self.detail_box.children = []
        else:
            self._show_detail(m)

    # ------------------------------------------------------------------ noise settings
    def _show_noise(self):
        """The noise texts, as the traits say (when they fit each other)."""
        if self._syncing or len(self.noise_scales) != len(self.noise_weights):
            return
        self._syncing = True
        try:
            self.scales_text.value = format_scales(self.noise_scales)
            self.weights_text.value = format_weights(self.noise_weights)
        finally:
            self._syncing = False

    def _on_noise_text(self, change):
        if self._syncing:
            return
        try:
            scales, weights = parse_scales(self.scales_text.value), parse_weights(self.weights_text.value)
            MultiScaleNoise(scales=scales, weights=weights)  # validates: one weight >= 0 per scale, not all 0
        except ValueError as exc:
            self._report(exc)
            return
        self._syncing = True
        try:
            self.noise_scales, self.noise_weights = scales, weights
        finally:
            self._syncing = False
        self._show_noise()

    # ------------------------------------------------------------------ running
    def _start(self, engine, noise, run_id):
        args = dict(seed=self.seed, noise=noise)
        self._set_status(f"running: {self._infos[self.layer].size} maps of {self.layer}, {self.strategy}, "
                         f"{self.steps} steps")
        self._layout_mosaic(np.arange(self._infos[self.layer].size))

        def on_progress(p):
            if run_id != self._run_id or self._note_compiling(p):
                return
            with self._draw_lock:
                self._show_progress(p.step, p.total)
                if p.snapshot is not None:
                    self.mosaic.draw(self._render(p.snapshot[1]))

        maps = np.arange(self._infos[self.layer].size)
        climb = self._climb(engine, maps)  # the zoo grows one OIP per map (with the examples for the rescue)

        def job(cancel):
            return engine.run_layer(maps, **args, callback=on_progress, cancel=cancel, **climb)

        return job

    def _show_result(self, result: LayerResult):
        self._draw_result(result)
        dead = [r.params["map"] for r in result if r.status == "dead"]
        self.progress.value = 1.0
        self.progress.description = f"{max((r.steps for r in result), default=0)} steps"
        self.progress.bar_style = "warning" if any(r.status == "stopped" for r in result) else "success"
        cured = cure_summary(result)
        self._set_status(
            f"{len(result)} maps in {result.seconds:.1f} s; dead for this noise: "
            + (", ".join(map(str, dead)) if dead else "none")
            + (f"; {cured} (↻ on their tiles)" if cured else "")
            + ". Click a tile to see its OIP beside the images that activate it most."
        )
        if self.selected is not None:
            self._show_detail(self.selected)

    def _draw_result(self, result: LayerResult):
        losses = result.final_losses
        order = np.argsort(-losses, kind="stable") if self.sort == "activation" else np.arange(len(result))
        self._layout_mosaic(order)
        shown = [(int(m), result[int(m)]) for m in order]
        labels = [f"{m}: {STATUS_LABELS[r.status]}" if r.status in NO_LOSS else f"{m}: {r.final_loss:.2f}"
                  for m, r in shown]
        bad = [r.status in NO_LOSS for _, r in shown]
        notes = [cure_note(r) for _, r in shown]  # "↻ warm-up" under the label of a map the engine re-ran
        tiles = self._render(result.images)
        quiet = np.array([r.status in NO_LOSS for r in result])
        tiles[quiet] = 0.5 + MUTED * (tiles[quiet] - 0.5)  # dead maps' noise drawn faint: the live OIPs stand out
        self.mosaic.draw(tiles, labels, bad, notes)

    # ------------------------------------------------------------------ details: OIP + top-k examples
    def top_examples(self, map_index: int):
        """The ``k`` example images that activate ``map_index`` most (a ``TopK``), computed once for all maps."""
        if self.examples is None:
            return None
        return self._top_k(min(self.k, len(self.examples)))[map_index]

    def _show_detail(self, m: int):
        h, w, _ = self._engine().input_shape
        top = self.top_examples(m)
        n_ex = 0 if top is None else len(top.indices)
        grid = reuse_grid(self.detail_grid, 1, 1 + n_ex, (h, w), scheme=self.colormap,
                          scale=tile_scale(h, w) * 2 / 3, css_class="oip-zoo-detail")  # 28 px: ×2, 224 px: ×1/3
        cure = ""
        if self.result is not None:
            r = self.result[m]
            cure = cure_sentence(r)
            grid.set_tile(0, plain_display(r.image, r.value_range),
                          f"OIP {STATUS_LABELS[r.status]}" if r.status in NO_LOSS else
                          f"OIP {r.final_loss:.2f}" + (" ↻" if cure else ""))
        if top is not None:
            grid.show_examples(top, "#{index}: {activation:.2f}", first=1)
        self.detail_title.value = (f"<b>map {m} of {html.escape(self.layer)}</b>: its OIP"
                                   + (f" and the {n_ex} example images that activate it most" if n_ex else "")
                                   + (f"<br><small>{cure}</small>" if cure else ""))
        self.detail_grid = grid
        self.detail_box.children = [self.detail_title, grid.figure]

    def open_explorer(self, map_index: int | None = None):
        """An ``OIPExplorer`` on the same model, layer and settings, set to ``map_index`` (default: the selected map)."""
        from .explorer import OIPExplorer

        m = self.selected if map_index is None else map_index
        if m is None:
            raise ValueError("no map selected: click a tile or pass map_index")
        return OIPExplorer(self.model, self.layer, input_shape=self._input_shape, map_index=int(m), seed=self.seed,
                           noise_scales=list(self.noise_scales), noise_weights=list(self.noise_weights),
                           recipe=self.recipe, preprocess=self._preprocess, examples=self.examples,
                           rescue=self.rescue, colormap=self.colormap)

    def _show_explorer(self):
        for old in self.explorer_area.children:  # an explorer replaced stops its run and closes its widgets
            old.close()
        self.explorer_area.children = [self.open_explorer()]

    def close(self) -> None:
        """Also stop and close an explorer opened from the zoo, and the detail view (shown or not)."""
        if getattr(self, "_worker", None) is not None and hasattr(self, "explorer_area"):  # (a failed __init__: none)
            for explorer in self.explorer_area.children:
                explorer.close()
            if self.detail_grid is not None:
                self.detail_grid.close()
                close_tree(self.detail_grid.figure)
        super().close()
