"""Recipes, input conventions and real examples in the widgets (issue 19, items 1, 2, 5): the recipe sets the traits
and reaches the engine, RGB OIPs are drawn as they are at their own aspect ratio, and no tile is called dead that an
example image fires."""

import keras
import numpy as np
import pytest
from traitlets import TraitError

import oipwidgets as ow
from oipwidgets.engine.recipe import Recipe
from oipwidgets.output.render import enhanced_display, tile_scale
from oipwidgets.widgets.recipes import RESCUE_EXAMPLES, examples_in_space, rescue_set
from oipwidgets.widgets.tilegrid import ImageMosaic, TileGrid

WIDGETS = [ow.OIPExplorer, ow.LayerZoo]


@pytest.fixture(scope="module")
def mnist():
    return ow.load_default_model("mnist")


def rgb_model(h=20, w=20, name="convA"):
    inp = keras.Input((h, w, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name=name)(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="out")(keras.layers.GlobalAveragePooling2D()(x)))


def recording(engine, monkeypatch):
    """The keyword arguments of every ``run_layer`` call of ``engine`` (the real one still runs)."""
    calls = []
    real = engine.run_layer
    monkeypatch.setattr(engine, "run_layer", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    return calls


# ------------------------------------------------------------------ item 1: the recipe in the widgets
@pytest.mark.parametrize("cls", WIDGETS)
def test_a_recipe_sets_the_traits_and_the_dropdown_follows(cls, mnist):
    readable = Recipe.preset("readable")
    w = cls(mnist, recipe="readable")
    assert (w.steps, w.epsilon, w.strategy, w.param, w.transforms, w.optimizer, w.smoothness, w.blur, w.warmup) == (
        256, 0.05, "simple", "fourier", "standard", "adam", 0.0, 1.0, 16)
    assert w.recipe == readable and w.recipe.name() == "readable"
    assert w.recipe_dropdown.value == "readable" and list(w.recipe_dropdown.options) == ["article", "readable"]
    assert w.blur_text.value == 1.0 and w.warmup_text.value == 16  # the new controls show the traits
    w.blur = 0.5  # a trait away from the preset: "custom", offered only now
    assert w.recipe_dropdown.value == "custom" and list(w.recipe_dropdown.options) == ["article", "readable", "custom"]
    assert w.recipe == readable.replace(blur=0.5) and w.recipe.name() is None
    w.recipe_dropdown.value = "article"  # what picking the preset does
    assert w.recipe == Recipe.preset("article") and (w.steps, w.param, w.blur, w.warmup) == (400, "pixel", 0.0, 0)
    assert list(w.recipe_dropdown.options) == ["article", "readable"]
    w.warmup_text.value = 8  # the control → the trait → the dropdown
    assert w.warmup == 8 and w.recipe_dropdown.value == "custom"
    assert w.use_recipe("readable") == readable and w.recipe_dropdown.value == "readable"
    w.close()


def test_keywords_override_the_recipe_and_its_other_fields_are_kept(mnist):
    ex = ow.OIPExplorer(mnist, recipe=Recipe(l1=0.25, conv_criterion=1e-3).to_dict(), steps=64)
    assert ex.recipe == Recipe(l1=0.25, conv_criterion=1e-3, steps=64) and ex.recipe_dropdown.value == "custom"
    ex.steps = 400  # the traits are the article's again, the fields without a trait are not: still custom
    assert ex.recipe_dropdown.value == "custom" and ex.recipe.l1 == 0.25
    ex.recipe_dropdown.value = "article"  # picking the preset resets those too
    assert ex.recipe == Recipe() and list(ex.recipe_dropdown.options) == ["article", "readable"]
    zoo = ow.LayerZoo(mnist, recipe=Recipe.preset("readable"), smoothness=0.1)
    assert zoo.recipe == Recipe.preset("readable").replace(tv=0.1)
    ex.close(), zoo.close()


@pytest.mark.parametrize("cls", WIDGETS)
def test_bad_recipes_and_settings_name_the_valid_choices(cls, mnist):
    with pytest.raises(ValueError, match="unknown recipe 'fancy'; valid: article, readable"):
        cls(mnist, recipe="fancy")
    with pytest.raises(ValueError, match=r"param is a name \('pixel', 'fourier' or 'maco'\)"):
        cls(mnist, recipe=Recipe(param=ow.engine.parameterizations.Fourier(decay=1.5)))
    with pytest.raises(ValueError, match="unknown preprocess 'rgb'; valid: 'standardize'.*'caffe'"):
        cls(mnist, preprocess="rgb")
    with pytest.raises(ValueError, match=r"preprocess 'caffe' .* needs 3 channels; this model takes 1"):
        cls(mnist, preprocess="caffe")
    w = cls(mnist)
    with pytest.raises(TraitError, match=r"blur must be a finite number >= 0 and <= 100; got -1"):
        w.blur = -1
    with pytest.raises(TraitError, match=r"warmup \(steps\) must be a whole number >= 0; got -3"):
        w.warmup = -3
    assert w.status.startswith("error: warmup") and w.recipe == Recipe.preset("article")
    w.close()


def test_the_explorer_hands_its_recipe_to_the_engine(mnist, monkeypatch):
    ex = ow.OIPExplorer(mnist, map_index=5, seed=1, recipe="readable", steps=12)
    calls = recording(ex._engine(), monkeypatch)
    r = ex.run(wait=True)
    assert calls[0]["recipe"] == Recipe.preset("readable").replace(steps=12)
    assert r.params["param"].startswith("fourier") and r.params["warmup"] >= 16 and r.steps == 12
    assert calls[0]["objective"] is None and calls[0]["examples"].shape == (8, 28, 28, 1)  # the map's top 8
    np.testing.assert_allclose(calls[0]["examples"], ow.preprocessing.to_model_input(ex.top_examples().images),
                               atol=1e-6)  # standardised: the article's image space
    ex.diversity = 2  # two OIPs that climb together: the recipe, the diversity term, no rescue
    ex.run(wait=True)
    assert calls[-1]["recipe"] == ex.recipe and "diversity" in calls[-1]["objective"].describe().lower()
    assert calls[-1]["examples"] is None
    ex.close()


def test_the_zoo_hands_its_recipe_and_examples_to_the_engine(mnist, monkeypatch):
    zoo = ow.LayerZoo(mnist, "Conv2D_2", steps=4, seed=2, blur=0.5)
    calls = recording(zoo._engine(), monkeypatch)
    zoo.run(wait=True)
    assert calls[0]["recipe"] == Recipe(steps=4, blur=0.5)
    examples = calls[0]["examples"]
    assert examples.shape == (RESCUE_EXAMPLES, 28, 28, 1)
    tops = zoo._top_k(8)
    best = {int(t.indices[0]) for t in tops}  # every map's best example is among them
    picked = rescue_set(tops, range(64))
    assert best <= set(picked.tolist()) and len(picked) == RESCUE_EXAMPLES
    np.testing.assert_allclose(examples, ow.preprocessing.to_model_input(zoo.examples[picked]), atol=1e-6)
    zoo.rescue = False
    zoo.run(wait=True)
    assert calls[-1]["examples"] is None
    ex = zoo.open_explorer(3)  # the explorer opened from the zoo climbs the same way
    assert ex.recipe == zoo.recipe and ex.preprocess == zoo.preprocess and not ex.rescue
    zoo.close(), ex.close()


# ------------------------------------------------------------------ item 2: RGB as it is, at its own aspect ratio
def test_examples_reach_the_engine_in_its_image_space():
    raw = np.random.default_rng(0).integers(0, 256, (5, 6, 6, 3)).astype(np.uint8)
    standard = ow.OIPEngine(rgb_model(6, 6), "convA").mode
    unit = ow.OIPEngine(rgb_model(6, 6), "convA", preprocess="caffe").mode
    np.testing.assert_allclose(examples_in_space(standard, raw), ow.preprocessing.to_model_input(raw), atol=1e-6)
    np.testing.assert_allclose(examples_in_space(unit, raw), raw / 255.0, atol=1e-6)  # bytes: RGB in [0, 1]
    floats = raw / 255.0
    np.testing.assert_allclose(examples_in_space(unit, floats), floats, atol=1e-6)  # already in [0, 1]
    assert examples_in_space(unit, raw[..., 0]).shape == (5, 6, 6, 1)  # grey images get their channel axis


def test_rgb_oips_are_drawn_as_they_are_in_their_range():
    model = rgb_model()
    rng = np.random.default_rng(1)
    examples = rng.integers(0, 256, (12, 20, 20, 3)).astype(np.uint8)
    ex = ow.OIPExplorer(model, preprocess="unit", recipe="readable", steps=10, seed=3, examples=examples, k=4)
    assert ex._engine().mode.label == "unit" and ex._engine("out").mode.label == "unit"  # every engine it makes
    r = ex.run(wait=True)
    assert r.value_range == (0.0, 1.0) and r.params["preprocess"] == "unit"
    last = len(r.snapshot_steps) - 1
    image_tile = ex.grid.tiles[ex.tile_index(0, last)].values
    np.testing.assert_allclose(image_tile, np.clip(r.image, 0, 1), atol=1e-6)  # no stretch of its own
    assert image_tile.max() < 1.0 - 1e-3 or image_tile.min() > 1e-3  # (which a stretch would give)
    np.testing.assert_allclose(ex.grid.tiles[ex.tile_index(1, last)].values, enhanced_display(r.image), atol=1e-6)
    assert "as it is in 0–1, not stretched" in ex.legend.value and "RGB 0 → 1" in ex.legend.value
    ex.show_tile(last)  # the detail view draws it the same way and says the range
    np.testing.assert_allclose(ex.tile_detail.tiles[0].values, np.clip(r.image, 0, 1), atol=1e-6)
    assert "image: RGB: 0 → 1" in ex.tile_detail_text.value
    # the top examples are ranked by the model's activations of the images in [0, 1]
    acts = ex._engine().activations(examples / 255.0).mean(axis=(1, 2))[:, ex.map_index]
    np.testing.assert_array_equal(ex.top_examples().indices, np.argsort(-acts, kind="stable")[:4])
    np.testing.assert_array_equal(ex.top_examples().images, examples[ex.top_examples().indices])  # shown raw
    zoo = ow.LayerZoo(model, preprocess="unit", steps=5, seed=3, examples=examples)
    result = zoo.run(wait=True)
    shown = zoo.mosaic.image.values  # the one colour PNG of the zoo: tile 0 at the top left
    np.testing.assert_allclose(shown[:20, :20], np.clip(result[0].image, 0, 1), atol=1e-6)
    ex.close(), zoo.close()


@pytest.mark.parametrize("shape", [(28, 28), (64, 64), (48, 96)])
def test_tiles_keep_the_images_aspect_ratio_in_pixels(shape):
    h, w = shape
    s = tile_scale(h, w)
    # the explorer's snapshot grid (row labels, click squares) and the detail view
    for grid in (TileGrid(6, 3, shape, row_labels=["image", "contrast"] * 3, clickable=True), TileGrid(1, 1, shape)):
        for i in (0, len(grid.tiles) - 1):
            _, _, width, height = grid.tile_box(i)
            assert width == pytest.approx(w * s, abs=0.5) and height == pytest.approx(h * s, abs=0.5)
    mosaic = ImageMosaic()
    mosaic.layout(np.arange(10), shape, 4)
    _, _, width, height = mosaic.tile_box(9)
    assert width == pytest.approx(w * s, abs=0.5) and height == pytest.approx(h * s, abs=0.5)


def test_the_64px_colour_explorer_draws_square_128px_tiles():
    """Was 88 px wide and 110 px tall in JupyterLab: the invisible click squares padded both scales by 65 px."""
    ex = ow.OIPExplorer(rgb_model(64, 64), steps=5)
    for k in (0, ex.n_columns - 1):
        for row in (0, 1):
            _, _, width, height = ex.grid.tile_box(ex.tile_index(row, k))
            assert (round(width), round(height)) == (128, 128)
    zoo = ow.LayerZoo(rgb_model(64, 64))
    assert [round(v) for v in zoo.mosaic.tile_box(3)[2:]] == [128, 128]
    ex.close(), zoo.close()


# ------------------------------------------------------------------ item 5: no false "dead"
def test_no_tile_is_called_dead_that_an_example_fires(mnist):
    zoo = ow.LayerZoo(mnist, "Conv2D_3", steps=200, seed=1)
    result = zoo.run(wait=True)
    engine = zoo._engine()
    fired = engine.activations(ow.preprocessing.to_model_input(zoo.examples)).mean(axis=(1, 2)).max(axis=0) > 0
    dead = [r.params["map"] for r in result if r.dead]
    assert not any(fired[m] for m in dead), f"dead maps that an example fires: {[m for m in dead if fired[m]]}"
    cured = {r.params["map"]: r.params["cure"] for r in result if "cure" in r.params}
    assert "warm-up" in cured.values()  # (at 200 steps from seed 1 about 15 maps stay dead without the rescue)
    notes = list(zoo.mosaic.notes.text)  # sorted by map: the note under each tile's label
    assert notes == [f"↻ {cured[m]}" if m in cured else "" for m in range(64)]
    assert all(not result[m].dead for m in cured) and all(r.params["best_example"] >= 0 for r in result)
    n = sum(c == "warm-up" for c in cured.values())
    assert f"{n} map{'s' if n != 1 else ''} retried with a warm-up" in zoo.status
    m = next(m for m, c in cured.items() if c == "warm-up")
    zoo.selected = m  # the detail view says why
    assert "↻ warm-up: this map stayed dead from this noise although an example image fires it" in \
        zoo.detail_title.value
    assert zoo.detail_grid.labels.text[0].endswith("↻")
    ex = zoo.open_explorer(m)  # the explorer, on the same map and settings, says so too
    r = ex.run(wait=True)
    assert r.params["cure"] == "warm-up" and not r.dead
    assert "↻ warm-up: this map stayed dead" in ex.status and ex.grid.labels.text[0].startswith("↻ step")
    ex.show_tile(0)
    assert "↻ warm-up" in ex.tile_detail_text.value
    zoo.close(), ex.close()
