"""What OIPExplorer and LayerZoo share (OIPWidgetBase, widgets/controls.py): settings and their checks, the order of
construction (initial values, view, then observers), controls bound to traits, the noise text helpers."""

import re
import threading

import numpy as np
import pytest
from ipywidgets.widgets import widget as widget_registry
from traitlets import TraitError

import oipwidgets as ow
from oipwidgets.engine.engine import MAX_EPSILON
from oipwidgets.output.render import plain
from oipwidgets.widgets.base import OIPWidgetBase
from oipwidgets.widgets.controls import format_weights, parse_weights, weights_for


def live_widgets() -> int:
    """How many widgets the kernel holds (ipywidgets 8's registry; ``Widget.widgets`` is deprecated)."""
    return len(widget_registry._instances)


WIDGETS = [ow.OIPExplorer, ow.LayerZoo]


@pytest.mark.parametrize("cls", WIDGETS)
def test_settings_are_checked_with_the_valid_range(cls, mnist):
    w = cls(mnist, seed=3)
    assert isinstance(w, OIPWidgetBase)
    refused = [
        ("seed", -1, r"seed must be a whole number >= 0; got -1"),
        ("steps", 0, r"steps must be a whole number >= 1; got 0"),
        ("epsilon", 0.0, r"epsilon must be a finite number > 0 and <= 1000; got 0\.0"),
        ("epsilon", MAX_EPSILON * 2, r"epsilon must be a finite number > 0 and <= 1000; got 2000\.0"),
        ("epsilon", float("nan"), r"epsilon must be a finite number > 0"),
        ("noise_weights", [0.5, -1.0, 0.5, 0.5], r"each noise weight must be a finite number >= 0; got -1\.0"),
        ("noise_scales", [(3, 3), (0, 7)], r"each noise grid side must be a whole number >= 1; got 0"),
    ]
    for name, value, message in refused:
        before = getattr(w, name)
        with pytest.raises(TraitError, match=message):
            setattr(w, name, value)
        assert getattr(w, name) == before or name == "epsilon"  # nan != nan
        assert w.status.startswith("error: ") and "#b00020" in w.status_line.value  # the latest error shows
        assert re.search(message, w.status)
    with pytest.raises(TraitError, match="'strategy' trait .* expected any of"):
        w.strategy = "fastest"
    assert "expected any of ['simple', 'multiscale', 'precursor']" in w.status
    assert w.seed == 3 and w.steps == 400 and w.epsilon == 0.01
    with pytest.raises(TraitError, match="seed must be a whole number >= 0"):
        cls(mnist, seed=-5)
    with pytest.raises(TypeError, match=f"{cls.__name__} has no setting 'colour'"):
        cls(mnist, colour="red")


@pytest.mark.parametrize("cls", WIDGETS)
def test_no_observer_runs_before_the_view_exists(cls, mnist, monkeypatch):
    """Trait values given as keywords are set (and checked) before the view is built; observers are attached
    after it, so none runs on a half-built widget, and the view shows the given values from the start."""
    events = []
    build, connect = cls._build, cls._connect
    monkeypatch.setattr(cls, "_build", lambda self: (events.append("build"), build(self)))
    monkeypatch.setattr(cls, "_connect", lambda self: (events.append("connect"), connect(self)))
    monkeypatch.setattr(cls, "_on_layer", lambda self, change: events.append("layer"))
    monkeypatch.setattr(OIPWidgetBase, "_on_noise_scales", lambda self, change: events.append("scales"))
    w = cls(mnist, "Conv2D_2", seed=7, steps=30, strategy="multiscale", colormap="magma",
            noise_scales=[(3, 3), (14, 14)])
    assert events == ["build", "connect"]  # no observer ran during construction
    assert w.layer == "Conv2D_2" and w.layer_dropdown.value == "Conv2D_2"
    assert w.seed_text.value == 7 and w.steps_text.value == 30 and w.strategy_dropdown.value == "multiscale"
    assert w.noise_scales == [(3, 3), (14, 14)] and w.noise_weights == [0.5, 0.5]  # weights follow the scales
    assert w.scales_text.value == "3x3, 14x14"
    w.layer = "Conv2D_3"
    w.noise_scales = [(7, 7)]
    assert events[2:] == ["layer", "scales"]  # attached once, after the view


@pytest.mark.parametrize("cls", WIDGETS)
def test_a_value_typed_into_a_control_that_is_refused_shows_on_the_status_line(cls, mnist):
    w = cls(mnist, seed=4)
    w.seed_text.value = -2  # what typing -2 into the box does
    assert w.seed == 4 and w.seed_text.value == 4  # refused, the box shows the setting again
    assert w.status == "error: seed must be a whole number >= 0; got -2"
    assert "#b00020" in w.status_line.value and "oip-status" in w.status_line.value
    w.seed_text.value = 9
    assert w.seed == 9
    w.steps = 77
    assert w.steps_text.value == 77


