"""A static web site of an atlas: plain HTML pages and PNG files that any static host (or file://) serves as they
are: no server, no script, nothing fetched from elsewhere (no CDN, no remote font; one local style sheet).

    site/
      index.html                 the atlas: model, recipe, preprocess, seeds; one line per layer (units computed)
      style.css
      atlas-site.json            what has been exported (for the next export; not linked)
      examples/<id>.png          the dataset examples' thumbnails, by image id (when the atlas has examples)
      <LAYER>/index.html         a layer: a grid of its computed units' OIPs (first seed), each a link to its page
      <LAYER>/by-objective.html  the same grid sorted by objective, highest first
      <LAYER>/<CHANNEL>.html     a unit: its OIP for every seed with objective, status and steps, its dataset
                                 examples with their activation heatmaps, links to the previous and next unit
      <LAYER>/png/<CHANNEL>-s<SEED>.png   the OIP of a seed (SEED: the seed's value, not its index)
      <LAYER>/png/<CHANNEL>-e<RANK>.png   the heatmap of the unit's RANK-th example (0: the best)

Addresses are stable: ``<LAYER>`` is ``safe_name(layer)`` (the layer's path with "/" written "__", as the store's
group; any other character outside letters, digits, "_", "." and "-" written "~XX" per UTF-8 byte; a leading "."
written "~2E"), ``<CHANNEL>`` the channel's number. Only computed units get pages (a unit is computed when its
block is done for at least one seed); exporting again later adds the units computed since, the seeds added since,
and rewrites the indexes and every unit page (their prev/next links and seed lists change), while OIP pictures
already written stay. New dataset examples (another ``add_examples``) replace the examples' pictures. Pictures are
drawn as the viewer draws them (``output/atlas_pictures.py``): at the image's own size, enlarged by CSS without
smoothing.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import time
from dataclasses import dataclass

import numpy as np

from ..engine.result import STATUS_LABELS
from ..output.atlas_pictures import heat_overlay, oip_display, thumbnail_rgb8
from ..output.render import png_bytes, tile_scale
from .reader import AtlasReader

__all__ = ["export_site", "safe_name", "SiteReport", "MANIFEST", "SITE_FORMAT"]

SITE_FORMAT = "oipwidgets-atlas-site"
MANIFEST = "atlas-site.json"
#: statuses whose objective says nothing: shown muted, the status instead of the objective
NO_OBJECTIVE = ("dead", "nonfinite", "error")
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:16px 24px;color:#222}
a{color:#1f5fa8;text-decoration:none}a:hover{text-decoration:underline}
nav{margin:0 0 12px 0;font-size:14px}nav a{margin-right:14px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:18px 0 6px 0}
.meta{font-size:13px;color:#555}
table.layers{border-collapse:collapse;font-size:14px}table.layers td,table.layers th{padding:3px 10px;text-align:left;
border-bottom:1px solid #e3e3e3}
.grid{display:flex;flex-wrap:wrap;gap:6px}
.tile{display:flex;flex-direction:column;align-items:center;font-size:11px;color:#333;text-align:center}
.tile img,.pic img{image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #ddd;background:#fff}
.tile.muted img{opacity:0.35}.tile.muted span,.bad{color:#d00000}
.pics{display:flex;flex-wrap:wrap;gap:12px}
.pic{display:flex;flex-direction:column;align-items:center;font-size:12px;text-align:center}
.pair{display:flex;gap:2px}
"""


@dataclass
class SiteReport:
    """What one export did: units with pages (all, and new now), pages and pictures written, seconds."""

    folder: str
    units: int
    new_units: int
    pages: int
    pictures: int
    seconds: float

    def __str__(self) -> str:
        index = os.path.join(self.folder, "index.html")
        return (f"site {self.folder}: {self.units} units ({self.new_units} new), {self.pages} pages and "
                f"{self.pictures} pictures written in {self.seconds:.1f} s; open {index}")


def safe_name(layer: str) -> str:
    """The folder name of a layer in the site (see the module doc): "Conv2D_1" stays, "base/block_1" →
    "base__block_1", "conv 1" → "conv~201"."""
    text = layer.replace("/", "__")
    out = []
    for ch in text:
        out.append(ch if ch in _SAFE else "".join(f"~{b:02X}" for b in ch.encode("utf-8")))
    name = "".join(out)
    return "~2E" + name[1:] if name.startswith(".") else name


