"""Recipe: how an OIP is made, as one small immutable, serialisable object with named presets.

A recipe holds everything of a climb that is not the model, the layer and the map: the parameterisation, the
robustness transforms, the optimiser and its step, the number of steps, the start strategy, the convergence test,
the weights of the image regularisers and the ReLU warm-up. Two presets:

* ``"article"`` — the article's climb, exactly: pixels, no transforms, the RMS step 0.01, 400 steps, strategy 0.
* ``"readable"`` — the field's recipe for colour CNNs (lucid, Xplique): a Fourier image with decorrelated colours,
  the standard robustness transforms, Adam at 0.05, a light blur penalty and a 16-step ReLU warm-up (chosen from
  ``benchmarks/bench_real.py`` and ``benchmarks/bench_fidelity.py``).

``engine.run_layer(recipe="readable", steps=128)`` takes a preset (or a Recipe, or its dict) and any field as a
keyword that overrides it; results record ``recipe.to_dict()``, and an atlas stores it to say how it was made.

    >>> r = Recipe.preset("readable").replace(steps=128)
    >>> Recipe.from_dict(r.to_dict()) == r
    True
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields

from .climb import Climb, transform_for
from .optimizers import OPTIMIZERS, Optimizer
from .parameterizations import PARAMETERIZATIONS, Fourier, Maco, Parameterization
from .regularizers import L1, L2, Blur, TotalVariation
from .strategies import STRATEGIES, Strategy, strategy_for
from .transforms import Transform
from .validation import check_float, check_int

__all__ = ["Recipe", "RECIPES", "recipe_for", "REGULARIZERS", "MAX_EPSILON"]

#: recipe field → the regulariser whose weight it is (subtracted from the objective)
REGULARIZERS = {"tv": TotalVariation, "blur": Blur, "l1": L1, "l2": L2}
_MAX_WEIGHT = 100.0
#: The largest step size taken: the gradient is scaled to unit RMS, so a step of 1000 already moves every pixel far
#: beyond any trained input range; larger ones only overflow float32.
MAX_EPSILON = 1000.0


@dataclass(frozen=True)
class Recipe:
    """How an OIP is made (see the module doc). Immutable: ``replace(**changes)`` makes a new, checked one.

    steps: ascent steps (the last stage's for "multiscale"); epsilon: step size (RMS step) or learning rate (Adam);
    strategy: "simple", "multiscale", "precursor" or a Strategy; param: "pixel", "fourier", "maco" or a
    Parameterization; decay: the spectrum's exponent for "fourier"/"maco" given by name; transforms: None or
    "standard" or a Transform; optimizer: "rms" or "adam" or an Optimizer; conv_criterion, stop_on_convergence: the
    article's convergence test; tv, blur, l1, l2: weights (>= 0) of the image regularisers subtracted from the
    objective; warmup: steps of redirected ReLU gradient at the start (0: none).
    """

    steps: int = 400
    epsilon: float = 0.01
    strategy: object = "simple"
    param: object = "pixel"
    decay: float = 1.0
    transforms: object = None
    optimizer: object = "rms"
    conv_criterion: float = 5e-4
    stop_on_convergence: bool = False
    tv: float = 0.0
    blur: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    warmup: int = 0

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("steps", check_int(self.steps, "steps"))
        put("epsilon", check_float(self.epsilon, "epsilon", high=MAX_EPSILON))
        put("conv_criterion", check_float(self.conv_criterion, "conv_criterion", positive=False))
        put("stop_on_convergence", bool(self.stop_on_convergence))
        put("decay", check_float(self.decay, "decay", positive=False, high=4.0))
        put("warmup", check_int(self.warmup, "warmup (steps)", low=0))
        for name in REGULARIZERS:
            put(name, check_float(getattr(self, name), f"{name} weight", positive=False, high=_MAX_WEIGHT))
        if isinstance(self.strategy, str):
            strategy_for(self.strategy)  # checks the name
        elif not isinstance(self.strategy, Strategy):
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)} or a Strategy; got {self.strategy!r}")
        _check_choice(self.param, "param", "parameterization", PARAMETERIZATIONS, Parameterization, "a Parameterization")
        if self.transforms == "none":
            put("transforms", None)
        transform_for(self.transforms)
        _check_choice(self.optimizer, "optimizer", "optimizer", OPTIMIZERS, Optimizer, "an Optimizer")

    # ------------------------------------------------------------------ presets and changes
    @classmethod
    def preset(cls, name: str) -> Recipe:
        """A named recipe: "article" or "readable"."""
        if name not in RECIPES:
            raise ValueError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}, a Recipe or its dict")
        return RECIPES[name]

    @classmethod
    def field_names(cls) -> tuple:
        return tuple(f.name for f in fields(cls))

    def replace(self, **changes) -> Recipe:
        """A new recipe with ``changes`` (field names only; a TypeError names the valid ones)."""
        unknown = [k for k in changes if k not in self.field_names()]
        if unknown:
            raise TypeError(f"unexpected setting {unknown[0]!r}; a recipe has: {', '.join(self.field_names())}")
        return dataclasses.replace(self, **changes) if changes else self

    # ------------------------------------------------------------------ what the engine needs
    def climb(self, image_shape: tuple) -> Climb:
        """The parameterisation (bound to ``image_shape``), transform and optimiser of this recipe."""
        param = self.param
        if isinstance(param, str) and param in ("fourier", "maco"):
            param = (Fourier if param == "fourier" else Maco)(decay=self.decay)
        return Climb.make(param, self.transforms, self.optimizer, image_shape)

    def regularizer(self):
        """The sum of the weighted regularisers to subtract from the objective, or None when all weights are 0."""
        terms = [weight * REGULARIZERS[name]() for name in REGULARIZERS if (weight := getattr(self, name)) > 0]
        if not terms:
            return None
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        return total

    def strategy_object(self) -> Strategy:
        return strategy_for(self.strategy)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """Plain JSON types: names for named choices, {"name": …, field: …} for a strategy object. A recipe holding
        another object (a Parameterization, Transform or Optimizer object) has no dict: a ValueError says which."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Strategy) and value.name not in STRATEGIES:
                raise ValueError(f"this recipe's strategy {value.describe()!r} holds data, which a recipe cannot "
                                 f"store; use one of {', '.join(STRATEGIES)}")
            if isinstance(value, Strategy):
                value = {"name": value.name, **{k.name: _plain(getattr(value, k.name)) for k in fields(value)}}
            elif isinstance(value, (Parameterization, Transform, Optimizer)):
                raise ValueError(f"this recipe's {f.name} is an object ({value!r}), which a recipe cannot store; "
                                 f"use a name ({_names(f.name)}) to make it serialisable")
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        """The recipe of ``to_dict``; missing fields take the article's values, unknown ones are refused."""
        if not isinstance(data, dict):
            raise TypeError(f"a recipe dict is a dict of its fields; got {type(data).__name__}")
        data = dict(data)
        strategy = data.get("strategy")
        if isinstance(strategy, dict):
            spec = dict(strategy)
            name = spec.pop("name", None)
            if name not in STRATEGIES:
                raise ValueError(f"unknown strategy {name!r} in recipe; valid: {', '.join(STRATEGIES)}")
            data["strategy"] = STRATEGIES[name](**{k: tuple(v) if isinstance(v, list) else v
                                                   for k, v in spec.items()})
        return cls().replace(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        return cls.from_dict(json.loads(text))

    def differences(self, other: Recipe) -> dict:
        """{field: (this value, other value)} for every field where the two differ."""
        a, b = self.to_dict(), recipe_for(other).to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    def name(self) -> str | None:
        """The preset this recipe is, or None."""
        return next((n for n, r in RECIPES.items() if r == self), None)

    def describe(self) -> str:
        preset = self.name()
        if preset:
            return preset
        base = RECIPES["article"]
        changed = [f.name for f in fields(self) if getattr(base, f.name) != getattr(self, f.name)]
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in changed) or "article"


def _check_choice(value, field: str, what: str, names: dict, base: type, article: str) -> None:
    """A recipe field that is a registered name or an object of ``base``, else a ValueError naming the choices."""
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(names)} or {article}")
    elif not isinstance(value, base):
        raise ValueError(f"{field} must be one of {', '.join(names)} or {article}; got {value!r}")


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _names(field: str) -> str:
    return {"param": ", ".join(PARAMETERIZATIONS), "optimizer": ", ".join(OPTIMIZERS),
            "transforms": "None, 'standard'"}.get(field, "a name")


RECIPES: dict = {
    "article": Recipe(),
    "readable": Recipe(steps=256, epsilon=0.05, param="fourier", transforms="standard", optimizer="adam",
                       blur=1.0, warmup=16),
}


def recipe_for(spec) -> Recipe:
    """A Recipe from None (the article's), a preset name, a Recipe or its dict."""
    if spec is None:
        return RECIPES["article"]
    if isinstance(spec, Recipe):
        return spec
    if isinstance(spec, str):
        return Recipe.preset(spec)
    if isinstance(spec, dict):
        return Recipe.from_dict(spec)
    raise TypeError(f"recipe must be a name ({', '.join(RECIPES)}), a Recipe or its dict; got {type(spec).__name__}")
