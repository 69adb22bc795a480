"""What every peer runner of ``benchmarks/bench_peers.py`` shares: the job, the model, the objective, the report.

A runner is started as ``python run_<library>.py '<job as JSON>'`` by the orchestrator, in the environment of its
library (the project's ``.venv`` for oipwidgets, a venv of its own for each peer). It must not import oipwidgets
(peers cannot see it), so everything here is plain TensorFlow / Keras / NumPy.

The job (a dict) holds: ``case`` ("i" or "ii"), ``model`` (path of the .keras file the orchestrator wrote),
``layer``, ``channels`` (list of map indices), ``steps``, ``warmup_steps``, ``seed``, ``starts`` (path of an .npz
with the start images the orchestrator drew, key ``images``, one per channel, already per-image standardised) and
``variant`` (a runner-specific option, or None).

The model's input form, for every case and library: per-image standardised images
(``tf.image.per_image_standardization``, the article's). Peers optimise an image in their own range, so they are
given ``peer_model``: image → standardisation → the original layers up to the target layer (same weights); their
final images are standardised the same way before the objective is read (``objective``).

The objective read for the table: the spatial mean of the target channel of the layer's output *after* its
activation (post-ReLU; what ``keras.Model(model.inputs, layer.output)`` returns) at each final image, in the
model's input form. One value per channel; the table uses their mean and median.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULT_TAG = "BENCH_RESULT "


def read_job() -> dict:
    """The job passed as the first command-line argument (JSON)."""
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} '<job as JSON>'")
    return json.loads(sys.argv[1])


def report(job: dict, library: str, **fields) -> None:
    """Print the one result line the orchestrator reads (tagged, JSON)."""
    row = {"library": library, "case": job.get("case"), "variant": job.get("variant"), **fields}
    print(RESULT_TAG + json.dumps(row, default=float), flush=True)


def versions(*modules) -> dict:
    """Version and location of TensorFlow, Keras, NumPy and the given library modules, as imported here."""
    import keras
    import numpy as np
    import tensorflow as tf

    out = {}
    for mod in (tf, keras, np, *modules):
        out[mod.__name__] = {"version": getattr(mod, "__version__", "?"), "path": os.path.dirname(mod.__file__)}
    out["threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                      "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    return out


def seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(int(seed))  # Python, NumPy and TensorFlow


def load_model(job: dict):
    import keras

    return keras.models.load_model(job["model"], compile=False)


def load_starts(job: dict):
    import numpy as np

    with np.load(job["starts"]) as data:
        return data["images"].astype(np.float32)


def standardize(images):
    """The model's input form: ``tf.image.per_image_standardization`` of images (N, H, W, C)."""
    import tensorflow as tf

    return tf.image.per_image_standardization(tf.convert_to_tensor(images, tf.float32))


def _layer_classes():
    import keras
    import tensorflow as tf

    class Standardize(keras.layers.Layer):
        """Per-image standardisation inside the model (differentiable): the model's input form."""

        def call(self, x):
            return tf.image.per_image_standardization(x)

    class ChannelMean(keras.layers.Layer):
        """Colour images → one grey channel (the mean of the channels), for a model that takes one channel."""

        def call(self, x):
            return tf.reduce_mean(x, axis=-1, keepdims=True)

        def compute_output_shape(self, shape):
            return (*shape[:-1], 1)

    return Standardize, ChannelMean


def peer_model(model, layer: str, input_channels: int | None = None):
    """A new functional model: image → [channel mean] → standardisation → copies of the original layers up to
    ``layer`` (same names, same weights), output = that layer's output (post-activation).

    Copies, not the original layer objects: a library that looks the layer up by name (Xplique) then finds it in
    this model with this model's input. Works for chain models (each layer feeds the next), as both cases are.
    ``input_channels``: a channel count other than the model's (3 for a 1-channel model): the channels are averaged.
    """
    import keras

    Standardize, ChannelMean = _layer_classes()
    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    c_in = c if input_channels is None else int(input_channels)
    inp = keras.Input((h, w, c_in), name="image")
    x = inp
    if c_in != c:
        if c != 1:
            raise ValueError(f"can only average {c_in} channels into a 1-channel model; the model takes {c}")
        x = ChannelMean(name="channel_mean")(x)
    x = Standardize(name="standardize")(x)
    for original in model.layers:
        if isinstance(original, keras.layers.InputLayer):
            continue
        copy = original.__class__.from_config(original.get_config())
        x = copy(x)
        copy.set_weights(original.get_weights())
        if original.name == layer:
            return keras.Model(inp, x, name=f"peer_{layer}")
    raise ValueError(f"layer {layer!r} not found in {model.name!r}")


def objective(job: dict, model, images) -> dict:
    """The table's objective of final images already in the model's input form (or not: they are standardised
    here, which leaves standardised images unchanged): per channel, the spatial mean of the post-activation output
    of ``job["layer"]`` for the channel each image was made for."""
    import keras
    import numpy as np

    sub = keras.Model(model.inputs, model.get_layer(job["layer"]).output)
    out = np.asarray(sub(standardize(images), training=False))
    per_channel = [float(out[i, :, :, c].mean()) for i, c in enumerate(job["channels"])]
    finite = [v for v in per_channel if np.isfinite(v)]
    return {"objective_mean": float(np.mean(finite)) if finite else float("nan"),
            "objective_median": float(np.median(finite)) if finite else float("nan"),
            "objective_per_channel": per_channel}


def timed(fn):
    """(seconds, result) of one call, wall clock."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def fail(job: dict, library: str, stage: str, err: BaseException) -> None:
    """Report a failure row: the error's last line, and the traceback on stderr."""
    traceback.print_exc(file=sys.stderr)
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    name = type(err).__name__
    report(job, library, error=f"{stage}: {last if last.startswith(name) else f'{name}: {last}'}"[:400])


def warm_then_time(job: dict, library: str, run):
    """``run(warmup_steps)`` once (traces, first-call costs), then ``(warm-up s, timed s, images)`` of
    ``run(steps)``; a failure is reported as the row's error (stage "setup" for the warm-up, "run" after) and None
    returned."""
    try:
        warmup_seconds, _ = timed(lambda: run(int(job["warmup_steps"])))
    except Exception as err:  # noqa: BLE001 - reported as a row
        return fail(job, library, "setup", err)
    try:
        seconds, images = timed(lambda: run(int(job["steps"])))
    except Exception as err:  # noqa: BLE001
        return fail(job, library, "run", err)
    return warmup_seconds, seconds, images


def measure_and_report(job: dict, library: str, run, model, module, images_of=lambda images: images) -> None:
    """``warm_then_time`` of ``run``, then the row: time, warm-up, the objective of ``images_of(final images)``
    and the versions (``module``: the library's package)."""
    measured = warm_then_time(job, library, run)
    if measured is None:
        return
    warmup_seconds, seconds, images = measured
    report(job, library, seconds=seconds, warmup_seconds=warmup_seconds,
           **objective(job, model, images_of(images)), versions=versions(module))
