"""OIPExplorer without a browser: construction, trait ↔ control binding, runs, stop, cancel, errors, exports."""

import dataclasses
import time

import keras
import numpy as np
import pytest
from PIL import Image
from traitlets import TraitError

import oipwidgets as ow
from oipwidgets.engine.result import status_summary
from oipwidgets.engine.strategies import strategy_for
from oipwidgets.widgets.controls import format_scales as controls_format_scales
from oipwidgets.widgets.explorer import format_scales, parse_scales
from oipwidgets.output.render import enhanced, plain


@pytest.fixture(scope="module")
def mnist():
    return ow.load_default_model("mnist")


@pytest.fixture
def explorer(mnist):
    return ow.OIPExplorer(mnist, map_index=5, seed=1)


def small_rgb_model():
    inp = keras.Input((20, 20, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="convA")(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="out")(keras.layers.Flatten()(x)))


def test_default_construction_uses_the_shipped_model():
    ex = ow.OIPExplorer()
    assert ex.model.name and ex.layer == "Conv2D_3"
    assert list(ex.layer_dropdown.options)[:5] == ["Conv2D_1", "MaxPool_1", "Conv2D_2", "MaxPool_2", "Conv2D_3"]
    assert ex.map_slider.max == 63
    assert ex.noise_scales == [(3, 3), (7, 7), (14, 14), (28, 28)] and ex.noise_weights == [0.5] * 4
    assert len(ex.weight_sliders) == 4
    assert "oip-explorer" in ex._dom_classes and "oip-grid" in ex.grid.figure._dom_classes
    # the article's 8 snapshots, one column each (no extra "start"), in two bands of 4 so they fit beside the controls
    assert ex.n_columns == 8 and ex.grid.rows == 4 and ex.grid.cols == 4
    assert ex.grid.row_labels == ["image", "contrast"] * 2
    assert ex.loss_figure.axes[1].label_offset == "52px"  # bqplot turns it to the left of a left axis: clear of ticks
    assert ex.loss_figure.axes[1].side == "left"


def test_user_model_with_rgb_input():
    ex = ow.OIPExplorer(small_rgb_model())
    assert ex.layer == "convA" and ex.map_slider.max == 3
    assert ex.noise_scales[0] == (2, 2)  # the article's 3/28 of the side, for 20 pixels
    r = ex.run(wait=True)
    assert r.image.shape == (20, 20, 3) and ex.grid.h == 20


def test_every_control_is_bound_to_its_trait(explorer):
    pairs = [
        ("layer", explorer.layer_dropdown, "Conv2D_2"),
        ("map_index", explorer.map_slider, 7),
        ("epsilon", explorer.epsilon_slider, 0.02),
        ("steps", explorer.steps_text, 123),
        ("strategy", explorer.strategy_dropdown, "precursor"),
        ("seed", explorer.seed_text, 42),
        ("colormap", explorer.colormap_dropdown, "magma"),
    ]
    for trait, control, value in pairs:
        control.value = value  # control → trait
        assert getattr(explorer, trait) == pytest.approx(value)
    explorer.map_index = 9  # trait → control
    assert explorer.map_slider.value == 9
    explorer.layer = "Dense_1"
    assert explorer.map_slider.max == 69 and explorer.map_slider.description == "unit"
    assert explorer.grid.scheme == "magma"
    explorer.weight_sliders[2].value = 1.25
    assert explorer.noise_weights == [0.5, 0.5, 1.25, 0.5]
    explorer.noise_weights = [1.0, 0.0, 0.5, 0.5]
    assert [s.value for s in explorer.weight_sliders] == [1.0, 0.0, 0.5, 0.5]
    explorer.scales_text.value = "4, 9x9"
    assert explorer.noise_scales == [(4, 4), (9, 9)] and len(explorer.weight_sliders) == 2
    explorer.noise_scales = [(3, 3), (28, 28)]
    assert explorer.scales_text.value == "3x3, 28x28"
    seen = []
    explorer.observe(lambda c: seen.append(c["new"]), "map_index")
    explorer.map_slider.value = 11
    assert seen == [11]


