"""The atlas: the OIP of every channel of a model's layers, for a few seeds, computed on Dask, kept in Zarr.

``Atlas.create(path, model, layers="conv", recipe="readable", seeds=(0, 1))`` then ``atlas.compute(client=None)``;
``Atlas.open(path)`` reads it anywhere, without the model. Modules: ``plan`` (layers, blocks, tasks), ``store``
(the Zarr layout, docs/atlas-store.md), ``model_file`` (the model as a file for the workers), ``worker`` (one task
on a worker), ``cluster`` (the client or local cluster), ``progress`` (the bar), ``atlas`` (the ``Atlas`` class);
for browsing and sharing: ``images`` (example images from arrays, Datasets, folders), ``forward`` (one pass for all
layers), ``topk`` (the streamed top k), ``examples`` (``Atlas.add_examples``), ``reader`` (lazy reads for views),
``site`` (``Atlas.export_site``). The notebook viewer is ``oipwidgets.widgets.atlas_viewer.AtlasViewer``.
This package needs the ``atlas`` extra (dask[distributed], zarr>=3); ``import oipwidgets`` does not load it.
"""

from .atlas import Atlas, AtlasTaskError, ComputeReport
from .examples import ExamplesReport
from .site import SiteReport

__all__ = ["Atlas", "AtlasTaskError", "ComputeReport", "ExamplesReport", "SiteReport"]
