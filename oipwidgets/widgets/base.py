"""OIPWidgetBase: what the explorer and the layer zoo share.

The model (default: the shipped MNIST CNN) and its layers, the example images, one engine per layer (cached), the
background ``Worker`` with its run ids, the settings as traits with their validators (``layer``, ``noise_scales``,
``noise_weights``, ``epsilon``, ``steps``, ``strategy``, ``seed``, ``colormap``), the read-only ``status`` and
``running``, the status line, and the skeleton of a run (``run``: check, cancel, start; ``_on_done``: show the
result or the error). How the image climbs is a ``Recipe`` (``recipe=`` a preset name, a Recipe or its dict): it
sets the climb traits, and ``recipe`` is the Recipe of the traits that every run hands to the engine, with the
example images (in the engine's image space) for the engine's rescue of maps that an example fires. ``preprocess=``
names the model's input convention for every engine the widget makes (``engine/preprocess.py``).

Construction follows ipywidgets' order, so no observer ever sees a half-built widget: plain attributes first, then
the initial trait values (validated, no observer attached yet), then the view (``_build``), then the observers
(``_connect``).
"""

from __future__ import annotations

import dataclasses
import threading

import ipywidgets as widgets
import keras
import numpy as np
from traitlets import Bool, Enum, Float, Int, List, TraitError, Tuple, Unicode, validate

from ..engine.engine import MAX_EPSILON, OIPEngine
from ..engine.examples import default_examples, top_k_all
from ..engine.diversity import Diversity
from ..engine.noise import DEFAULT_WEIGHTS, MultiScaleNoise
from ..engine.optimizers import OPTIMIZERS
from ..engine.parameterizations import PARAMETERIZATIONS
from ..engine.probe import ensure_built, layer_key
from ..engine.recipe import Recipe, recipe_for
from ..engine.strategies import STRATEGIES
from ..engine.validation import check_float, check_index, check_int, is_int
from ..models.models import load_default_model
from ..output.render import COLORMAPS
from .controls import run_buttons, status_html, weights_for
from .recipes import RECIPE_TRAITS, RESCUE_TOP, examples_in_space, recipe_from, recipe_traits, rescue_set, show_recipe
from .worker import RunsInBackground, Worker

__all__ = ["OIPWidgetBase", "trait_check", "check_layer", "close_tree"]

MAX_DIVERSITY = 8  # OIPs of one map grown side by side at most
DIVERSITY_WEIGHT = 1.0  # weight of the Diversity term (its score lies in [-1, 1])


def trait_check(check, *args, **kwargs):
    """``check(*args, **kwargs)`` (one of ``engine.validation``'s checks) with its ValueError as a TraitError."""
    try:
        return check(*args, **kwargs)
    except ValueError as exc:
        raise TraitError(str(exc)) from None


def check_layer(name: str, layers, what: str = "layer", valid: str = "; valid layers") -> str:
    """``name`` if it is one of ``layers``, else a TraitError listing them: "unknown {what} 'x'{valid}: a, b"."""
    if name not in layers:
        raise TraitError(f"unknown {what} {name!r}{valid}: {', '.join(layers)}")
    return name


def close_tree(widget: widgets.Widget) -> None:
    """Close ``widget`` and every widget reachable through its synced traits (children, marks, scales, axes,
    layouts), each once."""
    seen, todo = set(), [widget]
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        for name in w.keys:
            value = getattr(w, name, None)
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
            todo += [v for v in items if isinstance(v, widgets.Widget)]
        widgets.Widget.close(w)


