"""UnitPanel: one unit of an atlas in the ``AtlasViewer``: its OIP for every seed side by side, its dataset examples
with the activation heatmap over each (when the atlas has examples), its objective and status per seed, and a
button that opens an ``OIPExplorer`` on the unit with the atlas's recipe and preprocess.

Everything shown is read when the unit is shown (``AtlasReader.unit`` and ``.examples``: the unit's slices and its
k thumbnail rows). The two grids are ``TileGrid``s (PNG tiles) reused from unit to unit, so clicking through units
keeps the number of widgets flat. The explorer needs the model: the atlas's model file is loaded once, at the first
click on the button.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from ..engine.result import STATUS_LABELS
from ..output.atlas_pictures import heat_overlay, oip_display, thumbnail_rgb8
from ..output.render import tile_scale
from .base import close_tree
from .controls import status_html
from .layout import fill
from .tilegrid import reuse_grid

__all__ = ["UnitPanel", "NO_OBJECTIVE"]

#: statuses whose objective says nothing: the tile is muted and says the status, in red
NO_OBJECTIVE = ("dead", "nonfinite", "error")
EXAMPLE_ROWS = ("image", "heatmap")
LABEL_PX = 22  # screen pixels under a tile for its label (the whole line, under the last row too)


def objective_text(objective: float, status: str | None) -> tuple[str, bool]:
    """(what a tile's label says, whether it is bad): the objective, or the status of a dead or failed unit."""
    if status is None:
        return "not computed", False
    if status in NO_OBJECTIVE:
        return STATUS_LABELS[status], True
    return f"{objective:.2f}", False


class UnitPanel(widgets.VBox):
    """The panel of the viewer's selected unit; ``show(layer, channel)`` fills it, ``clear()`` empties it."""

    def __init__(self, viewer):
        super().__init__(layout=widgets.Layout(width="100%"))
        self.viewer = viewer
        self.title = widgets.HTML(layout=fill())
        self.explorer_button = widgets.Button(description="Open in explorer", icon="search",
                                              tooltip="an OIPExplorer on this unit, with the atlas's recipe and "
                                                      "preprocess (loads the atlas's model)",
                                              layout=widgets.Layout(width="180px"))
        self.explorer_button.on_click(lambda _: self.open_explorer())
        self.note = widgets.HTML(layout=fill())
        self.explorer_area = widgets.VBox()
        self.oip_grid = self.example_grid = None
        self.unit = None  # (layer, channel) shown
        self.add_class("oip-atlas-unit")

    # ------------------------------------------------------------------ showing a unit
    def show(self, layer: str, channel: int) -> None:
        reader, atlas = self.viewer.reader, self.viewer.atlas
        self.unit = (layer, int(channel))
        facts = reader.unit(layer, channel)
        seeds = atlas.seeds
        h, w, _ = atlas.input_shape
        statuses = atlas.attrs["statuses"]
        scale = tile_scale(h, w) * 4 / 3
        grid = reuse_grid(self.oip_grid, 1, len(seeds), (h, w), scheme=self.viewer.colormap, scale=scale,
                          label_space=LABEL_PX / scale, css_class="oip-atlas-oips")
        lines = []
        for s, seed in enumerate(seeds):
            code = int(facts["status"][s]) if s < len(facts["status"]) else -1
            status = statuses[code] if facts["done"][s] and code >= 0 else None
            text, bad = objective_text(float(facts["objective"][s]) if s < len(facts["objective"]) else np.nan,
                                       status)
            if status is None:
                grid.set_tile(s, None, f"seed {seed}: not computed")
            else:
                grid.set_tile(s, oip_display(facts["oip"][s], atlas.value_range, muted=bad), f"seed {seed}: {text}")
                lines.append(f"seed {seed}: objective {facts['objective'][s]:.4g}, "
                             f"{STATUS_LABELS.get(status, status)}, {int(facts['steps'][s])} steps")
        self.oip_grid = grid
        kind = "unit" if atlas.plan(layer).kind == "units" else "map"
        children = [self.title, grid.figure]
        examples = reader.examples(layer, channel)
        if examples is not None and len(examples["index"]):
            children += [self._examples(examples, kind)]
        else:
            self.note.value = ("<small>no dataset examples in this atlas: atlas.add_examples(images) adds "
                               "them</small>" if examples is None else "")
            children += [self.note]
        self.title.value = (f"<b>{html.escape(layer)} {kind} {int(channel)}</b>: its OIP for each seed"
                            + (" and the dataset images that activate it most" if examples is not None else "")
                            + f"<br><small>{html.escape('; '.join(lines) or 'not computed yet')}</small>")
        self.children = [*children, self.explorer_button, self.explorer_area]

    def _examples(self, ex: dict, kind: str) -> widgets.Widget:
        """The examples grid: the thumbnails, and under each its heatmap (maps only)."""
        th, tw = ex["thumbnails"].shape[1:3]
        k = len(ex["index"])
        maps = ex["map"]
        rows = 2 if maps is not None else 1
        scale = tile_scale(th, tw) * 2 / 3
        grid = reuse_grid(self.example_grid, rows, k, (th, tw), scale=scale, label_space=LABEL_PX / scale,
                          css_class="oip-atlas-examples", row_labels=EXAMPLE_ROWS[:rows])
        high = float(np.nanmax(maps)) if maps is not None and maps.size else 0.0
        for r in range(k):
            thumb = ex["thumbnails"][r]
            grid.set_tile(r, thumbnail_rgb8(thumb) / 255.0, f"#{int(ex['index'][r])}: {ex['activation'][r]:.2f}")
            if maps is not None:
                grid.set_tile(k + r, heat_overlay(thumb, maps[r], high) / 255.0, "")
        self.example_grid = grid
        caption = widgets.HTML(f"<small>the {k} images that activate this {kind} most (#image id: activation)"
                               + ("; below each, its activation map over it (bright: strong)" if maps is not None
                                  else "") + "</small>", layout=fill())
        return widgets.VBox([caption, grid.figure], layout=widgets.Layout(overflow="auto hidden", width="100%"))

    def clear(self) -> None:
        self.unit = None
        self.children = []

    # ------------------------------------------------------------------ the explorer
    def open_explorer(self):
        """An ``OIPExplorer`` on the shown unit (the atlas's model, recipe, preprocess and the viewer's seed), shown
        under the panel; returns it."""
        if self.unit is None:
            raise ValueError("no unit shown: click a tile first")
        from .explorer import OIPExplorer

        atlas = self.viewer.atlas
        layer, channel = self.unit
        spec = atlas.attrs["preprocess"]
        if "callable" in spec and atlas._preprocess_fn is None:
            self.note.value = status_html(f"this atlas was made with the preprocess function {spec['callable']!r}; "
                                          "open the viewer with AtlasViewer(path, preprocess=that_function)", "error")
            return None
        try:
            model = self.viewer.model()
        except Exception as err:  # noqa: BLE001 - shown, not raised: a click has no caller
            self.viewer._set_status(f"error: the atlas's model could not be loaded: {err}", "error")
            return None
        shape = atlas.attrs["model"].get("input_shape")
        explorer = OIPExplorer(model, layer, map_index=int(channel), recipe=atlas.recipe,
                               preprocess=atlas._preprocess_fn or spec["preset"], seed=int(self.viewer.seed),
                               input_shape=tuple(shape) if shape else None, colormap=self.viewer.colormap)
        for old in self.explorer_area.children:
            old.close()
        self.explorer_area.children = [explorer]
        return explorer

    def close(self) -> None:
        for explorer in self.explorer_area.children:
            explorer.close()
        for grid in (self.oip_grid, self.example_grid):
            if grid is not None:
                grid.close()
                close_tree(grid.figure)
        for w in (self.title, self.explorer_button, self.note, self.explorer_area):
            w.close()
        super().close()
