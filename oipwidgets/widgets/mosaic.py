"""Mosaic: many same-size tiles drawn as ONE bqplot ``HeatMap`` (tiles separated by blank gaps, a blank band under
each for its label), a ``Label`` mark for the labels, a second one for a note under a label (e.g. "↻ warm-up") and
an invisible ``Scatter`` of one square per tile that takes the clicks. One image for a whole layer keeps the zoo
light in the browser, whatever the number of maps. Tiles keep the images' aspect ratio (scales without padding,
see ``geometry.py``; ``tile_box`` says where bqplot draws a tile).
"""

from __future__ import annotations

import numpy as np
from bqplot import ColorScale, Figure, HeatMap, Label, LinearScale, Scatter

from ..output.render import mosaic
from .geometry import screen_box

__all__ = ["Mosaic", "BLANK"]

#: Value of the mosaic's gaps and label rows: below the tiles' 0..1, drawn white. (bqplot's HeatMap paints NaN with a
#: colour of the scheme, so blank space needs a value of its own.)
BLANK = -1 / 8
GAP = 2  # pixels of a tile between two tiles
LABEL_COLOUR, RED, NOTE_COLOUR = "#333333", "#d00000", "#1f5fa8"
#: Screen pixels of the band under a tile: two lines of text, the label (10 px) and its note (9 px) below it
LABEL_BAND_PX, LABEL_LINE_PX, NOTE_LINE_PX = 26, 11, 23
MARGIN_PX = 4  # blank margin around the tiles, each side