def test_run_fills_the_grid_and_the_loss_curve(explorer):
    r = explorer.run(wait=True)
    assert explorer.result is r and r.status in ("max_steps", "converged") and r.steps == 400
    assert not explorer.running
    n = len(r.snapshot_steps)
    assert sorted(explorer.grid.shown()) == sorted(explorer.tile_index(row, k) for row in (0, 1) for k in range(n))
    labels = list(explorer.grid.labels.text)
    assert [labels[explorer.tile_index(0, k)] for k in range(n)] == [f"step {s}" for s in r.snapshot_steps]
    assert [labels[explorer.tile_index(1, k)] for k in range(n)] == [f"obj {v:.3g}" for v in r.snapshot_losses]
    last = n - 1
    np.testing.assert_allclose(explorer.grid.tiles[explorer.tile_index(0, last)].color, plain(r.image), atol=1e-6)
    np.testing.assert_allclose(explorer.grid.tiles[explorer.tile_index(1, last)].color, enhanced(r.image), atol=1e-6)
    np.testing.assert_allclose(explorer.grid.tiles[0].color, plain(r.snapshots[0]), atol=1e-6)
    assert explorer.grid.tiles[0].color.dtype == np.float32  # small messages: float32 pixels
    np.testing.assert_allclose(explorer.loss_line.y, r.losses, rtol=1e-6)
    assert len(explorer.loss_line.x) == 400
    assert explorer.progress.value == 1.0
    assert "final objective" in explorer.status


def test_the_view_updates_while_running(explorer):
    updates = []
    explorer.loss_line.observe(lambda c: updates.append(len(c["new"])), "y")
    explorer.steps = 3000
    explorer.run(wait=True)
    assert len(updates) >= 5  # live points while running, then the full curve
    assert updates[:-1] == sorted(updates[:-1]) and updates[-1] == 3000


def test_stop_keeps_what_was_done(explorer):
    explorer.steps = 1_000_000
    explorer.run()
    time.sleep(0.8)
    assert explorer.running
    asked = time.perf_counter()
    explorer.stop()
    r = explorer.wait(10)
    assert time.perf_counter() - asked < 1.0
    assert r.status == "stopped" and 0 < r.steps < 1_000_000
    assert "stopped after" in explorer.status and not explorer.running
    last = explorer.tile_index(0, len(r.snapshot_steps) - 1)
    assert explorer.grid.labels.text[last] == f"step {r.snapshot_steps[-1]}"


def test_changing_the_map_during_a_run_cancels_it(explorer):
    explorer.steps = 1_000_000
    explorer.run()
    time.sleep(0.5)
    explorer.map_index = 6
    assert not explorer._worker.busy
    assert explorer.result.status == "stopped" and explorer.result.params["map"] == 5


def test_run_while_running_restarts(explorer):
    explorer.steps = 1_000_000
    explorer.run()
    time.sleep(0.3)
    explorer.steps = 50
    r = explorer.run(wait=True)
    assert r.steps == 50 and r.status != "stopped"


def test_the_kernel_stays_free_during_a_run(explorer):
    explorer.steps = 1_000_000
    explorer.run()
    t0 = time.perf_counter()
    counted = sum(1 for _ in range(200_000))  # other work goes on in this thread meanwhile
    assert counted == 200_000 and time.perf_counter() - t0 < 5
    assert explorer.running
    explorer.stop()
    explorer.wait(10)


