"""Xplique runner for ``bench_peers.py`` (its own venv): ``features_visualizations.optimize`` on
``Objective.channel(model, layer, channels)`` (one image per channel, all in one batch).

The model it climbs is ``common.peer_model``: image → per-image standardisation → the layers up to the target
(post-ReLU). Xplique keeps its own image range: sigmoid, then each image rescaled to ``values_range`` (0, 1); the
objective standardises its final images, so the model sees them as it saw them while climbing.
Settings are Xplique's defaults — ``Adam(0.05)``, ``std=0.01`` start, ``image_normalizer="sigmoid"``,
``fft_decay=0.85`` — except where a case says otherwise:

case i: ``use_fft=False`` (pixels), ``transformations=None``, ``custom_shape=None`` (the model's 28×28).
    variant None: the 1-channel model as it is (Xplique 1.3.3's colour recorrelation reshapes every image to
    3 colour channels, so this is expected to fail). variant "rgb-wrapper" (a workaround): the peer model takes
    3 channels and averages them into the model's one; the final images are averaged the same way before the
    objective is read.
case ii: ``use_fft=True`` (Fourier, colours decorrelated with ImageNet's matrix), ``transformations="standard"``,
    ``custom_shape=(128, 128)`` (the model's size; Xplique's default 512×512 would climb a larger image and
    resize it down).
Each ``optimize`` call builds and traces its own ``tf.function`` step, so a warm-up cannot spare the timed call its
trace: the warm-up (``warmup_steps`` steps) only pays TensorFlow's first-use costs; the timed call includes one
trace, as every call of the library does.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

LIBRARY = "xplique"


def case_settings(case: str) -> dict:
    if case == "i":
        return {"use_fft": False, "transformations": None, "custom_shape": None}
    return {"use_fft": True, "transformations": "standard", "custom_shape": (128, 128)}


def main() -> None:
    job = common.read_job()
    try:
        import numpy as np
        import xplique
        from xplique.features_visualizations import Objective, optimize

        common.seed_everything(job["seed"])
        model = common.load_model(job)
        wrapper = job.get("variant") == "rgb-wrapper"
        peer = common.peer_model(model, job["layer"], input_channels=3 if wrapper else None)
        objective = Objective.channel(peer, job["layer"], list(job["channels"]))
        settings = case_settings(job["case"])

        def run(steps: int):
            images, _names = optimize(objective, nb_steps=steps, **settings)
            return np.asarray(images[-1])

    except Exception as err:  # noqa: BLE001 - reported as a row
        return common.fail(job, LIBRARY, "setup", err)
    # the wrapper's 3 channels averaged: the model's one channel, as the wrapper fed it
    common.measure_and_report(job, LIBRARY, run, model, xplique,
                              images_of=(lambda im: im.mean(axis=-1, keepdims=True)) if wrapper else (lambda im: im))


if __name__ == "__main__":
    main()
