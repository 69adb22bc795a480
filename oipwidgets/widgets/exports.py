"""ExportsResult: a widget's ``OIPResult`` to files (PNG, grid PNG, GIF, .npz) through ``oipwidgets.output.export``."""

from __future__ import annotations

from ..engine.result import OIPResult
from ..output import export

__all__ = ["ExportsResult"]


class ExportsResult:
    """Mixin for a widget with an ``OIPResult`` trait ``result`` (None before the first run) and a ``colormap``."""

    def _need_result(self) -> OIPResult:
        if self.result is None:
            raise ValueError("nothing to export yet: run the explorer first (explorer.run(wait=True))")
        return self.result

    def save_png(self, path, contrast: bool = False):
        """The final OIP as PNG."""
        return export.save_png(self._need_result(), path, cmap=self.colormap, contrast=contrast)

    def save_grid_png(self, path):
        """The start image and snapshots, plain and contrast-enhanced, as PNG."""
        return export.save_grid_png(self._need_result(), path, cmap=self.colormap)

    def save_gif(self, path):
        """The emerging pattern as an animated GIF."""
        return export.save_gif(self._need_result(), path, cmap=self.colormap)

    def save_npz(self, path):
        """The result (image, snapshots, steps, losses, parameters) as .npz."""
        return self._need_result().to_npz(path)
