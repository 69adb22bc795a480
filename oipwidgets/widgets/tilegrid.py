"""TileGrid: a bqplot figure showing a grid of small images (tiles) with one colour map and a label each.

Each tile is its own ``bqplot.Image`` mark (a ``Tile``) placed on shared x/y scales, showing an ``ipywidgets.Image``
that holds 8-bit PNG bytes made in Python, so updating one tile sends only that tile's PNG to the browser.

* Grey tiles ((h, w) display values, e.g. from ``render.plain_display``) are coloured with the grid's colour map
  (``scheme``, a matplotlib name as in ``render.COLORMAPS``) over its colour range ``colors.min..colors.max``
  (default 0..1) and sent as palette PNGs (one byte per pixel).
* Colour tiles ((h, w, 3) display values in the colour range) are shown as RGB, without colour map.
* Tiles are drawn ``scale`` screen pixels per image pixel in x and in y, so they keep the image's aspect ratio
  (``tile_box`` says where bqplot draws one; ``render.tile_scale`` gives ~84–140 px a tile). A tile
  drawn smaller than its image (``scale`` < 1, e.g. 224-px images at ×0.5) is area-averaged down to at most
  ``png_scale`` (1.25) × its screen size before encoding: a 224×224×3 tile (112 px on screen) becomes a 140×140
  PNG, at most ~60 KB even for pure noise instead of ~150 KB, so the explorer's largest live update (the start
  image drawn twice, plain and enhanced: four tiles) stays under 300 KB. Enlarged tiles are sent at their own size
  and drawn pixelated (crisp image pixels).
* A tile whose values, colour map and range are unchanged is not sent again. bqplot's Image view redraws only when
  the mark gets another ``ipywidgets.Image``, so each tile owns two and alternates between them (double buffering):
  the number of widgets stays the same however often tiles change.

Read back what a tile shows with ``grid.pixels(i)`` (the uint8 RGB decoded from the PNG last sent) or
``grid.tiles[i].values`` (the display values given, float32; ``.color`` is the same, kept from the HeatMap days).
Labels are one ``bqplot.Label`` mark. Used by the explorer (snapshots), the zoo (details) and the activation viewer.
``ImageMosaic`` draws a whole zoo of colour tiles as one PNG.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from bqplot import Figure, Image, Label, LinearScale, Scatter
from ipywidgets import Image as ImageWidget
from ipywidgets import Layout, widget_serialization
from traitlets import Instance

from ..output.render import downsample, plain_display, png_bytes, png_pixels, tile_scale, to_rgb8
from .geometry import screen_box
from .mosaic import Mosaic

__all__ = ["TileGrid", "Tile", "ImageMosaic", "reuse_grid", "PNG_SCALE"]

#: A tile drawn smaller than its image is sent as a PNG of at most this many times its screen size.
PNG_SCALE = 1.25
#: Screen pixels under each tile for its label, and left of the rows for the row labels (10-px text).
LABEL_PX, ROW_LABEL_PX = 16, 18
#: Screen pixels of blank margin around the tiles, on each side of the figure.
MARGIN_PX = 4
_EMPTY = png_bytes(np.full((1, 1, 3), 255, np.uint8))


def _new_image() -> ImageWidget:
    return ImageWidget(value=_EMPTY, format="png")


class Tile(Image):
    """One tile: a ``bqplot.Image`` mark (same front-end model and view) that remembers, kernel side only, the
    display values it shows (``values``; never sent). ``spare`` is its second ``ipywidgets.Image``: ``show(png)``
    fills the spare and swaps the two in one message (bqplot redraws an Image mark only when its ``image`` widget
    changes). ``spare`` is a synced trait only so that whatever closes a widget tree through its traits (e.g.
    ``close()`` of the explorer) finds it; the front end ignores it."""

    spare = Instance(ImageWidget, allow_none=True).tag(sync=True, **widget_serialization)

    def __init__(self, **kwargs):
        kwargs.setdefault("image", _new_image())
        kwargs.setdefault("spare", _new_image())
        super().__init__(**kwargs)
        self.values = None
        self._key = None  # the (scheme, low, high) the PNG was made with; None = nothing shown yet

    @property
    def color(self):
        """The display values shown (float32), as ``HeatMap.color`` held them."""
        return self.values

    def show(self, png: bytes) -> None:
        """Draw ``png`` (PNG bytes), unless it is shown already."""
        if png == self.image.value:
            return
        self.spare.value = png  # the image the mark does not show: no redraw yet
        with self.hold_sync():
            self.image, self.spare = self.spare, self.image  # the mark switches: the browser draws the new PNG

    def close_images(self) -> None:
        """Close the tile's two ``ipywidgets.Image``."""
        for w in (self.image, self.spare):
            if w is not None:
                w.close()


