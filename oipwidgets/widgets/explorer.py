"""OIPExplorer: pick a layer and a map, set the noise, press Run and watch the OIP emerge in a live bqplot grid.

State lives in traitlets on the widget (``layer``, ``map_index``, ``noise_scales``, ``noise_weights``, ``epsilon``,
``steps``, ``strategy``, ``seed``, ``colormap``; read-only ``result``, ``status``, ``running``): the controls are
bound to them, so code can ``observe``, ``link`` and set them like any ipywidgets trait. Runs go to a background
``Worker`` thread; the engine's progress callback draws snapshots as they are made. The explorer only drives the
engine and draws; everything numeric is in ``OIPEngine``, the shared settings and run skeleton in ``OIPWidgetBase``.
"""

from __future__ import annotations

import time
import traceback

import ipywidgets as widgets
import keras
import numpy as np
from traitlets import Instance, Int, validate

from ..engine.result import OIPResult, status_summary
from ..engine.strategies import strategy_for
from ..output.render import enhanced_display, plain_display, tile_scale
from .base import OIPWidgetBase
from .controls import add_setting_controls, format_scales, parse_scales
from .curves import LossCurves
from .exports import ExportsResult
from .tilegrid import TileGrid, reuse_grid

__all__ = ["OIPExplorer", "parse_scales", "format_scales"]

MIN_DRAW_INTERVAL = 1 / 30  # s between two live redraws that bring no new snapshot
BAR_STYLES = {"dead": "danger", "nonfinite": "danger", "error": "danger", "stopped": "warning"}


