"""Keys of compiled computations: what an object bakes into a traced graph, as a hashable value.

A compiled ascent loop is shared by every objective (and input mode) with the same key, so the key must cover
everything that changes the traced computation: the class and every constant the object keeps. ``Frozen`` objects
compute their key right after construction (an attribute that cannot be part of a key fails there, loudly) and
refuse changes afterwards, so a key never goes stale.
"""

from __future__ import annotations

import abc
import numbers

import numpy as np

__all__ = ["Frozen", "FrozenMeta", "structure_key", "value_key"]


def value_key(value, where: str):
    """A hashable stand-in for a constant: numbers, strings, None, tuples/lists of them, numpy arrays (by shape,
    dtype and bytes), objects with a ``key()`` and other hashable objects (functions: by identity)."""
    if value is None or isinstance(value, (str, bool, numbers.Number, np.generic)):
        return value
    if hasattr(value, "key") and callable(value.key) and isinstance(value, Frozen):
        return value.key()
    if isinstance(value, (list, tuple)):
        return ("seq",) + tuple(value_key(v, where) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple((k, value_key(value[k], where)) for k in sorted(value))
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # a tf tensor or variable
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        return ("array", value.shape, str(value.dtype), value.tobytes())
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"{where} of type {type(value).__name__} cannot be part of the compiled-loop key: keep numbers, "
            "strings, tuples or arrays as constants, or declare it a per-image parameter"
        ) from None
    return value


def structure_key(obj, skip=()) -> tuple:
    """(module.class, (name, key) for every public attribute not in ``skip``), in name order."""
    cls = type(obj)
    items = tuple(
        (name, value_key(value, f"{cls.__name__}.{name}"))
        for name, value in sorted(vars(obj).items())
        if not name.startswith("_") and name not in skip
    )
    return (f"{cls.__module__}.{cls.__qualname__}",) + items


class FrozenMeta(abc.ABCMeta):
    """After ``__init__``: compute the key once (errors surface at construction) and freeze the instance."""

    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        object.__setattr__(obj, "_key", obj._compute_key())
        object.__setattr__(obj, "_frozen", True)
        return obj


class Frozen(metaclass=FrozenMeta):
    """Base for immutable, keyed objects: attributes are set in ``__init__`` only; ``key()`` is hashable."""

    _frozen = False

    def __setattr__(self, name, value):
        if self._frozen:
            raise AttributeError(f"{type(self).__name__} objects are immutable; make a new one instead")
        object.__setattr__(self, name, value)

    def _compute_key(self) -> tuple:
        return structure_key(self)

    def key(self) -> tuple:
        """Hashable structure: equal keys share a compiled loop."""
        return self._key