# ----------------------------------------------------------------- the export
def export_site(atlas, folder, *, cmap: str = "viridis", progress: bool = False) -> SiteReport:
    """Write (or bring up to date) the static site of ``atlas`` in ``folder`` (see the module doc); returns a
    ``SiteReport``. cmap: the colour map of grey OIPs (a matplotlib name, as the widgets'). A folder that holds
    something other than a site of this atlas is refused."""
    from ..output.render import COLORMAPS

    if cmap not in COLORMAPS:
        raise ValueError(f"unknown colour map {cmap!r}; valid: {', '.join(COLORMAPS)}")
    t0 = time.perf_counter()
    folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
    manifest = _manifest(atlas, folder, cmap)
    reader = AtlasReader(atlas)
    reader.refresh()
    os.makedirs(folder, exist_ok=True)
    counts = {"pages": 0, "pictures": 0, "new": 0}
    _write(os.path.join(folder, "style.css"), _CSS, counts, page=False)
    info = atlas.examples_info
    stamp = None if not info else f"{info.get('created')}|{info.get('images')}|{info.get('k')}"
    if manifest.get("examples") != stamp:  # other examples than the pictures written: drop those
        shutil.rmtree(os.path.join(folder, "examples"), ignore_errors=True)
        manifest["units"] = {layer: {c: {**u, "examples": False} for c, u in units.items()}
                             for layer, units in manifest.get("units", {}).items()}
        manifest["examples"] = stamp
    summary = []
    for plan in atlas.plans:
        units = _export_layer(atlas, reader, plan, folder, manifest, cmap, counts)
        summary.append((plan, units))
        if progress:
            print(f"site: {plan.name}: {len(units)}/{plan.channels} units", flush=True)
    _write(os.path.join(folder, "index.html"), _index_page(atlas, summary), counts)
    manifest["format"] = SITE_FORMAT
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    total = sum(len(u) for _, u in summary)
    return SiteReport(folder, total, counts["new"], counts["pages"], counts["pictures"], time.perf_counter() - t0)


def _manifest(atlas, folder: str, cmap: str) -> dict:
    """The manifest of the site in ``folder`` (empty for a new site); refuses a folder with other content and
    starts afresh for another atlas or colour map."""
    path = os.path.join(folder, MANIFEST)
    fresh = {"format": SITE_FORMAT, "atlas": atlas.url, "fingerprint": atlas.attrs["model"]["fingerprint"],
             "cmap": cmap, "units": {}, "examples": None}
    if not os.path.exists(path):
        if os.path.isdir(folder) and os.listdir(folder):
            raise ValueError(f"{folder!r} is not empty and holds no atlas site ({MANIFEST}); give an empty or new "
                             "folder, or the folder of an earlier export")
        return fresh
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path!r} cannot be read ({err}); remove the folder or give another one") from err
    if old.get("format") != SITE_FORMAT:
        raise ValueError(f"{path!r} is not an oipwidgets atlas site's manifest; give another folder")
    same = old.get("atlas") == atlas.url and old.get("fingerprint") == fresh["fingerprint"] \
        and old.get("cmap") == cmap and old.get("recipe") == atlas.attrs["recipe"]
    if not same:  # another atlas or colour map: every picture again
        return {**fresh, "examples": old.get("examples")}
    return {**old, "units": {layer: {int(c): u for c, u in units.items()} for layer, units in old["units"].items()}}


