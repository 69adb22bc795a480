"""Browsing and sharing an atlas: dataset examples in the store (``Atlas.add_examples``), the static site
(``Atlas.export_site``) and the notebook viewer (``AtlasViewer``).

The atlases here are made quickly: ``Atlas.create`` on the shipped MNIST CNN, then the OIPs written straight into
the store (``store.write_task`` with made-up images, as a worker would write real ones), so no test climbs.
"""

import json
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import oipwidgets as ow
from oipwidgets.atlas import Atlas, store
from oipwidgets.engine.examples import top_k_all

from .conftest import bar_images

RECIPE = ow.Recipe.preset("readable").replace(steps=8)
LAYERS = ["Conv2D_1", "Conv2D_3", "Dense_2"]
TIMINGS = {}


@pytest.fixture(scope="module", autouse=True)
def _report_timings():
    yield
    if TIMINGS:
        print("\natlas view test timings:", json.dumps({k: round(v, 2) for k, v in TIMINGS.items()}))


@pytest.fixture(scope="module")
def model():
    return ow.load_default_model("mnist")


@pytest.fixture(scope="module")
def images():
    """300 uint8 28×28 images: the shipped MNIST samples and 200 bar images (two kinds of data, many near-ties)."""
    digits, _ = ow.datasets.samples("mnist")
    bars, _ = bar_images(200, seed=3)
    return np.concatenate([digits, bars])


def fill(atlas, tasks, seed: int = 0, dead_every: int = 5) -> None:
    """Write made-up outputs for ``tasks`` (as a worker writes real ones): random images, objectives, every
    ``dead_every``-th channel dead; then each task's done mark."""
    rng = np.random.default_rng(seed)
    root = store.open_root(atlas.url, "r+")
    h, w, c = atlas.input_shape
    dead = atlas.attrs["statuses"].index("dead")
    for t in tasks:
        b = t.hi - t.lo
        status = np.where(np.arange(t.lo, t.hi) % dead_every == 0, dead, 1).astype(np.int8)[:, None]
        values = {"oip": rng.normal(size=(b, 1, h, w, c)).astype(np.float32),
                  "objective": rng.normal(size=(b, 1)), "status": status, "steps": np.full((b, 1), 8, np.int32),
                  "saturated": np.zeros((b, 1), np.float32),
                  "snapshots": np.full((b, 1, store.SNAPSHOTS, h, w, c), np.nan, np.float16),
                  "snapshot_steps": np.full((b, 1, store.SNAPSHOTS), -1, np.int32)}
        store.write_task(root, t, values)


@pytest.fixture(scope="module")
def atlas(model, tmp_path_factory):
    """Conv2D_1 (32 maps), Conv2D_3 (64 maps) and Dense_2 (10 class units), blocks of 8, seeds 0 and 1."""
    path = tmp_path_factory.mktemp("view") / "view.atlas.zarr"
    return Atlas.create(path, model, layers=LAYERS, recipe=RECIPE, seeds=(0, 1), block=8)


# --------------------------------------------------------------------------- dataset examples
def test_add_examples_equals_a_brute_force_top_k(atlas, model, images):
    t0 = time.perf_counter()
    report = atlas.add_examples(images, k=9, batch_size=64, progress=False)
    TIMINGS["add_examples 300 images, 3 layers"] = time.perf_counter() - t0
    assert report.images == 300 and report.k == 9 and report.units == 32 + 64 + 10 and report.shards == 0
    again = Atlas.open(atlas.url)  # what is stored, read back without the model
    info = again.examples_info
    assert info["k"] == 9 and info["images"] == 300 and info["pixel_scale"] == 255
    assert info["preprocess"] == {"preset": "standardize"} and "standardised" in info["space"]
    assert info["layers"] == LAYERS and info["thumbnail_shape"] == [28, 28, 1]
    assert info["source"] == {"kind": "array", "images": 300, "shape": [300, 28, 28], "dtype": "uint8"}
    for layer in LAYERS:
        brute = top_k_all(model, layer, images, k=9)  # the engine's top-k: standardised images, one pass
        engine = ow.OIPEngine(model, layer)
        for c in range(again.plan(layer).channels):
            got = again.examples(layer, c)
            assert got["index"].tolist() == brute[c].indices.tolist(), (layer, c)
            np.testing.assert_allclose(got["activation"], brute[c].activations, rtol=1e-6, atol=1e-9)
            assert np.array_equal(got["thumbnails"][..., 0], images[got["index"]])
            if layer != "Dense_2" and c % 16 == 0:  # the stored maps are the layer's maps of those images
                acts = engine.activations(ow.preprocessing.to_model_input(images[got["index"]]))[..., c]
                np.testing.assert_allclose(got["map"], acts, rtol=2e-3, atol=2e-3)
        assert again.examples("Dense_2", 0)["map"] is None
    root = store.open_root(atlas.url)
    assert root["layers/Conv2D_1/examples/map"].shape == (32, 9, 26, 26)
    assert root["layers/Conv2D_1/examples/map"].dtype == np.float16
    assert root["examples/thumbnail"].shape == (info["thumbnails"], 28, 28, 1)


