"""AtlasViewer: browse an atlas (``oipwidgets.atlas``) in a notebook, page by page, without the model.

``AtlasViewer("my.atlas.zarr")`` (or an ``Atlas``) shows one page of a layer's units (``per_page``, 32 by default)
as PNG tiles of their OIPs, sorted by unit or by objective, for one seed; dead or failed units are muted as in the
zoo (faint, their status in red under the tile) and units not computed yet are blank. A click on a tile opens the
unit's panel (``atlas_unit.UnitPanel``): its OIPs for every seed, its dataset examples with their heatmaps, its
objective and status, and a button that opens an ``OIPExplorer`` on it. The search box takes "layer:channel" (or
a channel of the current layer); prev/next turn the pages.

Lazy: opening reads the store's root attributes only; a page reads the chunks of its units (their done marks, OIPs,
objectives and statuses; ``atlas.reader.AtlasReader``), never a whole array of images, so an atlas of 25,000 units
opens as fast as one of 25. Sorting by objective reads the layer's objectives (one small array). While
``compute()`` runs elsewhere the viewer fills in as tasks finish: "refresh" reads the done marks again, and with
``refresh_every`` (seconds) a background thread checks the page's done marks and redraws when they change.

State is traitlets (``layer``, ``seed``, ``sort``, ``page``, ``selected``, ``colormap``, read-only ``status``), so
code can set and observe it like the other widgets; the top widget has the CSS class ``oip-atlas-viewer``, the
page's figure ``oip-atlas-tiles``, the unit panel ``oip-atlas-unit``.
"""

from __future__ import annotations

import math
import threading

import ipywidgets as widgets
import numpy as np
from traitlets import Enum, Float, Int, TraitError, Unicode, validate

from ..output.atlas_pictures import oip_display
from ..output.render import COLORMAPS, tile_scale
from .atlas_unit import UnitPanel, objective_text
from .base import check_layer, close_tree
from .controls import status_html
from .layout import CONTROL_STYLE, fill, section
from .tilegrid import TileGrid

__all__ = ["AtlasViewer", "PER_PAGE"]

PER_PAGE = 32
SECTION_WIDTH = "270px"
LABEL, RED, FAINT = "#333333", "#d00000", "#999999"
#: screen pixels under a tile for its label: room for the whole line under the last row too
LABEL_PX = 22


