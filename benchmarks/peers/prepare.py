"""Writes the models and start images every runner of ``bench_peers.py`` reads (run once, in the project's venv).

Usage: ``python prepare.py '<JSON: {"workdir": ..., "width": 0.5, "seed": 1, "cases": ["i", "ii"]}>'``; prints one
tagged JSON line describing what it wrote.

* case i: the article's CNN as shipped (``ow.load_default_model("mnist")``), re-saved to ``case_i.keras``; start
  images: the engine's seeded start noise (the article's multi-scale noise, standardised), one per map of
  ``Conv2D_3``.
* case ii: a VGG-style model of random weights (``keras.utils.set_random_seed(0)`` before it is built): VGG16's
  convolutional base (13 3×3 ReLU convolutions in 5 blocks, 2×2 max pooling) on 128×128×3 input, with each block's
  width × ``width`` (1.0 = VGG16's 64, 128, 256, 512, 512; 0.5 halves every layer, a quarter of the FLOPs);
  saved to ``case_ii.keras``. Start images: the engine's start noise for 128×128×3 with the same seed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import oipwidgets as ow  # noqa: E402 - first: sets TensorFlow's threads

import keras  # noqa: E402
import numpy as np  # noqa: E402

from common import RESULT_TAG  # noqa: E402

VGG_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))  # (convolutions, maps) per block of VGG16


def vgg_style(width: float, seed: int = 0) -> keras.Model:
    """VGG16's convolutional base at 128×128×3, each block ``width`` × as wide, random (seeded) weights."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((128, 128, 3), name="image")
    for b, (convs, maps) in enumerate(VGG_BLOCKS, start=1):
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(max(1, round(maps * width)), 3, padding="same", activation="relu",
                                    name=f"block{b}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    return keras.Model(inputs, x, name=f"vgg_style_w{width:g}")


def conv_gflops(model: keras.Model, layer: str) -> float:
    """Forward GFLOPs per image of the convolutions up to ``layer`` (2·H·W·kh·kw·Cin·Cout each)."""
    total = 0
    for lay in model.layers:
        if isinstance(lay, keras.layers.Conv2D):
            kh, kw, c_in, c_out = (int(d) for d in lay.kernel.shape)
            _, h, w, _ = lay.output.shape
            total += 2 * h * w * kh * kw * c_in * c_out
        if lay.name == layer:
            break
    return total / 1e9


def write_case(workdir: Path, case: str, model: keras.Model, layer: str, channels: list, seed: int) -> dict:
    path = workdir / f"case_{case}.keras"
    model.save(path)
    starts = ow.OIPEngine(model, layer).start_images(seeds=[seed] * len(channels))
    np.savez(workdir / f"starts_{case}.npz", images=starts)
    return {"model": str(path), "starts": str(workdir / f"starts_{case}.npz"), "layer": layer, "channels": channels,
            "input_shape": list(model.inputs[0].shape[1:]),
            "layer_shape": list(model.get_layer(layer).output.shape[1:]),
            "params": int(model.count_params()), "gflops_to_layer": conv_gflops(model, layer)}


def main() -> None:
    job = json.loads(sys.argv[1])
    workdir, seed = Path(job["workdir"]), int(job["seed"])
    out = {}
    if "i" in job["cases"]:
        out["i"] = write_case(workdir, "i", ow.load_default_model("mnist"), "Conv2D_3", list(range(64)), seed)
    if "ii" in job["cases"]:
        out["ii"] = write_case(workdir, "ii", vgg_style(float(job["width"])), "block3_conv3", list(range(16)), seed)
    print(RESULT_TAG + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