def test_examples_from_a_folder_and_a_dataset_and_in_rgb_space(atlas, model, images, tmp_path):
    import tensorflow as tf
    from PIL import Image

    first = images[:40]
    folder = tmp_path / "digits"
    (folder / "more").mkdir(parents=True)
    for i, im in enumerate(first):  # ids: positions in the sorted file list (a sub-folder's files sort after)
        Image.fromarray(im).save(folder / ("more" if i >= 30 else "") / f"{i:03d}.png")
    atlas.add_examples(first, k=4, progress=False)
    want = {(layer, c): atlas.examples(layer, c)["index"].tolist() for layer in LAYERS for c in (0, 5, 9)}
    report = atlas.add_examples(str(folder), k=4, progress=False)
    assert report.images == 40 and atlas.examples_info["source"]["kind"] == "folder"
    assert {key: atlas.examples(*key)["index"].tolist() for key in want} == want
    pairs = tf.data.Dataset.from_tensor_slices((first[..., None].astype(np.float32) / 255, np.zeros(40))).batch(7)
    atlas.add_examples(pairs, k=4, progress=False)
    assert atlas.examples_info["pixel_scale"] == 1.0
    assert {key: atlas.examples(*key)["index"].tolist() for key in want} == want
    big = np.stack([np.asarray(Image.fromarray(im).resize((56, 70))) for im in first])  # another size: resized
    assert atlas.add_examples(big, k=4, progress=False).images == 40

    rgb = Atlas.create(tmp_path / "unit.atlas.zarr", model, layers=["Conv2D_2"], recipe=RECIPE, preprocess="unit")
    rgb.add_examples(images, k=5, progress=False)
    assert "RGB in [0, 1]" in rgb.examples_info["space"]
    brute = top_k_all(model, "Conv2D_2", images.astype(np.float32)[..., None] / 255, k=5, preprocess=False)
    assert [rgb.examples("Conv2D_2", c)["index"].tolist() for c in range(64)] == [b.indices.tolist() for b in brute]
    with pytest.raises(ValueError, match="other weights"):
        rgb.add_examples(images, k=5, model=ow.load_default_model("fashion"), progress=False)


