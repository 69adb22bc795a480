"""Argument checks shared by the engine, examples, outputs, widgets and CLI: one wording for every bad value.

Each check returns the value in its plain Python type, or raises ``ValueError`` (``TypeError`` only where the kind
of object is wrong, e.g. a string for a number) with a message that names the argument, what is valid and what
was given. Booleans are never accepted as numbers (``True`` is no step count).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

__all__ = ["is_int", "check_int", "check_float", "check_index", "check_choice", "from_spec"]


def is_int(value) -> bool:
    """True for Python and numpy integers, False for bools and everything else."""
    return isinstance(value, (Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, low: int | None = 1, high: int | None = None) -> int:
    """``value`` as an int in ``low..high`` (either bound may be None for none)."""
    ok = is_int(value) and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        if low is not None and high is not None:
            want = f"a whole number from {low} to {high}"
        elif low is not None:
            want = f"a whole number >= {low}"
        elif high is not None:
            want = f"a whole number <= {high}"
        else:
            want = "a whole number"
        raise ValueError(f"{name} must be {want}; got {value!r}")
    return int(value)


def check_float(value, name: str, *, positive: bool = True, low: float | None = None,
                high: float | None = None) -> float:
    """``value`` as a finite float: > 0 when ``positive`` (else >= 0, or >= ``low`` when given), <= ``high``."""
    ok = isinstance(value, (Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))
    ok = ok and math.isfinite(float(value))
    if ok:
        v = float(value)
        if low is not None:
            ok = v >= low
        else:
            ok = v > 0 if positive else v >= 0
        ok = ok and (high is None or v <= high)
    if not ok:
        lower = f">= {low:g}" if low is not None else ("> 0" if positive else ">= 0")
        upper = f" and <= {high:g}" if high is not None else ""
        raise ValueError(f"{name} must be a finite number {lower}{upper}; got {value!r}")
    return float(value)


def check_index(value, n: int, what: str, where: str) -> int:
    """An index into ``n`` things (``0..n-1``): ``what`` names it ("map index"), ``where`` its owner
    ("layer 'Conv2D_3' has 64 maps")."""
    if not is_int(value):
        raise ValueError(f"{what} must be a whole number; got {value!r}")
    if not 0 <= value < n:
        raise ValueError(f"{what} {int(value)} is out of range: {where} ({0}..{n - 1}).")
    return int(value)


def check_choice(value, choices, name: str):
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(str, choices))}")
    return value


def from_spec(spec, base: type, registry: dict, what: str, example: str):
    """An instance of ``base`` from itself or from a name in ``registry`` (name → class, made with no arguments);
    else a ValueError naming the valid names and ``example`` of an object."""
    if isinstance(spec, base):
        return spec
    if isinstance(spec, str) and spec in registry:
        return registry[spec]()
    raise ValueError(f"unknown {what} {spec!r}; valid: {', '.join(registry)} or {example}")
