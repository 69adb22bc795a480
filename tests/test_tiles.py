"""Tiles as 8-bit PNG images: colour for 3-channel images, colour maps for grey ones, small payloads, re-used widgets."""

import json
from contextlib import contextmanager

import ipywidgets
import keras
import numpy as np
import pytest
from matplotlib import colormaps

import oipwidgets as ow
from oipwidgets.output import render
from oipwidgets.widgets.tilegrid import ImageMosaic, Tile, TileGrid, reuse_grid


@contextmanager
def wire():
    """Counts what the widgets send to the front end (JSON plus binary buffers), as benchmarks/bench_explorer.py."""
    sent = {"messages": 0, "bytes": 0}
    orig = ipywidgets.Widget._send

    def send(widget, msg, buffers=None):
        sent["messages"] += 1
        sent["bytes"] += len(json.dumps(msg, default=str)) + sum(memoryview(b).nbytes for b in (buffers or []))

    ipywidgets.Widget._send = send
    try:
        yield sent
    finally:
        ipywidgets.Widget._send = orig


def n_widgets():
    return len(ipywidgets.widgets.widget._instances)


def first_last(cmap):
    return [np.round(np.asarray(colormaps[cmap](x)[:3]) * 255).astype(np.uint8) for x in (0.0, 1.0)]


def rgb_model(size, name):
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=4 if size > 64 else 1, activation="relu", name=name)(inp)
    return keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def test_a_colour_image_is_drawn_in_colour():
    grid = TileGrid(1, 2, (20, 30))
    red = np.zeros((20, 30, 3), np.float32)
    red[..., 0] = 5.0
    red[0, 0] = 0.0  # a black pixel, so the plain stretch has a range
    grid.set_tile(0, render.plain_display(red), "red")
    px = grid.pixels(0)
    assert px.shape == (20, 30, 3) and px.dtype == np.uint8
    assert (px[1:, 1:] == [255, 0, 0]).all() and (px[0, 0] == 0).all()
    assert isinstance(grid.tiles[0], Tile) and grid.tiles[0].image.format == "png"
    assert bytes(grid.tiles[0].image.value[:8]) == b"\x89PNG\r\n\x1a\n"
    # a colour image is not reduced to one channel: a blue-to-green ramp keeps both hues
    ramp = np.zeros((20, 30, 3), np.float32)
    ramp[..., 1] = np.linspace(0, 1, 30)
    ramp[..., 2] = 1 - ramp[..., 1]
    grid.set_tile(1, render.plain_display(ramp))
    px = grid.pixels(1)
    assert tuple(px[5, 0]) == (0, 0, 255) and tuple(px[5, -1]) == (0, 255, 0)


def test_a_grey_image_gets_the_colour_maps_colours():
    grid = TileGrid(1, 1, (16, 16), scheme="viridis")
    img = np.linspace(-3, 7, 256, dtype=np.float32).reshape(16, 16)
    grid.set_tile(0, render.plain_display(img))
    px = grid.pixels(0)
    lo, hi = first_last("viridis")
    assert (px[0, 0] == lo).all() and (px[-1, -1] == hi).all()
    assert len({tuple(p) for p in px.reshape(-1, 3)}) > 200  # 256 levels, not a few colours
    np.testing.assert_array_equal(px, render.to_rgb8(render.plain(img), "viridis"))
    grid.scheme = "magma"  # a new colour map recolours the shown tile
    lo, hi = first_last("magma")
    assert (grid.pixels(0)[0, 0] == lo).all() and (grid.pixels(0)[-1, -1] == hi).all()
    # a colour range (the activation viewer's): values outside it are clipped to the ends of the map
    grid.set_range(-3.0, 2.0)
    grid.set_tile(0, img)  # raw values: -3 → first colour, 2 and above → last
    px = grid.pixels(0).reshape(-1, 3)
    assert (px[0] == lo).all() and (px[img.ravel() >= 2] == hi).all() and (px[img.ravel() < 1.9] != hi).any(axis=1).all()
    assert grid.tiles[0].values is not img and (grid.tiles[0].values == img).all()  # read back: the values given
    # 1-channel renderings stay as they were
    np.testing.assert_array_equal(render.plain_display(img[..., None]), render.plain(img))
    np.testing.assert_array_equal(render.enhanced_display(img[..., None]), render.enhanced(img))