def test_examples_on_dask_equal_the_pass_in_process(atlas, images):
    import logging

    import dask
    from distributed import Client, LocalCluster

    from oipwidgets.atlas.cluster import WORKER_ENV

    atlas.add_examples(images, k=6, batch_size=32, progress=False)
    here = {(layer, c): atlas.examples(layer, c) for layer in LAYERS for c in range(0, 10, 3)}
    t0 = time.perf_counter()
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               env=WORKER_ENV, silence_logs=logging.ERROR)
    try:
        with Client(cluster, set_as_default=False) as client:
            report = atlas.add_examples(images, k=6, batch_size=32, client=client, progress=False)
    finally:
        cluster.close()
    TIMINGS["add_examples on a 2-worker cluster"] = time.perf_counter() - t0
    assert report.shards == 2 and atlas.examples_info["shards"] == 2  # 300 images, shards of 8 × 32
    for key, want in here.items():
        got = atlas.examples(*key)
        assert got["index"].tolist() == want["index"].tolist(), key
        assert np.array_equal(got["thumbnails"], want["thumbnails"])
        np.testing.assert_allclose(got["activation"], want["activation"], rtol=1e-6)
        if want["map"] is not None:
            np.testing.assert_allclose(got["map"], want["map"], rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------- the static site
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.refs.append((tag, value))


def walk_site(site: Path) -> tuple[set, list]:
    """Every page reachable from index.html through links, and every problem: a reference that leaves the site, is
    absolute or remote, or names a file that does not exist."""
    site = site.resolve()
    todo, seen, problems = [site / "index.html"], set(), []
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.add(page)
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for tag, ref in parser.refs:
            if "://" in ref or ref.startswith(("/", "//", "data:", "javascript:")):
                problems.append(f"{page.relative_to(site)}: external or absolute reference {ref!r}")
                continue
            target = (page.parent / ref.split("#")[0]).resolve()
            if site not in target.parents:
                problems.append(f"{page.relative_to(site)}: {ref!r} leaves the site")
            elif not target.is_file():
                problems.append(f"{page.relative_to(site)}: {ref!r} does not exist")
            elif target.suffix == ".html":
                todo.append(target)
    return seen, problems


def test_every_link_of_an_exported_site_resolves_inside_it(atlas, images, tmp_path):
    fill(atlas, [t for t in atlas.tasks(pending=True) if t.seed == 0 or t.block == 0])
    atlas.add_examples(images, k=5, progress=False)
    site = tmp_path / "site"
    t0 = time.perf_counter()
    report = atlas.export_site(site)
    TIMINGS["export_site 106 units"] = time.perf_counter() - t0
    assert report.units == 106 and report.new_units == 106
    pages, problems = walk_site(site)
    assert not problems, "\n".join(problems[:20])
    assert site / "Conv2D_1" / "31.html" in pages and site / "Dense_2" / "by-objective.html" in pages
    unit = (site / "Conv2D_3" / "0.html").read_text(encoding="utf-8")  # block 0: both seeds; channel 0: dead
    assert "seed 0:" in unit and "seed 1:" in unit and "DEAD" in unit and "Dataset examples" in unit
    assert 'href="1.html"' in unit and "← first" in unit
    assert "not computed yet" in (site / "Conv2D_3" / "8.html").read_text(encoding="utf-8")  # seed 1 not done
    first = atlas.examples("Conv2D_3", 0)["index"][0]
    assert (site / "examples" / f"{first}.png").is_file() and (site / "Conv2D_3" / "png" / "0-e0.png").is_file()
    everything = " ".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    assert "http" not in everything and "<script" not in everything


def test_a_later_export_adds_the_units_computed_since(model, tmp_path):
    atlas = Atlas.create(tmp_path / "later.atlas.zarr", model, layers=["Conv2D_1"], recipe=RECIPE, block=8)
    tasks = atlas.tasks(pending=True)
    fill(atlas, tasks[:2])  # channels 0..15
    site = tmp_path / "site"
    assert atlas.export_site(site).units == 16
    assert sorted(int(p.stem) for p in (site / "Conv2D_1").glob("[0-9]*.html")) == list(range(16))
    assert 'href="16.html"' not in (site / "Conv2D_1" / "15.html").read_text(encoding="utf-8")  # last so far
    picture = site / "Conv2D_1" / "png" / "3-s0.png"
    stamp = picture.stat().st_mtime_ns
    fill(atlas, tasks[3:])  # channels 24..31 (block 2 still missing)
    report = Atlas.open(atlas.url).export_site(site)
    assert report.units == 24 and report.new_units == 8
    assert sorted(int(p.stem) for p in (site / "Conv2D_1").glob("[0-9]*.html")) == [*range(16), *range(24, 32)]
    assert 'href="24.html"' in (site / "Conv2D_1" / "15.html").read_text(encoding="utf-8")  # prev/next updated
    assert picture.stat().st_mtime_ns == stamp  # pictures already written stay
    index = (site / "Conv2D_1" / "index.html").read_text(encoding="utf-8")
    assert 'href="24.html"' in index and 'href="16.html"' not in index
    assert not walk_site(site)[1]
    with pytest.raises(ValueError, match="not empty"):
        atlas.export_site(tmp_path)  # a folder with other things in it


def test_site_folder_names_of_nested_layers():
    from oipwidgets.atlas.site import safe_name

    assert safe_name("Conv2D_1") == "Conv2D_1" and safe_name("base/block_1") == "base__block_1"
    assert safe_name("conv 1") == "conv~201" and safe_name(".x") == "~2Ex" and safe_name("é") == "~C3~A9"


def test_cli_atlas_export(atlas, tmp_path, capsys):
    from oipwidgets import cli

    assert cli.main(["atlas", "export", atlas.url, str(tmp_path / "cli-site")]) == 0
    assert "units" in capsys.readouterr().out and (tmp_path / "cli-site" / "index.html").is_file()
    assert not walk_site(tmp_path / "cli-site")[1]


# --------------------------------------------------------------------------- the viewer
def synthetic_atlas(path, layers: int, channels: int, image=(8, 8, 3), block: int = 64, seeds=(0,)) -> Atlas:
    """An atlas store written directly (no model, no climbing): ``layers`` layers of ``channels`` units, small RGB
    OIPs, every task done; for opening and paging at scale."""
    from oipwidgets.atlas.plan import LayerPlan

    rng = np.random.default_rng(0)
    root = store.create_root(str(path), {
        "recipe": RECIPE.to_dict(), "recipe_name": None, "preprocess": {"preset": "unit"},
        "input_shape": list(image), "value_range": [0.0, 1.0], "seeds": list(seeds), "layers": [],
        "snapshots": store.SNAPSHOTS,
        "model": {"name": "synthetic", "fingerprint": "0" * 16, "file": None, "input_shape": None}})
    plans = []
    for i in range(layers):
        plan = LayerPlan(name=f"block{i}/conv", group=f"layers/block{i}__conv", kind="maps", channels=channels,
                         shape=(4, 4, channels), block=block, image_bytes=1000)
        group = store.add_layer(root, plan, len(seeds), image)
        group["oip"][:] = rng.random((channels, len(seeds), *image), np.float32)
        group["objective"][:] = rng.normal(size=(channels, len(seeds)))
        group["status"][:] = rng.choice([1, 1, 1, 2], size=(channels, len(seeds))).astype(np.int8)
        group["done"][:] = 1
        plans.append(plan.to_dict())
    root.attrs.update({"layers": plans})
    return Atlas.open(path)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    t0 = time.perf_counter()
    atlas = synthetic_atlas(tmp_path_factory.mktemp("big") / "big.atlas.zarr", layers=10, channels=2500)
    TIMINGS["write a 25,000-unit store"] = time.perf_counter() - t0
    return atlas


def test_the_viewer_opens_25000_units_fast_and_reads_only_its_page(big, monkeypatch):
    import zarr.storage

    reads = []
    real_get = zarr.storage.LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        reads.append(key)
        return await real_get(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    t0 = time.perf_counter()
    viewer = ow.AtlasViewer(big.url)
    seconds = time.perf_counter() - t0
    TIMINGS["AtlasViewer open + first page, 25,000 units"] = seconds
    assert seconds < 1.0
    chunks = [k for k in reads if not k.endswith("zarr.json")]
    layer = "layers/block0__conv"
    page_chunks = {f"{layer}/{name}/c/0/0" + ("/0/0/0" if name == "oip" else "") for name in
                   ("oip", "objective", "status")}
    assert set(chunks) - {f"{layer}/done/c/{b}/0" for b in range(40)} == page_chunks  # 32 units: block 0 only
    assert len(viewer.grid.shown()) == 32 and viewer.grid.labels.text[31].startswith("31: ")
    reads.clear()
    viewer.page = 40  # units 1280..1311: blocks 20 (1280..1343)
    assert set(k for k in reads if not k.endswith("zarr.json")) == {
        f"{layer}/done/c/20/0", f"{layer}/oip/c/20/0/0/0/0", f"{layer}/objective/c/20/0", f"{layer}/status/c/20/0"}
    viewer.go_to("block9/conv:2499")
    assert viewer.page == 78 and viewer.selected == 2499 and viewer.grid.labels.text[3].startswith("2499: ")
    assert 0 < viewer.page_png_bytes() < 32 * 1000  # 32 PNGs of 8×8 RGB tiles
    viewer.close()


def test_the_viewer_pages_sorts_searches_and_opens_a_unit(atlas, images):
    fill(atlas, [t for t in atlas.tasks(pending=True) if t.seed == 0 or t.block == 0])
    atlas.add_examples(images, k=5, progress=False)
    viewer = ow.AtlasViewer(atlas.url, per_page=16, cols=8)
    assert viewer.layer == "Conv2D_1" and viewer.pages == 2 and "oip-atlas-viewer" in viewer._dom_classes
    labels = list(viewer.grid.labels.text)
    assert labels[0] == "0: DEAD" and list(viewer.grid.labels.colors)[0] == "#d00000"
    assert viewer.prev_button.disabled and not viewer.next_button.disabled
    viewer.turn(+1)
    assert viewer.page == 1 and viewer.grid.labels.text[4] == "20: DEAD" and viewer.next_button.disabled
    viewer.seed = 1  # seed 1: only block 0 (channels 0..7) computed; back to the first page
    assert viewer.page == 0 and viewer.grid.labels.text[8] == "8: …" and len(viewer.grid.shown()) == 8
    viewer.seed = 0
    viewer.sort = "objective"
    objectives = atlas.objectives("Conv2D_1", seed=0)
    assert viewer.page_channels().tolist() == np.argsort(-objectives, kind="stable")[:16].tolist()
    viewer._on_tile_click(2)  # a click on the third tile
    c = viewer.page_channels()[2]
    assert viewer.selected == c and f"map {c}</b>" in viewer.panel.title.value
    panel = viewer.panel
    assert panel.oip_grid.cols == 2 and panel.example_grid.rows == 2 and panel.example_grid.cols == 5
    best = atlas.examples("Conv2D_1", c)
    assert panel.example_grid.labels.text[0] == f"#{best['index'][0]}: {best['activation'][0]:.2f}"
    viewer.search_text.value = "Dense_2:7"
    assert viewer.layer == "Dense_2" and viewer.selected == 7 and panel.example_grid.rows == 1  # units: no maps
    viewer.search_text.value = "Conv2D_9:1"
    assert "unknown layer 'Conv2D_9'" in viewer.status and "Conv2D_1, Conv2D_3, Dense_2" in viewer.status
    explorer = viewer.open_explorer()
    assert type(explorer).__name__ == "OIPExplorer" and explorer.layer == "Dense_2" and explorer.map_index == 7
    assert explorer.recipe == RECIPE and explorer.preprocess == "standardize"
    assert panel.explorer_area.children == (explorer,)
    viewer.close()


def test_the_viewer_fills_in_as_tasks_finish(model, tmp_path):
    atlas = Atlas.create(tmp_path / "live.atlas.zarr", model, layers=["Conv2D_1"], recipe=RECIPE, block=8)
    tasks = atlas.tasks(pending=True)
    viewer = ow.AtlasViewer(atlas.url)
    assert viewer.grid.shown() == [] and "0 of 32" in viewer.done_label.value
    fill(atlas, tasks[:1])
    assert viewer.check() and viewer.grid.shown() == list(range(8))
    assert not viewer.check()  # nothing new
    viewer.refresh_every = 0.2  # the periodic check, in a background thread
    fill(atlas, tasks[1:])
    deadline = time.monotonic() + 10
    while not (len(viewer.grid.shown()) == 32 and "32 of 32" in viewer.done_label.value) \
            and time.monotonic() < deadline:  # (the thread draws the tiles, then the count)
        time.sleep(0.05)
    assert len(viewer.grid.shown()) == 32 and "32 of 32" in viewer.done_label.value, viewer.status
    viewer.close()
    assert not viewer._watcher.is_alive()
    with pytest.raises(Exception, match="refresh_every"):
        ow.AtlasViewer(atlas.url, refresh_every=0.01)