@pytest.mark.parametrize("cls", WIDGETS)
def test_run_refuses_noise_that_does_not_fit(cls, mnist):
    w = cls(mnist, steps=5)
    w.noise_weights = [0.0, 0.0, 0.0, 0.0]
    assert w.run() is None and not w.running
    assert w.status == ("error: ValueError: at least one weight must be > 0 (all weights are zero: "
                        "(0.0, 0.0, 0.0, 0.0)).")
    assert w.progress.bar_style == "danger"
    with pytest.raises(ValueError, match="at least one weight must be > 0"):
        w.run(wait=True)


def test_the_engine_cache_and_default_model():
    ex = ow.OIPExplorer()  # the shipped MNIST model
    assert ex._engine() is ex._engine("Conv2D_3") and ex._engine("Conv2D_1").layer.name == "Conv2D_1"
    index = ex.model.layers.index(ex.model.get_layer("Conv2D_1"))
    assert ow.LayerZoo(ex.model, index).layer == "Conv2D_1"  # a layer by index, as for the explorer


def test_weights_follow_the_scales():
    old = [(3, 3), (7, 7), (14, 14), (28, 28)]
    assert weights_for([(7, 7), (5, 5)], old, [1.0, 0.25, 0.5, 0.5]) == [0.25, 0.5]  # kept, new one 0.5
    assert weights_for([(4, 4), (9, 9)], old, [1.0, 2.0]) == [1.0, 2.0]  # already set for the new scales
    assert parse_weights("1, 0.5; 0") == [1.0, 0.5, 0.0] and format_weights([1.0, 0.5]) == "1, 0.5"
    with pytest.raises(ValueError, match="cannot read noise weight 'x'"):
        parse_weights("1, x")


def test_layers_by_index_and_zoo_columns_are_checked(mnist):
    names = [layer.name for layer in mnist.layers]
    assert ow.OIPExplorer(mnist, layer=names.index("Conv2D_2")).layer == "Conv2D_2"
    with pytest.raises(TraitError, match=r"layer 99 is not one this widget can show.*Conv2D_3 \(5\)"):
        ow.OIPExplorer(mnist, layer=99)
    with pytest.raises(TraitError, match=r"layer 0 is not one this widget can show.*Conv2D_1"):
        ow.LayerZoo(mnist, 0)  # the input layer: no maps (it used to fall back to Conv2D_3 silently)
    for cols in (0, -2, 1.5):
        with pytest.raises(TraitError, match="cols must be a whole number >= 1"):
            ow.LayerZoo(mnist, cols=cols)


def test_map_changes_and_tile_clicks_keep_the_widget_count_flat(mnist):

    explorer, zoo = ow.OIPExplorer(mnist), ow.LayerZoo(mnist)
    for i in range(3):  # the first changes build what is then reused
        explorer.map_index, zoo.selected = i, i
    before = live_widgets()
    for i in range(40):
        explorer.map_index = (7 * i) % 64
        zoo.selected = (5 * i) % 64
    assert live_widgets() == before
    assert list(explorer.examples_grid.labels.text) == [f"{a:.2f}" for a in explorer.top_examples().activations]


def test_close_stops_the_run_and_closes_every_widget_it_made(mnist):
    import threading
    import time


    before = live_widgets()
    threads = threading.active_count()
    explorer = ow.OIPExplorer(mnist, steps=1_000_000, map_index=5, seed=1)  # a map that fires: a long run
    explorer.run()
    time.sleep(0.5)
    assert explorer.running
    t0 = time.perf_counter()
    explorer.close()
    assert time.perf_counter() - t0 < 2.0
    assert not explorer._worker.busy
    assert live_widgets() <= before  # everything it made is closed
    time.sleep(0.1)
    assert threading.active_count() <= threads


def test_a_new_run_never_blocks_the_kernel_and_never_overlaps_the_old_one(mnist):
    import threading
    import time

    explorer = ow.OIPExplorer(mnist, steps=1_000_000, map_index=5, seed=1)
    running = []
    lock = threading.Lock()
    engine = explorer._engine()
    original = engine.run

    def tracked(*args, **kwargs):
        with lock:
            running.append(1)
            assert len(running) == 1, "two runs at once"
        try:
            time.sleep(1.0)  # a slow start: the old run is still busy when the new one is asked for
            return original(*args, **kwargs)
        finally:
            with lock:
                running.pop()

    engine.run = tracked
    explorer.run()
    time.sleep(0.1)
    t0 = time.perf_counter()
    explorer.steps = 20
    explorer.run()  # cancels the first; must not wait for it here (the old worker blocked ~0.9 s)
    assert time.perf_counter() - t0 < 0.5
    result = explorer.wait(30)
    assert result is not None and result.params["steps"] == 20 and not explorer.running
    explorer.close()


