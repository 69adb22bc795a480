"""LayerZoo and ActivationViewer without a browser: coverage, exact values, clicks, errors."""

import keras
import numpy as np
import pytest
from traitlets import TraitError

import oipwidgets as ow
from oipwidgets.widgets.zoo import MUTED
from oipwidgets.engine.result import STATUS_LABELS
from oipwidgets.output.render import mosaic, plain


@pytest.fixture(scope="module")
def mnist():
    return ow.load_default_model("mnist")


@pytest.fixture(scope="module")
def zoo(mnist):
    z = ow.LayerZoo(mnist, "Conv2D_3", steps=40, seed=1)
    z.run(wait=True)
    return z


def tiles_of(z):
    """Cut the zoo's single mosaic back into its tiles, in display order."""
    h, w, gap, label = z.mosaic.tile
    color = np.asarray(z.mosaic.heatmap.color)
    n = len(z.mosaic.order)
    out = []
    for i in range(n):
        r, c = divmod(i, z.mosaic.cols)
        out.append(color[r * (h + label + gap) : r * (h + label + gap) + h, c * (w + gap) : c * (w + gap) + w])
    return np.stack(out)


def test_zoo_covers_every_map_once_with_run_layer_images(mnist, zoo):
    r = zoo.result
    assert len(r) == 64 and sorted(r.maps) == list(range(64))
    reference = ow.OIPEngine(mnist, "Conv2D_3").run_layer(steps=40, seed=1)
    cured = np.array(["cure" in res.params for res in r])
    np.testing.assert_allclose(r.images[~cured], reference.images[~cured], atol=1e-5)
    for m in np.flatnonzero(cured):  # re-run by the engine: dead or below its best example without the examples
        assert reference[m].dead or reference[m].final_loss < r[m].params["best_example"]
    tiles = tiles_of(zoo)
    assert tiles.shape == (64, 28, 28)
    expected = np.stack([plain(im) for im in r.images])
    live = np.array([not res.dead for res in r])
    np.testing.assert_allclose(tiles[live], expected[live], atol=1e-5)
    # dead maps: their noise drawn faint around mid-grey, so the live OIPs stand out
    np.testing.assert_allclose(tiles[~live], 0.5 + MUTED * (expected[~live] - 0.5), atol=1e-5)
    assert np.ptp(tiles[~live], axis=(1, 2)).max() <= MUTED + 1e-6 < np.ptp(tiles[live], axis=(1, 2)).min()
    # one bqplot image for the whole layer, not one figure per map
    assert sum(type(m).__name__ == "HeatMap" for m in zoo.figure.marks) == 1
    assert list(zoo.mosaic.hits.opacities) == [0.02]  # the click squares stay invisible before any selection
    labels = list(zoo.mosaic.labels.text)
    for m in (0, 5, 63):
        res = r[m]
        assert labels[m] == (f"{m}: {STATUS_LABELS['dead']}" if res.dead else f"{m}: {res.final_loss:.2f}")
    dead = [m for m in range(64) if r[m].dead]
    assert dead and all(zoo.mosaic.labels.colors[m] == "#d00000" for m in dead)
    assert "dead for this noise" in zoo.status


def test_zoo_sorts_by_activation(zoo):
    zoo.sort = "activation"
    losses = zoo.result.final_losses
    assert list(losses[zoo.mosaic.order]) == sorted(losses, reverse=True)
    tiles = tiles_of(zoo)
    np.testing.assert_allclose(tiles[0], plain(zoo.result.images[zoo.mosaic.order[0]]), atol=1e-5)
    assert zoo.mosaic.labels.text[0].startswith(f"{zoo.mosaic.order[0]}:")
    zoo.sort = "map"
    assert list(zoo.mosaic.order) == list(range(64))


def test_clicking_a_tile_selects_its_map_and_shows_examples(zoo):
    zoo.sort = "activation"
    zoo.mosaic.hits.selected = [2]  # what a click on the third tile does in the browser
    m = int(zoo.mosaic.order[2])
    assert zoo.selected == m
    assert not zoo.explorer_button.disabled
    top = zoo.top_examples(m)
    assert len(top.indices) == zoo.k and list(top.activations) == sorted(top.activations, reverse=True)
    labels = list(zoo.detail_grid.labels.text)
    assert labels[1] == f"#{top.indices[0]}: {top.activations[0]:.2f}"
    ex = zoo.open_explorer()
    assert isinstance(ex, ow.OIPExplorer) and ex.map_index == m and ex.layer == "Conv2D_3" and ex.steps == 40
    zoo._show_explorer()
    assert zoo.explorer_area.children[0].map_index == m
    zoo.sort = "map"
    assert zoo.mosaic.hits.selected == [m]  # the selection follows its map when the order changes


def test_zoo_rerun_with_other_settings_and_errors(mnist):
    z = ow.LayerZoo(mnist, "Conv2D_2", steps=5, seed=2, strategy="multiscale")
    r = z.run(wait=True)
    assert len(r) == 64 and r[0].params["strategy"] == "multiscale"
    z.layer = "Conv2D_1"
    assert z.result is None and len(z.mosaic.order) == 32
    with pytest.raises(TraitError, match="unknown layer 'Dense_1' for a zoo; layers with maps:.*Conv2D_3"):
        z.layer = "Dense_1"
    with pytest.raises(TraitError, match=r"selected map 40 is out of range: layer 'Conv2D_1' has 32 maps \(0\.\.31\)"):
        z.selected = 40
    with pytest.raises(TraitError, match=r"k must be a whole number from 1 to 100; got 101 \(there are 100 example"):
        z.k = 101
    with pytest.raises(ValueError, match="empty image set"):
        ow.LayerZoo(mnist, examples=np.zeros((0, 28, 28)))
    dense_only = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="conv-like layers"):
        ow.LayerZoo(dense_only)
    with pytest.raises(ValueError, match="no map selected"):
        z.open_explorer()