def _colors_with_blank(cmap: str) -> list[str]:
    """White at BLANK, then 9 colours of ``cmap`` spread evenly over 0..1 (a ColorScale spaces colours evenly)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    scheme = colormaps[cmap]
    return ["#ffffff"] + [to_hex(scheme(i / 8)) for i in range(9)]


class Mosaic:
    """Tiles of one size in a bqplot ``Figure`` (``self.figure``); tile i shows item ``order[i]``.

    ``layout`` sets the number, size and order of the tiles; ``draw`` the images (in item order) and labels;
    ``select`` outlines an item's tile; ``on_click(f)`` calls ``f(position)`` when a tile is clicked.
    """

    def __init__(self, cmap: str = "viridis", css_class: str | None = None):
        self.order = np.arange(0)
        self.cols = 1
        self.tile = (1, 1, GAP, 4)  # h, w, gap, label rows
        self._click = None
        # no padding: bqplot would shrink both scales by the click squares' half size in px, squeezing the tiles
        self.xs, self.ys = LinearScale(allow_padding=False), LinearScale(reverse=True, allow_padding=False)
        self.colors = ColorScale(colors=_colors_with_blank(cmap), min=BLANK, max=1.0)
        self.heatmap = HeatMap(x=np.arange(2, dtype=np.float32), y=np.arange(2, dtype=np.float32),
                               color=np.full((2, 2), BLANK, np.float32),  # (1, 1) would be squeezed by bqplot
                               scales={"x": self.xs, "y": self.ys, "color": self.colors})
        self.labels = Label(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), text=[],
                            scales={"x": self.xs, "y": self.ys}, align="middle", default_size=10,
                            font_weight="normal", colors=[LABEL_COLOUR])
        self.notes = Label(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), text=[],
                           scales={"x": self.xs, "y": self.ys}, align="middle", default_size=9,
                           font_weight="normal", colors=[NOTE_COLOUR])
        self.hits = Scatter(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                            scales={"x": self.xs, "y": self.ys}, marker="square", opacities=[0.02],
                            colors=["white"], stroke="white", interactions={"click": "select"},
                            selected_style={"opacity": 1.0, "fill": "none", "stroke": "red", "stroke-width": 3},
                            unselected_style={"opacity": 0.02})
        self.hits.observe(self._on_hit, "selected")
        self.figure = Figure(marks=[self.heatmap, self.labels, self.notes, self.hits], axes=[], padding_x=0.0,
                             padding_y=0.0, fig_margin=dict.fromkeys(("top", "bottom", "left", "right"), MARGIN_PX))
        if css_class:
            self.figure.add_class(css_class)

    def on_click(self, callback) -> None:
        """``callback(position)`` when the tile at ``position`` (display order) is clicked."""
        self._click = callback

    def _on_hit(self, change):
        picked = change["new"]
        if picked is not None and len(picked) and self._click is not None:
            self._click(int(picked[0]))

    def screen_scale(self, h: int, w: int) -> float:
        """Screen pixels per image pixel of (h, w) tiles: ×1..×3, ~84 px a tile."""
        return max(1.0, min(3.0, 84.0 / max(h, w)))

    def layout(self, order, tile_shape, cols: int) -> None:
        """One tile of ``tile_shape`` (h, w) per item, item ``order[i]`` on tile i, at most ``cols`` per row: scales,
        figure size, click squares and labels (the item numbers); every tile blank, no notes."""
        self.order = np.asarray(order)
        n = len(self.order)
        h, w = (int(s) for s in tile_shape)
        scale = self.screen_scale(h, w)
        self.cols = cols = min(int(cols), n)
        rows, label = -(-n // cols), max(4, h // 3, int(np.ceil(LABEL_BAND_PX / scale)))
        self.tile = (h, w, GAP, label)
        width, height = cols * (w + GAP) - GAP, rows * (h + label + GAP) - GAP
        # the element: the plot area plus the margins, its aspect ratio that of the whole element (see TileGrid)
        box_w, box_h = round(width * scale) + 2 * MARGIN_PX, round(height * scale) + 2 * MARGIN_PX
        with self.figure.hold_sync():
            self.xs.min, self.xs.max = 0.0, float(width)
            self.ys.min, self.ys.max = 0.0, float(height)
            self.figure.max_aspect_ratio = 1e6  # widen first: bqplot refuses min > max at any moment
            self.figure.min_aspect_ratio = box_w / box_h
            self.figure.max_aspect_ratio = box_w / box_h
            self.figure.layout.width = self.figure.layout.min_width = f"{box_w}px"
            self.figure.layout.height = f"{box_h}px"
            cx = np.array([(i % cols) * (w + GAP) + w / 2 for i in range(n)], np.float32)
            top = np.array([(i // cols) * (h + label + GAP) for i in range(n)], np.float32)
            self.hits.x, self.hits.y = cx, top + h / 2
            self.hits.default_size = int((min(h, w) * scale) ** 2)
            self.labels.x, self.labels.y = cx, top + h + LABEL_LINE_PX / scale
            self.labels.text = [str(int(m)) for m in self.order]
            self.labels.colors = [LABEL_COLOUR]
            self.notes.x, self.notes.y = cx, top + h + NOTE_LINE_PX / scale
            self.notes.text = [""] * n
        self.draw(np.full((n, h, w), BLANK, np.float32))

    def tile_box(self, position: int = 0) -> tuple[float, float, float, float]:
        """(left, top, width, height) in CSS px of the tile at ``position`` (display order) inside the plot area,
        as bqplot draws it at the figure's layout size (``geometry.screen_box``)."""
        h, w, gap, label = self.tile
        r, c = divmod(int(position), self.cols)
        x0, y0 = c * (w + gap), r * (h + label + gap)
        return screen_box(self.figure, self.xs, self.ys, (x0, x0 + w), (y0, y0 + h))

    def draw(self, tiles: np.ndarray, labels=None, red=None, notes=None) -> None:
        """Tiles (n, h, w) in 0..1 (BLANK: empty) in item order; ``labels`` (and ``red``: which labels are red) in
        display order, None to keep them; ``notes``: a second line under each label (display order; None: none when
        labels are given, else kept)."""
        h, w, gap, label = self.tile
        n = len(self.order)
        padded = np.full((n, h + label, w), BLANK, np.float32)
        padded[:, :h] = tiles[self.order]
        img = mosaic(padded, self.cols, gap=gap, fill=BLANK)
        with self.figure.hold_sync():
            self.heatmap.x = np.arange(img.shape[1], dtype=np.float32) + 0.5
            self.heatmap.y = np.arange(img.shape[0], dtype=np.float32) + 0.5
            self.heatmap.color = img
            if labels is not None:
                self.labels.text = list(labels)
                self.labels.colors = [RED if r else LABEL_COLOUR for r in (red or [False] * n)]
                self.notes.text = list(notes) if notes is not None else [""] * n

    def select(self, item: int | None) -> None:
        """Outline the tile of ``item`` (None: no tile)."""
        if item is None:
            self.hits.selected = None
            return
        position = int(np.flatnonzero(self.order == item)[0])
        if self.hits.selected is None or list(self.hits.selected) != [position]:
            self.hits.selected = [position]

    def set_colormap(self, cmap: str) -> None:
        self.colors.colors = _colors_with_blank(cmap)