class OIPWidgetBase(RunsInBackground, widgets.VBox):
    """Base of the widgets that run the engine on one layer of a model: settings, engines, worker, status.

    A subclass declares its ``result`` trait and provides ``_build`` (the view: it calls ``_build_run_controls``
    and ``recipes.recipe_controls``),
    ``_start(engine, noise, run_id)`` (prepare the view, return the job), ``_show_result(result)`` and
    ``_show_noise()``; it may extend ``_connect`` (call ``super()._connect()``) and ``_show_error``.
    """

    layer = Unicode(help="name of the probed layer")
    noise_scales = List(Tuple(Int(), Int()), help="(rows, cols) grids of the start noise, coarse to fine")
    noise_weights = List(Float(), help="one weight >= 0 per noise scale")
    epsilon = Float(0.01, help="step size")
    steps = Int(400, help="ascent steps (last stage for multiscale)")
    strategy = Enum(tuple(STRATEGIES), default_value="simple", help="'simple', 'multiscale' or 'precursor'")
    seed = Int(0, help="seed of the start noise")
    colormap = Enum(COLORMAPS, default_value="viridis")
    # how the image climbs (engine/climb.py): the article's by default
    param = Enum(tuple(PARAMETERIZATIONS), default_value="pixel", help="image representation: pixel, fourier, maco")
    transforms = Enum(("none", "standard"), default_value="none", help="robustness transforms at each step")
    optimizer = Enum(tuple(OPTIMIZERS), default_value="rms", help="'rms' (the article's step) or 'adam'")
    smoothness = Float(0.0, help="weight of the total-variation penalty (0: none; the recipe's tv)")
    blur = Float(0.0, help="weight of the blur penalty (0: none; the recipe's blur)")
    warmup = Int(0, help="steps of redirected ReLU gradient at the start (0: none; the recipe's warmup)")
    rescue = Bool(True, help="re-run maps that stay dead (or end below) although an example image fires them")
    diversity = Int(1, help="how many different OIPs of the map to grow side by side (1: one)")
    status = Unicode("ready", read_only=True)
    running = Bool(False, read_only=True)

    #: which layers the widget offers ("maps": 4-D outputs, "units": 2-D), and how errors name them
    _layer_kinds = ("maps", "units")
    _layers_text = "; valid layers"
    _no_layers = "this model has no layer with maps or units to explore"
    _worker_name = "oipwidgets-worker"
    _worker: Worker | None = None  # until __init__ makes it: close() (also run by __del__) works on a failed init

    def __init__(self, model: keras.Model | None = None, layer=None, *, input_shape=None, examples=None, recipe=None,
                 preprocess="standardize", **kwargs):
        self._worker = Worker(self._worker_name)
        self._run_id = 0
        self.model = load_default_model("mnist") if model is None else model
        self._input_shape = input_shape
        self._preprocess = preprocess  # checked by the first engine (in _set_initial)
        self._recipe_base = recipe_for(recipe)  # fields without a trait come from it
        self._recipe_given = recipe_traits(self._recipe_base)  # (a recipe the controls cannot show: refused now)
        # the model with fixed image inputs: the model itself, a fixed-size copy, or a subclassed model's stand-in
        self._built = ensure_built(self.model, input_shape)
        infos = OIPEngine.layers(self._built)  # names are paths ("base/conv1") for layers inside nested models
        self._infos = {i.name: i for i in infos if i.kind in self._layer_kinds}
        if not self._infos:
            raise ValueError(self._no_layers.format(model=self.model.name))
        self.examples = default_examples(self._built) if examples is None else np.asarray(examples)
        if self.examples is not None and len(self.examples) == 0:
            raise ValueError("examples is an empty image set; give at least one image or None")
        self._engines: dict[str, OIPEngine] = {}
        self._topk: dict[tuple[str, int], list] = {}
        for name in kwargs:
            if not self.has_trait(name):
                raise TypeError(f"{type(self).__name__} has no setting {name!r}")
        self._draw_lock = threading.Lock()
        self._status_before_compiling: str | None = None
        self._ready = False  # set when the view exists: from then on refused settings show on the status line
        self._hidden: list = []  # widgets made now but shown only later (``_own``): closed with this one
        super().__init__()
        self.layer = self._default_layer() if layer is None or layer == "" else self._layer_name(layer)
        self._set_initial(kwargs)
        self._build()
        self._connect()
        self._ready = True

    def __setattr__(self, name, value):
        """A refused setting (``TraitError``) is raised to the caller and also shown on the status line, so the
        widget never keeps showing an older message than the latest error."""
        try:
            super().__setattr__(name, value)
        except TraitError as exc:
            if self.__dict__.get("_ready"):
                self._report(exc)
            raise

    def _default_layer(self) -> str:
        maps = [n for n, i in self._infos.items() if i.kind == "maps"]
        return "Conv2D_3" if "Conv2D_3" in self._infos else (maps[-1] if maps else next(iter(self._infos)))

    def _layer_name(self, layer) -> str:
        """A layer given by name or path, by the plain name of a layer inside a nested model (when no other layer
        has it), as the layer object, or by index into ``model.layers``; a bad index names the valid ones."""
        if isinstance(layer, (str, keras.layers.Layer)):
            key = layer_key(self._built, layer)
            return key if isinstance(key, str) else layer.name  # an unknown one: the check lists the valid ones
        pairs = [(n, i.index) for n, i in self._infos.items() if i.index is not None]
        if not is_int(layer) or int(layer) not in [k for _, k in pairs]:
            raise TraitError(f"layer {layer!r} is not one this widget can show; give a name or an index into "
                             f"model.layers: {', '.join(f'{n} ({k})' for n, k in pairs)}")
        return layer_key(self._built, int(layer))

    def _set_initial(self, given: dict) -> None:
        """The default noise for the image size, then the trait values given as keywords (all validated); no
        observer is attached yet. Scales given without weights get weights as if set afterwards."""
        h, w, _ = self._engine().input_shape
        scales, weights = list(MultiScaleNoise.for_size(h, w).scales), list(DEFAULT_WEIGHTS)
        with self.hold_trait_notifications():
            self.noise_scales, self.noise_weights = scales, weights
            for name, value in {**self._recipe_given, **given}.items():  # the recipe, then the keywords over it
                setattr(self, name, value)
            if "noise_scales" in given and "noise_weights" not in given:
                self.noise_weights = weights_for(self.noise_scales, scales, weights)

    def _connect(self) -> None:
        """Attach the observers (after ``_build``: they may use every control)."""
        self.observe(self._on_noise_scales, names="noise_scales")
        self.observe(lambda change: self._show_noise(), names="noise_weights")
        self.observe(lambda change: show_recipe(self), names=list(RECIPE_TRAITS))  # the recipe dropdown follows

    # ------------------------------------------------------------------ validation of the settings
    @validate("layer")
    def _check_layer(self, proposal):
        value = proposal["value"]
        if value not in self._infos and isinstance(value, str):  # a nested layer's plain name: its path
            value = layer_key(self._built, value)
        return check_layer(value if isinstance(value, str) else proposal["value"], self._infos,
                           valid=self._layers_text)

    @validate("steps")
    def _check_steps(self, proposal):
        return trait_check(check_int, proposal["value"], "steps")

    @validate("seed")
    def _check_seed(self, proposal):
        return trait_check(check_int, proposal["value"], "seed", low=0)

    @validate("epsilon")
    def _check_epsilon(self, proposal):
        return trait_check(check_float, proposal["value"], "epsilon", high=MAX_EPSILON)

    @validate("smoothness")
    def _check_smoothness(self, proposal):
        return trait_check(check_float, proposal["value"], "smoothness", positive=False, high=100.0)

    @validate("blur")
    def _check_blur(self, proposal):
        return trait_check(check_float, proposal["value"], "blur", positive=False, high=100.0)

    @validate("warmup")
    def _check_warmup(self, proposal):
        return trait_check(check_int, proposal["value"], "warmup (steps)", low=0)

    @validate("diversity")
    def _check_diversity(self, proposal):
        return trait_check(check_int, proposal["value"], "diversity", low=1, high=MAX_DIVERSITY)

    @validate("noise_scales")
    def _check_scales(self, proposal):
        return [tuple(trait_check(check_int, v, "each noise grid side") for v in s) for s in proposal["value"]]

    @validate("noise_weights")
    def _check_weights(self, proposal):
        return [trait_check(check_float, v, "each noise weight", positive=False) for v in proposal["value"]]

    def _check_map(self, value, what: str = "map index"):
        """``value`` as an index into the maps (or units) of the current layer, else a TraitError with the range."""
        info = self._infos[self.layer]
        kind = "map" if info.kind == "maps" else "unit"
        return trait_check(check_index, value, info.size, what.replace("map", kind, 1),
                           f"layer {self.layer!r} has {info.size} {kind}s")

    # ------------------------------------------------------------------ the recipe
    @property
    def recipe(self) -> Recipe:
        """How the widget's OIPs are made: the ``Recipe`` of the climb traits (``steps``, ``epsilon``, ``strategy``,
        ``param``, ``transforms``, ``optimizer``, ``smoothness`` = its ``tv`` weight, ``blur``, ``warmup``), its
        other fields from the recipe the widget was given (or the preset last picked). Read-only: set the traits,
        or all of them at once with ``use_recipe``. ``recipe.name()`` is the preset it equals, or None."""
        return recipe_from(self._recipe_base, self)

    def use_recipe(self, recipe) -> Recipe:
        """Set the climb traits from ``recipe`` ("article", "readable", a ``Recipe`` or its dict; an error names the
        valid ones), as picking a preset in the recipe dropdown does; returns ``self.recipe``."""
        values, old = recipe_traits(recipe), self._recipe_base
        self._recipe_base = recipe_for(recipe)  # first: the trait observers see the new recipe
        try:
            with self.hold_trait_notifications():
                for name, value in values.items():
                    setattr(self, name, value)
        except Exception:
            self._recipe_base = old
            raise
        if hasattr(self, "recipe_dropdown"):  # (fields without a trait may have changed alone)
            show_recipe(self)
        return self.recipe

    @property
    def preprocess(self):
        """The model's input convention given to every engine ("standardize", "unit", "byte", "tf", "caffe",
        "torch" or a callable): OIPs are RGB in [0, 1] for all but "standardize"."""
        return self._preprocess

    def _climb(self, engine: OIPEngine, maps, n: int = 1) -> dict:
        """The run keywords of the current settings for ``maps`` (map indices, or one map n times): the ``recipe``,
        the ``objective`` (None: each map's mean; for n > 1 OIPs of one map, their means plus the diversity term)
        and the ``examples`` for the engine's rescue (none for a diverse run: its images climb together, none can be
        re-run alone)."""
        if n > 1:
            objective = engine.objective(np.asarray(maps)) + DIVERSITY_WEIGHT * Diversity()
            return {"recipe": self.recipe, "objective": objective, "examples": None}
        return {"recipe": self.recipe, "objective": None, "examples": self._rescue_examples(maps)}

    def _rescue_examples(self, maps) -> np.ndarray | None:
        """The example images, in the engine's image space, that the engine's rescue checks ``maps`` against: the
        best RESCUE_TOP examples of each map, at most RESCUE_EXAMPLES (64) in all (``recipes.rescue_set``: each
        map's best first). None without examples or with ``rescue`` off."""
        if not self.rescue or self.examples is None:
            return None
        picked = rescue_set(self._top_k(min(RESCUE_TOP, len(self.examples))), np.atleast_1d(maps))
        return examples_in_space(self._engine().mode, self.examples[picked])

    @property
    def _value_range(self) -> tuple | None:
        """(low, high) of the engine's images (RGB (0, 1) with a preprocess convention); None: unbounded, shown
        stretched."""
        return self._engine().mode.value_range

    # ------------------------------------------------------------------ noise, engines, examples
    def noise(self) -> MultiScaleNoise:
        """The start noise of the current settings (ValueError naming the problem when they do not fit)."""
        return MultiScaleNoise(scales=tuple(self.noise_scales), weights=tuple(self.noise_weights))

    def _on_noise_scales(self, change):
        self.noise_weights = weights_for(change["new"], change["old"], self.noise_weights)
        self._show_noise()

    def _engine(self, layer: str | None = None) -> OIPEngine:
        name = layer or self.layer
        if name not in self._engines:
            self._engines[name] = OIPEngine(self.model, name, input_shape=self._input_shape,
                                            preprocess=self._preprocess)
        return self._engines[name]

    def _top_k(self, k: int) -> list:
        """The ``TopK`` of every map of the current layer among the examples (computed once per layer and k)."""
        key = (self.layer, k)
        if key not in self._topk:
            engine = self._engine()
            if engine.mode.name == "standardize":
                self._topk[key] = top_k_all(engine, None, self.examples, k=k)
            else:  # the examples as the model takes them under the engine's convention; the TopK keeps them raw
                import tensorflow as tf

                x = np.asarray(engine.mode.to_model(tf.constant(examples_in_space(engine.mode, self.examples))))
                self._topk[key] = [dataclasses.replace(t, images=np.asarray(self.examples)[t.indices])
                                   for t in top_k_all(engine, None, x, k=k, preprocess=False)]
        return self._topk[key]

    @property
    def _kind(self) -> str:
        """'map' or 'unit': what the current layer has."""
        return "map" if self._infos[self.layer].kind == "maps" else "unit"

    # ------------------------------------------------------------------ status line
    def _build_run_controls(self, button_width: str | None = None, progress_width: str = "100%") -> None:
        """Run and Stop buttons, the progress bar and the status line."""
        self.run_button, self.stop_button = run_buttons(self, button_width)
        self.new_seed_button = widgets.Button(description="new seed", icon="random", tooltip="draw a new seed",
                                              layout=widgets.Layout(width="90px"))
        self.new_seed_button.on_click(lambda _: self.new_seed())
        self.progress = widgets.FloatProgress(min=0.0, max=1.0, value=0.0, layout=widgets.Layout(width=progress_width),
                                              style={"description_width": "initial"})
        self.status_line = widgets.HTML(value="ready", layout=widgets.Layout(width="100%"))

    def new_seed(self) -> int:
        """Set ``seed`` to a fresh random value (from the operating system's entropy: no global seed is touched)."""
        self.seed = int(np.random.default_rng().integers(0, 2**31 - 1))
        return self.seed

    def _show_progress(self, step: int, total: int) -> None:
        """The progress bar at ``step`` of ``total`` steps, with the count as its text."""
        self.progress.value = min(1.0, step / max(1, total))
        self.progress.description = f"{min(step, total)}/{total}"

    def _set_status(self, text: str, kind: str = "") -> None:
        """Set ``status`` and the status line (coloured by ``kind``: "error", "dead", "stopped", ...)."""
        self.set_trait("status", text)
        self.status_line.value = status_html(text, kind)

    def _note_compiling(self, progress) -> bool:
        """Status line for a progress report: "compiling…" while the next chunk first compiles (a long wait on large
        models; Stop is honoured when it returns), the run's own text again after. True for a compiling report,
        which carries no new numbers."""
        if progress.compiling:
            if self._status_before_compiling is None:  # (several compiles in a row: keep the run's own text)
                self._status_before_compiling = self.status
            self._set_status("compiling the ascent for this model and batch size (first run only)…")
            return True
        if self._status_before_compiling is not None:
            self._set_status(self._status_before_compiling)
            self._status_before_compiling = None
        return False

    def _report(self, error: Exception) -> None:
        """A refused setting: shown on the status line, nothing else changes."""
        self._set_status(f"error: {error}", "error")

    def _show_error(self, error: BaseException) -> None:
        """A run that could not start or that failed."""
        self._set_status(f"error: {type(error).__name__}: {error}", "error")
        self.progress.bar_style = "danger"

    # ------------------------------------------------------------------ running
    def run(self, wait: bool = False):
        """Start a run with the current settings (cancelling a running one); with ``wait`` block and return the result.

        An error is shown in the status line; with ``wait=True`` it is also raised here.
        """
        try:
            engine, noise = self._engine(), self.noise()
        except ValueError as exc:
            self._show_error(exc)
            if wait:
                raise
            return None
        self._run_id += 1
        run_id = self._run_id
        self.set_trait("running", True)
        self.run_button.description, self.run_button.disabled = "Running…", True  # Stop (or a new layer) ends it
        self.stop_button.disabled = False
        self.progress.value, self.progress.bar_style, self.progress.description = 0.0, "", ""
        job = self._start(engine, noise, run_id)
        return self._launch(job, run_id, wait)

    def close(self) -> None:
        """Stop the run and wait for it (a few seconds at most), then close this widget and every widget it made
        (controls, figures, marks, scales), so nothing is left running or registered in the kernel."""
        if self._worker is None:  # __init__ failed before it made one: nothing runs, nothing was built
            return
        self._run_id += 1  # a run that still ends draws nothing
        self._worker.cancel(wait=True, timeout=5.0)
        for widget in getattr(self, "_hidden", ()):  # (a widget whose __init__ failed has none)
            close_tree(widget)
        close_tree(self)

    def _own(self, widget):
        """``widget``, made by this widget but not (yet) in its tree of children: closed with it all the same."""
        self._hidden.append(widget)
        return widget

    def _cancel_running(self) -> None:
        """Settings that change what is computed cancel a running run (what it did stays as ``result``)."""
        if self._worker.busy:
            self._worker.cancel(wait=True)

    def _on_done(self, result, error, run_id):
        if run_id != self._run_id:
            return
        with self._draw_lock:
            self.set_trait("running", False)
            self.run_button.description, self.run_button.disabled = "Run", False
            self.stop_button.disabled = True
            if error is not None:
                self._show_error(error)
                return
            self.set_trait("result", result)
            self._show_result(result)

    # ------------------------------------------------------------------ provided by the widgets
    def _build(self) -> None:
        raise NotImplementedError

    def _start(self, engine: OIPEngine, noise: MultiScaleNoise, run_id: int):
        raise NotImplementedError

    def _show_result(self, result) -> None:
        raise NotImplementedError

    def _show_noise(self) -> None:
        raise NotImplementedError
