"""The OIP "zoo" of a layer as a picture: every map's OIP tiled and labelled, as PNG or as a self-contained HTML page.

``zoo_figure_png`` draws with matplotlib's Agg ``Figure`` (no pyplot, no display needed). Each tile shows one OIP
(colour-mapped, optionally contrast-enhanced, see :mod:`oipwidgets.render`) with its map index, the final mean
activation reached and the run's status; dead maps (the map never fired) are drawn as a grey tile with a red frame
and a red "DEAD" label.

Pixel size (deterministic, independent of fonts and content): with ``n`` OIPs and ``c = min(cols, n)`` columns,
``r = ceil(n / c)`` rows, the PNG is ``TILE_W·c`` × ``TITLE_H + TILE_H·r`` pixels, i.e. ``120·c`` × ``40 + 150·r``
(64 maps, 8 columns: 960 × 1240). :func:`zoo_size` computes it.

``zoo_html`` writes one HTML file that needs nothing else: the zoo PNG inline as a ``data:image/png;base64`` URI,
inline CSS, no scripts, no external URLs, plus a small table of map / status / final activation.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from ..engine.result import STATUS_LABELS, LayerResult
from ..engine.validation import check_int
from .export import writable_path
from .render import as_rgb, plain

__all__ = ["TILE_W", "TILE_H", "TITLE_H", "DPI", "zoo_size", "zoo_png_bytes", "zoo_figure_png", "zoo_html"]

#: Layout in pixels: one tile (image + two label lines), the title band, and the figure's dots per inch.
TILE_W, TILE_H, TITLE_H, DPI = 120, 150, 40, 100
_IMG = 100  # side of the image box inside a tile
_PAD_TOP = 6  # from the tile's top to the image box

_STATUS_COLOR = {"converged": "#555555", "max_steps": "#555555", "dead": "#d62728", "stopped": "#e67e00",
                 "nonfinite": "#d62728"}


def _grid(n: int, cols: int) -> tuple[int, int]:
    c = min(check_int(cols, "cols"), n)
    return c, math.ceil(n / c)


def zoo_size(n_maps: int, cols: int = 8) -> tuple[int, int]:
    """(width, height) in pixels of the zoo PNG of ``n_maps`` OIPs on ``cols`` columns."""
    c, r = _grid(check_int(n_maps, "n_maps (a zoo needs at least one OIP)"), cols)
    return TILE_W * c, TITLE_H + TILE_H * r


def _results(layer_result) -> list:
    results = list(layer_result.results if isinstance(layer_result, LayerResult) else layer_result)
    if not results:
        raise ValueError("the layer result holds no OIPs: nothing to draw")
    return results


def _map_label(result, position: int):
    m = result.params.get("map")
    return position if m is None else m


def _default_title(results) -> str:
    p = results[0].params
    dead = sum(r.status == "dead" for r in results)
    bits = [f"{len(results)} maps", f"{dead} dead"]
    if p.get("strategy"):
        bits.append(str(p["strategy"]))
    if p.get("steps"):
        bits.append(f"{p['steps']} steps")
    return f"OIP zoo of {p.get('layer', 'layer')} ({', '.join(bits)})"


def _dead_tile(image: np.ndarray) -> np.ndarray:
    """A dimmed grey rendering: the structure stays visible, the colour says "nothing here"."""
    grey = 0.62 + 0.22 * plain(image)
    return (np.repeat(grey[..., None], 3, axis=-1) * 255 + 0.5).astype(np.uint8)


def _figure(results, cols: int, cmap: str, contrast: bool, title):
    from matplotlib.figure import Figure

    n = len(results)
    c, r = _grid(n, cols)
    width, height = TILE_W * c, TITLE_H + TILE_H * r
    # Agg truncates width·dpi to whole pixels: a quarter pixel of slack keeps the exact size
    fig = Figure(figsize=((width + 0.25) / DPI, (height + 0.25) / DPI), dpi=DPI, facecolor="white")
    fig.text(0.5, 1 - (TITLE_H / 2) / height, _default_title(results) if title is None else str(title),
             ha="center", va="center", fontsize=11, fontweight="bold")
    for i, res in enumerate(results):
        row, col = divmod(i, c)
        x0 = col * TILE_W + (TILE_W - _IMG) / 2
        top = TITLE_H + row * TILE_H + _PAD_TOP  # pixels from the figure's top
        ax = fig.add_axes([x0 / width, 1 - (top + _IMG) / height, _IMG / width, _IMG / height])
        dead = res.status == "dead"
        rgb = _dead_tile(res.image) if dead else as_rgb(res.image, cmap, contrast, res.value_range)
        ax.imshow(rgb, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color(_STATUS_COLOR["dead"] if dead else "#bbbbbb")
            spine.set_linewidth(2.5 if dead else 0.5)
        xc = (col * TILE_W + TILE_W / 2) / width
        y1 = 1 - (top + _IMG + 4) / height
        y2 = 1 - (top + _IMG + 19) / height
        fig.text(xc, y1, f"map {_map_label(res, i)} · {res.final_loss:.3g}", ha="center", va="top", fontsize=8)
        fig.text(xc, y2, STATUS_LABELS.get(res.status, res.status), ha="center", va="top", fontsize=7,
                 color=_STATUS_COLOR.get(res.status, "#555555"), fontweight="bold" if dead else "normal")
    return fig


def zoo_png_bytes(layer_result, *, cols: int = 8, cmap: str = "viridis", contrast: bool = False,
                  title: str | None = None) -> bytes:
    """The zoo as PNG bytes (what ``zoo_figure_png`` writes); size :func:`zoo_size` ``(len(layer_result), cols)``."""
    results = _results(layer_result)
    as_rgb(results[0].image, cmap)  # checks the colour map name before drawing anything
    fig = _figure(results, cols, cmap, contrast, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def zoo_figure_png(layer_result, path, *, cols: int = 8, cmap: str = "viridis", contrast: bool = False,
                   title: str | None = None) -> Path:
    """Write the zoo of a ``LayerResult`` (all its OIPs tiled, labelled) as a PNG; returns the path.

    cols: tiles per row (fewer when there are fewer OIPs). cmap: a matplotlib colour map for one-channel OIPs.
    contrast: the enhanced rendering (percentile stretch + gamma) instead of the plain min..max one.
    title: text above the tiles (default: layer, number of maps and of dead maps, strategy, steps).
    The PNG is exactly ``zoo_size(len(layer_result), cols)`` pixels: 120·c × (40 + 150·rows).
    """
    data = zoo_png_bytes(layer_result, cols=cols, cmap=cmap, contrast=contrast, title=title)
    path = writable_path(path)
    path.write_bytes(data)
    return path


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em;
       color: #222; background: #fff; }
h1 { font-size: 1.35em; margin: 0 0 .3em 0; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em 0; }
p.meta { color: #555; margin: .2em 0 1em 0; font-size: .92em; }
dl.info { display: grid; grid-template-columns: max-content auto; gap: .1em 1em; font-size: .9em; margin: 0 0 1em 0; }
dl.info dt { color: #666; } dl.info dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; }
figure.zoo { margin: 0; } figure.zoo img { max-width: 100%; height: auto; border: 1px solid #ddd; }
table.maps { border-collapse: collapse; font-size: .85em; }
table.maps th, table.maps td { border-bottom: 1px solid #e4e4e4; padding: .15em .8em; text-align: left; }
table.maps td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.maps th { background: #f4f4f4; }
tr.dead td { color: #d62728; font-weight: bold; } tr.stopped td { color: #e67e00; }
"""


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def zoo_html(layer_result, path, *, title: str | None = None, cols: int = 8, cmap: str = "viridis",
             contrast: bool = False, info: dict | None = None, png: bytes | str | Path | None = None) -> Path:
    """Write a self-contained HTML page of the zoo: the tiled, labelled OIPs and a table of map / status / activation.

    Everything is inside the file (the zoo PNG as a base64 ``data:`` URI, inline CSS, no scripts, no external
    URLs), so it renders offline and can be mailed or archived as one file.
    title: page heading (default as ``zoo_figure_png``). info: extra facts shown as a key/value list (model,
    command, …). png: an already rendered zoo (bytes or a PNG file from ``zoo_figure_png``) to embed instead of
    drawing it again. Returns the path.
    """
    results = _results(layer_result)
    heading = _default_title(results) if title is None else str(title)
    if png is None:
        data = zoo_png_bytes(results, cols=cols, cmap=cmap, contrast=contrast, title=title)
    elif isinstance(png, (bytes, bytearray)):
        data = bytes(png)
    else:
        data = Path(png).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("png must be PNG data (or the path of a PNG file)")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    counts = {s: sum(r.status == s for r in results) for s in STATUS_LABELS}
    summary = ", ".join(f"{v} {STATUS_LABELS[s].lower()}" for s, v in counts.items() if v)
    seconds = getattr(layer_result, "seconds", 0.0) or 0.0
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(heading)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(heading)}</h1>",
        f'<p class="meta">{len(results)} OIPs: {esc(summary)}'
        + (f"; computed in {seconds:.1f} s" if seconds else "") + "</p>",
    ]
    if info:
        parts.append('<dl class="info">')
        parts += [f"<dt>{esc(str(k))}</dt><dd>{esc(_fmt(v))}</dd>" for k, v in info.items()]
        parts.append("</dl>")
    b64 = base64.b64encode(data).decode("ascii")
    parts += [
        '<figure class="zoo">',
        f'<img src="data:image/png;base64,{b64}" width="{width}" height="{height}" '
        f'alt="{esc(heading)}: {len(results)} OIPs tiled, labelled with map index and final mean activation">',
        "</figure>",
        "<h2>Maps</h2>",
        '<table class="maps">',
        "<thead><tr><th>map</th><th>status</th><th>final mean activation</th><th>steps</th>"
        "<th>converged at</th></tr></thead>",
        "<tbody>",
    ]
    for i, r in enumerate(results):
        parts.append(
            f'<tr class="{esc(r.status)}"><td class="num">{esc(str(_map_label(r, i)))}</td>'
            f"<td>{esc(STATUS_LABELS.get(r.status, r.status))}</td>"
            f'<td class="num">{r.final_loss:.4g}</td><td class="num">{r.steps}</td>'
            f'<td class="num">{"" if r.converged_at is None else r.converged_at}</td></tr>'
        )
    parts += ["</tbody>", "</table>", "</body>", "</html>", ""]
    path = writable_path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
