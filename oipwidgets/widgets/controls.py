"""Controls shared by the explorer and the layer zoo: noise-setting text, the setting controls bound to traits, the
Run/Stop buttons and the status line.

``add_setting_controls(owner, widths)`` makes the control of each named setting (``layer`` → ``owner.layer_dropdown``,
``steps`` → ``owner.steps_text``, ...) and binds it both ways to the trait of the same name with ``bind``: like
``ipywidgets.link``, except that a value typed into a control that the widget refuses is reported on its status line
(and the control shows the widget's value again) instead of being lost in the kernel log.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
from traitlets import TraitError

from ..engine.optimizers import OPTIMIZERS
from ..engine.parameterizations import PARAMETERIZATIONS
from ..engine.strategies import STRATEGIES
from ..output.render import COLORMAPS

__all__ = ["parse_scales", "format_scales", "parse_weights", "format_weights", "weights_for", "bind",
           "add_setting_controls", "layer_options", "run_buttons", "status_html", "STATUS_COLOURS"]

#: Colours of the status line by kind of message; anything else is drawn in dark grey.
STATUS_COLOURS = {"error": "#b00020", "dead": "#b00020", "nonfinite": "#b00020", "stopped": "#a06000"}

#: weight given to a noise scale that had none before
NEW_SCALE_WEIGHT = 0.5


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
    """[(3, 3), (7, 5)] → '3x3, 7x5' (what ``parse_scales`` reads back)."""
    return ", ".join(f"{h}x{w}" for h, w in scales)


def parse_weights(text: str) -> list[float]:
    """'1, 0.5; 0' → [1.0, 0.5, 0.0] (ValueError for a part that is not a number)."""
    weights = []
    for part in text.replace(";", ",").split(","):
        if part.strip():
            try:
                weights.append(float(part))
            except ValueError:
                raise ValueError(f"cannot read noise weight {part.strip()!r}: write numbers like '1, 0.5'") from None
    return weights


def format_weights(weights) -> str:
    return ", ".join(f"{v:g}" for v in weights)


def weights_for(scales, old_scales, old_weights) -> list[float]:
    """The noise weights after the scales changed from ``old_scales`` to ``scales``: a scale kept keeps its weight,
    a new one gets 0.5. Weights that already fit the new scales and not the old ones are taken as they are."""
    scales, old_scales, old_weights = list(scales), list(old_scales), list(old_weights)
    if len(old_weights) == len(scales) != len(old_scales):
        return [float(v) for v in old_weights]
    by_scale = dict(zip(map(tuple, old_scales), old_weights))
    return [float(by_scale.get(tuple(s), NEW_SCALE_WEIGHT)) for s in scales]


def bind(owner, name: str, control: widgets.Widget, on_error) -> None:
    """Keep trait ``name`` of ``owner`` and ``control.value`` equal, both ways (the control starts at the trait's
    value). A control value the trait refuses goes to ``on_error(TraitError)`` and the control is reset."""
    busy = []

    def to_control(change):
        if not busy:
            busy.append(True)
            try:
                control.value = change["new"]
            finally:
                busy.clear()

    def to_owner(change):
        if busy:
            return
        busy.append(True)
        try:
            setattr(owner, name, change["new"])
        except TraitError as exc:
            on_error(exc)
            control.value = getattr(owner, name)
        finally:
            busy.clear()

    control.value = getattr(owner, name)
    owner.observe(to_control, names=name)
    control.observe(to_owner, names="value")


def layer_options(layers) -> list:
    """The options of a layer dropdown: the layer names, or, when some layers sit inside a nested model, (label,
    name) pairs whose label shows the model ("mobilenetv2_1.00_96 / block_6_expand_relu"; the value stays the
    path). ``layers``: names, or a dict name → ``LayerInfo``."""
    names = list(layers)
    labels = [getattr(layers[n], "label", n) if isinstance(layers, dict) else n for n in names]
    return names if labels == names else list(zip(labels, names))


#: The control of each shared setting: the owner's attribute for it, and how to make it (from the layer names and
#: the style and layout keywords).
_CONTROLS = {
    "layer": ("layer_dropdown", lambda layers, **kw: widgets.Dropdown(options=layers, description="layer", **kw)),
    "steps": ("steps_text", lambda layers, **kw: widgets.BoundedIntText(min=1, max=1_000_000, description="steps",
                                                                        **kw)),
    "seed": ("seed_text", lambda layers, **kw: widgets.IntText(description="seed", **kw)),
    "strategy": ("strategy_dropdown", lambda layers, **kw: widgets.Dropdown(options=list(STRATEGIES),
                                                                            description="strategy", **kw)),
    "colormap": ("colormap_dropdown", lambda layers, **kw: widgets.Dropdown(options=list(COLORMAPS),
                                                                            description="colours", **kw)),
    "param": ("param_dropdown", lambda layers, **kw: widgets.Dropdown(options=list(PARAMETERIZATIONS),
                                                                      description="image as", **kw)),
    "transforms": ("transforms_dropdown", lambda layers, **kw: widgets.Dropdown(options=["none", "standard"],
                                                                                description="transforms", **kw)),
    "optimizer": ("optimizer_dropdown", lambda layers, **kw: widgets.Dropdown(options=list(OPTIMIZERS),
                                                                              description="optimiser", **kw)),
    "smoothness": ("smoothness_text", lambda layers, **kw: widgets.BoundedFloatText(
        min=0.0, max=100.0, step=0.01, description="smoothness", **kw)),
    "diversity": ("diversity_text", lambda layers, **kw: widgets.BoundedIntText(min=1, max=8, description="diverse",
                                                                               **kw)),
    "epsilon": ("epsilon_slider", lambda layers, **kw: widgets.FloatLogSlider(
        base=10, min=-4, max=-0.5, step=0.1, description="epsilon", readout_format=".4f", continuous_update=False,
        **kw)),
}


def add_setting_controls(owner, widths: dict, *, style: dict, layers, on_error, extra: dict | None = None) -> None:
    """Make the control of each setting in ``widths`` (trait name → CSS width, "fill" for the width of its panel, or
    None for the default), set it as
    the owner's attribute (``layer_dropdown``, ``steps_text``, ``seed_text``, ``strategy_dropdown``,
    ``colormap_dropdown``, ``epsilon_slider``, ``param_dropdown``, ``transforms_dropdown``, ``optimizer_dropdown``,
    ``smoothness_text``, ``diversity_text``) and ``bind`` it to the trait, refused values going to ``on_error``.
    layers: the names the layer dropdown offers (or name → LayerInfo: nested layers labelled by model); extra: trait name → a control the owner made, bound the same way."""
    controls = dict(extra or {})
    for name, width in widths.items():
        attr, make = _CONTROLS[name]
        layout = ({} if width is None else
                  {"layout": widgets.Layout(width="auto", min_width="0") if width == "fill" else
                   widgets.Layout(width=width)})
        controls[name] = make(layer_options(layers), style=style, **layout)
        setattr(owner, attr, controls[name])
    for name, control in controls.items():
        bind(owner, name, control, on_error)


def run_buttons(owner, width: str | None = None) -> tuple[widgets.Button, widgets.Button]:
    """The Run and Stop buttons of ``owner`` (Stop disabled until a run starts)."""
    layout = {} if width is None else {"layout": widgets.Layout(width=width)}
    run = widgets.Button(description="Run", button_style="success", icon="play", **layout)
    stop = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True, **layout)
    run.on_click(lambda _: owner.run())
    stop.on_click(lambda _: owner.stop())
    return run, stop


def status_html(text: str, kind: str = "") -> str:
    """The status line's HTML: ``text`` escaped, coloured by ``kind`` ("error", "dead", "stopped", ...)."""
    colour = STATUS_COLOURS.get(kind, "#333")
    return f'<span class="oip-status" style="color:{colour}">{html.escape(text)}</span>'
