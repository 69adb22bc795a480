"""TileGrid: a bqplot figure showing a grid of small images (tiles) with one shared colour scale and a label each.

Each tile is its own ``bqplot.HeatMap`` mark placed on shared x/y scales, so updating one tile sends only that
tile's pixels (float32, h×w values) to the browser; all tiles share one ``ColorScale`` (domain 0..1, so show
values from ``oipwidgets.render``). Labels are one ``bqplot.Label`` mark. Used by the explorer (snapshots) and the
zoo (maps of a layer).
"""

from __future__ import annotations

import numpy as np
from bqplot import ColorScale, Figure, HeatMap, Label, LinearScale
from ipywidgets import Layout

from ..output.render import plain

__all__ = ["TileGrid", "reuse_grid"]


class TileGrid:
    """``rows`` × ``cols`` tiles of ``tile_shape`` (h, w) pixels in one bqplot ``Figure`` (``self.figure``).

    gap: blank space between tiles, in pixels of a tile; label_space: room under each tile for its label, in
    pixels; scale: screen pixels per image pixel; scheme: the colour scheme of the shared ColorScale.
    """

    def __init__(self, rows: int, cols: int, tile_shape=(28, 28), *, gap: float = 4, label_space: float = 9,
                 scale: float = 3.0, scheme: str = "viridis", css_class: str | None = None):
        self.rows, self.cols = int(rows), int(cols)
        self.h, self.w = (int(s) for s in tile_shape)
        self.gap, self.label_space = float(gap), float(label_space)
        self.xs = LinearScale(min=0.0, max=float(self._width))
        self.ys = LinearScale(min=0.0, max=float(self._height), reverse=True)
        self.colors = ColorScale(scheme=scheme, min=0.0, max=1.0)
        scales = {"x": self.xs, "y": self.ys, "color": self.colors}
        self.tiles = []
        for i in range(self.rows * self.cols):
            x0, y0 = self._origin(i)
            self.tiles.append(
                HeatMap(
                    x=(x0 + np.arange(self.w) + 0.5).astype(np.float32),
                    y=(y0 + np.arange(self.h) + 0.5).astype(np.float32),
                    color=np.zeros((self.h, self.w), np.float32),
                    scales=scales,
                    visible=False,
                    null_color="white",
                )
            )
        lx = np.array([self._origin(i)[0] + self.w / 2 for i in range(len(self.tiles))], np.float32)
        ly = np.array([self._origin(i)[1] + self.h + self.label_space * 0.85 for i in range(len(self.tiles))], np.float32)
        self.labels = Label(x=lx, y=ly, text=[""] * len(self.tiles), scales={"x": self.xs, "y": self.ys},
                            align="middle", default_size=10, font_weight="normal", colors=["#333333"])
        width, height = self._width * scale, self._height * scale
        self.figure = Figure(
            marks=[*self.tiles, self.labels],
            axes=[],
            fig_margin={"top": 4, "bottom": 4, "left": 4, "right": 4},
            padding_x=0.0,
            padding_y=0.0,
            min_aspect_ratio=self._width / self._height,
            max_aspect_ratio=self._width / self._height,
            layout=Layout(width=f"{width + 8:.0f}px", height=f"{height + 8:.0f}px"),
            background_style={"fill": "white"},
        )
        if css_class:
            self.figure.add_class(css_class)

    @property
    def _width(self) -> float:
        return self.cols * (self.w + self.gap) - self.gap

    @property
    def _height(self) -> float:
        return self.rows * (self.h + self.label_space + self.gap) - self.gap

    def _origin(self, i: int) -> tuple[float, float]:
        r, c = divmod(i, self.cols)
        return c * (self.w + self.gap), r * (self.h + self.label_space + self.gap)

    def index(self, row: int, col: int) -> int:
        return row * self.cols + col

    def set_tile(self, i: int, values: np.ndarray | None, label: str | None = None) -> None:
        """Show ``values`` (h, w) in 0..1 on tile i (None hides it) and set its label (None keeps it)."""
        tile = self.tiles[i]
        if values is None:
            tile.visible = False
        else:
            values = np.asarray(values, dtype=np.float32)
            if values.shape != (self.h, self.w):
                raise ValueError(f"tile {i} takes an image of shape {(self.h, self.w)}; got {values.shape}")
            tile.color = values
            tile.visible = True
        if label is not None:
            text = list(self.labels.text)
            text[i] = label
            self.labels.text = text

    def set_labels(self, labels) -> None:
        """All labels at once (one string per tile)."""
        labels = list(labels) + [""] * (len(self.tiles) - len(labels))
        self.labels.text = labels[: len(self.tiles)]

    def show_examples(self, top, label: str, first: int = 0) -> None:
        """The images of a ``TopK`` (raw, shown plain) on the tiles from ``first`` on, each labelled
        ``label.format(index=..., activation=...)``."""
        for j, (index, activation, image) in enumerate(zip(top.indices, top.activations, top.images)):
            self.set_tile(first + j, plain(np.asarray(image, np.float32)),
                          label.format(index=index, activation=activation))

    def close(self) -> None:
        """Close every widget of the grid (tiles, labels, scales, figure): a grid that is replaced leaves nothing
        behind in the kernel or the browser."""
        for w in (*self.tiles, self.labels, self.xs, self.ys, self.colors, self.figure):
            w.close()

    def fits(self, rows: int, cols: int, tile_shape) -> bool:
        """Whether this grid has ``rows`` × ``cols`` tiles of ``tile_shape`` (h, w), so it can be reused."""
        return (self.rows, self.cols, self.h, self.w) == (int(rows), int(cols), *(int(s) for s in tile_shape))

    def clear(self) -> None:
        """Hide every tile and blank every label."""
        with self.figure.hold_sync():
            for tile in self.tiles:
                tile.visible = False
            self.labels.text = [""] * len(self.tiles)

    @property
    def scheme(self) -> str:
        return self.colors.scheme

    @scheme.setter
    def scheme(self, value: str) -> None:
        self.colors.scheme = value

    def shown(self) -> list[int]:
        """Indices of the visible tiles."""
        return [i for i, t in enumerate(self.tiles) if t.visible]


def reuse_grid(old: TileGrid | None, rows: int, cols: int, tile_shape, **kwargs) -> TileGrid:
    """``old``, cleared, when it has this layout; else a new ``TileGrid`` (and ``old``'s widgets closed). Views that
    redraw often (a map change, a tile click) keep the number of live widgets flat this way."""
    if old is not None and old.fits(rows, cols, tile_shape):
        old.clear()
        return old
    if old is not None:
        old.close()
    return TileGrid(rows, cols, tile_shape, **kwargs)
