"""How the model travels to the workers: as a file, written once into the store, loaded once per worker process.

A model object would be pickled into every task (and Keras models do not pickle well); a file is written once
(``model.keras`` in the store folder, by ``model.save``), or named by the user (``model_path=``, a ``.keras`` or
``.h5`` file every worker can read), and each worker process loads it the first time a task needs it and keeps it
(``load_cached``). A fingerprint of the weights (``fingerprint``) names the model: the store records it, the file
is checked against it when it is written, and the workers' cache is keyed by it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading

import numpy as np

from . import store

__all__ = ["MODEL_FILE", "fingerprint", "save_into", "model_url", "verify", "load_cached", "load"]

MODEL_FILE = "model.keras"

_CACHE: dict = {}  # fingerprint → keras.Model, in each worker process
_LOCK = threading.Lock()


def fingerprint(model) -> str:
    """SHA-256 (hex, 16 digits) of the model: its layers' classes and names, and its weights' shapes, dtypes and
    values in order. The same after ``model.save`` and loading; another model (or other weights) gives another."""
    h = hashlib.sha256()
    for layer in getattr(model, "layers", []):
        h.update(f"{type(layer).__name__}:{layer.name};".encode())
    for w in model.weights:
        value = np.ascontiguousarray(np.asarray(w.numpy() if hasattr(w, "numpy") else w))
        h.update(f"{value.shape}{value.dtype}".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:16]


def model_url(store_url: str, location: str) -> str:
    """Where the workers read the model: ``location`` as the store records it (``MODEL_FILE``, inside the store,
    or the absolute path or URL given as ``model_path``)."""
    if location == MODEL_FILE:
        return store_url.rstrip("/") + "/" + MODEL_FILE
    return location


def save_into(model, store_url: str, storage_options: dict | None = None) -> str:
    """Write ``model`` as ``model.keras`` into the store folder; returns its location (``MODEL_FILE``). A model
    that Keras cannot save (e.g. a subclassed model without ``get_config``) is refused with what to do."""
    target = model_url(store_url, MODEL_FILE)
    try:
        if store.is_url(store_url):
            fs, path = store.fs_of(target, storage_options)
            with tempfile.TemporaryDirectory() as tmp:
                local = os.path.join(tmp, MODEL_FILE)
                model.save(local)
                fs.put_file(local, path)
        else:
            model.save(target)
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for models it cannot save
        raise ValueError(_cannot(model, f"saving it as {MODEL_FILE} failed: {type(err).__name__}: {err}")) from err
    return MODEL_FILE


def verify(url: str, expected: str, model, storage_options: dict | None = None) -> None:
    """Load the model file at ``url`` as a worker will and check it has the weights ``expected`` (a fingerprint);
    a ValueError says what went wrong (a class Keras cannot rebuild, another model's file)."""
    try:
        loaded = _load(url, storage_options)
    except Exception as err:  # noqa: BLE001
        raise ValueError(_cannot(model, f"the file {url!r} could not be loaded back: {err}")) from err
    got = fingerprint(loaded)
    if got != expected:
        raise ValueError(f"the model file {url!r} holds other weights than the model given (fingerprint {got} ≠ "
                         f"{expected}); give the file of this model (model.save(path)) as model_path=")


def load_cached(url: str, expected: str, storage_options: dict | None = None):
    """The model with fingerprint ``expected``, loaded from ``url`` once per process and kept (the workers' cache;
    keyed by the fingerprint, so atlases of one model share the model and its compiled loops)."""
    key = expected
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = _load(url, storage_options)
            _CACHE[key] = model
        return model


def load(url: str, storage_options: dict | None = None):
    """The model file at ``url`` (a local path or an fsspec URL), loaded now (not cached: for the calling process,
    e.g. the dataset examples' pass or the viewer's explorer)."""
    return _load(url, storage_options)


def _load(url: str, storage_options: dict | None):
    from ..models.models import load_model

    if not store.is_url(url):
        return load_model(url)
    fs, path = store.fs_of(url, storage_options)
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(path) or MODEL_FILE)
        fs.get_file(path, local)
        return load_model(local)


def _cannot(model, why: str) -> str:
    return (f"the atlas needs a model file the workers can load, and model {getattr(model, 'name', '?')!r} "
            f"({type(model).__name__}): {why}. For a subclassed model, register its class with "
            "@keras.saving.register_keras_serializable() in a module the workers import and give it get_config(), "
            "or save it yourself and pass model_path='/shared/path/model.keras' (a file every worker can read)")
