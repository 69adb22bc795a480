"""tf-keras-vis runner for ``bench_peers.py`` (its own venv): ``ActivationMaximization`` on all target channels at
once (one seed input per channel, one score per sample).

The model it climbs is ``common.peer_model``: image → per-image standardisation → the layers up to the target
(post-ReLU output). Score of sample k: the spatial mean of channel ``channels[k]``. Seed inputs: the orchestrator's
start images (the engine's start noise, standardised). ``input_range=(None, None)``: the returned images are the
library's raw variables (not clipped to 0..255, which would change them); the objective standardises them.
Optimiser: the library's default, ``RMSprop(learning_rate=1.0, rho=0.999)``, made anew by each call.

case i: ``input_modifiers=[]``, ``regularizers=[]`` (pixel ascent, nothing else), as the engine's article climb.
case ii: its standard set, the defaults of ``ActivationMaximization.__call__``: ``Jitter(jitter=4)``,
``Rotate2D(degree=1)``; ``TotalVariation2D(weight=1.0)``, ``Norm(weight=0.3, p=1)``. It has no Fourier
parameterisation: it climbs pixels.
Its loop is eager (one ``GradientTape`` per step, modifiers in NumPy/SciPy): nothing to compile, so the warm-up is
``warmup_steps`` steps on the same batch (first-call costs of TensorFlow's kernels).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

LIBRARY = "tf-keras-vis"


def standard_set(case: str) -> dict:
    """Input modifiers and regularisers of a case, fresh instances for each call."""
    from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D
    from tf_keras_vis.activation_maximization.regularizers import Norm, TotalVariation2D

    if case == "i":
        return {"input_modifiers": [], "regularizers": []}
    return {"input_modifiers": [Jitter(jitter=4), Rotate2D(degree=1)],
            "regularizers": [TotalVariation2D(weight=1.0), Norm(weight=0.3, p=1)]}


def main() -> None:
    job = common.read_job()
    try:
        import tensorflow as tf
        import tf_keras_vis
        from tf_keras_vis.activation_maximization import ActivationMaximization

        common.seed_everything(job["seed"])
        model = common.load_model(job)
        peer = common.peer_model(model, job["layer"])
        starts = common.load_starts(job)
        onehot = tf.one_hot(job["channels"], depth=int(peer.output.shape[-1]))  # (B, maps)

        def score(output):  # (B, h, w, maps) → (B,): the mean of each sample's own channel
            return tf.reduce_sum(tf.reduce_mean(output, axis=(1, 2)) * onehot, axis=-1)

        visualizer = ActivationMaximization(peer, clone=False)

        def run(steps: int):
            return visualizer(score, seed_input=starts, input_range=(None, None), steps=steps,
                              **standard_set(job["case"]))

    except Exception as err:  # noqa: BLE001 - reported as a row
        return common.fail(job, LIBRARY, "setup", err)
    common.measure_and_report(job, LIBRARY, run, model, tf_keras_vis)


if __name__ == "__main__":
    main()