def test_enhanced_differs_from_plain_as_documented():
    rng = np.random.default_rng(0)
    grey = rng.normal(size=(32, 32)).astype(np.float32)
    grey[0, 0] = 100.0  # one outlier: plain squeezes everything else near 0, enhanced clips it away
    p, e = render.plain_display(grey), render.enhanced_display(grey)
    assert np.median(p) < 0.05 and 0.3 < np.median(e) < 0.9
    lo, hi = np.percentile(grey, (2, 98))
    np.testing.assert_allclose(e, np.clip((grey - lo) / (hi - lo), 0, 1) ** 0.6, atol=1e-6)

    colour = rng.uniform(0, 1, size=(32, 32, 3)).astype(np.float32) * [0.5, 0.2, 1.0]
    p = render.plain_display(colour)
    assert p.shape == (32, 32, 3)
    # one stretch for all channels: red and green are NOT stretched to 0..1 on their own
    assert p[..., 0].max() < 0.6 and p[..., 1].max() < 0.25 and p[..., 2].max() > 0.99
    e = render.enhanced_display(colour)
    low, high = np.percentile(colour, (2, 98))
    stretched = np.clip((colour - low) / (high - low), 0, 1)
    inside = (stretched > 0.05).all(axis=-1) & (stretched.max(axis=-1) < 0.999)
    # the gamma lifts brightness but keeps each pixel's channel ratios (hue, saturation)
    np.testing.assert_allclose((e / e.max(axis=-1, keepdims=True))[inside],
                               (stretched / stretched.max(axis=-1, keepdims=True))[inside], atol=1e-4)
    assert (e.max(axis=-1)[inside] > stretched.max(axis=-1)[inside]).all()


def test_tile_size_and_png_payload_of_large_images():
    assert render.tile_scale(28) == 3 and render.tile_scale(224) == 0.5 and render.tile_scale(64) == 2
    for n in (8, 20, 28, 32, 50, 64, 75, 100, 140, 160, 224, 299, 512):
        assert 84 <= n * render.tile_scale(n) <= 140
    grid = TileGrid(2, 9, (224, 224))
    assert grid.scale == 0.5 and grid.png_size == (140, 140)  # 1.25 × its 112 screen pixels
    noise = np.random.default_rng(1).uniform(size=(224, 224, 3)).astype(np.float32)  # the worst case for PNG
    with wire() as sent:
        grid.set_tile(0, noise, "noise")
    assert grid.png_nbytes(0) < 100_000 and sent["bytes"] < 100_000
    assert grid.pixels(0).shape == (140, 140, 3)
    with wire() as sent:
        grid.set_tile(0, noise.copy(), "noise")  # the same again: nothing is sent
    assert sent["bytes"] == 0


def test_tiles_are_reused_and_only_changed_tiles_are_sent():
    grid = TileGrid(2, 3, (28, 28))
    rng = np.random.default_rng(2)
    grid.set_tile(0, rng.uniform(size=(28, 28)))
    before = n_widgets()
    for k in range(20):
        grid.set_tile(k % 6, rng.uniform(size=(28, 28)), f"tile {k}")
    assert n_widgets() == before
    with wire() as sent:
        grid.set_tile(1, rng.uniform(size=(28, 28)), "new")
    assert sent["bytes"] < 3000  # one 28×28 palette PNG (~1.7 KB of noise) and the labels
    again = reuse_grid(grid, 2, 3, (28, 28), scheme="viridis")
    assert again is grid and grid.shown() == []
    other = reuse_grid(grid, 1, 1, (28, 28))
    assert n_widgets() < before and other is not grid


def test_a_224x224x3_explorer_update_stays_small_and_in_colour():
    ex = ow.OIPExplorer(rgb_model(224, "conv224"), steps=12, seed=0)
    assert ex.grid.scale == 0.5 and ex.grid.h == 224
    r = ex.run(wait=True)  # warm (traces the loop)
    px = ex.grid.pixels(ex.tile_index(0, len(r.snapshot_steps) - 1))
    assert np.abs(px.astype(int)[..., 0] - px[..., 1]).max() > 30  # colour, not grey
    widgets_after_one_run = n_widgets()
    draws = []
    draw = ex._draw_tile
    ex._draw_tile = lambda *a, **k: (draws.append(a[0]), draw(*a, **k))
    with wire() as sent:
        ex.run(wait=True)
    assert draws and sent["bytes"] / len(draws) <= 300_000
    assert n_widgets() == widgets_after_one_run  # tiles are re-used run after run
    # the worst case of one live update: the step-0 snapshot of pure noise (two tiles: plain and enhanced), the loss
    # curve, the progress bar
    noise = np.random.default_rng(3).normal(size=(224, 224, 3)).astype(np.float32)
    ex._live.update(last_draw=0.0, filled=-1)
    with wire() as sent:
        ex._on_progress(type("P", (), dict(step=0, total=12, losses=[1.0], snapshot=(0, [noise], [1.0]),
                                           images=[noise], compiling=False))(), ex._run_id)
    assert 75_000 < sent["bytes"] <= 150_000, sent
    ex.close()


