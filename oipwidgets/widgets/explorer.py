"""OIPExplorer: pick a layer and a map, set the noise, press Run and watch the OIP emerge in a live bqplot grid.

State lives in traitlets on the widget (``layer``, ``map_index``, ``noise_scales``, ``noise_weights``, ``epsilon``,
``steps``, ``strategy``, ``seed``, ``colormap``; read-only ``result``, ``status``, ``running``): the controls are
bound to them, so code can ``observe``, ``link`` and set them like any ipywidgets trait. Runs go to a background
``Worker`` thread; the engine's progress callback draws snapshots as they are made. The explorer only drives the
engine and draws; everything numeric is in ``OIPEngine``, the shared settings and run skeleton in ``OIPWidgetBase``.
"""

from __future__ import annotations

import html
import time
import traceback

import ipywidgets as widgets
import keras
import numpy as np
from traitlets import Instance, Int, validate

from ..engine.result import OIPResult, status_summary
from ..output.render import enhanced_display, plain_display, tile_scale
from .base import OIPWidgetBase
from .controls import add_setting_controls, format_scales, parse_scales
from .curves import LossCurves
from .exports import ExportsResult
from .layout import CONTROL_STYLE, fill, main_row, panel, refit, section, view_column
from .legend import GAMMA, PERCENTILES, colour_bar, display_range, value_table
from .recipes import CURE_TEXT, cure_note, cure_sentence, recipe_controls
from .tilegrid import ROW_LABEL_PX, TileGrid, reuse_grid

__all__ = ["OIPExplorer", "parse_scales", "format_scales"]

MIN_DRAW_INTERVAL = 1 / 30  # s between two live redraws that bring no new snapshot
GRID_WIDTH = 560  # screen px the snapshot grid may take beside the controls before it goes on in a band below
DETAIL_PX = 240  # screen px of the larger side of a tile in the detail view
ROW_LABELS = ("image", "contrast")
BAR_STYLES = {"dead": "danger", "nonfinite": "danger", "error": "danger", "stopped": "warning"}


