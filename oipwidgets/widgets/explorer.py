"""OIPExplorer: pick a layer and a map, set the noise, press Run and watch the OIP emerge in a live bqplot grid.

State lives in traitlets on the widget (``layer``, ``map_index``, ``noise_scales``, ``noise_weights``, ``epsilon``,
``steps``, ``strategy``, ``seed``, ``colormap``; read-only ``result``, ``status``, ``running``): the controls are
linked to them, so code can ``observe``, ``link`` and set them like any ipywidgets trait. Runs go to a background
``Worker`` thread; the engine's progress callback draws snapshots as they are made. The explorer only drives the
engine and draws; everything numeric is in ``OIPEngine``.
"""

from __future__ import annotations

import threading
import time
import traceback

import ipywidgets as widgets
import keras
import numpy as np
from bqplot import Axis, Figure, LinearScale, Lines
from traitlets import Bool, Enum, Float, Instance, Int, List, TraitError, Tuple, Unicode, observe, validate

from ..output import export
from ..engine.engine import OIPEngine
from ..engine.examples import default_examples, top_k_all
from ..models.models import load_default_model
from ..engine.noise import DEFAULT_SCALES, DEFAULT_WEIGHTS, MultiScaleNoise
from ..output.render import COLORMAPS, enhanced, plain
from ..engine.result import OIPResult
from ..engine.strategies import STRATEGIES, strategy_for
from .tilegrid import TileGrid
from .worker import RunsInBackground, Worker

__all__ = ["OIPExplorer", "parse_scales", "format_scales"]

MIN_DRAW_INTERVAL = 1 / 30  # s between two live redraws that bring no new snapshot
MAX_CURVE_POINTS = 4000  # the loss curve of a longer run is thinned to about this many points


def parse_scales(text: str) -> list[tuple[int, int]]:
    """'3, 7x5, 14' → [(3, 3), (7, 5), (14, 14)]: grid sizes of the noise scales (rows×columns or one side)."""
    scales = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().lower().replace("×", "x")
        if not part:
            continue
        try:
            sides = [int(v) for v in part.split("x")]
        except ValueError:
            raise ValueError(f"cannot read noise scale {part!r}: write sizes like '3, 7, 14, 28' or '3x3, 7x7'") from None
        if len(sides) == 1:
            sides = sides * 2
        if len(sides) != 2 or min(sides) < 1:
            raise ValueError(f"noise scale {part!r} must be one or two positive whole numbers (rows x columns)")
        scales.append((sides[0], sides[1]))
    if not scales:
        raise ValueError("give at least one noise scale, e.g. '3, 7, 14, 28'")
    return scales


def format_scales(scales) -> str:
    return ", ".join(f"{h}x{w}" for h, w in scales)


