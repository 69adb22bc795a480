"""The atlas (oipwidgets.atlas) on a real Dask cluster: two worker processes, one thread each, shared by the module.

The model is the shipped MNIST CNN with the readable recipe cut to 8 steps; every atlas here uses its file
(``model_path=``, except where the store's own copy is the point), so the workers load it and trace its loops once.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("zarr")

import oipwidgets as ow  # noqa: E402
from oipwidgets import cli  # noqa: E402
from oipwidgets.atlas import Atlas, store  # noqa: E402
from oipwidgets.atlas.cluster import WORKER_ENV  # noqa: E402
from oipwidgets.atlas.worker import FAULT_ENV, FAULT_MARKER  # noqa: E402

RECIPE = ow.Recipe.preset("readable").replace(steps=8)
BLOCK = 8
TIMINGS = {}  # test → seconds, printed at the end of the module (pytest -s)


@pytest.fixture(scope="module")
def client():
    """A real LocalCluster (2 processes × 1 thread), with the fault hook armed and TensorFlow's threads at 1; the
    Nanny's pre-spawn settings are kept out of this process's environment."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               env={**WORKER_ENV, FAULT_ENV: "1"}, silence_logs=logging.ERROR)
    c = Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()
    if TIMINGS:
        print("\natlas test timings:", json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


@pytest.fixture(scope="module")
def model():
    return ow.load_default_model("mnist")


@pytest.fixture(scope="module")
def model_path(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "mnist.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def reference(model):
    """In-process run_layer of each block of Conv2D_1 and Conv2D_3, seeds 0 and 1: (layer, lo, seed) → LayerResult;
    on one core's share like a worker (``OIPWIDGETS_CORES=1``: the batch is not split over threads, so the sums run
    in the same order and the images are the same to the bit)."""
    out = {}
    old = os.environ.get("OIPWIDGETS_CORES")
    os.environ["OIPWIDGETS_CORES"] = WORKER_ENV["OIPWIDGETS_CORES"]
    try:
        for layer in ("Conv2D_1", "Conv2D_3"):
            engine = ow.OIPEngine(model, layer)
            for seed in (0, 1):
                for lo in range(0, engine.size, BLOCK):
                    out[layer, lo, seed] = engine.run_layer(list(range(lo, lo + BLOCK)), seed=seed, recipe=RECIPE)
    finally:
        if old is None:
            del os.environ["OIPWIDGETS_CORES"]
        else:
            os.environ["OIPWIDGETS_CORES"] = old
    return out


@pytest.fixture(scope="module")
def computed(client, model, tmp_path_factory):
    """The undisturbed atlas: Conv2D_1, seed 0, blocks of 8 (4 tasks), the model saved into the store."""
    t0 = time.perf_counter()
    path = tmp_path_factory.mktemp("atlas") / "base.atlas.zarr"
    atlas = Atlas.create(path, model, layers=["Conv2D_1"], recipe=RECIPE, seeds=(0,), block=BLOCK)
    report = atlas.compute(client, progress=False)
    TIMINGS["first compute (4 tasks, workers load and trace)"] = time.perf_counter() - t0
    assert report.tasks_run == 4 and report.channels_run == 32
    return atlas


def _max_diff(atlas, reference, layer, seed, lo=0, hi=None):
    """Largest |atlas - in-process| over the OIPs and final objectives of channels lo..hi-1."""
    hi = hi or atlas.plan(layer).channels
    worst = 0.0
    s = atlas.seeds.index(seed)
    for b in range(lo, hi, BLOCK):
        ref = reference[layer, b, seed]
        got = atlas.array(layer, "oip")[b : b + BLOCK, s]
        worst = max(worst, float(np.abs(got - ref.images).max()))
        worst = max(worst, float(np.abs(atlas.array(layer, "objective")[b : b + BLOCK, s] - ref.final_losses).max()))
    return worst


def _copy(atlas, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(atlas.url, target)
    return str(target)


# --------------------------------------------------------------------------- layout
def test_store_layout_and_attrs(computed, model):
    root = store.open_root(computed.url)
    attrs = dict(root.attrs)
    assert attrs["format"] == "oipwidgets-atlas" and attrs["version"] == 1
    assert attrs["recipe"] == RECIPE.to_dict() and ow.Recipe.from_dict(attrs["recipe"]) == RECIPE
    assert attrs["preprocess"] == {"preset": "standardize"} and attrs["value_range"] is None
    assert attrs["input_shape"] == [28, 28, 1] and attrs["seeds"] == [0]
    assert attrs["statuses"] == list(ow.engine.result.STATUSES)
    assert attrs["model"]["file"] == "model.keras" and os.path.isfile(os.path.join(computed.url, "model.keras"))
    assert attrs["layers"] == [{"name": "Conv2D_1", "group": "layers/Conv2D_1", "kind": "maps", "channels": 32,
                                "shape": [26, 26, 32], "block": 8,
                                "image_bytes": ow.OIPEngine(model, "Conv2D_1").image_bytes}]
    group = root["layers/Conv2D_1"]
    want = {"oip": ((32, 1, 28, 28, 1), (8, 1, 28, 28, 1), "float32"), "objective": ((32, 1), (8, 1), "float64"),
            "status": ((32, 1), (8, 1), "int8"), "steps": ((32, 1), (8, 1), "int32"),
            "saturated": ((32, 1), (8, 1), "float32"),
            "snapshots": ((32, 1, 4, 28, 28, 1), (8, 1, 4, 28, 28, 1), "float16"),
            "snapshot_steps": ((32, 1, 4), (8, 1, 4), "int32"), "done": ((4, 1), (1, 1), "uint8")}
    for name, (shape, chunks, dtype) in want.items():
        arr = group[name]
        assert (arr.shape, arr.chunks, str(arr.dtype)) == (shape, chunks, dtype), name
    assert group["oip"].metadata.dimension_names == ("channel", "seed", "y", "x", "c")
    assert group["done"][:].tolist() == [[1], [1], [1], [1]]
    assert computed.progress() == {"Conv2D_1": (32, 32)}
    assert set(computed.statuses("Conv2D_1")) <= {"max_steps", "converged", "dead"}
    steps = group["snapshot_steps"][:]
    assert (steps[:, 0, :2] == [0, 7]).all() and (steps[:, 0, 2:] == -1).all()  # 8 steps: snapshots at 0 and 7
    assert np.isfinite(group["snapshots"][:, 0, :2]).all() and np.isnan(group["snapshots"][:, 0, 2:]).all()


def test_results_equal_an_in_process_run(computed, reference):
    assert _max_diff(computed, reference, "Conv2D_1", 0) <= 1e-6
    for b in range(0, 32, BLOCK):
        ref = reference["Conv2D_1", b, 0]
        assert computed.statuses("Conv2D_1")[b : b + BLOCK] == ref.statuses
        assert computed.array("Conv2D_1", "steps")[b : b + BLOCK, 0].tolist() == [r.steps for r in ref]
        np.testing.assert_allclose(computed.array("Conv2D_1", "saturated")[b : b + BLOCK, 0],
                                   [r.saturated for r in ref], atol=1e-6)


def test_import_does_not_load_dask_and_open_in_a_fresh_process_without_the_model(computed):
    code = (
        "import sys, json, oipwidgets as ow\n"
        "assert 'dask' not in sys.modules and 'zarr' not in sys.modules and 'distributed' not in sys.modules\n"
        f"a = ow.Atlas.open({computed.url!r})\n"
        "o = a.oips('Conv2D_1', seed=0)\n"
        "print(json.dumps({'layers': a.layers, 'shape': list(o.shape), 'sum': float(o.sum()),"
        " 'recipe': a.recipe.to_dict(), 'progress': a.progress(), 'distributed': 'distributed' in sys.modules}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["layers"] == ["Conv2D_1"] and out["shape"] == [32, 28, 28, 1]
    assert out["sum"] == pytest.approx(float(computed.oips("Conv2D_1").sum()), rel=1e-9)
    assert out["recipe"] == RECIPE.to_dict() and out["progress"] == {"Conv2D_1": [32, 32]}
    assert out["distributed"] is False  # reading needs Zarr only


def test_a_remote_store_url_and_the_worker_function_in_process(model, reference, monkeypatch):
    """An fsspec URL (memory://, this process only): the model travels through fsspec, and the worker's function,
    run here outside Dask, stores the engine's results exactly."""
    from oipwidgets.atlas.worker import run_task

    monkeypatch.setenv("OIPWIDGETS_CORES", WORKER_ENV["OIPWIDGETS_CORES"])  # as in a worker (and the reference)
    atlas = Atlas.create("memory://atlas-test/m.atlas.zarr", model, layers=["Conv2D_3"], recipe=RECIPE, block=BLOCK)
    assert atlas.url == "memory://atlas-test/m.atlas.zarr" and atlas.attrs["model"]["file"] == "model.keras"
    done = run_task(atlas._job(), atlas.tasks()[0])
    assert (done["layer"], done["block"], done["channels"]) == ("Conv2D_3", 0, 8)
    again = Atlas.open("memory://atlas-test/m.atlas.zarr")
    assert again.progress() == {"Conv2D_3": (8, 64)} and len(again.tasks()) == 7
    np.testing.assert_array_equal(again.array("Conv2D_3", "oip")[:8, 0], reference["Conv2D_3", 0, 0].images)
    import fsspec

    fsspec.filesystem("memory").rm("/atlas-test", recursive=True)


# --------------------------------------------------------------------------- resume and growth
def test_resume_runs_only_the_tasks_not_done(client, computed, reference, tmp_path):
    atlas = Atlas.open(_copy(computed, tmp_path, "resume.atlas.zarr"))
    again = atlas.compute(client, progress=False)
    assert (again.tasks_run, again.tasks_skipped) == (0, 4)
    group = store.open_root(atlas.url, "r+")["layers/Conv2D_1"]
    group["done"][2, 0] = 0  # as if block 2's worker had died after writing part of its data
    group["oip"][16:24, 0] = 0.0
    assert [t.block for t in atlas.tasks()] == [2]
    seen = []
    report = atlas.compute(client, progress=False, on_task=seen.append)
    assert (report.tasks_run, report.tasks_skipped, report.channels_run) == (1, 3, 8)
    assert [(d["layer"], d["block"], d["seed"]) for d in seen] == [("Conv2D_1", 2, 0)]
    assert _max_diff(atlas, reference, "Conv2D_1", 0) <= 1e-6


def test_more_seeds_and_layers_add_only_the_missing_work(client, computed, model, reference, tmp_path):
    path = _copy(computed, tmp_path, "grow.atlas.zarr")
    before = Atlas.open(path).oips("Conv2D_1", seed=0)
    atlas = Atlas.create(path, model, layers=["Conv2D_1", "Conv2D_3"], recipe=RECIPE, seeds=(0, 1), block=BLOCK)
    assert atlas.seeds == [0, 1] and atlas.layers == ["Conv2D_1", "Conv2D_3"]
    pending = atlas.tasks()
    assert sorted({(t.layer, t.seed) for t in pending}) == [("Conv2D_1", 1), ("Conv2D_3", 0), ("Conv2D_3", 1)]
    assert len(pending) == 4 + 8 + 8
    assert store.open_root(path)["layers/Conv2D_1/oip"].shape == (32, 2, 28, 28, 1)
    t0 = time.perf_counter()
    report = atlas.compute(client, progress=False)
    TIMINGS["grow: 20 tasks"] = time.perf_counter() - t0
    assert (report.tasks_run, report.tasks_skipped, report.channels_run) == (20, 4, 32 + 128)
    np.testing.assert_array_equal(atlas.oips("Conv2D_1", seed=0), before)  # seed 0 untouched
    assert _max_diff(atlas, reference, "Conv2D_1", 1) <= 1e-6
    assert _max_diff(atlas, reference, "Conv2D_3", 0) <= 1e-6 and _max_diff(atlas, reference, "Conv2D_3", 1) <= 1e-6
    assert "Conv2D_3: 128/128 channels done" in atlas.info()


def test_another_recipe_preprocess_or_model_is_refused(computed, model, tmp_path):
    path = _copy(computed, tmp_path, "refuse.atlas.zarr")
    with pytest.raises(ValueError, match=r"another recipe \(steps: stored 8, given 9\)"):
        Atlas.create(path, model, layers=["Conv2D_1"], recipe=RECIPE.replace(steps=9))
    with pytest.raises(ValueError, match=r"another recipe \(.*param: stored 'fourier', given 'pixel'"):
        Atlas.create(path, model, layers=["Conv2D_1"], recipe="article")
    with pytest.raises(ValueError, match="preprocess 'standardize'; got 'unit'"):
        Atlas.create(path, model, layers=["Conv2D_1"], recipe=RECIPE, preprocess="unit")
    other = ow.load_default_model("fashion")
    with pytest.raises(ValueError, match="another model"):
        Atlas.create(path, other, layers=["Conv2D_1"], recipe=RECIPE)
    assert Atlas.open(path).attrs == computed.attrs  # nothing changed


def test_a_preprocess_function_is_recorded_by_name_and_needed_again(model, model_path, tmp_path):
    def to_unit_range(x):
        return x

    def another(x):
        return x

    path = tmp_path / "fn.atlas.zarr"
    atlas = Atlas.create(path, model, layers=["Conv2D_3"], recipe=RECIPE, preprocess=to_unit_range,
                         model_path=model_path)
    assert atlas.preprocess.endswith("test_a_preprocess_function_is_recorded_by_name_and_needed_again.<locals>."
                                     "to_unit_range")
    assert atlas.attrs["value_range"] == [0.0, 1.0]
    with pytest.raises(ValueError, match="pass it again"):
        Atlas.open(path).compute(progress=False)
    with pytest.raises(ValueError, match="was made with preprocess function .*to_unit_range'; got function .*another"):
        Atlas.open(path, preprocess=another)
    assert Atlas.open(path, preprocess=to_unit_range)._job().preprocess is to_unit_range


def test_layers_conv_units_and_names(model, model_path, tmp_path):
    conv = Atlas.create(tmp_path / "conv.atlas.zarr", model, recipe=RECIPE, model_path=model_path)
    assert conv.layers == ["Conv2D_1", "MaxPool_1", "Conv2D_2", "MaxPool_2", "Conv2D_3"]
    assert {p.block for p in conv.plans} == {32, 64}  # the whole layer fits a worker: one block (at most 64)
    every = Atlas.create(tmp_path / "all.atlas.zarr", model, units=True, recipe=RECIPE, model_path=model_path)
    assert every.layers == [i.name for i in ow.OIPEngine.layers(model)]
    assert every.plan("Dense_2").kind == "units" and every.plan("Dense_2").channels == 10
    assert len(every.tasks()) == 5 + 9 + 2 + 1  # one per maps layer; Flatten 576 units: 9 blocks; Dense_1 70: 2
    with pytest.raises(ValueError, match="unknown layer 'conv2'; layers that can be probed: Conv2D_1, MaxPool_1"):
        Atlas.create(tmp_path / "bad.atlas.zarr", model, layers=["conv2"], model_path=model_path)
    with pytest.raises(ValueError, match="seeds must be a list of seed values"):
        Atlas.create(tmp_path / "bad.atlas.zarr", model, seeds=2, model_path=model_path)
    assert not (tmp_path / "bad.atlas.zarr").exists()


# --------------------------------------------------------------------------- faults
def test_a_worker_killed_mid_task_is_retried_and_nothing_is_lost(client, computed, model, model_path, reference,
                                                                 tmp_path):
    path = tmp_path / "killed.atlas.zarr"
    atlas = Atlas.create(path, model, layers=["Conv2D_1"], recipe=RECIPE, seeds=(0,), block=BLOCK,
                         model_path=model_path)
    (path / FAULT_MARKER).write_text("exit once")  # the first task to see it exits its process before its done mark
    pids_before = set(client.run(os.getpid).values())
    t0 = time.perf_counter()
    report = atlas.compute(client, progress=False)
    TIMINGS["killed worker: 4 tasks"] = time.perf_counter() - t0
    taken = [p.name for p in path.iterdir() if p.name.startswith(FAULT_MARKER)]
    assert len(taken) == 1 and taken[0].startswith(f"{FAULT_MARKER}.taken-by-")
    dead_pid = int(taken[0].rsplit("-", 1)[1])
    assert dead_pid in pids_before
    assert report.tasks_run == 4 and not report.failed
    assert atlas.progress() == {"Conv2D_1": (32, 32)}
    undisturbed = computed.oips("Conv2D_1", seed=0)
    diff = float(np.abs(atlas.oips("Conv2D_1", seed=0) - undisturbed).max())
    TIMINGS["killed worker: max |difference| to the undisturbed run"] = diff
    assert diff <= 1e-6  # same seeds, same blocks: the same float32 images (observed: bit for bit, 0.0)
    np.testing.assert_allclose(atlas.objectives("Conv2D_1"), computed.objectives("Conv2D_1"), rtol=0, atol=1e-6)
    client.wait_for_workers(2, timeout=60)  # the Nanny restarted the worker
    assert dead_pid not in set(client.run(os.getpid).values())


def test_an_interrupted_compute_keeps_whole_tasks_and_a_second_one_finishes(client, model, model_path, reference,
                                                                           tmp_path):
    atlas = Atlas.create(tmp_path / "interrupted.atlas.zarr", model, layers=["Conv2D_3"], recipe=RECIPE,
                         seeds=(0,), block=BLOCK, model_path=model_path)

    def interrupt(done):
        raise KeyboardInterrupt  # as the notebook's Interrupt or Ctrl-C would, in the progress loop

    with pytest.raises(KeyboardInterrupt):
        atlas.compute(client, progress=False, on_task=interrupt)
    time.sleep(1.0)  # tasks that were already running on a worker finish (Dask does not stop a running task)
    group = store.open_root(atlas.url)["layers/Conv2D_3"]
    done = group["done"][:, 0].astype(bool)
    assert 1 <= done.sum() < 8
    for b in np.flatnonzero(done):  # every task marked done has all of its outputs, equal to the reference
        sl = slice(b * BLOCK, (b + 1) * BLOCK)
        assert np.array_equal(group["oip"][sl, 0], reference["Conv2D_3", b * BLOCK, 0].images)
        assert (group["status"][sl, 0] >= 0).all() and (group["steps"][sl, 0] >= 0).all()
    pending = len(atlas.tasks())
    report = atlas.compute(client, progress=False)
    assert report.tasks_run == pending and report.tasks_skipped == 8 - pending
    assert atlas.progress() == {"Conv2D_3": (64, 64)}
    assert _max_diff(atlas, reference, "Conv2D_3", 0) <= 1e-6


def test_an_unwritable_store_is_refused_before_any_work(computed, model, model_path, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        Atlas.create(blocker / "x.atlas.zarr", model, layers=["Conv2D_1"], recipe=RECIPE, model_path=model_path)
    with pytest.raises(ValueError, match="is not writable"):  # sysfs: root cannot create files there either
        Atlas.create("/sys/x.atlas.zarr", model, layers=["Conv2D_1"], recipe=RECIPE, model_path=model_path)
    assert not os.path.exists("/sys/x.atlas.zarr")
    # too little free disk: compute refuses before it connects to any scheduler or writes anything
    path = _copy(computed, tmp_path, "full.atlas.zarr")
    group = store.open_root(path, "r+")["layers/Conv2D_1"]
    group["done"][:] = 0
    usage = shutil.disk_usage(path)
    monkeypatch.setattr(store.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(ValueError, match="not enough free disk .* needs up to .* are free"):
        Atlas.open(path).compute(client="tcp://127.0.0.1:1", progress=False)
    assert group["done"][:].sum() == 0


# --------------------------------------------------------------------------- the command line
def test_cli_atlas_compute_and_info(client, computed, tmp_path, capsys):
    path = str(tmp_path / "cli.atlas.zarr")
    argv = ["atlas", "compute", "mnist", "--layers", "Conv2D_1", "--store", path, "--recipe", "readable",
            "--steps", "8", "--seeds", "1", "--block", "8", "--scheduler", client.scheduler_info()["address"]]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "4 tasks run (32 channels)" in captured.out and "Conv2D_1: 32/32 channels done" in captured.out
    assert "32/32 channels" in captured.err  # the text progress bar
    np.testing.assert_array_equal(Atlas.open(path).oips("Conv2D_1"), computed.oips("Conv2D_1"))
    assert cli.main(["atlas", "info", path]) == 0
    out = capsys.readouterr().out
    assert "recipe: readable with steps=8" in out and "seeds: 0" in out and "Conv2D_1: 32/32 channels done" in out
    assert cli.main(["atlas", "info", str(tmp_path / "nothing")]) == 2
    assert "no atlas at" in capsys.readouterr().err
    assert cli.main(["atlas", "compute", "mnist", "--layers", "Nope", "--store", path]) == 2
    assert "unknown layer 'Nope'; layers that can be probed: Conv2D_1" in capsys.readouterr().err


def test_cli_atlas_compute_on_its_own_local_cluster(tmp_path):
    """client=None: the command starts a local cluster (one worker per core), computes and shuts it down."""
    path = tmp_path / "own.atlas.zarr"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "oipwidgets.cli", "atlas", "compute", "mnist", "--layers",
                           "Conv2D_3", "--store", str(path), "--steps", "4", "--seeds", "2", "--block", "32"],
                          capture_output=True, text=True, timeout=300)
    TIMINGS["CLI with its own local cluster (4 tasks)"] = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Dask dashboard: http://127.0.0.1:" in proc.stdout
    assert "4 tasks run (128 channels)" in proc.stdout and "Conv2D_3: 128/128 channels done" in proc.stdout
    assert "Traceback" not in proc.stderr