class OIPExplorer(ExportsResult, OIPWidgetBase):
    """Live explorer of the OIPs of one Keras CNN (default: the shipped MNIST model).

    model: a ``keras.Model`` (image input) or None for ``load_default_model("mnist")``; layer: the layer to start
    on (default ``Conv2D_3`` when the model has it, else its last layer with maps). ``explorer.run(wait=True)``
    runs from code and returns the ``OIPResult``; ``save_png``, ``save_grid_png``, ``save_gif``, ``save_npz`` export it.
    recipe: how the image climbs ("article", the default, "readable", a ``Recipe`` or its dict): sets the climb
    traits (keywords given beside it override them); ``explorer.recipe`` is the Recipe of the traits.
    preprocess: the model's input convention ("standardize", "unit", "byte", "tf", "caffe", "torch" or a callable);
    with any but "standardize" OIPs are RGB in [0, 1], drawn as they are (no stretch) in the "image" row.
    examples: raw images of the model's data; the map's top-k are shown, and a run whose map stays dead (or ends
    below them) although they fire it is re-run with a cure (``rescue``; the tiles and the status say so).
    """

    map_index = Int(0, help="map (or unit) of the layer")
    result = Instance(OIPResult, allow_none=True, read_only=True)

    def __init__(self, model: keras.Model | None = None, layer=None, *, input_shape=None, examples=None, k: int = 8,
                 **kwargs):
        self._k = int(k)
        self._live: dict = {}
        self._cure = ""  # the detail view's sentence on the cure of the run shown (recipes.cure_sentence)
        super().__init__(model, layer, input_shape=input_shape, examples=examples, **kwargs)

    @property
    def k(self) -> int:
        """How many example images are shown for the map (at most the number of examples)."""
        return min(self._k, 0 if self.examples is None else len(self.examples))

    @k.setter
    def k(self, value: int) -> None:
        self._k = int(value)

    @validate("map_index")
    def _check_map_index(self, proposal):
        return self._check_map(proposal["value"])

    # ------------------------------------------------------------------ the view
    def _build(self):
        info = self._infos[self.layer]
        self.map_slider = widgets.IntSlider(min=0, max=info.size - 1, description="map", style=CONTROL_STYLE,
                                            layout=fill(), continuous_update=False)
        add_setting_controls(self, dict.fromkeys(("layer", "epsilon", "steps", "strategy", "colormap", "seed"), "fill"),
                             style=CONTROL_STYLE, layers=self._infos, on_error=self._report,
                             extra={"map_index": self.map_slider})
        self.scales_text = widgets.Text(description="scales", style=CONTROL_STYLE, layout=fill(),
                                        continuous_update=False,
                                        tooltip="noise grid sizes, coarse to fine: '3, 7, 14, 28' or '3x3, 7x5'")
        self.weights_box = widgets.VBox(layout=widgets.Layout(width="100%"))
        self.weight_sliders = []
        self._show_noise()
        self.scales_text.observe(self._on_scales_text, "value")
        self._build_run_controls()
        for w in (self.run_button, self.stop_button):
            refit(w, flex="1 1 0")
        refit(self.new_seed_button, flex="0 0 auto", min_width="auto")
        refit(self.seed_text, flex="1 1 auto")
        refit(self.progress)
        self.details = widgets.Output(layout=widgets.Layout(max_height="240px", overflow="auto"))
        self.details_box = widgets.Accordion(children=[self.details], titles=("details",), selected_index=None,
                                             layout=widgets.Layout(display="none"))
        self.grid, self._shown = None, {}
        self.grid_box = widgets.Box(layout=widgets.Layout(overflow="auto hidden", max_width="100%"))
        self.legend = widgets.HTML(layout=widgets.Layout(margin="0 0 4px 4px"))
        self.tile_detail, self.tile_detail_text = None, self._own(widgets.HTML())
        self.tile_detail_box = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self._make_grid(len(self._planned_snapshots()))
        self.curves = LossCurves()  # the objective (live) and its relative change (after a run)
        self._own(self.curves.change_figure)  # shown only when toggled: closed with the explorer all the same
        self.loss_figure, self.loss_line = self.curves.figure, self.curves.line
        add_setting_controls(self, dict.fromkeys(("param", "transforms", "optimizer", "smoothness", "diversity"),
                                                 "fill"), style=CONTROL_STYLE, layers=self._infos,
                             on_error=self._report)
        recipe_controls(self, CONTROL_STYLE, fill, self._report)
        self.advanced = widgets.Accordion(
            children=[widgets.VBox([self.recipe_dropdown, self.param_dropdown, self.transforms_dropdown,
                                    self.optimizer_dropdown, self.smoothness_text, self.blur_text, self.warmup_text,
                                    self.diversity_text], layout=widgets.Layout(width="100%"))],
            titles=("how the image climbs",), selected_index=None, layout=fill())
        controls = panel([
            section("model & layer", [self.layer_dropdown, self.map_slider]),
            section("start noise", [self.scales_text, self.weights_box,
                                    widgets.HBox([self.seed_text, self.new_seed_button], layout=fill())]),
            section("ascent", [self.epsilon_slider, self.steps_text, self.strategy_dropdown, self.advanced]),
            section("display", [self.colormap_dropdown]),
            section("run", [widgets.HBox([self.run_button, self.stop_button], layout=fill()), self.progress]),
        ])
        self.diverse_box = widgets.VBox()  # the other OIPs of a diverse run (diversity > 1), side by side
        self.diverse_grid, self.diverse_title, self._diverse = None, self._own(widgets.HTML()), []
        self.examples_box = widgets.VBox()
        self.examples_grid, self.examples_title = None, widgets.HTML()
        view = view_column([self.grid_box, self.legend, self.tile_detail_box, self.curves.box, self.diverse_box,
                            self.examples_box])
        self.children = [main_row(controls, view), self.status_line, self.details_box]
        self.add_class("oip-explorer")
        self._show_examples()

    def _connect(self):
        super()._connect()
        self.observe(self._on_layer, names="layer")
        self.observe(self._on_map, names="map_index")
        self.observe(self._on_colormap, names="colormap")

    def _make_grid(self, n: int):
        """The snapshot grid for ``n`` snapshots: per snapshot a column of two tiles, the image (plain) over its
        contrast-enhanced rendering, ~84–140 px a tile (``tile_scale``). Columns that would make the grid wider than
        GRID_WIDTH go on in further bands below, so the grid stays beside the controls. Tiles take clicks (the
        detail view). A grid replaced closes its widgets."""
        h, w, _ = self._engine().input_shape
        bands, per_band = self._grid_shape(n)
        if self.grid is not None:
            self.grid.close()
        self.grid = TileGrid(2 * bands, per_band, (h, w), scheme=self.colormap, scale=tile_scale(h, w),
                             css_class="oip-grid", row_labels=list(ROW_LABELS) * bands, clickable=True)
        self.grid.on_click(self._on_tile_click)
        self.n_columns = int(n)
        self._shown = {}
        self.grid_box.children = [self.grid.figure]
        self._show_legend()
        self._hide_tile_detail()

    def _grid_shape(self, n: int) -> tuple[int, int]:
        """(bands, columns per band) of the grid for ``n`` snapshots: as many columns as GRID_WIDTH holds, the
        snapshots spread evenly over the bands."""
        h, w, _ = self._engine().input_shape
        per_band = max(1, int((GRID_WIDTH - ROW_LABEL_PX) // ((w + 4) * tile_scale(h, w))))
        bands = -(-max(1, n) // per_band)
        return bands, -(-max(1, n) // bands)

    def tile_index(self, row: int, k: int) -> int:
        """Index in ``grid.tiles`` of snapshot ``k``'s tile in ``row`` (0: image, 1: contrast)."""
        band, col = divmod(int(k), self.grid.cols)
        return self.grid.index(2 * band + int(row), col)

    def _show_legend(self):
        colour, span = self._engine().input_shape[-1] == 3, self._value_range
        if span is None:  # unbounded (standardised) images: each tile stretched on its own
            image = "each tile from its lowest to its highest value"
            colours = ("colour: RGB, stretched over all channels" if colour else
                       "colours: " + colour_bar(self.colormap, "lowest", "highest value"))
        else:  # the image as it is in its range (RGB in [0, 1] for a preprocess convention)
            ends = f"{span[0]:g}", f"{span[1]:g}"
            image = "as it is in {}–{}, not stretched".format(*ends)
            colours = ("colour: RGB {} → {}".format(*ends) + " per channel (the model's image)" if colour else
                       "colours: " + colour_bar(self.colormap, *ends))
        self.legend.value = (f"<small><b>image</b>: {image} · "
                             f"<b>contrast</b>: {PERCENTILES[0]:g}–{PERCENTILES[1]:g} percentile, γ {GAMMA:g} · "
                             f"{colours} · click a tile for its values</small>")

    def _on_tile_click(self, i):
        if i is None:
            self._hide_tile_detail()
            return
        r, col = divmod(int(i), self.grid.cols)
        band, row = divmod(r, 2)
        self.show_tile(band * self.grid.cols + col, row)

    def show_tile(self, k: int, row: int = 0) -> None:
        """Show snapshot ``k`` large beside its values (row 0: as the image row draws it; 1: as the contrast row):
        the detail view a click on a tile opens. Nothing when that snapshot is not drawn yet."""
        shown = self._shown.get(int(k))
        if shown is None:
            self._hide_tile_detail()
            return
        image, label, loss = shown
        h, w, _ = self._engine().input_shape
        contrast = bool(row)
        grid = reuse_grid(self.tile_detail, 1, 1, (h, w), scheme=self.colormap,
                          scale=float(np.clip(DETAIL_PX / max(h, w), 1.0, 8.0)), css_class="oip-tile-detail")
        span = None if contrast else self._value_range
        grid.set_tile(0, enhanced_display(image) if contrast else plain_display(image, span), "")
        if grid is not self.tile_detail:
            self._own(grid.figure)
        self.tile_detail = grid
        low, high = display_range(image, contrast) if span is None else span
        ends = (f"{low:.3g}", f"{high:.3g}" + (f" (γ {GAMMA:g})" if contrast else ""))
        colours = ("RGB: " + "{} → {}".format(*ends) if image.ndim == 3 and image.shape[-1] == 3 else
                   colour_bar(self.colormap, *ends))
        objective = "" if loss is None else f", objective {loss:.4g}"
        cure = f"{self._cure}<br>" if self._cure else ""
        self.tile_detail_text.value = (f"<div style='margin-left:8px'><b>{html.escape(label)}</b>{objective}<br>"
                                       f"{cure}{'contrast' if contrast else 'image'}: {colours}<br>"
                                       f"{value_table(image)}</div>")
        self.tile_detail_box.children = [grid.figure, self.tile_detail_text]
        self.grid.select(self.tile_index(row, k))

    def _hide_tile_detail(self):
        self.tile_detail_box.children = []
        if self.grid is not None:
            self.grid.select(None)

    # ------------------------------------------------------------------ state changes
    def _show_noise(self):
        """Scales text and one weight slider per scale, as the traits say."""
        self.scales_text.value = format_scales(self.noise_scales)
        labels = [f"w {h}x{w}" for h, w in self.noise_scales]
        if [s.description for s in self.weight_sliders] != labels:
            self.weight_sliders = [self._weight_slider(k, label) for k, label in enumerate(labels)]
            self.weights_box.children = self.weight_sliders
        for s, v in zip(self.weight_sliders, self.noise_weights):
            if s.value != v:
                s.value = v

    def _weight_slider(self, k: int, label: str) -> widgets.FloatSlider:
        s = widgets.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.05, description=label, style=CONTROL_STYLE,
                                layout=fill(), continuous_update=False)
        s.observe(lambda change: self._on_weight_slider(k, change["new"]), "value")
        return s

    def _on_weight_slider(self, k, value):
        weights = list(self.noise_weights)
        if k < len(weights) and weights[k] != value:
            weights[k] = float(value)
            self.noise_weights = weights

    def _on_scales_text(self, change):
        try:
            scales = parse_scales(change["new"])
        except ValueError as exc:
            self._report(exc)
            return
        if scales != list(self.noise_scales):
            self.noise_scales = scales

    def _on_layer(self, change):
        self._cancel_running()
        size = self._infos[change["new"]].size
        if self.map_index >= size:
            self.map_index = 0
        self.map_slider.max = size - 1
        self.map_slider.description = self._kind
        self._show_examples()

    def _on_map(self, change):
        self._cancel_running()
        self._show_examples()

    def _on_colormap(self, change):
        self.grid.scheme = change["new"]
        self._show_legend()
        if self.tile_detail is not None and self.tile_detail_box.children:
            self.tile_detail.scheme = change["new"]
            selected = self.grid.hits.selected
            if selected is not None and len(selected):
                self._on_tile_click(int(selected[0]))

    def top_examples(self, map_index: int | None = None):
        """The ``k`` example images that activate the map (or unit) most, as a ``TopK``; None without examples."""
        if self.examples is None or self.k < 1:
            return None
        return self._top_k(self.k)[self.map_index if map_index is None else map_index]

    def _show_examples(self):
        top = self.top_examples()
        if top is None:
            self.examples_box.children = []
            return
        h, w, _ = self._engine().input_shape
        grid = reuse_grid(self.examples_grid, 1, len(top.indices), (h, w), scheme="Greys",
                          scale=tile_scale(h, w) / 2, label_space=10, css_class="oip-examples")
        grid.show_examples(top, "{activation:.2f}")
        self.examples_grid = grid
        self.examples_title.value = (f"<small>the {len(top.indices)} example images that activate {self._kind} "
                                     f"{self.map_index} most (mean activation below each)</small>")
        self.examples_box.children = [self.examples_title, grid.figure]

    # ------------------------------------------------------------------ running
    def _planned_snapshots(self) -> list[int]:
        """The steps the strategy will snapshot for the current settings (one column of the grid each)."""
        return self.recipe.strategy_object().snapshot_plan(self.steps, self.noise())

    def _start(self, engine, noise, run_id):
        args = dict(map_index=self.map_index, noise=noise, seed=self.seed)
        planned = self._planned_snapshots()
        self._prepare_view(planned)
        self._set_status(f"running: {self.layer} {self._kind} {self.map_index}, {self.strategy}, {noise.describe()}")
        # filled: the last column drawn from a snapshot; first_update: seconds to the first drawing (benchmarks/)
        self._live = {"planned": planned, "last_draw": 0.0, "steps": [], "losses": [], "filled": -1,
                      "t0": time.perf_counter(), "first_update": None}

        n = self.diversity  # n > 1: n different OIPs of the map, grown together (the first one fills the grid)
        self._diverse = []
        climb = self._climb(engine, np.full(n, self.map_index) if n > 1 else [self.map_index], n)
        seeds = [self.seed + k for k in range(n)]

        def job(cancel):
            progress = lambda p: self._on_progress(p, run_id)  # noqa: E731
            if n == 1:
                return engine.run(**args, callback=progress, cancel=cancel, **climb)
            args.pop("seed")
            index = args.pop("map_index")
            batch = engine.run_layer([index] * n, seed=seeds, callback=progress, cancel=cancel, **args, **climb)
            self._diverse = list(batch)
            return batch[0]

        return job

    def _prepare_view(self, planned):
        if self._grid_shape(self.n_columns) != self._grid_shape(len(planned)):
            self._make_grid(len(planned))
        self.n_columns = len(planned)
        with self.grid.figure.hold_sync():
            self.grid.clear()
        self._shown = {}
        self._cure = ""
        self._hide_tile_detail()
        self.curves.clear()
        self.details_box.layout.display = "none"

    def _draw_tile(self, k: int, image, label: str, loss: float | None = None):
        """Snapshot column ``k``: the image labelled ``label`` (its step) on top (as it is in the engine's value
        range when it has one, else stretched), its contrast rendering labelled with the objective below (colour
        images in colour, grey ones through the colour map; a tile already showing this is not sent). The image is
        kept for the detail view."""
        image = np.asarray(image)
        self._shown[int(k)] = (image, label, loss)
        self.grid.set_tile(self.tile_index(0, k), plain_display(image, self._value_range), label)
        self.grid.set_tile(self.tile_index(1, k), enhanced_display(image), "" if loss is None else f"obj {loss:.3g}")

    def _on_progress(self, p, run_id):
        if run_id != self._run_id or self._note_compiling(p):
            return
        live = self._live
        live["steps"].append(p.step)
        live["losses"].append(float(p.losses[0]))
        now = time.perf_counter()
        if p.snapshot is None and now - live["last_draw"] < MIN_DRAW_INTERVAL:
            return
        live["last_draw"] = now
        with self._draw_lock, self.grid.figure.hold_sync(), self.loss_figure.hold_sync():
            planned = live["planned"]
            if p.snapshot is not None:
                step, images, losses = p.snapshot
                col = planned.index(step) if step in planned else min(live["filled"] + 1, len(planned) - 1)
                self._draw_tile(col, images[0], f"step {step}", float(losses[0]))
                live["filled"] = col
            else:  # the next tile shows the image as it is now
                col = min(live["filled"] + 1, len(planned) - 1)
                self._draw_tile(col, p.images[0], f"step {p.step}…")
            self.loss_line.x = np.asarray(live["steps"], np.float32)
            self.loss_line.y = np.asarray(live["losses"], np.float32)
            self._show_progress(p.step, p.total)
        if live["first_update"] is None:
            live["first_update"] = now - live["t0"]

    def _show_result(self, r: OIPResult):
        cols = len(r.snapshot_steps)
        if self._grid_shape(self.n_columns) != self._grid_shape(cols):  # e.g. fewer snapshots: a dead map, a stop
            self._make_grid(cols)
        self.n_columns = cols
        self._cure = cure_sentence(r, self._kind)
        mark = "↻ " if self._cure else ""  # a map the engine re-ran with a cure: its snapshots are the re-run's
        with self.grid.figure.hold_sync(), self.loss_figure.hold_sync():
            # tiles drawn live with the same image are not sent again; tiles beyond the result are hidden
            for k, (step, img, loss) in enumerate(zip(r.snapshot_steps, r.snapshots, r.snapshot_losses)):
                self._draw_tile(k, img, f"{mark}step {int(step)}", float(loss))
            for k in range(cols, self.grid.rows // 2 * self.grid.cols):
                self._shown.pop(k, None)
                for row in (0, 1):
                    self.grid.set_tile(self.tile_index(row, k), None, "")
            self.curves.result(r.losses, r.params.get("conv_criterion", 5e-4), r.converged_at)
        self.progress.value, self.progress.description = 1.0, f"{r.steps} steps"
        self.progress.bar_style = BAR_STYLES.get(r.status, "success")
        cure = r.params.get("cure")  # the engine re-ran the map with a cure: say which and why
        self._set_status(status_summary(r) + (f" · {cure_note(r)}: this {self._kind} {CURE_TEXT[cure]}" if cure
                                              else ""), r.status)
        self._show_diverse()

    def _show_diverse(self):
        """The final OIPs of a diverse run side by side (seed and objective under each); nothing for one OIP."""
        results = list(self._diverse)
        if len(results) < 2:
            self.diverse_box.children = []
            return
        h, w, _ = self._engine().input_shape
        grid = reuse_grid(self.diverse_grid, 1, len(results), (h, w), scheme=self.colormap,
                          scale=tile_scale(h, w), css_class="oip-diverse")
        with grid.figure.hold_sync():
            for k, r in enumerate(results):
                grid.set_tile(k, plain_display(r.image, r.value_range), f"seed {r.params['seed']}: {r.final_loss:.3g}")
        if grid is not self.diverse_grid:
            self._own(grid.figure)
        self.diverse_grid = grid
        self.diverse_title.value = (f"<small>{len(results)} different OIPs of {self._kind} {self.map_index}, grown "
                                    "together (a diversity term keeps them apart)</small>")
        self.diverse_box.children = [self.diverse_title, grid.figure]

    def _show_error(self, error: BaseException):
        super()._show_error(error)
        self.details.clear_output()
        with self.details:
            print("".join(traceback.format_exception(type(error), error, error.__traceback__)))
        self.details_box.layout.display = None