def _png_size(shape, scale: float, png_scale: float = PNG_SCALE) -> tuple[int, int]:
    """The PNG size (h, w) for an image of ``shape`` drawn ``scale`` screen pixels per pixel."""
    h, w = int(shape[0]), int(shape[1])
    if scale * png_scale >= 1.0:
        return h, w
    f = scale * png_scale
    return max(1, round(h * f)), max(1, round(w * f))


class TileGrid:
    """``rows`` × ``cols`` tiles of ``tile_shape`` (h, w) pixels in one bqplot ``Figure`` (``self.figure``).

    gap: blank space between tiles, in pixels of a tile; label_space: room under each tile for its label, in
    pixels of a tile (None: 16 screen pixels); scale: screen pixels per image pixel (None: ``render.tile_scale``,
    ~84–140 px a tile); scheme: the colour map of grey tiles; png_scale: a tile drawn smaller than its image is sent
    at most this many times its screen size; row_labels: one text per row, written upwards left of the row;
    clickable: tiles take clicks (``on_click``) and the clicked one is outlined in red (``select``).
    """

    def __init__(self, rows: int, cols: int, tile_shape=(28, 28), *, gap: float = 4, label_space: float | None = None,
                 scale: float | None = None, scheme: str = "viridis", css_class: str | None = None,
                 png_scale: float = PNG_SCALE, row_labels=None, clickable: bool = False):
        self.rows, self.cols = int(rows), int(cols)
        self.h, self.w = (int(s) for s in tile_shape)
        self.scale = float(tile_scale(self.h, self.w) if scale is None else scale)
        self.png_size = _png_size((self.h, self.w), self.scale, png_scale)
        # label room under a tile and the row-label margin: given in image pixels, by default what 10-px text needs
        self.gap = float(gap)
        self.label_space = float(LABEL_PX / self.scale if label_space is None else label_space)
        self.row_labels = None if row_labels is None else [str(t) for t in row_labels]
        if self.row_labels is not None and len(self.row_labels) != self.rows:
            raise ValueError(f"row_labels needs one label per row ({self.rows}); got {len(self.row_labels)}")
        self.margin = 0.0 if self.row_labels is None else ROW_LABEL_PX / self.scale
        self._click, self.row_label_mark = None, None
        # no padding: bqplot would shrink both scales by the click squares' half size in px, squeezing the tiles
        self.xs = LinearScale(min=0.0, max=float(self._width), allow_padding=False)
        self.ys = LinearScale(min=0.0, max=float(self._height), reverse=True, allow_padding=False)
        #: the colour range of grey tiles (values ``min`` → first colour of the map, ``max`` → last) and the map;
        #: a change applies to the tiles drawn after it (``set_range`` redraws the shown ones)
        self.colors = SimpleNamespace(min=0.0, max=1.0, scheme=scheme)
        scales = {"x": self.xs, "y": self.ys}
        self.tiles = []
        for i in range(self.rows * self.cols):
            x0, y0 = self._origin(i)
            self.tiles.append(Tile(x=(x0, x0 + self.w), y=(y0 + self.h, y0), scales=scales, visible=False,
                                   interactions={}))
        lx = np.array([self._origin(i)[0] + self.w / 2 for i in range(len(self.tiles))], np.float32)
        ly = np.array([self._origin(i)[1] + self.h + self.label_space * 0.85 for i in range(len(self.tiles))], np.float32)
        self.labels = Label(x=lx, y=ly, text=[""] * len(self.tiles), scales={"x": self.xs, "y": self.ys},
                            align="middle", default_size=10, font_weight="normal", colors=["#333333"])
        marks = [*self.tiles, self.labels]
        if self.row_labels is not None:  # written upwards in the margin left of each row
            self.row_label_mark = Label(
                x=np.full(self.rows, self.margin * 0.45, np.float32),
                y=np.array([self._origin(self.index(r, 0))[1] + self.h / 2 for r in range(self.rows)], np.float32),
                text=self.row_labels, scales={"x": self.xs, "y": self.ys}, align="middle", rotate_angle=-90,
                default_size=10, font_weight="normal", colors=["#666666"])
            marks.append(self.row_label_mark)
        self.hits = None
        if clickable:  # one invisible square per tile takes the clicks; the selected one is outlined
            self.hits = Scatter(x=lx, y=ly - self.label_space * 0.85 - self.h / 2, scales={"x": self.xs, "y": self.ys},
                                marker="square", default_size=int((min(self.h, self.w) * self.scale) ** 2),
                                opacities=[0.02], colors=["white"], stroke="white", interactions={"click": "select"},
                                selected_style={"opacity": 1.0, "fill": "none", "stroke": "#d00000",
                                                "stroke-width": 3},
                                unselected_style={"opacity": 0.02})
            self.hits.observe(self._on_hit, "selected")
            marks.append(self.hits)
        # the element's size is the plot area plus the margins, and its aspect ratio (which bqplot applies to the
        # element) is that of the whole element: at its own size the tiles are exactly scale × their pixels, and a
        # figure made smaller keeps their shape; it is not shrunk by a flex row (its box scrolls instead)
        width = round(self._width * self.scale) + 2 * MARGIN_PX
        height = round(self._height * self.scale) + 2 * MARGIN_PX
        self.figure = Figure(
            marks=marks,
            axes=[],
            fig_margin=dict.fromkeys(("top", "bottom", "left", "right"), MARGIN_PX),
            padding_x=0.0,
            padding_y=0.0,
            min_aspect_ratio=width / height,
            max_aspect_ratio=width / height,
            layout=Layout(width=f"{width}px", height=f"{height}px", min_width=f"{width}px", flex="0 0 auto"),
            background_style={"fill": "white"},
        )
        if css_class:
            self.figure.add_class(css_class)

    @property
    def _width(self) -> float:
        return self.margin + self.cols * (self.w + self.gap) - self.gap

    @property
    def _height(self) -> float:
        return self.rows * (self.h + self.label_space + self.gap) - self.gap

    def _origin(self, i: int) -> tuple[float, float]:
        r, c = divmod(i, self.cols)
        return self.margin + c * (self.w + self.gap), r * (self.h + self.label_space + self.gap)

    def tile_box(self, i: int = 0) -> tuple[float, float, float, float]:
        """(left, top, width, height) in CSS px of tile i's image inside the plot area, as bqplot draws it at the
        figure's layout size (``geometry.screen_box``): ``scale`` × (w, h) for every tile shape."""
        x0, y0 = self._origin(int(i))
        return screen_box(self.figure, self.xs, self.ys, (x0, x0 + self.w), (y0, y0 + self.h))

    def on_click(self, callback) -> None:
        """``callback(i)`` when tile i is clicked (the grid must be made with ``clickable=True``); ``callback(None)``
        when the selected tile is clicked again (nothing selected)."""
        if self.hits is None:
            raise ValueError("this TileGrid takes no clicks: make it with clickable=True")
        self._click = callback

    def _on_hit(self, change):
        picked = change["new"]
        if self._click is not None:
            self._click(int(picked[0]) if picked is not None and len(picked) else None)

    def select(self, i: int | None) -> None:
        """Outline tile i (None: no tile), as a click does, without calling the click callback."""
        if self.hits is None:
            return
        callback, self._click = self._click, None
        try:
            self.hits.selected = None if i is None else [int(i)]
        finally:
            self._click = callback

    def index(self, row: int, col: int) -> int:
        return row * self.cols + col

    def set_tile(self, i: int, values: np.ndarray | None, label: str | None = None) -> None:
        """Show ``values`` on tile i (None hides it) and set its label (None keeps it).

        values: (h, w) display values (grey, coloured with ``scheme`` over ``colors.min..colors.max``; (h, w, 1)
        is taken as grey) or (h, w, 3) (colour, RGB in the same range). Unchanged tiles are not sent again.
        """
        tile = self.tiles[i]
        if values is None:
            tile.visible = False
        else:
            values = np.asarray(values, dtype=np.float32)
            if values.ndim == 3 and values.shape[-1] == 1:
                values = values[..., 0]
            if values.shape[:2] != (self.h, self.w) or not (values.ndim == 2 or values.shape[-1] == 3):
                raise ValueError(f"tile {i} takes an image of shape {(self.h, self.w)} or {(self.h, self.w, 3)}; "
                                 f"got {values.shape}")
            self._draw(i, values)
            tile.visible = True
        if label is not None and self.labels.text[i] != label:
            text = list(self.labels.text)
            text[i] = label
            self.labels.text = text

    def _draw(self, i: int, values: np.ndarray | None = None) -> None:
        """Send tile i's PNG of ``values`` (None: its current values, e.g. for a new colour map), unless it shows
        exactly this already."""
        tile = self.tiles[i]
        key = (self.colors.scheme, float(self.colors.min), float(self.colors.max))
        if values is None:
            values = tile.values
        elif (tile._key == key and tile.values is not None and tile.values.shape == values.shape
              and np.array_equal(tile.values, values)):
            return
        else:
            values = np.array(values, dtype=np.float32)  # a copy: the caller may reuse its array
        if tile._key == key and values is tile.values:
            return
        tile.values, tile._key = values, key
        tile.show(png_bytes(downsample(values, self.png_size), key[0], key[1], key[2]))

    def redraw(self) -> None:
        """Re-send the shown tiles whose colour map or range changed."""
        for i, tile in enumerate(self.tiles):
            if tile.values is not None:
                self._draw(i)

    def set_range(self, low: float, high: float) -> None:
        """The colour range of grey tiles (``high`` <= ``low``: ``low`` .. ``low`` + 1); shown tiles follow."""
        low, high = float(low), float(high)
        self.colors.min, self.colors.max = low, high if high > low else low + 1.0
        self.redraw()

    def pixels(self, i: int) -> np.ndarray:
        """The uint8 RGB (H, W, 3) tile i shows in the browser: its PNG, decoded (possibly downsampled, see
        ``png_size``)."""
        return png_pixels(self.tiles[i].image.value)

    def png_nbytes(self, i: int) -> int:
        """Size of tile i's PNG in bytes (what one update of it sends, besides a few hundred bytes of JSON)."""
        return len(self.tiles[i].image.value)

    def set_labels(self, labels) -> None:
        """All labels at once (one string per tile)."""
        labels = list(labels) + [""] * (len(self.tiles) - len(labels))
        labels = labels[: len(self.tiles)]
        if list(self.labels.text) != labels:
            self.labels.text = labels

    def show_examples(self, top, label: str, first: int = 0) -> None:
        """The images of a ``TopK`` (raw, shown plain: grey through the colour map, colour as colour) on the tiles
        from ``first`` on, each labelled ``label.format(index=..., activation=...)``."""
        for j, (index, activation, image) in enumerate(zip(top.indices, top.activations, top.images)):
            self.set_tile(first + j, plain_display(np.asarray(image, np.float32)),
                          label.format(index=index, activation=activation))

    def close(self) -> None:
        """Close every widget of the grid (tiles and their images, labels, scales, figure): a grid that is replaced
        leaves nothing behind in the kernel or the browser."""
        for tile in self.tiles:
            tile.close_images()
        extra = [m for m in (self.row_label_mark, self.hits) if m is not None]
        for w in (*self.tiles, self.labels, *extra, self.xs, self.ys, self.figure):
            w.close()

    def fits(self, rows: int, cols: int, tile_shape) -> bool:
        """Whether this grid has ``rows`` × ``cols`` tiles of ``tile_shape`` (h, w), so it can be reused."""
        return (self.rows, self.cols, self.h, self.w) == (int(rows), int(cols), *(int(s) for s in tile_shape))

    def clear(self) -> None:
        """Hide every tile and blank every label (their images stay in the kernel: showing the same again sends
        nothing)."""
        with self.figure.hold_sync():
            for tile in self.tiles:
                tile.visible = False
            self.set_labels([])
            self.select(None)

    @property
    def scheme(self) -> str:
        return self.colors.scheme

    @scheme.setter
    def scheme(self, value: str) -> None:
        """A new colour map: grey tiles shown are recoloured (sent again), colour tiles are not."""
        self.colors.scheme = value
        for i, tile in enumerate(self.tiles):
            if tile.values is not None and tile.values.ndim == 2:
                self._draw(i)

    def shown(self) -> list[int]:
        """Indices of the visible tiles."""
        return [i for i, t in enumerate(self.tiles) if t.visible]