def _export_layer(atlas, reader, plan, folder: str, manifest: dict, cmap: str, counts: dict) -> dict:
    """Pictures and pages of one layer; returns {channel: facts} of its units with pages."""
    manifest["recipe"] = atlas.attrs["recipe"]
    name = safe_name(plan.name)
    here = os.path.join(folder, name)
    os.makedirs(os.path.join(here, "png"), exist_ok=True)
    seeds = atlas.seeds
    value_range = atlas.value_range
    statuses = atlas.attrs["statuses"]
    known = manifest.setdefault("units", {}).setdefault(plan.name, {})
    with_examples = reader.has_examples(plan.name)
    units = {}
    for b in range(plan.n_blocks):
        block = reader.block(plan.name, b)
        if not block["done"].any():
            continue
        for j, c in enumerate(range(block["lo"], block["hi"])):
            facts = known.get(c, {"seeds": [], "examples": False})
            if c not in known:
                counts["new"] += 1
            seeds_done = []
            per_seed = []
            for s, seed in enumerate(seeds):
                if not block["done"][s]:
                    per_seed.append(None)
                    continue
                code = int(block["status"][j, s])
                status = statuses[code] if code >= 0 else None
                per_seed.append({"seed": seed, "objective": float(block["objective"][j, s]), "status": status,
                                 "steps": int(block["steps"][j, s])})
                seeds_done.append(seed)
                png = os.path.join(here, "png", f"{c}-s{seed}.png")
                if seed not in facts["seeds"] or not os.path.exists(png):
                    values = oip_display(block["oip"][j, s], value_range)
                    _write_bytes(png, png_bytes(values, cmap), counts)
            facts = {**facts, "seeds": seeds_done}
            if with_examples and not facts.get("examples"):
                _write_examples(reader, plan.name, c, here, folder, counts)
                facts["examples"] = True
            known[c] = facts
            units[c] = per_seed
    shape = atlas.input_shape
    px = _px(shape[0], shape[1])
    order = sorted(units)
    for i, c in enumerate(order):
        prev_c = order[i - 1] if i > 0 else None
        next_c = order[i + 1] if i + 1 < len(order) else None
        ex = reader.examples(plan.name, c) if with_examples else None
        _write(os.path.join(here, f"{c}.html"),
               _unit_page(atlas, plan, c, units[c], ex, prev_c, next_c, px), counts)
    _write(os.path.join(here, "index.html"), _layer_page(atlas, plan, units, order, px, by_objective=False), counts)
    by_objective = sorted(order, key=lambda c: (-_first(units[c])["objective"]
                                                if np.isfinite(_first(units[c])["objective"]) else np.inf, c))
    _write(os.path.join(here, "by-objective.html"),
           _layer_page(atlas, plan, units, by_objective, px, by_objective=True), counts)
    return units


def _write_examples(reader, layer: str, c: int, here: str, folder: str, counts: dict) -> None:
    """The thumbnails (shared, by image id) and the heatmaps of one unit's examples."""
    ex = reader.examples(layer, c)
    if ex is None:
        return
    os.makedirs(os.path.join(folder, "examples"), exist_ok=True)
    high = float(np.nanmax(ex["map"])) if ex["map"] is not None and ex["map"].size else 0.0
    for r, (i, thumb) in enumerate(zip(ex["index"].tolist(), ex["thumbnails"])):
        path = os.path.join(folder, "examples", f"{i}.png")
        if not os.path.exists(path):
            _write_bytes(path, png_bytes(thumbnail_rgb8(thumb)), counts)
        if ex["map"] is not None:
            _write_bytes(os.path.join(here, "png", f"{c}-e{r}.png"),
                         png_bytes(heat_overlay(thumb, ex["map"][r], high)), counts)