def test_an_interrupt_during_run_wait_stops_the_run(mnist):
    import os
    import signal
    import threading
    import time

    explorer = ow.OIPExplorer(mnist, steps=1_000_000, map_index=5, seed=1)
    threading.Timer(0.8, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # what Ctrl-C / Interrupt sends
    with pytest.raises(KeyboardInterrupt):
        explorer.run(wait=True)
    deadline = time.monotonic() + 3
    while explorer.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not explorer._worker.busy and not explorer.running
    assert explorer.result is not None and explorer.result.status == "stopped"
    explorer.steps = 30  # and the widget runs again as before
    assert explorer.run(wait=True).params["steps"] == 30
    explorer.close()


def test_the_status_line_says_compiling_while_the_first_chunk_compiles():
    import keras

    model = keras.Sequential([keras.Input((20, 20, 3)), keras.layers.Conv2D(6, 3, activation="relu", name="c")])
    explorer = ow.OIPExplorer(model, steps=15)
    shown = []
    explorer.observe(lambda change: shown.append(change["new"]), names="status")
    result = explorer.run(wait=True)
    compiling = [s for s in shown if s.startswith("compiling")]
    assert len(compiling) == 1 and shown.index(compiling[0]) > 0  # after "running: …", before the result
    assert shown[shown.index(compiling[0]) + 1].startswith("running")
    assert explorer.status.startswith(("done", "converged", "dead")) and result.steps > 0
    assert not np.isnan(explorer.loss_line.y).any()  # the compiling report adds no point to the curve
    shown.clear()
    explorer.run(wait=True)  # compiled now: no such message
    assert not [s for s in shown if s.startswith("compiling")]


def test_the_explorer_makes_the_start_image_once_in_the_run_thread(mnist, monkeypatch):
    """The start tile is the run's own step-0 image: the noise is made once, not also in the kernel thread."""
    ex = ow.OIPExplorer(mnist, steps=8, seed=5)
    engine = ex._engine()
    made = []
    noise = type(engine)._noise
    monkeypatch.setattr(type(engine), "_noise",
                        lambda self, *a, **k: (made.append(threading.current_thread().name), noise(self, *a, **k))[1])
    result = ex.run(wait=True)
    assert set(made) == {"oipwidgets-worker"}  # (once; an engine that re-runs a map with a cure does it there too)
    first_tile = ex.grid.tiles[ex.tile_index(0, 0)]  # step 0: the start after its first update
    np.testing.assert_allclose(first_tile.color, plain(result.snapshots[0]), atol=1e-6)
    assert ex.grid.labels.text[0] == ("↻ step 0" if "cure" in result.params else "step 0")
    assert result.snapshot_steps[0] == 0


def test_a_closed_zoo_leaves_no_widget_behind_even_with_detail_and_explorer(mnist):
    """The zoo's detail view (made before it is shown) and an explorer opened from it are closed with the zoo."""
    before = live_widgets()
    zoo = ow.LayerZoo(mnist, "Conv2D_3", steps=3)
    zoo.run(wait=True)
    zoo.selected = 3
    zoo._show_explorer()
    first = zoo.explorer_area.children[0]
    zoo._show_explorer()  # replacing an explorer closes the old one
    assert first._worker is not None and first.comm is None
    zoo.selected = None
    zoo.close()
    assert live_widgets() <= before


@pytest.mark.parametrize("cls", WIDGETS)
def test_honest_buttons_progress_text_and_a_new_seed(cls, mnist):
    import time

    extra = {"map_index": 5} if cls is ow.OIPExplorer else {}  # a map that fires (map 0 dies at step 10)
    w = cls(mnist, steps=1_000_000 if cls is ow.OIPExplorer else 3000, seed=1, **extra)
    assert not w.run_button.disabled and w.run_button.description == "Run" and w.stop_button.disabled
    w.run()
    assert w.run_button.disabled and w.run_button.description == "Running…" and not w.stop_button.disabled
    deadline = time.perf_counter() + 10
    while "/" not in w.progress.description and time.perf_counter() < deadline:  # the first chunk compiles first
        time.sleep(0.05)
    done, total = (int(v) for v in w.progress.description.split("/"))
    assert 0 < done < total == (1_000_000 if cls is ow.OIPExplorer else 3000)
    w.stop()
    result = w.wait(10)
    assert not w.run_button.disabled and w.run_button.description == "Run" and w.stop_button.disabled
    steps = result.steps if cls is ow.OIPExplorer else max(r.steps for r in result)
    assert w.progress.description == f"{steps} steps"
    state = np.random.get_state()[1].copy()
    w.new_seed_button.click()
    assert w.seed != 1 and w.seed_text.value == w.seed
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # no global seed touched
    w.close()


def test_two_compiling_reports_in_a_row_still_give_the_run_its_own_status_back():
    """A zoo compiles once per batch size (the batch shrinks as maps stop): the status must not stay "compiling"."""
    zoo = ow.LayerZoo(steps=5)
    zoo._set_status("running: 64 maps")
    report = type("P", (), {"compiling": True})()
    assert zoo._note_compiling(report) and zoo._note_compiling(report)
    assert zoo.status.startswith("compiling")
    assert not zoo._note_compiling(type("P", (), {"compiling": False})())
    assert zoo.status == "running: 64 maps"
    zoo.close()
