"""Recipes and real examples in the widgets: the traits a ``Recipe`` sets, the recipe dropdown, example images in the
engine's image space, and what a tile says about a map the engine re-ran with a cure.

A widget's climb settings are traits (``steps``, ``epsilon``, ``strategy``, ``param``, ``transforms``,
``optimizer``, ``smoothness``, ``blur``, ``warmup``); ``recipe_traits`` gives their values for a recipe and
``recipe_from`` makes the recipe of a widget's traits back (fields without a trait: ``decay``, ``conv_criterion``,
``stop_on_convergence``, ``l1``, ``l2``, come from the recipe the widget was given, by default the article's).

Example images (the zoo's example strip, the explorer's top-k) are raw: uint8 0..255 or floats, (N, H, W) or
(N, H, W, C). ``examples_in_space`` brings them where the engine's images live: standardised per image for the
article's preprocessing, RGB in [0, 1] (or the input mode's range) otherwise. ``rescue_set`` picks at most
``RESCUE_EXAMPLES`` of them for the engine's rescue (``engine/rescue.py``): the best ones of each map first.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..engine.recipe import RECIPES, Recipe, recipe_for
from ..engine.strategies import Strategy
from ..engine.preprocess import images_in_space
from .controls import bind

__all__ = ["RECIPE_TRAITS", "CUSTOM", "RESCUE_EXAMPLES", "RESCUE_TOP", "CURE_TEXT", "recipe_traits", "recipe_from",
           "recipe_controls", "show_recipe", "examples_in_space", "rescue_set", "cure_note", "cure_sentence",
           "cure_summary"]

#: widget trait → recipe field
RECIPE_TRAITS = {"steps": "steps", "epsilon": "epsilon", "strategy": "strategy", "param": "param",
                 "transforms": "transforms", "optimizer": "optimizer", "smoothness": "tv", "blur": "blur",
                 "warmup": "warmup"}
#: what the recipe dropdown shows when the traits match no preset
CUSTOM = "custom"
#: At most this many example images go to the engine's rescue: it scores every example under every map's objective
#: (examples × maps forward passes, 64 × 64 for MNIST's Conv2D_3: well under a second) and re-runs only the maps
#: that need it.
RESCUE_EXAMPLES = 64
#: The examples offered for each map: its best RESCUE_TOP (the widgets' top-k, computed once per layer).
RESCUE_TOP = 8
#: the long form of each cure (``params["cure"]``), for the detail views and the status line
CURE_TEXT = {
    "warm-up": "stayed dead from this noise although an example image fires it: re-run with a ReLU warm-up",
    "data start": "ended below its best example image: re-run from that example blended with the noise",
}


def recipe_traits(spec) -> dict:
    """The widget trait values of a recipe (a preset name, a ``Recipe`` or its dict). A ValueError names the valid
    choices when the recipe holds an object the widgets' controls cannot show (a Parameterization, Transform or
    Optimizer object; a Strategy object is kept and shown by its name)."""
    recipe = recipe_for(spec)
    for field, valid in (("param", "'pixel', 'fourier' or 'maco'"), ("optimizer", "'rms' or 'adam'"),
                         ("transforms", "None or 'standard'")):
        value = getattr(recipe, field)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"the widgets take a recipe whose {field} is a name ({valid}); got {value!r}")
    values = {trait: getattr(recipe, field) for trait, field in RECIPE_TRAITS.items()}
    if isinstance(recipe.strategy, Strategy):
        values["strategy"] = recipe.strategy.name
    values["transforms"] = "none" if recipe.transforms is None else recipe.transforms
    return values


def recipe_from(base: Recipe, owner) -> Recipe:
    """The recipe of ``owner``'s traits, its other fields from ``base`` (a Strategy object of ``base`` is kept while
    the ``strategy`` trait still names it)."""
    changes = {field: getattr(owner, trait) for trait, field in RECIPE_TRAITS.items()}
    if changes["transforms"] == "none":
        changes["transforms"] = None
    if isinstance(base.strategy, Strategy) and base.strategy.name == changes["strategy"]:
        changes["strategy"] = base.strategy
    return base.replace(**changes)


def recipe_controls(owner, style: dict, layout, on_error) -> tuple:
    """The recipe dropdown (``owner.recipe_dropdown``: the presets, and "custom" while the traits match none) and
    the controls of the ``blur`` and ``warmup`` traits (``owner.blur_text``, ``owner.warmup_text``), bound to
    them. Picking a preset calls ``owner.use_recipe(name)``; ``show_recipe(owner)`` makes the dropdown follow the
    traits. ``layout``: a function making each control's Layout."""
    owner.recipe_dropdown = widgets.Dropdown(options=list(RECIPES), description="recipe", style=style,
                                             layout=layout(),
                                             tooltip="article: the article's climb; readable: Fourier image, "
                                                     "transforms, Adam, blur and a ReLU warm-up")
    owner.blur_text = widgets.BoundedFloatText(min=0.0, max=100.0, step=0.1, description="blur", style=style,
                                               layout=layout())
    owner.warmup_text = widgets.BoundedIntText(min=0, max=1_000_000, description="warm-up", style=style,
                                               layout=layout())
    bind(owner, "blur", owner.blur_text, on_error)
    bind(owner, "warmup", owner.warmup_text, on_error)
    owner._recipe_syncing = False
    show_recipe(owner)

    def picked(change):  # a preset picked by the user ("custom" only shows that the traits match none)
        if not owner._recipe_syncing and change["new"] in RECIPES:
            owner.use_recipe(change["new"])

    owner.recipe_dropdown.observe(picked, names="value")
    return owner.recipe_dropdown, owner.blur_text, owner.warmup_text