class OIPExplorer(ExportsResult, OIPWidgetBase):
    """Live explorer of the OIPs of one Keras CNN (default: the shipped MNIST model).

    model: a ``keras.Model`` (image input) or None for ``load_default_model("mnist")``; layer: the layer to start
    on (default ``Conv2D_3`` when the model has it, else its last layer with maps). ``explorer.run(wait=True)``
    runs from code and returns the ``OIPResult``; ``save_png``, ``save_grid_png``, ``save_gif``, ``save_npz`` export it.
    """

    map_index = Int(0, help="map (or unit) of the layer")
    result = Instance(OIPResult, allow_none=True, read_only=True)

    def __init__(self, model: keras.Model | None = None, layer=None, *, input_shape=None, examples=None, k: int = 8,
                 **kwargs):
        self._k = int(k)
        self._live: dict = {}
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
        style, width = {"description_width": "80px"}, "330px"
        info = self._infos[self.layer]
        self.map_slider = widgets.IntSlider(min=0, max=info.size - 1, description="map", style=style,
                                            layout=widgets.Layout(width=width), continuous_update=False)
        add_setting_controls(self, {**dict.fromkeys(("layer", "epsilon", "steps", "strategy", "colormap"), width),
                                    "seed": "236px"},
                             style=style, layers=self._infos, on_error=self._report,
                             extra={"map_index": self.map_slider})
        self.scales_text = widgets.Text(description="scales", style=style, layout=widgets.Layout(width=width),
                                        continuous_update=False,
                                        tooltip="noise grid sizes, coarse to fine: '3, 7, 14, 28' or '3x3, 7x5'")
        self.weights_box = widgets.VBox()
        self.weight_sliders = []
        self._show_noise()
        self.scales_text.observe(self._on_scales_text, "value")
        self._build_run_controls(button_width="160px", progress_width=width)
        self.details = widgets.Output(layout=widgets.Layout(max_height="240px", overflow="auto"))
        self.details_box = widgets.Accordion(children=[self.details], titles=("details",), selected_index=None,
                                             layout=widgets.Layout(display="none"))
        self.grid = None
        self.grid_box = widgets.Box()
        self._make_grid(len(self._planned_snapshots()) + self._lead)
        self.curves = LossCurves()  # the objective (live) and its relative change (after a run)
        self._own(self.curves.change_figure)  # shown only when toggled: closed with the explorer all the same
        self.loss_figure, self.loss_line = self.curves.figure, self.curves.line
        add_setting_controls(self, dict.fromkeys(("param", "transforms", "optimizer", "smoothness", "diversity"),
                                                 width), style=style, layers=self._infos, on_error=self._report)
        self.advanced = widgets.Accordion(
            children=[widgets.VBox([self.param_dropdown, self.transforms_dropdown, self.optimizer_dropdown,
                                    self.smoothness_text, self.diversity_text])],
            titles=("how the image climbs",), selected_index=None)
        controls = widgets.VBox(
            [self.layer_dropdown, self.map_slider, self.scales_text, self.weights_box, self.epsilon_slider,
             self.steps_text, self.strategy_dropdown, widgets.HBox([self.seed_text, self.new_seed_button]),
             self.colormap_dropdown, self.advanced,
             widgets.HBox([self.run_button, self.stop_button]), self.progress],
            layout=widgets.Layout(width="345px"),
        )
        self.diverse_box = widgets.VBox()  # the other OIPs of a diverse run (diversity > 1), side by side
        self.diverse_grid, self.diverse_title, self._diverse = None, self._own(widgets.HTML()), []
        self.examples_box = widgets.VBox()
        self.examples_grid, self.examples_title = None, widgets.HTML()
        self.children = [
            widgets.HBox([controls, widgets.VBox([self.grid_box, self.curves.box, self.diverse_box, self.examples_box])]),
            self.status_line,
            self.details_box,
        ]
        self.add_class("oip-explorer")
        self._show_examples()

    def _connect(self):
        super()._connect()
        self.observe(self._on_layer, names="layer")
        self.observe(self._on_map, names="map_index")
        self.observe(self._on_colormap, names="colormap")

    def _make_grid(self, cols: int):
        """Two rows (plain, enhanced) of ``cols`` tiles, ~84–140 px each (``tile_scale``: 28 px ×3, 224 px ×0.5;
        large images go out as PNGs of at most 1.25× their screen size). A grid replaced closes its widgets."""
        h, w, _ = self._engine().input_shape
        if self.grid is not None:
            self.grid.close()
        self.grid = TileGrid(2, cols, (h, w), scheme=self.colormap, scale=tile_scale(h, w), css_class="oip-grid")
        self.grid_box.children = [self.grid.figure]

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
        s = widgets.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.05, description=label,
                                style={"description_width": "80px"}, layout=widgets.Layout(width="330px"),
                                continuous_update=False)
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
        return strategy_for(self.strategy).snapshot_plan(self.steps, self.noise())

    @property
    def _lead(self) -> int:
        """Grid columns before the snapshots: the start image."""
        return 1

    def _start(self, engine, noise, run_id):
        args = dict(map_index=self.map_index, steps=self.steps, epsilon=self.epsilon, noise=noise, seed=self.seed,
                    strategy=self.strategy)
        planned = self._planned_snapshots()
        self._prepare_view(planned)
        self._set_status(f"running: {self.layer} {self._kind} {self.map_index}, {self.strategy}, {noise.describe()}")
        # the start image is drawn from the step-0 snapshot (made once, in the run's thread); first_update: benchmarks/
        self._live = {"planned": planned, "last_draw": 0.0, "steps": [], "losses": [], "filled": self._lead - 1,
                      "lead": self._lead, "t0": time.perf_counter(), "first_update": None}

        n = self.diversity  # n > 1: n different OIPs of the map, grown together (the first one fills the grid)
        self._diverse = []
        climb = self._climb(engine.objective(np.full(n, self.map_index) if n > 1 else self.map_index), n)
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
        cols = len(planned) + self._lead
        if self.grid.cols != cols:
            self._make_grid(cols)
        with self.grid.figure.hold_sync():
            self.grid.clear()
        self.curves.clear()
        self.details_box.layout.display = "none"

    @staticmethod
    def _step_label(step: int, lead: int) -> str:
        return "start" if step == 0 and lead == 0 else f"step {step}"

    def _draw_tile(self, col: int, image, label: str, loss: float | None = None):
        """Column ``col``: plain rendering labelled ``label`` on top, enhanced one labelled with the loss below
        (colour images in colour, grey ones through the colour map; a tile already showing this is not sent)."""
        self.grid.set_tile(self.grid.index(0, col), plain_display(image), label)
        self.grid.set_tile(self.grid.index(1, col), enhanced_display(image), "" if loss is None else f"loss {loss:.3g}")

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
                lead = live["lead"]
                if step == 0 and self.strategy == "simple":  # until the result: the start seen one step later
                    self._draw_tile(0, images[0], "start")
                col = lead + (planned.index(step) if step in planned else min(live["filled"], len(planned) - 1))
                self._draw_tile(col, images[0], self._step_label(step, lead), float(losses[0]))
                live["filled"] = col
            else:  # the next tile shows the image as it is now
                col = min(live["filled"] + 1, len(planned) - 1 + live["lead"])
                self._draw_tile(col, p.images[0], f"step {p.step}…")
            self.loss_line.x = np.asarray(live["steps"], np.float32)
            self.loss_line.y = np.asarray(live["losses"], np.float32)
            self._show_progress(p.step, p.total)
        if live["first_update"] is None:
            live["first_update"] = now - live["t0"]

    def _show_result(self, r: OIPResult):
        lead = 0 if len(r.snapshot_steps) and r.snapshot_steps[0] == 0 and self._lead == 0 else 1
        cols = len(r.snapshot_steps) + lead
        if self.grid.cols < cols:
            self._make_grid(cols)
        with self.grid.figure.hold_sync(), self.loss_figure.hold_sync():
            # tiles drawn live with the same image are not sent again; tiles beyond the result are hidden
            if lead:
                self._draw_tile(0, r.start, "start")
            for k, (step, img, loss) in enumerate(zip(r.snapshot_steps, r.snapshots, r.snapshot_losses)):
                self._draw_tile(k + lead, img, self._step_label(int(step), lead), float(loss))
            for col in range(cols, self.grid.cols):
                for row in (0, 1):
                    self.grid.set_tile(self.grid.index(row, col), None, "")
            self.curves.result(r.losses, r.params.get("conv_criterion", 5e-4), r.converged_at)
        self.progress.value, self.progress.description = 1.0, f"{r.steps} steps"
        self.progress.bar_style = BAR_STYLES.get(r.status, "success")
        self._set_status(status_summary(r), r.status)
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
                grid.set_tile(k, plain_display(r.image), f"seed {r.params['seed']}: {r.final_loss:.3g}")
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