def test_colour_zoo_is_one_colour_png():
    zoo = ow.LayerZoo(rgb_model(20, "convz"), steps=5, seed=0, cols=4)
    assert isinstance(zoo.mosaic, ImageMosaic)
    assert sum(type(m).__name__ == "HeatMap" for m in zoo.figure.marks) == 0
    zoo.run(wait=True)
    px = zoo.mosaic.pixels()
    h, w, gap, label = zoo.mosaic.tile
    tile = px[:h, :w].astype(int)
    expected = render.to_rgb8(render.plain_display(zoo.result.images[0]))
    np.testing.assert_array_equal(tile, expected)
    assert (px[h: h + label, :w] == 255).all()  # the label row is blank (white)
    zoo.mosaic.hits.selected = [1]
    assert zoo.selected == 1 and zoo.detail_grid.pixels(0).shape == (20, 20, 3)


@pytest.mark.parametrize("bad", [np.zeros((5, 5)), np.zeros((28, 28, 2))])
def test_wrong_shapes_are_refused(bad):
    with pytest.raises(ValueError, match="takes an image of shape"):
        TileGrid(1, 1, (28, 28)).set_tile(0, bad)


def test_row_labels_sit_left_of_their_rows_and_clicks_select_a_tile():
    grid = TileGrid(2, 3, (28, 28), scale=2.0, row_labels=["image", "contrast"], clickable=True)
    assert list(grid.row_label_mark.text) == ["image", "contrast"] and grid.row_label_mark.rotate_angle == -90
    assert grid.margin == pytest.approx(18 / 2.0)  # 18 screen px of margin at 2 screen px per image px
    assert all(x < grid.margin for x in grid.row_label_mark.x)  # in the margin, left of every tile
    assert min(t.x[0] for t in grid.tiles) == pytest.approx(grid.margin)
    row_y = list(grid.row_label_mark.y)  # each label at the middle of its row's tiles
    assert row_y == pytest.approx([grid.tiles[0].y[1] + 14, grid.tiles[3].y[1] + 14])
    clicked = []
    grid.on_click(clicked.append)
    grid.hits.selected = [4]  # what a click on tile 4 does in the browser
    grid.hits.selected = None
    assert clicked == [4, None]
    grid.select(2)  # from code: outlined, no callback
    assert list(grid.hits.selected) == [2] and clicked == [4, None]
    with pytest.raises(ValueError, match="one label per row"):
        TileGrid(2, 3, row_labels=["image"])
    with pytest.raises(ValueError, match="clickable=True"):
        TileGrid(1, 1).on_click(print)


def test_legend_colour_bar_and_value_table():
    from oipwidgets.widgets.legend import colour_bar, display_range, value_table

    bar = colour_bar("magma", "-1.5", "2")
    first, last = first_last("magma")
    assert f"rgb({first[0]},{first[1]},{first[2]})" in bar and f"rgb({last[0]},{last[1]},{last[2]})" in bar
    assert bar.index("-1.5") < bar.index("linear-gradient") < bar.index(" 2</span>")
    img = np.array([[0.0, 1.0], [2.0, 5.0]])
    assert display_range(img, contrast=False) == (0.0, 5.0)
    low, high = display_range(np.arange(101.0), contrast=True)
    assert (low, high) == pytest.approx((2.0, 98.0))
    table = value_table(img)  # min 0, max 5, mean 2, std sqrt(3.5)
    cells = [c.split("</td>")[0] for c in table.split("text-align:right'>")[1:]]
    assert cells == ["0", "5", "2", f"{np.sqrt(3.5):.3g}"]
    rgb = value_table(np.stack([img, img * 2, -img], axis=-1))
    assert "<td>R</td>" in rgb and "<td>B</td>" in rgb and ">-5<" in rgb