def test_activation_viewer_shows_exactly_the_models_values(mnist):
    images, labels = ow.datasets.samples("mnist")
    v = ow.ActivationViewer(mnist, images, labels=labels, image_index=12)
    x = ow.preprocessing.to_model_input(images[12:13])
    sub = keras.Model(mnist.inputs[0], mnist.get_layer("Conv2D_3").output)
    maps = sub(x).numpy()[0]
    np.testing.assert_array_equal(v.activations()["maps"], maps)
    for m in (0, 17, 63):
        np.testing.assert_array_equal(v.maps_grid.tiles[m].color, maps[:, :, m].astype(np.float32))
    assert v.maps_grid.colors.min == maps.min() and v.maps_grid.colors.max == maps.max()
    dense = keras.Model(mnist.inputs[0], mnist.get_layer("Dense_1").output)(x).numpy()[0]
    np.testing.assert_allclose(v.dense_bars.y, dense, rtol=1e-6)
    probs = mnist(x).numpy()[0]
    np.testing.assert_allclose(v.prob_bars.y, probs, rtol=1e-6)
    assert f"label {labels[12]}" in v.caption.value and f"predicted <b>{np.argmax(probs)}</b>" in v.caption.value
    assert v.dense_figure.axes[1].side == "left" and v.prob_figure.axes[1].side == "left"
    v.layer = "Conv2D_1"
    assert len(v.maps_grid.tiles) == 32 and v.maps_grid.h == 26
    v.colormap = "magma"
    assert v.maps_grid.scheme == "magma"
    with pytest.raises(TraitError, match=r"image index 100 is out of range: 100 images \(0\.\.99\)"):
        v.image_index = 100
    with pytest.raises(TraitError, match="unknown conv layer 'Dense_1'"):
        v.layer = "Dense_1"


def test_activation_viewer_bad_input(mnist):
    with pytest.raises(ValueError, match="non-empty array"):
        ow.ActivationViewer(mnist, np.zeros((0, 28, 28)))
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\).*got shape \(3, 32, 32\)"):
        ow.ActivationViewer(mnist, np.zeros((3, 32, 32)))
    rgb = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="c"), keras.layers.Flatten(),
                            keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="give images for this model"):
        ow.ActivationViewer(rgb)
    v = ow.ActivationViewer(rgb, np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype(np.uint8))
    assert v.activations()["maps"].shape == (6, 6, 2) and v.class_names == ["0", "1"]


def test_mosaic_layout():
    tiles = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    m = mosaic(tiles, cols=2, gap=1)
    assert m.shape == (5, 5)
    np.testing.assert_array_equal(m[3:5, 0:2], tiles[2])
    assert np.isnan(m[2]).all() and np.isnan(m[3:, 3:]).all()


def test_zoo_reruns_with_other_noise_settings(mnist):
    z = ow.LayerZoo(mnist, "Conv2D_3", steps=20, seed=1)
    assert z.noise_scales == [(3, 3), (7, 7), (14, 14), (28, 28)] and z.weights_text.value == "0.5, 0.5, 0.5, 0.5"
    z.noise_weights = [1.0, 0.5, 0.25, 0.5]
    z.noise_scales = [(7, 7), (14, 14), (28, 28)]  # from code: the weights follow the scales, the texts show both
    assert z.noise_weights == [0.5, 0.25, 0.5] and z.status == "ready"
    assert z.scales_text.value == "7x7, 14x14, 28x28" and z.weights_text.value == "0.5, 0.25, 0.5"
    z.noise_scales, z.noise_weights = [(3, 3), (7, 7), (14, 14), (28, 28)], [0.5] * 4
    assert z.weights_text.value == "0.5, 0.5, 0.5, 0.5" and z.status == "ready"
    first = z.run(wait=True)
    z.scales_text.value = "3, 7"
    z.weights_text.value = "1, 0.5"
    assert z.noise_scales == [(3, 3), (7, 7)] and z.noise_weights == [1.0, 0.5]
    second = z.run(wait=True)
    assert second[0].params["noise"] == "2 scales 3×3:1, 7×7:0.5"
    assert np.abs(second[0].start - first[0].start).max() > 0.1
    reference = ow.OIPEngine(mnist, "Conv2D_3").run_layer(steps=20, seed=1, noise=z.noise())
    plain = np.array(["cure" not in r.params for r in second])  # (cured maps: the engine re-ran them)
    np.testing.assert_allclose(second.images[plain], reference.images[plain], atol=1e-5)
    z.weights_text.value = "1"  # one weight for two scales: refused, settings kept
    assert z.status.startswith("error: MultiScaleNoise needs one weight per scale")
    assert z.noise_weights == [1.0, 0.5]
    z.selected = 4
    ex = z.open_explorer()
    assert ex.noise_scales == [(3, 3), (7, 7)] and ex.noise_weights == [1.0, 0.5]