# ----------------------------------------------------------------- pages
def _page(title: str, body: str, css: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="{css}"></head><body>\n{body}\n</body></html>\n')


def _index_page(atlas, summary) -> str:
    from .atlas import recipe_text

    rows = []
    for plan, units in summary:
        cell = (f'<a href="{safe_name(plan.name)}/index.html">{html.escape(plan.name)}</a>' if units
                else html.escape(plan.name))
        examples = "yes" if atlas.has_examples(plan.name) else "no"
        rows.append(f"<tr><td>{cell}</td><td>{plan.kind}</td><td>{len(units)} / {plan.channels}</td>"
                    f"<td>{examples}</td></tr>")
    model = atlas.attrs["model"]
    info = atlas.examples_info
    ex_text = (f"; dataset examples: top {info['k']} of {info['images']} images" if info else "")
    body = (f"<h1>Atlas of {html.escape(str(model['name']))}</h1>"
            f'<p class="meta">recipe {html.escape(recipe_text(atlas.recipe))}; preprocess '
            f"{html.escape(str(atlas.preprocess))}; images {'×'.join(map(str, atlas.input_shape))}; seeds "
            f"{', '.join(map(str, atlas.seeds))}{html.escape(ex_text)}</p>"
            f'<table class="layers"><tr><th>layer</th><th>kind</th><th>units with pages</th><th>examples</th></tr>'
            + "".join(rows) + "</table>")
    return _page(f"Atlas of {model['name']}", body, "style.css")


def _label(facts) -> tuple[str, bool]:
    if facts is None:
        return "not computed", False
    if facts["status"] in NO_OBJECTIVE:
        return STATUS_LABELS[facts["status"]], True
    return f"{facts['objective']:.3g}", False


def _first(per_seed):
    return next(f for f in per_seed if f is not None)


def _layer_page(atlas, plan, units: dict, order: list, px: tuple, by_objective: bool) -> str:
    w, h = px
    tiles = []
    for c in order:
        facts = _first(units[c])
        text, bad = _label(facts)
        tiles.append(f'<a class="tile{" muted" if bad else ""}" href="{c}.html">'
                     f'<img src="png/{c}-s{facts["seed"]}.png" width="{w}" height="{h}" alt="unit {c}">'
                     f"<span>{c}: {html.escape(text)}</span></a>")
    other = ('<a href="index.html">by unit</a>' if by_objective else
             '<a href="by-objective.html">by objective</a>')
    sort = "by objective (first seed computed), highest first" if by_objective else "by unit"
    body = (f'<nav><a href="../index.html">atlas</a>{other}</nav>'
            f"<h1>{html.escape(plan.name)}</h1>"
            f'<p class="meta">{len(order)} of {plan.channels} {plan.kind} computed; sorted {sort}; dead or failed '
            f"units faint, their status in red</p>"
            f'<div class="grid">{"".join(tiles)}</div>')
    return _page(f"{plan.name} — atlas", body, "../style.css")


def _unit_page(atlas, plan, c: int, per_seed: list, ex, prev_c, next_c, px: tuple) -> str:
    w, h = px
    nav = ['<a href="../index.html">atlas</a>', f'<a href="index.html">{html.escape(plan.name)}</a>']
    nav.append(f'<a href="{prev_c}.html">← {prev_c}</a>' if prev_c is not None else "<span>← first</span>")
    nav.append(f'<a href="{next_c}.html">{next_c} →</a>' if next_c is not None else "<span>last →</span>")
    oips = []
    for seed, facts in zip(atlas.seeds, per_seed):
        if facts is None:
            oips.append(f'<div class="pic"><span>seed {seed}: not computed yet</span></div>')
            continue
        text, bad = _label(facts)
        status = STATUS_LABELS.get(facts["status"], facts["status"] or "?")
        oips.append(f'<div class="pic"><img src="png/{c}-s{seed}.png" width="{w}" height="{h}" alt="seed {seed}">'
                    f'<span>seed {seed}: <b class="{"bad" if bad else ""}">{html.escape(text)}</b><br>'
                    f'{html.escape(status)}, {facts["steps"]} steps</span></div>')
    what = "unit" if plan.kind == "units" else "map"
    body = [f'<nav>{"".join(nav)}</nav>', f"<h1>{html.escape(plan.name)} {what} {c}</h1>",
            f'<p class="meta">objective: the {what}\'s {"value" if what == "unit" else "mean activation"} '
            f"after the recipe's regularisers; one OIP per seed</p>",
            f'<h2>OIPs</h2><div class="pics">{"".join(oips)}</div>']
    if ex is not None and len(ex["index"]):
        tw, th = _px(*ex["thumbnails"].shape[1:3])
        items = []
        for r, (i, act) in enumerate(zip(ex["index"].tolist(), ex["activation"].tolist())):
            heat = (f'<img src="png/{c}-e{r}.png" width="{tw}" height="{th}" alt="heatmap {r}">'
                    if ex["map"] is not None else "")
            items.append(f'<div class="pic"><div class="pair"><img src="../examples/{i}.png" width="{tw}" '
                         f'height="{th}" alt="image {i}">{heat}</div><span>#{i}: {act:.3g}</span></div>')
        heat_text = " and, beside each, its activation map over it (bright: strong)" if ex["map"] is not None else ""
        body.append(f"<h2>Dataset examples</h2><p class=\"meta\">the {len(items)} images that activate this {what} "
                    f"most (image id: activation){heat_text}</p><div class=\"pics\">{''.join(items)}</div>")
    return _page(f"{plan.name} {c} — atlas", "\n".join(body), "../style.css")


# ----------------------------------------------------------------- files
def _px(h: int, w: int) -> tuple[int, int]:
    """CSS (width, height) of a picture of an (h, w) image: ~84–140 px (``render.tile_scale``)."""
    scale = tile_scale(int(h), int(w))
    return round(int(w) * scale), round(int(h) * scale)


def _write(path: str, text: str, counts: dict, page: bool = True) -> None:
    """Write ``text`` to ``path`` unless it holds it already."""
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except OSError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    if page:
        counts["pages"] += 1


def _write_bytes(path: str, data: bytes, counts: dict) -> None:
    with open(path, "wb") as f:
        f.write(data)
    counts["pictures"] += 1
