"""Nothing crashes, hangs or lies: bad and edge inputs get clear errors or honest statuses (small random models)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import oipwidgets as ow


def small_colour_model(input_shape=(32, 32, 3), data_format="channels_last", name="small"):
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1", data_format=data_format)(inp)
    x = keras.layers.Conv2D(16, 3, name="c2", data_format=data_format)(x)
    out = keras.layers.Dense(4, name="head")(keras.layers.GlobalAveragePooling2D(data_format=data_format)(x))
    return keras.Model(inp, out, name=name)


# ------------------------------------------------------------------ no silent garbage
class Blow(ow.InputMode):
    """An input mode that multiplies the image by 1e20 each step: it overflows float32 after two steps."""

    def apply(self, images):
        return images * 1e20


def test_an_image_that_overflows_is_nonfinite_not_dead_or_converged(engine, mnist):
    r = ow.OIPEngine(mnist, "Conv2D_3", input_mode=Blow()).run(3, steps=50, seed=0)
    assert r.status == "nonfinite" and r.steps < 5
    assert "NaN or infinite" in r.message and "smaller epsilon" in r.message
    zoo = ow.OIPEngine(mnist, "Conv2D_3", input_mode=Blow()).run_layer(steps=20, seed=0)
    assert set(zoo.statuses) == {"nonfinite"}  # not 64 "dead" maps


def test_a_nan_objective_is_nonfinite(engine):
    @ow.wrap_objective(kind="maps", params=("map",))
    def log_of_negative(activations, map):
        pick = tf.one_hot(map, tf.shape(activations)[-1], dtype=activations.dtype)
        return tf.math.log(tf.reduce_sum(tf.reduce_mean(activations, axis=[1, 2]) * pick, axis=1) - 1e3)

    r = engine.run(3, steps=20, seed=0, objective=log_of_negative(3))
    assert r.status == "nonfinite" and r.steps == 0


def test_bounds_on_step_size_noise_exponent_and_noise_scales(engine):
    with pytest.raises(ValueError, match=r"epsilon must be a finite number > 0 and <= 1000; got 3e\+38"):
        engine.run(3, steps=2, epsilon=3e38)
    for alpha in (300, -50, float("nan")):
        with pytest.raises(ValueError, match="alpha must be a finite number from -4 to 8"):
            ow.SpectralNoise(alpha=alpha)
    x = ow.SpectralNoise(alpha=8).sample((1, 224, 224, 3), seed=0)
    assert np.all(np.isfinite(x)) and abs(float(x.std()) - 1) < 1e-3
    with pytest.raises(ValueError, match=r"noise scale 20000x20000 is far finer than the 28x28 image.*112x112"):
        engine.run(3, steps=2, noise=ow.MultiScaleNoise(scales=[(3, 3), (20000, 20000)], weights=[1, 1]))


def test_non_integer_map_and_node_indices_are_refused(engine):
    for bad in (lambda: ow.MapMean(2.7), lambda: engine.run(2.7, steps=2),
                lambda: engine.run(1, steps=2, node=(1.5, 2)), lambda: ow.Node(1, 0, True)):
        with pytest.raises(ValueError, match="whole number"):
            bad()


# ------------------------------------------------------------------ models people bring
def test_channels_first_models_are_refused_clearly():
    with pytest.raises(ValueError, match="channels-first .*'c1'.*data_format='channels_last'"):
        ow.OIPEngine(small_colour_model((3, 32, 32), "channels_first"), "c2")


def test_a_model_of_any_image_size_works_with_input_shape():
    model = small_colour_model((None, None, 3))
    with pytest.raises(ValueError, match=r"any size .*input_shape=\(height, width, 3\)"):
        ow.OIPEngine(model, "c2")
    with pytest.raises(ValueError, match=r"input_shape must be \(height, width, 3\)"):
        ow.OIPEngine(model, "c2", input_shape=(32, 32, 1))
    engine = ow.OIPEngine(model, "c2", input_shape=(40, 36, 3))
    assert engine.layer.shape == (36, 32, 16) and engine.input_shape == (40, 36, 3)
    r = engine.run(5, steps=5, seed=0)
    assert r.image.shape == (40, 36, 3) and np.all(np.isfinite(r.image))
    # the copy computes what the user's model computes
    x = ow.MultiScaleNoise().sample((1, 40, 36, 3), seed=1)
    sub = keras.Model(model.inputs, model.get_layer("c2").output)
    np.testing.assert_allclose(engine.activations(x), sub(x).numpy(), atol=1e-5)
    assert tuple(model.inputs[0].shape) == (None, None, None, 3)  # the user's model is left as it was


def test_mixed_precision_models_run_in_float32():
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = small_colour_model()
    finally:
        keras.mixed_precision.set_global_policy(policy)
    assert model.get_layer("c2").compute_dtype == "float16"
    r = ow.OIPEngine(model, "c2").run(3, steps=10, seed=0)
    assert r.steps == 10 and r.image.dtype == np.float32 and np.all(np.isfinite(r.image))
    assert r.final_loss > r.losses[0]


# ------------------------------------------------------------------ no leaks when objects are made again
def test_fresh_engines_share_probes_and_compiled_loops(mnist, caplog):
    ow.OIPEngine(mnist, "Conv2D_2").run(3, steps=5, seed=0)
    cache = dict(mnist._oipwidgets_cache)
    index = [layer.name for layer in mnist.layers].index("Conv2D_2")
    with caplog.at_level("WARNING"):
        for i in range(20):
            e = ow.OIPEngine(mnist, "Conv2D_2" if i % 2 else index)  # by name or by index: the same layer
            e.run(i % 32, steps=5, seed=i)
    assert mnist._oipwidgets_cache.keys() == cache.keys()  # nothing new traced or built
    assert all(mnist._oipwidgets_cache[k] is v for k, v in cache.items())
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    other = ow.load_default_model("mnist")  # another model: its own cache, the first one untouched
    ow.OIPEngine(other, "Conv2D_2").run(3, steps=5, seed=0)
    assert other._oipwidgets_cache.keys() == {k for k in cache if k[1] == "Conv2D_2"}
    assert all(other._oipwidgets_cache[k] is not cache[k] for k in other._oipwidgets_cache)


# ------------------------------------------------------------------ stop at any size
def test_a_stop_halts_a_long_compiled_chunk_within_a_step_and_keeps_consistent_results(engine):
    """Chunks of thousands of steps (as on small models) are halted inside the compiled loop; the two halves of a
    split batch may stop after different step counts, and every image still equals its own run of that many
    steps."""
    import threading
    import time

    from oipwidgets.engine.ascent import AscentOptions, AscentState, Stage, ascend

    maps = list(range(0, 64, 4))
    start = ow.MultiScaleNoise().sample((1, 28, 28, 1), seed=7).repeat(len(maps), axis=0)
    objective = ow.MapMean(np.array(maps))
    params = {k: tf.constant(v) for k, v in objective.params(len(maps)).items()}
    loop = engine._loop(objective)
    ascend(loop, AscentState.start(start), params, AscentOptions(), Stage(3))  # compiled before the clock starts
    event = threading.Event()
    options = AscentOptions(cancelled=event.is_set, chunk_seconds=1000.0)  # chunks of up to 4096 steps
    box = {}

    def work():
        box["state"], _ = ascend(loop, AscentState.start(start), params, options, Stage(100_000))
        box["t"] = time.perf_counter()

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.8)
    asked = time.perf_counter()
    event.set()
    thread.join(timeout=30)
    state = box["state"]
    # without the halt the chunk would run on for seconds; with it, the steps end at once and only the replay of
    # the tests remains (which re-runs up to the first dead map's step when the chunk is too long to record)
    assert box["t"] - asked < 1.5
    stopped = np.flatnonzero(state.status == 3)  # the others died on the way (DEAD)
    assert set(state.status.tolist()) <= {2, 3} and stopped.size > 8
    done = state.updates
    assert 2 < done[stopped].min() and done.max() < 4096 + 2
    half = len(maps) // 2
    for k in (stopped[stopped < half][0], stopped[stopped >= half][-1]):  # one image of each half of the batch
        alone = engine.run(maps[k], steps=int(done[k]), start=start[k])
        np.testing.assert_allclose(state.images[k], alone.image, atol=1e-5)
        assert len(state.losses[k]) == done[k]


def test_a_stopped_run_keeps_its_last_measured_objective(engine):
    import threading

    event = threading.Event()
    event.set()
    r = engine.run(5, steps=50, seed=1, cancel=event)
    assert r.status == "stopped" and r.steps == 0 and np.isfinite(r.final_loss)
    event.clear()
    calls = []
    r = engine.run(5, steps=100_000, seed=1, callback=lambda p: calls.append(p) or (len(calls) > 3 and event.set()),
                   cancel=event)
    assert r.status == "stopped" and r.final_loss == r.losses[-1]


# ------------------------------------------------------------------ lifecycle: errors keep what was done
def test_an_error_during_a_run_keeps_the_steps_done(engine):
    calls = []

    def broken(p):
        calls.append(p.step)
        if len(calls) == 4:
            raise RuntimeError("the callback broke")

    start = ow.MultiScaleNoise().sample((1, 28, 28, 1), seed=3)[0]
    r = engine.run(5, steps=400, start=start, callback=broken)
    assert r.status == "error" and 0 < r.steps < 400 and len(r.losses) == r.steps
    assert "ended by an error after" in r.message and "RuntimeError: the callback broke" in r.message
    np.testing.assert_allclose(r.image, engine.run(5, steps=r.steps, start=start).image, atol=1e-5)
    calls.clear()
    zoo = engine.run_layer([1, 2, 3], steps=400, seed=0, strategy="multiscale", callback=broken)
    assert isinstance(zoo.error, RuntimeError) and set(zoo.statuses) <= {"error", "dead"}
    for strategy in ("precursor", "simple"):
        calls.clear()
        out = engine.run_layer([1, 2], steps=400, seed=0, strategy=strategy, callback=broken)
        assert len(out) == 2 and "error" in out.statuses and np.all(np.isfinite(out.images))


# ------------------------------------------------------------------ memory-aware batches
def test_a_memory_budget_runs_a_large_batch_in_waves_with_the_same_results(engine, mnist, monkeypatch):
    import threading

    small = ow.OIPEngine(mnist, "Conv2D_3", memory_budget=engine.image_bytes * 5)
    assert small.images_at_once() == 5
    loop = small._loop(ow.MapMean(0))
    state = {"now": 0, "most": 0}
    lock = threading.Lock()
    call = loop._call

    def counting(img, *args):
        with lock:
            state["now"] += int(img.shape[0])
            state["most"] = max(state["most"], state["now"])
        try:
            return call(img, *args)
        finally:
            with lock:
                state["now"] -= int(img.shape[0])

    monkeypatch.setattr(loop, "_call", counting)
    scored = []
    fn = small.probe._fn

    def eager_counting(images):  # the final scores are the only eager probe calls
        if tf.executing_eagerly():
            scored.append(int(images.shape[0]))
        return fn(images)

    monkeypatch.setattr(small.probe, "_fn", eager_counting)
    seen = []
    got = small.run_layer(list(range(12)), steps=5, seed=1, callback=lambda p: seen.append(p.at_once))
    assert 0 < state["most"] <= 5 and set(seen) == {5}
    assert scored and max(scored) <= 5 and sum(scored) == 12  # the final scores too, in groups
    ref = engine.run_layer(list(range(12)), steps=5, seed=1)
    np.testing.assert_allclose(got.images, ref.images, atol=1e-4)
    np.testing.assert_allclose(got.final_losses, ref.final_losses, rtol=1e-4, atol=1e-6)
    assert got.statuses == ref.statuses


def test_a_layer_whose_one_image_exceeds_the_budget_is_refused_up_front(engine, mnist):
    tiny = ow.OIPEngine(mnist, "Conv2D_3", memory_budget=engine.image_bytes // 2)
    with pytest.raises(ValueError, match=r"layer 'Conv2D_3' at 28x28x1 needs about .* per image .* more than the "
                                         r"memory budget of .*memory_budget="):
        tiny.run(0, steps=2)
    for bad in (0, -1, 1.5, "8GB", True):
        with pytest.raises(ValueError, match="memory_budget must be"):
            ow.OIPEngine(mnist, "Conv2D_3", memory_budget=bad)


def test_the_estimate_grows_with_input_size_and_depth():
    vgg_like = keras.Sequential([keras.Input((224, 224, 3)), keras.layers.Conv2D(64, 3, padding="same", name="a"),
                                 keras.layers.Conv2D(64, 3, padding="same", name="b")])
    a, b = ow.OIPEngine(vgg_like, "a"), ow.OIPEngine(vgg_like, "b")
    one_map = 224 * 224 * 64 * 4
    assert b.image_bytes > a.image_bytes >= 2 * one_map
    assert b.image_bytes - a.image_bytes == pytest.approx(2 * one_map)


# ------------------------------------------------------------------ the survey's findings (benchmarks/bench_inputs.py)
def test_run_refuses_a_callback_or_objective_of_the_wrong_kind(engine):
    with pytest.raises(TypeError, match="callback must be a function taking a Progress, or None; got int"):
        engine.run(3, steps=2, callback=3)
    with pytest.raises(TypeError, match=r"objective must be an Objective such as ow.MapMean\(3\).*got 'mean'"):
        engine.run(3, steps=2, objective="mean")


def test_objectives_compose_only_with_objectives_and_finite_numbers():
    with pytest.raises(TypeError, match=r"objectives add up with other objectives.*got 3 of type int"):
        ow.MapMean(0) + 3
    with pytest.raises(TypeError, match="an objective is scaled by a number"):
        ow.MapMean(0) * "2"
    for factor in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="the factor of an objective must be a finite number"):
            ow.MapMean(0) * factor
    assert (np.float32(0.5) * ow.MapMean(1)).factor == 0.5


def test_input_shape_must_be_well_formed_and_match_a_fixed_model(mnist):
    with pytest.raises(ValueError, match=r"input_shape=\(32, 32, 1\) does not match model .* \(28, 28, 1\)"):
        ow.OIPEngine(mnist, "Conv2D_3", input_shape=(32, 32, 1))
    for bad in ((28, 28), (0, 28, 1), (-1, 28, 1), "28x28", (28.5, 28, 1)):
        with pytest.raises(ValueError, match=r"input_shape must be \(height, width, channels\), whole numbers >= 1"):
            ow.OIPEngine(mnist, "Conv2D_3", input_shape=bad)
    assert ow.OIPEngine(mnist, "Conv2D_3", input_shape=[28, 28, 1]).input_shape == (28, 28, 1)


def test_spectral_noise_fmin_is_a_frequency_an_image_has():
    with pytest.raises(ValueError, match=r"fmin must be None or a frequency > 0 and <= 0.5 cycles/pixel"):
        ow.SpectralNoise(fmin=1e9)
    assert ow.SpectralNoise(fmin=0.5).fmin == 0.5


def test_exports_check_their_output_and_scale(engine, tmp_path):
    from oipwidgets.output.export import save_png

    result = engine.run(3, steps=2, seed=0)
    with pytest.raises(ValueError, match=r"cannot write '.*passwd/a.png': '/etc/passwd' is not a writable directory"):
        save_png(result, "/etc/passwd/a.png")
    with pytest.raises(ValueError, match="scale .* must be a whole number >= 1; got 0"):
        save_png(result, tmp_path / "a.png", scale=0)
    path = save_png(result, tmp_path / "new" / "dir" / "a.png", scale=2)  # missing parents are made
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_read_idx_of_a_directory_names_the_problem(tmp_path):
    from oipwidgets.models.idx import IDXError, read_idx

    with pytest.raises(IDXError, match="is a directory, not an IDX file"):
        read_idx(tmp_path)


def test_activation_viewer_checks_images_labels_and_columns(mnist):
    images = np.random.default_rng(0).normal(size=(3, 28, 28, 1))
    with pytest.raises(ValueError, match="cols must be a whole number >= 1; got 0"):
        ow.ActivationViewer(mnist, images, cols=0)
    with pytest.raises(ValueError, match=r"labels must have one entry per image \(3\); got 1"):
        ow.ActivationViewer(mnist, images, labels=[1])
    with pytest.raises(ValueError, match=r"images contain NaN or infinite values \(in 784 pixels\)"):
        ow.ActivationViewer(mnist, np.concatenate([images[:1], np.full((1, 28, 28, 1), np.nan)]))
    with pytest.raises(ValueError, match="images must be an array of numbers; got dtype <U"):
        ow.ActivationViewer(mnist, np.full((3, 28, 28, 1), "x"))


def test_the_whole_bad_input_catalogue_gets_clear_errors_or_finite_results():
    """Every case of ``benchmarks/bench_inputs.py`` (264 bad or edge inputs): no crash, hang or garbage."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import bench_inputs
        import bench_inputs_cases
    finally:
        sys.path.pop(0)
    cases = bench_inputs_cases.cases()
    outcomes = [(case.name, *bench_inputs.classify(case, timeout=120, max_gb=4)) for case in cases]
    failed = [o for o in outcomes if o[1] not in ("clear error", "worked")]
    assert len(cases) >= 250 and not failed, failed
    assert sum(o[1] == "worked" for o in outcomes) >= 20  # the valid edge inputs really ran
