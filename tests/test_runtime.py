"""The engine's use of the cores: no process-wide TensorFlow setting unless asked for, a split chosen from the work."""

import os
import subprocess
import sys
import textwrap

import pytest

from oipwidgets.engine import runtime


def run(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != runtime.ENV_VAR}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env={**environ, **env})


THREADS = "tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads()"


def test_import_and_a_run_leave_tensorflow_threading_as_the_user_had_it():
    proc = run(f"""
        import tensorflow as tf
        before = ({THREADS})
        import oipwidgets as ow
        after_import = ({THREADS})
        ow.OIPEngine(ow.load_default_model(), "Conv2D_3").run_layer(maps=[0, 1, 2], steps=5, seed=1)
        ow.OIPExplorer(steps=5).run(wait=True)
        print(before, after_import, ({THREADS}))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[-2] == "(0, 0) (0, 0) (0, 0)"  # TensorFlow's defaults, untouched


def test_the_opt_in_sets_one_intra_op_thread_before_the_first_op():
    proc = run(f"""
        import oipwidgets, tensorflow as tf
        print({THREADS})
    """, **{runtime.ENV_VAR: "auto"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("1 ")
    late = run("""
        import tensorflow as tf
        tf.constant(1.0) + 1.0  # TensorFlow has run an op: its threading is fixed
        from oipwidgets.engine import runtime
        print(runtime.configure_threads("auto"))
    """)
    assert "'configured': False" in late.stdout and "'intra_op': 0" in late.stdout


@pytest.mark.parametrize("gpu, intra, cores, batch, values, expected", [
    (False, 0, 2, 64, 28 * 28, 2),  # TF's threading, many small images: one part per core
    (False, 0, 2, 1, 28 * 28, 1),  # one image: all cores on its kernels
    (False, 0, 16, 16, 224 * 224 * 3, 1),  # large images: all cores on each kernel, no split
    (False, 0, 64, 64, 32 * 32 * 3, 8),  # at most 8 parts
    (False, 1, 4, 64, 224 * 224 * 3, 4),  # the opt-in (1 intra-op thread): one part per core, any size
    (False, 2, 4, 64, 28 * 28, 2),  # N intra-op threads: cores // N
    (True, 0, 8, 256, 28 * 28, 1),  # a GPU: the device runs the whole batch
])
def test_the_split_follows_the_work_and_the_device(monkeypatch, gpu, intra, cores, batch, values, expected):
    monkeypatch.setattr(runtime, "gpu_present", lambda: gpu)
    monkeypatch.setattr(runtime, "_intra_op", lambda: intra)
    monkeypatch.setattr(runtime, "usable_cores", lambda: cores)
    assert runtime.workers(batch, values) == expected


def test_with_a_gpu_batches_are_sized_by_its_memory(monkeypatch):
    import subprocess as sp

    import tensorflow as tf

    from oipwidgets.engine import memory

    monkeypatch.setattr(runtime, "gpu_present", lambda: True)
    monkeypatch.setattr(sp, "run", lambda *a, **k: sp.CompletedProcess(a, 0, stdout="16384\n", stderr=""))
    monkeypatch.setattr(tf.config.experimental, "get_memory_info", lambda device: {"current": 2**30, "peak": 2**31})
    assert memory.gpu_total_bytes() == 16 * 2**30
    assert memory.device_bytes() == 15 * 2**30  # 16 GiB less the 1 GiB TensorFlow holds now
    assert memory.budget_bytes(None) == int(memory.DEFAULT_FRACTION * 15 * 2**30)
    monkeypatch.setattr(sp, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError("nvidia-smi")))
    assert memory.gpu_total_bytes() is None  # no nvidia-smi: the machine's memory, as without a GPU
    assert abs(memory.device_bytes() - memory.available_bytes()) < 256 * 2**20


def test_a_process_told_its_share_of_the_cores_keeps_to_it(monkeypatch):
    from oipwidgets.engine import runtime

    all_cores = runtime.usable_cores()
    monkeypatch.setenv("OIPWIDGETS_CORES", "1")
    assert runtime.usable_cores() == 1
    monkeypatch.setenv("OIPWIDGETS_CORES", "999")
    assert runtime.usable_cores() == all_cores
    monkeypatch.setenv("OIPWIDGETS_CORES", "none")
    assert runtime.usable_cores() == all_cores
