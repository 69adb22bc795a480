"""Seeded training without touching the caller's random state.

``keras.utils.set_random_seed`` is what makes a Keras training run repeatable, but it reseeds Python's ``random``,
NumPy's legacy generator, TensorFlow's global seed and Keras's global seed generator for the whole process: a user's
notebook that had seeded its own experiment would silently continue from our seed. ``seeded(seed)`` gives the code
inside it exactly those seeds and puts every one of them back on exit, so a run is repeatable and the notebook's own
random sequences carry on as if nothing had happened.

Keras and TensorFlow have no public getter for their global seeds; the two private attributes used here are read
defensively, and if a future version lacks them the TensorFlow/Keras part is left alone (the run is then seeded by
the explicit op seeds only, never by a global change).
"""

from __future__ import annotations

import contextlib
import random

import numpy as np

__all__ = ["seeded"]


def _keras_state():
    """(get, set) for Keras's thread-local global seed and seed generator, or None if this Keras lacks them."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
        from keras.src.utils.rng_utils import GLOBAL_RANDOM_SEED
    except ImportError:  # pragma: no cover - depends on the installed Keras
        return None
    names = (GLOBAL_RANDOM_SEED, GLOBAL_SEED_GENERATOR)

    def get():
        return tuple(global_state.get_global_attribute(n) for n in names)

    def put(values):
        for n, v in zip(names, values):
            global_state.set_global_attribute(n, v)

    return get, put


def _tf_context():
    """TensorFlow's eager context if it carries the global seed where TF 2.x keeps it (``_seed``, ``_rng``)."""
    try:
        from tensorflow.python.eager import context
    except ImportError:  # pragma: no cover
        return None
    ctx = context.context()
    return ctx if hasattr(ctx, "_seed") and hasattr(ctx, "_rng") else None


@contextlib.contextmanager
def seeded(seed: int):
    """Run the body as after ``keras.utils.set_random_seed(seed)``, then restore every generator it seeds.

    The TensorFlow seed is set on the eager context without clearing its kernel cache, so the caller's unseeded
    stateful random ops keep their streams too.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer; got {seed!r}")
    seed = int(seed)
    py_state, np_state = random.getstate(), np.random.get_state()
    keras_state = _keras_state()
    ctx = _tf_context()
    saved_keras = keras_state[0]() if keras_state else None
    saved_tf = (ctx._seed, ctx._rng) if ctx is not None else None
    try:
        random.seed(seed)
        np.random.seed(seed)
        if keras_state:
            keras_state[1]((seed, None))  # None: Keras rebuilds its generator from Python's (now seeded) random
        if ctx is not None:
            ctx._seed, ctx._rng = seed, random.Random(seed)
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if keras_state:
            keras_state[1](saved_keras)
        if ctx is not None:
            ctx._seed, ctx._rng = saved_tf