class OIPExplorer(RunsInBackground, widgets.VBox):
    """Live explorer of the OIPs of one Keras CNN (default: the shipped MNIST model).

    model: a ``keras.Model`` (image input) or None for ``load_default_model("mnist")``; layer: the layer to start
    on (default ``Conv2D_3`` when the model has it, else its last layer with maps). ``explorer.run(wait=True)``
    runs from code and returns the ``OIPResult``.
    """

    layer = Unicode(help="name of the probed layer")
    map_index = Int(0, help="map (or unit) of the layer")
    noise_scales = List(Tuple(Int(), Int()), help="(rows, cols) grids of the start noise, coarse to fine")
    noise_weights = List(Float(), help="one weight >= 0 per noise scale")
    epsilon = Float(0.01, help="step size")
    steps = Int(400, help="ascent steps (last stage for multiscale)")
    strategy = Enum(tuple(STRATEGIES), default_value="simple")
    seed = Int(0, help="seed of the start noise")
    colormap = Enum(COLORMAPS, default_value="viridis")
    result = Instance(OIPResult, allow_none=True, read_only=True)
    status = Unicode("ready", read_only=True)
    running = Bool(False, read_only=True)

    def __init__(self, model: keras.Model | None = None, layer=None, *, input_shape=None, examples=None, k: int = 8,
                 **kwargs):
        self.model = load_default_model("mnist") if model is None else model
        self._infos = {i.name: i for i in OIPEngine.layers(self.model, input_shape)}
        if not self._infos:
            raise ValueError("this model has no layer with maps or units to explore")
        self._input_shape = input_shape
        self.examples = default_examples(self.model) if examples is None else np.asarray(examples)
        if self.examples is not None and len(self.examples) == 0:
            raise ValueError("examples is an empty image set; give at least one image or None")
        self.k = min(int(k), 0 if self.examples is None else len(self.examples))
        self._topk: dict[str, list] = {}
        self._engines: dict[str, OIPEngine] = {}
        self._worker = Worker()
        self._run_id = 0
        self._draw_lock = threading.Lock()
        super().__init__()
        maps_layers = [n for n, i in self._infos.items() if i.kind == "maps"]
        default = "Conv2D_3" if "Conv2D_3" in self._infos else (maps_layers[-1] if maps_layers else next(iter(self._infos)))
        self.layer = default if layer is None else (layer if isinstance(layer, str) else self.model.layers[layer].name)
        h, w, _ = self._engine().input_shape
        self.noise_scales = list(MultiScaleNoise.for_size(h, w).scales) if (h, w) != (28, 28) else list(DEFAULT_SCALES)
        self.noise_weights = list(DEFAULT_WEIGHTS)
        self._build()
        for name, value in kwargs.items():  # trait values given as keywords: explorer = OIPExplorer(map_index=5)
            if not self.has_trait(name):
                raise TypeError(f"OIPExplorer has no setting {name!r}")
            setattr(self, name, value)

    # ------------------------------------------------------------------ validation of the state
    @validate("layer")
    def _check_layer(self, proposal):
        if proposal["value"] not in self._infos:
            raise TraitError(f"unknown layer {proposal['value']!r}; valid layers: {', '.join(self._infos)}")
        return proposal["value"]

    @validate("map_index")
    def _check_map(self, proposal):
        n = self._infos[self.layer].size if self.layer else 1
        if not 0 <= proposal["value"] < n:
            raise TraitError(f"map index {proposal['value']} is out of range: layer {self.layer!r} has {n} (0..{n - 1})")
        return proposal["value"]

    @validate("epsilon")
    def _check_epsilon(self, proposal):
        v = proposal["value"]
        if not (np.isfinite(v) and v > 0):
            raise TraitError(f"epsilon must be a finite number > 0; got {v}")
        return v

    @validate("steps")
    def _check_steps(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"steps must be a whole number >= 1; got {proposal['value']}")
        return proposal["value"]

    @validate("noise_weights")
    def _check_weights(self, proposal):
        w = list(proposal["value"])
        if any(not np.isfinite(v) or v < 0 for v in w):
            raise TraitError(f"noise weights must be finite numbers >= 0; got {w}")
        return w

    # ------------------------------------------------------------------ the view
    def _build(self):
        info = self._infos[self.layer]
        style = {"description_width": "80px"}
        full = widgets.Layout(width="330px")
        self.layer_dropdown = widgets.Dropdown(options=list(self._infos), description="layer", style=style, layout=full)
        self.map_slider = widgets.IntSlider(min=0, max=info.size - 1, description="map", style=style, layout=full,
                                            continuous_update=False)
        self.scales_text = widgets.Text(description="scales", style=style, layout=full, continuous_update=False,
                                        tooltip="noise grid sizes, coarse to fine: '3, 7, 14, 28' or '3x3, 7x5'")
        self.weights_box = widgets.VBox()
        self.epsilon_slider = widgets.FloatLogSlider(base=10, min=-4, max=-0.5, step=0.1, description="epsilon",
                                                     readout_format=".4f", style=style, layout=full,
                                                     continuous_update=False)
        self.steps_text = widgets.BoundedIntText(min=1, max=1_000_000, description="steps", style=style, layout=full)
        self.strategy_dropdown = widgets.Dropdown(options=list(STRATEGIES), description="strategy", style=style,
                                                  layout=full)
        self.seed_text = widgets.IntText(description="seed", style=style, layout=full)
        self.colormap_dropdown = widgets.Dropdown(options=list(COLORMAPS), description="colours", style=style,
                                                  layout=full)
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play",
                                         layout=widgets.Layout(width="160px"))
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True,
                                          layout=widgets.Layout(width="160px"))
        self.progress = widgets.FloatProgress(min=0.0, max=1.0, value=0.0, layout=full)
        self.status_line = widgets.HTML(value="ready", layout=widgets.Layout(width="100%"))
        self.details = widgets.Output(layout=widgets.Layout(max_height="240px", overflow="auto"))
        self.details_box = widgets.Accordion(children=[self.details], titles=("details",), selected_index=None,
                                             layout=widgets.Layout(display="none"))

        for trait, control in [
            ("layer", self.layer_dropdown),
            ("map_index", self.map_slider),
            ("epsilon", self.epsilon_slider),
            ("steps", self.steps_text),
            ("strategy", self.strategy_dropdown),
            ("seed", self.seed_text),
            ("colormap", self.colormap_dropdown),
        ]:
            widgets.link((self, trait), (control, "value"))
        self.scales_text.value = format_scales(self.noise_scales)
        self.scales_text.observe(self._on_scales_text, "value")
        self._build_weight_sliders()
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())

        self.grid = None
        self.grid_box = widgets.Box()
        self._make_grid(len(self._planned_snapshots()) + 1)
        self.loss_x, self.loss_y = LinearScale(), LinearScale()
        self.loss_line = Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                               scales={"x": self.loss_x, "y": self.loss_y}, colors=["#1f77b4"])
        self.loss_figure = Figure(
            marks=[self.loss_line],
            axes=[Axis(scale=self.loss_x, label="step"),
                  Axis(scale=self.loss_y, orientation="vertical", label="objective", tick_format=".3g")],
            fig_margin={"top": 10, "bottom": 40, "left": 60, "right": 10},
            layout=widgets.Layout(width="420px", height="220px"),
        )
        self.loss_figure.add_class("oip-loss")
        controls = widgets.VBox(
            [self.layer_dropdown, self.map_slider, self.scales_text, self.weights_box, self.epsilon_slider,
             self.steps_text, self.strategy_dropdown, self.seed_text, self.colormap_dropdown,
             widgets.HBox([self.run_button, self.stop_button]), self.progress],
            layout=widgets.Layout(width="345px"),
        )
        self.examples_box = widgets.VBox()
        self.children = [
            widgets.HBox([controls, widgets.VBox([self.grid_box, self.loss_figure, self.examples_box])]),
            self.status_line,
            self.details_box,
        ]
        self.add_class("oip-explorer")
        self._show_examples()

    def _make_grid(self, cols: int):
        h, w, _ = self._engine().input_shape
        scale = max(1.0, min(3.0, 84.0 / max(h, w)))
        self.grid = TileGrid(2, cols, (h, w), scheme=self.colormap, scale=scale, css_class="oip-grid")
        self.grid_box.children = [self.grid.figure]

    def _build_weight_sliders(self):
        sliders = []
        for k, ((h, w), value) in enumerate(zip(self.noise_scales, self.noise_weights)):
            s = widgets.FloatSlider(value=value, min=0.0, max=2.0, step=0.05, description=f"w {h}x{w}",
                                    style={"description_width": "80px"}, layout=widgets.Layout(width="330px"),
                                    continuous_update=False)
            s.observe(lambda change, k=k: self._on_weight_slider(k, change["new"]), "value")
            sliders.append(s)
        self.weight_sliders = sliders
        self.weights_box.children = sliders

    def _on_weight_slider(self, k, value):
        weights = list(self.noise_weights)
        if k < len(weights) and weights[k] != value:
            weights[k] = float(value)
            self.noise_weights = weights

    def _on_scales_text(self, change):
        try:
            scales = parse_scales(change["new"])
        except ValueError as exc:
            self._set_status(f"error: {exc}")
            return
        if scales != list(self.noise_scales):
            self.noise_scales = scales

    @observe("noise_scales")
    def _scales_changed(self, change):
        previous = change["old"] if isinstance(change["old"], (list, tuple)) else []
        old = dict(zip(map(tuple, previous), self.noise_weights))
        self.noise_weights = [old.get(tuple(s), 0.5) for s in change["new"]]
        if hasattr(self, "scales_text"):
            self.scales_text.value = format_scales(change["new"])
            self._build_weight_sliders()

    @observe("noise_weights")
    def _weights_changed(self, change):
        for s, v in zip(getattr(self, "weight_sliders", []), change["new"]):
            if s.value != v:
                s.value = v

    @observe("layer")
    def _layer_changed(self, change):
        self._cancel_for_change()
        if hasattr(self, "map_slider"):
            size = self._infos[change["new"]].size
            if self.map_index >= size:
                self.map_index = 0
            self.map_slider.max = size - 1
            self.map_slider.description = "map" if self._infos[change["new"]].kind == "maps" else "unit"
            self._show_examples()

    @observe("map_index")
    def _map_changed(self, change):
        self._cancel_for_change()
        self._show_examples()

    def top_examples(self, map_index: int | None = None):
        """The ``k`` example images that activate the map (or unit) most, as a ``TopK``; None without examples."""
        if self.examples is None or self.k < 1:
            return None
        if self.layer not in self._topk:
            self._topk[self.layer] = top_k_all(self._engine(), None, self.examples, k=self.k)
        return self._topk[self.layer][self.map_index if map_index is None else map_index]

    def _show_examples(self):
        if not hasattr(self, "examples_box"):
            return
        top = self.top_examples()
        if top is None:
            self.examples_box.children = []
            return
        h, w, _ = self._engine().input_shape
        grid = TileGrid(1, len(top.indices), (h, w), scheme="Greys", scale=1.5, label_space=10,
                        css_class="oip-examples")
        for j, (idx, act, img) in enumerate(zip(top.indices, top.activations, top.images)):
            grid.set_tile(j, plain(np.asarray(img, np.float32)), f"{act:.2f}")
        self.examples_grid = grid
        what = "map" if self._infos[self.layer].kind == "maps" else "unit"
        self.examples_box.children = [
            widgets.HTML(f"<small>the {len(top.indices)} example images that activate {what} {self.map_index} "
                         "most (mean activation below each)</small>"),
            grid.figure,
        ]

    @observe("colormap")
    def _colormap_changed(self, change):
        if self.grid is not None:
            self.grid.scheme = change["new"]

    # ------------------------------------------------------------------ running
    def _engine(self, layer: str | None = None) -> OIPEngine:
        name = layer or self.layer
        if name not in self._engines:
            self._engines[name] = OIPEngine(self.model, name, input_shape=self._input_shape)
        return self._engines[name]

    def noise(self) -> MultiScaleNoise:
        """The start noise of the current settings."""
        return MultiScaleNoise(scales=tuple(self.noise_scales), weights=tuple(self.noise_weights))

    def _planned_snapshots(self) -> list[int]:
        return strategy_for(self.strategy).snapshot_plan(self.steps, self.noise())

    def run(self, wait: bool = False) -> OIPResult | None:
        """Start a run with the current settings (cancelling a running one); with ``wait`` block and return the result.

        With ``wait=True`` an error in the run is raised here (it is also shown in the status line).
        """
        try:
            engine = self._engine()
            noise = self.noise()
        except ValueError as exc:
            self._show_error(exc)
            if wait:
                raise
            return None
        self._worker.cancel(wait=True)
        self._run_id += 1
        run_id = self._run_id
        args = dict(map_index=self.map_index, steps=self.steps, epsilon=self.epsilon, noise=noise, seed=self.seed,
                    strategy=self.strategy)
        planned = self._planned_snapshots()
        start = engine.start_images(noise, [self.seed])[0] if self.strategy == "simple" else None
        self._prepare_view(planned, start)
        self.set_trait("running", True)
        self.run_button.description = "Restart"
        self.stop_button.disabled = False
        what = f"{self.layer} {'map' if self._infos[self.layer].kind == 'maps' else 'unit'} {self.map_index}"
        self._set_status(f"running: {what}, {self.strategy}, {noise.describe()}")
        self._live = {"planned": planned, "last_draw": 0.0, "steps": [], "losses": [], "run_id": run_id,
                      "filled": 0, "t0": time.perf_counter(), "first_update": None}

        def job(cancel):
            return engine.run(**args, callback=lambda p: self._on_progress(p, run_id), cancel=cancel)

        return self._launch(job, run_id, wait)

    def _cancel_for_change(self):
        if self._worker.busy:
            self._worker.cancel(wait=True)

    def _prepare_view(self, planned, start):
        cols = len(planned) + 1
        if self.grid is None or self.grid.cols != cols:
            self._make_grid(cols)
        with self.grid.figure.hold_sync():
            self.grid.clear()
            if start is not None:
                self._draw_tile(0, start, "start")
        self.loss_line.x, self.loss_line.y = np.zeros(0, np.float32), np.zeros(0, np.float32)
        self.progress.value = 0.0
        self.progress.bar_style = ""
        self.details_box.layout.display = "none"

    def _draw_tile(self, col: int, image, label: str, loss: float | None = None):
        """Column ``col``: plain rendering labelled ``label`` on top, enhanced one labelled with the loss below."""
        self.grid.set_tile(self.grid.index(0, col), plain(image), label)
        self.grid.set_tile(self.grid.index(1, col), enhanced(image), "" if loss is None else f"loss {loss:.3g}")

    def _on_progress(self, p, run_id):
        if run_id != self._run_id:
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
                col = 1 + (planned.index(step) if step in planned else min(live["filled"], len(planned) - 1))
                self._draw_tile(col, images[0], f"step {step}", float(losses[0]))
                live["filled"] = col
            else:  # the next tile shows the image as it is now
                col = min(live["filled"] + 1, len(planned))
                self._draw_tile(col, p.images[0], f"step {p.step}…")
            self.loss_line.x = np.asarray(live["steps"], np.float32)
            self.loss_line.y = np.asarray(live["losses"], np.float32)
            self.progress.value = min(1.0, p.step / max(1, p.total))
        if live["first_update"] is None:
            live["first_update"] = now - live["t0"]

    def _on_done(self, result, error, run_id):
        if run_id != self._run_id:
            return
        with self._draw_lock:
            self.set_trait("running", False)
            self.run_button.description = "Run"
            self.stop_button.disabled = True
            if error is not None:
                self._show_error(error)
                return
            self.set_trait("result", result)
            self._draw_result(result)

    def _draw_result(self, r: OIPResult):
        cols = len(r.snapshot_steps) + 1
        if self.grid.cols < cols:
            self._make_grid(cols)
        with self.grid.figure.hold_sync(), self.loss_figure.hold_sync():
            self.grid.clear()
            self._draw_tile(0, r.start, "start")
            for k, (step, img, loss) in enumerate(zip(r.snapshot_steps, r.snapshots, r.snapshot_losses)):
                self._draw_tile(k + 1, img, f"step {step}", float(loss))
            stride = max(1, len(r.losses) // MAX_CURVE_POINTS)  # long runs: a thinned curve, not megabytes
            self.loss_line.x = np.arange(len(r.losses), dtype=np.float32)[::stride]
            self.loss_line.y = np.asarray(r.losses, np.float32)[::stride]
        self.progress.value = 1.0
        self.progress.bar_style = {"dead": "danger", "stopped": "warning"}.get(r.status, "success")
        text = {
            "converged": f"converged at step {r.converged_at}",
            "max_steps": f"done: {r.steps} steps, not converged",
            "dead": "dead map: try coarser noise (more weight on the coarse scales) or the multiscale/precursor "
            "strategy",
            "stopped": f"stopped after {r.steps} steps",
        }[r.status]
        self._set_status(f"{text} — final objective {r.final_loss:.4g}", html_class=r.status)

    def _show_error(self, error: BaseException):
        self._set_status(f"error: {type(error).__name__}: {error}", html_class="error")
        self.details.clear_output()
        with self.details:
            print("".join(traceback.format_exception(type(error), error, error.__traceback__)))
        self.details_box.layout.display = None
        self.progress.bar_style = "danger"

    def _set_status(self, text: str, html_class: str = "") -> None:
        self.set_trait("status", text)
        colour = {"error": "#b00020", "dead": "#b00020", "stopped": "#a06000"}.get(html_class, "#333")
        import html as _html

        self.status_line.value = f'<span class="oip-status" style="color:{colour}">{_html.escape(text)}</span>'

    # ------------------------------------------------------------------ export
    def _need_result(self) -> OIPResult:
        if self.result is None:
            raise ValueError("nothing to export yet: run the explorer first (explorer.run(wait=True))")
        return self.result

    def save_png(self, path, contrast: bool = False):
        """The final OIP as PNG."""
        return export.save_png(self._need_result(), path, cmap=self.colormap, contrast=contrast)

    def save_grid_png(self, path):
        """The start image and snapshots, plain and contrast-enhanced, as PNG."""
        return export.save_grid_png(self._need_result(), path, cmap=self.colormap)

    def save_gif(self, path):
        """The emerging pattern as an animated GIF."""
        return export.save_gif(self._need_result(), path, cmap=self.colormap)

    def save_npz(self, path):
        """The result (image, snapshots, steps, losses, parameters) as .npz."""
        return self._need_result().to_npz(path)