def reuse_grid(old: TileGrid | None, rows: int, cols: int, tile_shape, **kwargs) -> TileGrid:
    """``old``, cleared, when it has this layout; else a new ``TileGrid`` (and ``old``'s widgets closed). Views that
    redraw often (a map change, a tile click) keep the number of live widgets flat this way. A new ``scheme``
    applies to the reused grid too."""
    if old is not None and old.fits(rows, cols, tile_shape):
        old.clear()
        if "scheme" in kwargs and kwargs["scheme"] != old.scheme:
            old.scheme = kwargs["scheme"]
        return old
    if old is not None:
        old.close()
    return TileGrid(rows, cols, tile_shape, **kwargs)


class ImageMosaic(Mosaic):
    """A ``Mosaic`` (same layout, labels, click squares and API) whose tiles are one PNG on a ``bqplot.Image``
    instead of a float ``HeatMap``: colour tiles ((n, h, w, 3) in 0..1) are shown as colour, grey ones through the
    colour map; values below 0 (``BLANK``) are blank (white). Tiles are ~84–140 px on screen
    (``render.tile_scale``); the PNG is at most ``png_scale`` × the screen size. ``pixels()`` reads back the mosaic
    as last sent (uint8 RGB, at PNG size)."""

    def __init__(self, cmap: str = "viridis", css_class: str | None = None, png_scale: float = PNG_SCALE):
        super().__init__(cmap, css_class)
        self.cmap, self.png_scale = cmap, float(png_scale)
        self.heatmap.close()
        self.colors.close()
        self.heatmap = self.colors = None
        self.image = Tile(scales={"x": self.xs, "y": self.ys}, interactions={})
        self.figure.marks = [self.image, self.labels, self.notes, self.hits]
        self.scale = 1.0

    def screen_scale(self, h: int, w: int) -> float:
        """``render.tile_scale``: ~84–140 px a tile, large images shrunk."""
        self.scale = tile_scale(h, w)
        return self.scale

    def draw(self, tiles: np.ndarray, labels=None, red=None, notes=None) -> None:
        """Tiles (n, h, w[, 3]) in 0..1 (below 0: blank) in item order; ``labels``/``red``/``notes`` as
        ``Mosaic.draw``."""
        h, w, gap, label = self.tile
        tiles = np.asarray(tiles, np.float32)
        n = len(self.order)
        colour = np.empty((n, h + label, w, 3), np.float32)
        colour.fill(np.nan)
        shown = tiles[self.order] if n else tiles[:0]
        if shown.ndim == 3:  # grey: through the colour map, blank where below 0
            rgb = to_rgb8(np.clip(shown, 0, 1).reshape(-1, w), self.cmap).reshape(n, h, w, 3) / 255.0
            colour[:, :h] = np.where(shown[..., None] < 0, np.nan, rgb)
        else:
            colour[:, :h] = np.where(shown < 0, np.nan, shown)
        rows = -(-n // self.cols) if n else 1
        out = np.full((rows * (h + label + gap) - gap, self.cols * (w + gap) - gap, 3), np.nan, np.float32)
        for i in range(n):
            r, c = divmod(i, self.cols)
            out[r * (h + label + gap): r * (h + label + gap) + h + label, c * (w + gap): c * (w + gap) + w] = colour[i]
        out = np.where(np.isnan(out), 1.0, out)  # blank: white
        size = _png_size(out.shape, self.scale, self.png_scale)
        png = png_bytes(to_rgb8(downsample(out, size)))
        with self.figure.hold_sync():
            self.image.x, self.image.y = (0.0, float(out.shape[1])), (float(out.shape[0]), 0.0)
            self.image.values = out
            self.image.show(png)
            if labels is not None:
                self.labels.text = list(labels)
                self.labels.colors = ["#d00000" if r else "#333333" for r in (red or [False] * n)]
                self.notes.text = list(notes) if notes is not None else [""] * n

    def pixels(self) -> np.ndarray:
        return png_pixels(self.image.image.value)

    def set_colormap(self, cmap: str) -> None:
        """The colour map of grey tiles (applies from the next ``draw``)."""
        self.cmap = cmap
