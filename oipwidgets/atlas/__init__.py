"""The atlas: the OIP of every channel of a model's layers, for a few seeds, computed on Dask, kept in Zarr.

``Atlas.create(path, model, layers="conv", recipe="readable", seeds=(0, 1))`` then ``atlas.compute(client=None)``;
``Atlas.open(path)`` reads it anywhere, without the model. Modules: ``plan`` (layers, blocks, tasks), ``store``
(the Zarr layout, docs/atlas-store.md), ``model_file`` (the model as a file for the workers), ``worker`` (one task
on a worker), ``cluster`` (the client or local cluster), ``progress`` (the bar), ``atlas`` (the ``Atlas`` class).
This package needs the ``atlas`` extra (dask[distributed], zarr>=3); ``import oipwidgets`` does not load it.
"""

from .atlas import Atlas, AtlasTaskError, ComputeReport

__all__ = ["Atlas", "AtlasTaskError", "ComputeReport"]