class AtlasViewer(widgets.VBox):
    """The pages of an atlas's units, and the panel of the unit clicked (see the module doc).

    atlas: the path (or URL) of an atlas store, or an ``Atlas``. layer: the layer to start on (default: the first).
    per_page / cols: tiles per page and per row. refresh_every: seconds between checks of the page's done marks
    (0: only the refresh button). preprocess: the atlas's preprocess function, when it was made with one (for the
    explorer). storage_options: for a remote store.
    """

    layer = Unicode(help="the layer whose units are shown")
    seed = Int(0, help="the seed (its value) whose OIPs the tiles show")
    sort = Enum(("unit", "objective"), default_value="unit", help="page order: by unit or by objective")
    page = Int(0, help="the page shown (0: the first)")
    selected = Int(None, allow_none=True, help="the unit (channel) whose panel is open")
    colormap = Enum(COLORMAPS, default_value="viridis", help="colour map of grey OIPs")
    refresh_every = Float(0.0, help="seconds between checks of the page's done marks (0: none)")
    status = Unicode("", read_only=True)

    def __init__(self, atlas, *, layer: str | None = None, per_page: int = PER_PAGE, cols: int = 8,
                 refresh_every: float = 0.0, colormap: str = "viridis", preprocess=None, storage_options=None):
        from ..atlas import Atlas
        from ..atlas.reader import AtlasReader
        from ..engine.validation import check_int

        self.atlas = atlas if isinstance(atlas, Atlas) else Atlas.open(atlas, preprocess=preprocess,
                                                                        storage_options=storage_options)
        if not self.atlas.layers:
            raise ValueError(f"the atlas at {self.atlas.url!r} has no layers yet")
        self.reader = AtlasReader(self.atlas)
        self.per_page = check_int(per_page, "per_page")
        self.cols = min(check_int(cols, "cols"), self.per_page)
        self._order_cache: dict = {}  # (layer, seed index) → channels sorted by objective
        self._done_cache: dict = {}  # (layer, seed index) → units computed
        self._shown: list = []  # the channels on the tiles, in tile order
        self._marks = None  # the done marks the page was drawn with (for the periodic check)
        self._model = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher = None
        super().__init__()
        with self.hold_trait_notifications():
            self.layer = self.atlas.layers[0] if layer is None else layer
            self.seed = self.atlas.seeds[0]
            self.colormap = colormap
        self._build()
        self._connect()
        self.refresh_every = float(refresh_every)
        self._draw_page()

    # ------------------------------------------------------------------ validation
    @validate("layer")
    def _check_layer(self, proposal):
        return check_layer(proposal["value"], self.atlas.layers, valid="; layers of this atlas")

    @validate("seed")
    def _check_seed(self, proposal):
        if proposal["value"] not in self.atlas.seeds:
            raise TraitError(f"seed {proposal['value']!r} is not in this atlas; its seeds: {self.atlas.seeds}")
        return proposal["value"]

    @validate("page")
    def _check_page(self, proposal):
        pages = self.pages
        value = proposal["value"]
        if not isinstance(value, int) or not 0 <= value < pages:
            raise TraitError(f"page must be 0..{pages - 1} ({pages} pages of {self.per_page} units); got {value!r}")
        return value

    @validate("selected")
    def _check_selected(self, proposal):
        value = proposal["value"]
        n = self.atlas.plan(self.layer).channels
        if value is not None and not (isinstance(value, int) and 0 <= value < n):
            raise TraitError(f"selected must be a unit of {self.layer!r}: 0..{n - 1}, or None; got {value!r}")
        return value

    @validate("refresh_every")
    def _check_refresh(self, proposal):
        value = float(proposal["value"])
        if not (value == 0 or 0.2 <= value <= 3600):
            raise TraitError(f"refresh_every must be 0 (no periodic check) or 0.2..3600 seconds; got {value!r}")
        return value

    # ------------------------------------------------------------------ view
    def _build(self) -> None:
        style = CONTROL_STYLE
        self.layer_dropdown = widgets.Dropdown(options=self._layer_options(), value=self.layer, description="layer",
                                               style=style, layout=fill())
        self.seed_dropdown = widgets.Dropdown(options=self.atlas.seeds, value=self.seed, description="seed",
                                              style=style, layout=fill(), disabled=len(self.atlas.seeds) < 2)
        self.sort_buttons = widgets.ToggleButtons(options=[("by unit", "unit"), ("by objective", "objective")],
                                                  value=self.sort, style={"button_width": "118px"}, layout=fill())
        self.search_text = widgets.Text(placeholder="layer:channel", description="go to", style=style,
                                        continuous_update=False, layout=fill())
        self.prev_button = widgets.Button(description="prev", icon="chevron-left", layout=fill(flex="1 1 0"))
        self.next_button = widgets.Button(description="next", icon="chevron-right", layout=fill(flex="1 1 0"))
        self.page_label = widgets.HTML(layout=fill())
        self.refresh_button = widgets.Button(description="refresh", icon="refresh",
                                             tooltip="read the done marks again: units computed since show",
                                             layout=fill())
        self.done_label = widgets.HTML(layout=fill())
        self.status_line = widgets.HTML(layout=widgets.Layout(width="100%"))
        h, w, _ = self.atlas.input_shape
        rows = math.ceil(self.per_page / self.cols)
        scale = tile_scale(h, w)
        self.grid = TileGrid(rows, self.cols, (h, w), scheme=self.colormap, clickable=True, scale=scale,
                             label_space=LABEL_PX / scale, css_class="oip-atlas-tiles")
        self.grid.on_click(self._on_tile_click)
        self.panel = UnitPanel(self)
        columns = [
            [section("atlas", [self.layer_dropdown, self.seed_dropdown, self.sort_buttons])],
            [section("pages", [widgets.HBox([self.prev_button, self.next_button], layout=fill()), self.page_label,
                               self.search_text])],
            [section("store", [self.refresh_button, self.done_label])],
        ]
        self.children = [
            widgets.HBox([widgets.VBox(c, layout=widgets.Layout(width=SECTION_WIDTH, flex=f"0 1 {SECTION_WIDTH}",
                                                                margin="0 8px 0 0")) for c in columns],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")),
            self.status_line,
            widgets.Box([self.grid.figure], layout=widgets.Layout(overflow="auto hidden", width="100%")),
            self.panel,
        ]
        self.add_class("oip-atlas-viewer")

    def _connect(self) -> None:
        widgets.link((self.layer_dropdown, "value"), (self, "layer"))
        widgets.link((self.seed_dropdown, "value"), (self, "seed"))
        widgets.link((self.sort_buttons, "value"), (self, "sort"))
        self.prev_button.on_click(lambda _: self.turn(-1))
        self.next_button.on_click(lambda _: self.turn(+1))
        self.refresh_button.on_click(lambda _: self.refresh())
        self.search_text.observe(self._on_search, names="value")
        self.observe(self._on_layer, names="layer")
        self.observe(lambda _: self._redraw(keep_page=False), names=["seed", "sort"])
        self.observe(lambda _: self._draw_page(), names="page")
        self.observe(self._on_selected, names="selected")
        self.observe(self._on_colormap, names="colormap")
        self.observe(self._on_refresh_every, names="refresh_every")

    def _layer_options(self) -> list:
        return [(f"{p.name} ({p.channels} {p.kind})", p.name) for p in self.atlas.plans]

    # ------------------------------------------------------------------ pages
    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.atlas.plan(self.layer).channels / self.per_page))

    def _seed_index(self) -> int:
        return self.atlas.seeds.index(self.seed)

    def order(self) -> np.ndarray:
        """The layer's channels in page order: by unit, or by objective (highest first, not computed last)."""
        n = self.atlas.plan(self.layer).channels
        if self.sort == "unit":
            return np.arange(n)
        key = (self.layer, self._seed_index())
        if key not in self._order_cache:
            values = self.reader.objectives(self.layer, key[1])
            self._order_cache[key] = np.lexsort((np.arange(n), np.where(np.isnan(values), np.inf, -values)))
        return self._order_cache[key]

    def page_channels(self, page: int | None = None) -> np.ndarray:
        """The channels on page ``page`` (default: the current one), in tile order."""
        page = self.page if page is None else int(page)
        if self.sort == "unit":
            n = self.atlas.plan(self.layer).channels
            return np.arange(page * self.per_page, min(n, (page + 1) * self.per_page))
        return self.order()[page * self.per_page: (page + 1) * self.per_page]

    def turn(self, step: int) -> None:
        """The previous (-1) or next (+1) page, if there is one."""
        target = self.page + int(step)
        if 0 <= target < self.pages:
            self.page = target

    def _draw_page(self) -> None:
        """Read the page's units and draw their tiles (only tiles whose picture changed are sent)."""
        with self._lock:
            channels = self.page_channels()
            data = self.reader.page(self.layer, channels, self._seed_index())
            statuses = self.atlas.attrs["statuses"]
            value_range = self.atlas.value_range
            labels, colours = [], []
            with self.grid.figure.hold_sync():
                for i in range(len(self.grid.tiles)):
                    if i >= len(channels):
                        self.grid.set_tile(i, None)
                        labels.append("")
                        colours.append(LABEL)
                        continue
                    c = int(channels[i])
                    status = statuses[data["status"][i]] if data["done"][i] and data["status"][i] >= 0 else None
                    text, bad = objective_text(float(data["objective"][i]), status)
                    if status is None:
                        self.grid.set_tile(i, None)
                        labels.append(f"{c}: …")
                        colours.append(FAINT)
                    else:
                        self.grid.set_tile(i, oip_display(data["oip"][i], value_range, muted=bad))
                        labels.append(f"{c}: {text}")
                        colours.append(RED if bad else LABEL)
                self.grid.set_labels(labels)
                if list(self.grid.labels.colors) != colours:
                    self.grid.labels.colors = colours
                self._shown = [int(c) for c in channels]
                self.grid.select(self._shown.index(self.selected) if self.selected in self._shown else None)
            self._show_page_label(channels)
            self._marks = data["done"].copy()  # last: a draw that failed half-way is done again at the next check

    def _show_page_label(self, channels) -> None:
        plan = self.atlas.plan(self.layer)
        span = f"units {channels.min()}–{channels.max()}" if self.sort == "unit" and len(channels) else \
            f"ranks {self.page * self.per_page + 1}–{self.page * self.per_page + len(channels)}"
        self.page_label.value = (f'<span class="oip-atlas-page">page {self.page + 1} of {self.pages} · '
                                 f"{span}</span>")
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        key = (self.layer, self._seed_index())
        if key not in self._done_cache:  # the layer's done marks: one small read per block, once per refresh
            done = self.reader.done(self.layer, np.arange(0, plan.channels, plan.block))[:, key[1]]
            sizes = np.array([plan.block_range(b)[1] - plan.block_range(b)[0] for b in range(plan.n_blocks)])
            self._done_cache[key] = int(sizes[done].sum())
        self.done_label.value = (f"<small>{self._done_cache[key]} of {plan.channels} {plan.kind} computed for "
                                 f"seed {self.seed}</small>")

    def _redraw(self, keep_page: bool = True) -> None:
        if not keep_page and self.page != 0:
            self.page = 0  # draws
        else:
            self._draw_page()

    # ------------------------------------------------------------------ state changes
    def _on_layer(self, change) -> None:
        self.selected = None
        self._redraw(keep_page=False)
        self._set_status(f"{change['new']}: {self.atlas.plan(change['new']).channels} units, "
                         f"{self.pages} pages. Click a tile for its unit.")

    def _on_tile_click(self, i) -> None:
        if i is None or i >= len(self._shown):
            self.selected = None
            return
        self.selected = self._shown[i]

    def _on_selected(self, change) -> None:
        c = change["new"]
        self.grid.select(self._shown.index(c) if c in self._shown else None)
        if c is None:
            self.panel.clear()
        else:
            self.panel.show(self.layer, c)

    def _on_colormap(self, change) -> None:
        self.grid.scheme = change["new"]
        if self.selected is not None:
            self.panel.show(self.layer, self.selected)

    def _on_search(self, change) -> None:
        text = change["new"].strip()
        if not text:
            return
        try:
            self.go_to(text)
        except ValueError as err:
            self._set_status(f"error: {err}", "error")

    def go_to(self, where: str) -> None:
        """Show a unit: "layer:channel" (the layer's name or path, as the atlas stores it) or a channel of the
        current layer; turns to its page (in the current order) and opens its panel."""
        layer, _, channel = where.rpartition(":")
        layer = layer.strip() or self.layer
        if layer not in self.atlas.layers:
            raise ValueError(f"unknown layer {layer!r}; layers of this atlas: {', '.join(self.atlas.layers)} "
                             "(write layer:channel, e.g. " + f"{self.atlas.layers[0]}:0)")
        n = self.atlas.plan(layer).channels
        try:
            c = int(channel)
        except ValueError:
            raise ValueError(f"{where!r} names no channel; write layer:channel, e.g. {layer}:0") from None
        if not 0 <= c < n:
            raise ValueError(f"layer {layer!r} has {n} units: 0..{n - 1}; got {c}")
        self.layer = layer
        position = int(np.flatnonzero(self.order() == c)[0])
        self.page = position // self.per_page
        self.selected = c
        self._set_status(f"{layer}:{c}")

    # ------------------------------------------------------------------ following a compute
    def refresh(self) -> None:
        """Read the store again (done marks, new seeds and layers, new examples) and redraw the page and panel."""
        with self._lock:
            self.reader.refresh()
            self._order_cache.clear()
            self._done_cache.clear()
            options = self._layer_options()
            if list(self.layer_dropdown.options) != options:
                self.layer_dropdown.options = options
                self.layer_dropdown.value = self.layer
            if list(self.seed_dropdown.options) != self.atlas.seeds:
                self.seed_dropdown.options = self.atlas.seeds
                self.seed_dropdown.value = self.seed
                self.seed_dropdown.disabled = len(self.atlas.seeds) < 2
            self._draw_page()
            if self.selected is not None:
                self.panel.show(self.layer, self.selected)

    def check(self) -> bool:
        """Whether the page's done marks changed since it was drawn; if so, refresh. (What the periodic check runs.)"""
        marks = self.reader.done(self.layer, self.page_channels())[:, self._seed_index()]
        if self._marks is not None and np.array_equal(marks, self._marks):
            return False
        self.refresh()
        return True

    def _on_refresh_every(self, change) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        if change["new"] > 0:
            self._stop = threading.Event()
            self._watcher = threading.Thread(target=self._watch, args=(self._stop, change["new"]), daemon=True,
                                             name="oipwidgets-atlas-viewer")
            self._watcher.start()

    def _watch(self, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            try:
                self.check()
            except Exception as err:  # noqa: BLE001 - a chunk being written may be unreadable for a moment
                self._marks = None  # the next check redraws
                self._set_status(f"periodic check: {type(err).__name__}: {err}", "error")

    # ------------------------------------------------------------------ the model (for the explorer)
    def model(self):
        """The atlas's model, loaded from its file once (the explorer needs it; browsing does not)."""
        if self._model is None:
            self._model = self.atlas.load_model()
        return self._model

    def open_explorer(self, channel: int | None = None):
        """An ``OIPExplorer`` on ``channel`` of the current layer (default: the selected unit), as the panel's
        button opens it; returns it."""
        if channel is not None:
            self.selected = int(channel)
        return self.panel.open_explorer()

    # ------------------------------------------------------------------ status, bytes, closing
    def _set_status(self, text: str, kind: str = "") -> None:
        self.set_trait("status", text)
        self.status_line.value = status_html(text, kind)

    def page_png_bytes(self) -> int:
        """Bytes of the PNGs the page's tiles show (what drawing the page sent, at most, besides the widgets'
        JSON state)."""
        return sum(self.grid.png_nbytes(i) for i in self.grid.shown())

    def close(self) -> None:
        """Stop the periodic check and close every widget of the viewer (tiles, panel, explorer)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self.panel.close()
        self.grid.close()
        close_tree(self)