def test_errors_show_in_the_status_line(explorer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(explorer._engine(), "run", broken)
    explorer.run()
    explorer.wait(10)
    assert explorer.status == "error: RuntimeError: the engine broke"
    assert "error" in explorer.status_line.value and explorer.details_box.layout.display is None
    with pytest.raises(RuntimeError, match="the engine broke"):
        explorer.run(wait=True)
    monkeypatch.undo()
    explorer.noise_weights = [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="at least one weight must be > 0"):
        explorer.run(wait=True)
    assert explorer.status.startswith("error: ValueError")


def test_bad_settings_are_refused_with_the_valid_range(explorer):
    with pytest.raises(TraitError, match=r"map index 64 is out of range.*\(0\.\.63\)"):
        explorer.map_index = 64
    with pytest.raises(TraitError, match="unknown layer 'nope'.*Conv2D_3"):
        explorer.layer = "nope"
    with pytest.raises(TraitError, match="epsilon"):
        explorer.epsilon = 0.0
    with pytest.raises(TraitError, match="steps"):
        explorer.steps = 0
    with pytest.raises(TypeError, match="no setting 'colour'"):
        ow.OIPExplorer(colour="red")
    assert explorer.map_index == 5  # unchanged
    explorer.scales_text.value = "3, seven"
    assert explorer.status.startswith("error: cannot read noise scale 'seven'")
    assert explorer.noise_scales == [(3, 3), (7, 7), (14, 14), (28, 28)]  # kept


def test_parse_and_format_scales():
    assert format_scales is controls_format_scales  # moved to controls, still importable from explorer
    assert parse_scales("3, 7x5; 14×14") == [(3, 3), (7, 5), (14, 14)]
    assert format_scales([(3, 3), (7, 5)]) == "3x3, 7x5"
    for bad in ("", "0", "3x4x5", "a"):
        with pytest.raises(ValueError):
            parse_scales(bad)


def test_exports_are_readable(explorer, tmp_path):
    with pytest.raises(ValueError, match="run the explorer first"):
        explorer.save_png(tmp_path / "none.png")
    explorer.steps = 100
    r = explorer.run(wait=True)
    png = Image.open(explorer.save_png(tmp_path / "oip.png"))
    assert png.size == (28 * 8, 28 * 8) and png.mode == "RGB"
    grid = Image.open(explorer.save_grid_png(tmp_path / "grid.png"))
    assert grid.size[0] > grid.size[1] > 100
    gif = Image.open(explorer.save_gif(tmp_path / "oip.gif"))
    assert gif.n_frames == 1 + len(r.snapshot_steps)
    back = ow.OIPResult.load(explorer.save_npz(tmp_path / "oip.npz"))
    np.testing.assert_array_equal(back.image, r.image)
    np.testing.assert_array_equal(back.snapshot_steps, r.snapshot_steps)
    assert back.params["epsilon"] == explorer.epsilon and back.params["strategy"] == "simple"


def test_multiscale_and_precursor_from_the_explorer(explorer):
    explorer.steps = 60
    explorer.strategy = "multiscale"
    r = explorer.run(wait=True)
    assert r.params["stages"] == [20, 40, 80, 60]
    assert explorer.n_columns >= len(r.snapshot_steps)
    explorer.strategy = "precursor"
    r = explorer.run(wait=True)
    assert r.steps <= 80 and "precursor_scores" in r.params
    assert explorer.grid.labels.text[0] == f"step {r.snapshot_steps[0]}"


def test_result_observers_fire_once_per_run(explorer):
    got = []
    explorer.observe(lambda c: got.append(c["new"]), "result")
    explorer.steps = 30
    explorer.run(wait=True)
    assert len(got) == 1 and got[0].steps == 30


def test_explorer_shows_the_top_examples_of_its_map(explorer):
    top = explorer.top_examples()
    assert len(top.indices) == 8 and top.map == 5
    assert list(explorer.examples_grid.labels.text) == [f"{a:.2f}" for a in top.activations]
    engine = ow.OIPEngine(explorer.model, "Conv2D_3")
    means = engine.activations(ow.preprocessing.to_model_input(explorer.examples))[..., 5].mean(axis=(1, 2))
    np.testing.assert_array_equal(top.indices, np.argsort(-means, kind="stable")[:8])
    explorer.map_index = 9
    means9 = engine.activations(ow.preprocessing.to_model_input(explorer.examples))[..., 9].mean(axis=(1, 2))
    assert explorer.top_examples().map == 9
    assert explorer.examples_grid.labels.text[0] == f"{means9.max():.2f}"


def test_finished_runs_are_summed_up_by_the_engine(explorer, monkeypatch):
    explorer.steps = 20
    r = explorer.run(wait=True)
    assert explorer.status.startswith(status_summary(r))  # then the cure, when the engine re-ran the map with one
    assert ("↻ " + r.params["cure"] in explorer.status) if "cure" in r.params else explorer.status == status_summary(r)
    engine = explorer._engine()
    run = engine.run
    for status, bar in [("nonfinite", "danger"), ("dead", "danger"), ("stopped", "warning")]:
        monkeypatch.setattr(engine, "run", lambda *a, status=status, **kw: dataclasses.replace(run(*a, **kw),
                                                                                              status=status))
        got = explorer.run(wait=True)
        assert got.status == status and explorer.status.startswith(status_summary(got))
        assert explorer.progress.bar_style == bar and f'class="oip-status" style="color:' in explorer.status_line.value
    assert explorer.status.startswith("stopped after 20 steps")
    assert explorer.run_button.description == "Run" and explorer.stop_button.disabled


def test_map_and_unit_indices_are_checked_against_the_layer(explorer):
    with pytest.raises(TraitError, match=r"map index 64 is out of range: layer 'Conv2D_3' has 64 maps \(0\.\.63\)"):
        explorer.map_index = 64
    explorer.layer = "Dense_1"
    with pytest.raises(TraitError, match=r"unit index 70 is out of range: layer 'Dense_1' has 70 units \(0\.\.69\)"):
        explorer.map_index = 70
    explorer.layer = "Conv2D_1"  # 32 maps: the map index (5) is kept, the slider follows
    assert explorer.map_index == 5 and explorer.map_slider.max == 31 and explorer.map_slider.description == "map"
    explorer.map_index = 31
    explorer.layer = "MaxPool_1"
    explorer.layer = "Dense_1"
    assert explorer.map_index == 31


def test_the_planned_snapshots_come_from_the_strategy(explorer):
    for strategy in ("simple", "multiscale", "precursor"):
        explorer.strategy = strategy
        assert explorer._planned_snapshots() == strategy_for(strategy).snapshot_plan(explorer.steps, explorer.noise())


def test_a_click_on_a_tile_shows_it_large_with_its_values(explorer):
    r = explorer.run(wait=True)
    assert explorer.tile_detail_box.children == ()
    k = len(r.snapshot_steps) - 1
    explorer.grid.hits.selected = [explorer.tile_index(0, k)]  # a click on the last image tile
    figure, text = explorer.tile_detail_box.children
    assert figure is explorer.tile_detail.figure and explorer.tile_detail.scale == 8.0  # 240 px, at most 8 screen px per pixel
    np.testing.assert_allclose(explorer.tile_detail.tiles[0].values, plain(r.image), atol=1e-6)
    html = text.value
    assert f"step {r.snapshot_steps[-1]}" in html and f"objective {r.snapshot_losses[-1]:.4g}" in html
    assert f">{r.image.min():.3g} " in html and f" {r.image.max():.3g}<" in html  # the colour bar's ends
    assert f"{r.image.std():.3g}" in html  # the value table
    explorer.grid.hits.selected = [explorer.tile_index(1, 0)]  # the contrast tile of step 0
    np.testing.assert_allclose(explorer.tile_detail.tiles[0].values, enhanced(r.snapshots[0]), atol=1e-6)
    low, high = np.percentile(r.snapshots[0], (2, 98))
    assert "contrast" in explorer.tile_detail_box.children[1].value and f"{low:.3g}" in explorer.tile_detail_box.children[1].value
    explorer.grid.hits.selected = None  # clicked again: closed
    assert explorer.tile_detail_box.children == ()
    explorer.colormap = "magma"
    from oipwidgets.output.render import palette

    assert "rgb({},{},{})".format(*palette("magma")[0]) in explorer.legend.value  # the legend follows the colours