def show_recipe(owner) -> None:
    """The recipe dropdown shows the preset ``owner.recipe`` equals, or "custom" (offered only then)."""
    name = owner.recipe.name() or CUSTOM
    options = list(RECIPES) + ([CUSTOM] if name == CUSTOM else [])
    owner._recipe_syncing = True
    try:
        if list(owner.recipe_dropdown.options) != options:
            owner.recipe_dropdown.options = options
        owner.recipe_dropdown.value = name
    finally:
        owner._recipe_syncing = False


def examples_in_space(mode, images) -> np.ndarray:
    """Raw example images (uint8 0..255 or floats; (N, H, W) or (N, H, W, C)) in the image space of an engine with
    input mode ``mode`` (``engine.preprocess.images_in_space``): standardised per image (the article's), else
    scaled into the mode's ``value_range`` (RGB in [0, 1] for a ``preprocess`` convention). float32 (N, H, W, C)."""
    x = np.asarray(images)
    return images_in_space(mode, x[..., None] if x.ndim == 3 else x)


def rescue_set(tops: list, maps) -> np.ndarray:
    """Indices into the example set for the rescue of ``maps``: each map's best example first, then each one's
    second best, … (``tops``: one ``TopK`` per map of the layer), without repeats, at most RESCUE_EXAMPLES. A map
    that any example fires is fired by its best one, so no map is left out of the rescue it can get."""
    picked: dict[int, None] = {}
    lists = [tops[int(m)].indices for m in maps]
    for rank in range(max((len(t) for t in lists), default=0)):
        for indices in lists:
            if rank < len(indices):
                picked.setdefault(int(indices[rank]))
                if len(picked) == RESCUE_EXAMPLES:
                    return np.fromiter(picked, np.int64)
    return np.fromiter(picked, np.int64)


def cure_note(result) -> str:
    """The tile note of a result the engine re-ran with a cure ("↻ warm-up", "↻ data start"), else ""."""
    cure = result.params.get("cure")
    return f"↻ {cure}" if cure else ""


def cure_sentence(result, kind: str = "map") -> str:
    """One sentence (HTML-escaped) for a detail view: what the cure of ``result`` was and why, else "".
    kind: what the result is of ("map" or "unit")."""
    cure = result.params.get("cure")
    if not cure:
        return ""
    best = result.params.get("best_example")
    why = CURE_TEXT.get(cure, cure)
    extra = "" if best is None else f" (best example's objective {best:.3g})"
    return html.escape(f"↻ {cure}: this {kind} {why}{extra}.")


def cure_summary(results) -> str:
    """"3 maps retried with a warm-up, 1 from a data start" for the results with a cure, else ""."""
    counts = {c: sum(r.params.get("cure") == c for r in results) for c in CURE_TEXT}
    parts = []
    if counts["warm-up"]:
        parts.append(f"{counts['warm-up']} map{'s' if counts['warm-up'] != 1 else ''} retried with a warm-up")
    if counts["data start"]:
        n = counts["data start"]
        parts.append(f"{n} map{'s' if n != 1 else ''} retried from a data start")
    return ", ".join(parts)
