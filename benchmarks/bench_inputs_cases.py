"""The catalogue of ``bench_inputs.py``: one ``Case`` per bad (or unusual but valid) input, grouped by area.

Small models are built once (seeded, random weights); engines use few steps so the whole catalogue runs in minutes.
"""

from __future__ import annotations

import gzip
import struct
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

import keras
import numpy as np

import oipwidgets as ow
from oipwidgets import cli
from oipwidgets.engine.examples import map_means, top_k
from oipwidgets.models.idx import read_idx
from oipwidgets.output.export import save_png

NAN, INF = float("nan"), float("inf")
#: values that are wrong for any count/index/size setting
BAD_NUMBERS = [-1, 2.7, NAN, INF, -INF, "3", None, [1], 1e30, 3 + 0j]


def finite_result(shape=None) -> Callable:
    """A check for valid inputs: an OIPResult (or LayerResult) with finite images of the expected shape."""
    def check(value):
        results = getattr(value, "results", [value])
        for r in results:
            if not isinstance(r, ow.OIPResult):
                return f"returned {type(r).__name__}, not an OIPResult"
            if r.status in ("error", "nonfinite"):
                return f"status {r.status}: {r.message}"
            if not np.all(np.isfinite(r.image)):
                return "non-finite image"
            if shape is not None and r.image.shape != shape:
                return f"image shape {r.image.shape}, expected {shape}"
        return ""
    return check


def anything(value) -> str:
    return ""


@dataclass
class Case:
    area: str
    name: str
    call: Callable
    bad: bool = True
    check: Callable = field(default=anything)


# ------------------------------------------------------------------ models nobody tuned for
@cache
def mnist():
    return ow.load_default_model()


@cache
def engine():
    return ow.OIPEngine(mnist(), "Conv2D_3")


def _small(shape=(28, 28, 1), maps=8, name="c", **conv):
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape)
    x = keras.layers.Conv2D(maps, 3, activation="relu", name=name, **conv)(inp)
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D(**{
        k: v for k, v in conv.items() if k == "data_format"})(x)))


@cache
def channels_first():
    return _small((1, 28, 28), data_format="channels_first")


@cache
def any_size():
    return _small((None, None, 3))


@cache
def float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        return _small((32, 32, 3))
    finally:
        keras.mixed_precision.set_global_policy("float32")


@cache
def odd_colour():
    return _small((33, 47, 3), maps=5)


@cache
def residual_bn():
    keras.utils.set_random_seed(1)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", name="stem")(inp)
    y = keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(16, 3, padding="same", name="branch")(x))
    x = keras.layers.ReLU(name="relu")(keras.layers.Add(name="add")([x, y]))
    return keras.Model(inp, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))


@cache
def wide128():
    return _small((128, 128, 3), maps=256, name="wide")


@cache
def two_inputs():
    a, b = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, name="c")(keras.layers.Add()([a, b]))
    return keras.Model([a, b], x)


def run(**kwargs):
    return engine().run(**{"steps": 3, "seed": 0, **kwargs})


def _idx_file(data: bytes, gz: bool = True) -> str:
    path = Path(tempfile.mkdtemp()) / ("f.idx.gz" if gz else "f.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def cases() -> list[Case]:
    out: list[Case] = []
    add = out.append
    # ------------------------------------------------------------------ engine.run numbers
    # None is valid for seed (draws one) and for steps and epsilon (the recipe's value); 2.7 is a step
    for name, valid in [("map_index", [0, 63, np.int64(5)]), ("steps", [1, 2, None]), ("epsilon", [1e-6, 5.0, None]),
                        ("seed", [None, 0, 2**31])]:
        extra = {"steps": [0], "epsilon": [0], "map_index": [10**6]}.get(name, [-5])
        for value in BAD_NUMBERS + extra:
            if value is None and name != "map_index" or (name, value) == ("epsilon", 2.7):
                continue
            add(Case("run", f"{name}={value!r}", lambda n=name, v=value: run(**{n: v})))
        for value in valid:
            add(Case("run", f"{name}={value!r} (valid)", lambda n=name, v=value: run(**{n: v}), bad=False,
                     check=finite_result((28, 28, 1))))
    for value in [3e38, 1e4, INF]:
        add(Case("run", f"epsilon={value!r}", lambda v=value: run(epsilon=v)))
    for value in ["fast", 3, None, ow.Multiscale(stages=(5, 5))]:  # None: the recipe's strategy
        add(Case("run", f"strategy={value!r}", lambda v=value: run(strategy=v),
                 bad=not (value is None or isinstance(value, ow.Strategy)), check=finite_result()))
    for value, bad in [("nope", True), (3, True), ({"steps": -1}, True), ({"colour": 1}, True),
                       ({"warmup": -2}, True), ({"blur": float("nan")}, True), ("readable", False),
                       (ow.Recipe(steps=3), False), ({"steps": 2, "warmup": 1}, False)]:
        add(Case("run", f"recipe={value!r}", lambda v=value: run(recipe=v), bad=bad, check=finite_result()))
    for value in ["nope", 3, "caffe", ("unit",)]:  # caffe needs 3 channels; MNIST has 1
        add(Case("engine", f"preprocess={value!r}", lambda v=value: ow.OIPEngine(mnist(), "Conv2D_3", preprocess=v)))
    add(Case("engine", "preprocess and input_mode that disagree",
             lambda: ow.OIPEngine(mnist(), "Conv2D_3", preprocess="unit", input_mode="standardize")))
    for value in [(1.5, 2), (-1, 0), (99, 99), (1,), "centre", (1, 2, 3)]:
        add(Case("run", f"node={value!r}", lambda v=value: run(node=v)))
    for name, value, bad in [("NaN image", np.full((28, 28, 1), np.nan), True),
                             ("inf image", np.full((28, 28, 1), np.inf), True),
                             ("27x28x1", np.zeros((27, 28, 1)), True), ("28x28x3", np.zeros((28, 28, 3)), True),
                             ("a string", "image", True), ("1x28x28x1x1", np.zeros((1, 28, 28, 1, 1)), True),
                             ("28x28 (valid)", np.random.default_rng(0).normal(size=(28, 28)), False),
                             ("28x28x1 (valid)", np.random.default_rng(0).normal(size=(28, 28, 1)), False)]:
        add(Case("run", f"start={name}", lambda v=value: run(start=v), bad=bad, check=finite_result((28, 28, 1))))
    add(Case("run", "conv_criterion=-1", lambda: run(conv_criterion=-1)))
    add(Case("run", "conv_criterion=nan", lambda: run(conv_criterion=NAN)))
    add(Case("run", "callback=3", lambda: run(callback=3)))
    add(Case("run", "cancel='yes'", lambda: run(cancel="yes")))
    add(Case("run", "objective='mean'", lambda: run(objective="mean")))
    add(Case("run", "unknown option", lambda: run(colour="red")))
    add(Case("run", "identity mode, epsilon 3e38", lambda: ow.OIPEngine(mnist(), "Conv2D_3", input_mode="identity")
             .run(0, steps=5, epsilon=3e38, seed=0)))
    # ------------------------------------------------------------------ run_layer
    for value in [[], [99], [-1], [1.5], "all", [[0, 1]], [0, NAN], range(70)]:
        add(Case("run_layer", f"maps={value!r}", lambda v=value: engine().run_layer(v, steps=2, seed=0)))
    for value in [[0, 1], range(4), np.arange(3), None]:
        add(Case("run_layer", f"maps={value!r} (valid)", lambda v=value: engine().run_layer(v, steps=2, seed=0),
                 bad=False, check=finite_result((28, 28, 1))))
    add(Case("run_layer", "seed list shorter than maps", lambda: engine().run_layer([0, 1, 2], seed=[1, 2], steps=2)))
    add(Case("run_layer", "seed list with -1", lambda: engine().run_layer([0, 1], seed=[1, -1], steps=2)))
    add(Case("run_layer", "start batch of wrong size", lambda: engine().run_layer([0, 1], np.zeros((3, 28, 28, 1)),
                                                                                  steps=2)))
    # ------------------------------------------------------------------ noise
    noises = [dict(scales=()), dict(scales=((0, 3),)), dict(scales=((3.5, 3),)), dict(scales=((-2, 3),)),
              dict(scales=((20000, 20000),)), dict(scales=((3, 3),), weights=(1.0, 1.0)),
              dict(scales=((3, 3),), weights=(-1.0,)), dict(scales=((3, 3),), weights=(0.0,)),
              dict(scales=((3, 3),), weights=(NAN,)), dict(scales=((3, 3),), weights=(INF,)), dict(scales="3x3"),
              dict(scales=((3, 3, 3),))]
    for kw in noises:
        add(Case("noise", f"MultiScaleNoise({kw})", lambda k=kw: run(noise=ow.MultiScaleNoise(**k))))
    for kw in [dict(alpha=300), dict(alpha=NAN), dict(alpha=-50), dict(alpha=INF), dict(fmin=-1.0), dict(fmin=NAN),
               dict(fmin=1e9), dict(alpha="1")]:
        add(Case("noise", f"SpectralNoise({kw})", lambda k=kw: run(noise=ow.SpectralNoise(**k))))
    add(Case("noise", "noise='pink'", lambda: run(noise="pink")))
    add(Case("noise", "SpectralNoise(alpha=2) (valid)", lambda: run(noise=ow.SpectralNoise(alpha=2)), bad=False,
             check=finite_result((28, 28, 1))))
    add(Case("noise", "scales larger than the image (valid up to x4)", lambda: run(
        noise=ow.MultiScaleNoise(scales=((56, 56),), weights=(1.0,))), bad=False, check=finite_result()))
    # ------------------------------------------------------------------ objectives and strategies
    for name, make in [("MapMean(2.7)", lambda: ow.MapMean(2.7)), ("run with MapMean(-1)", lambda: run(objective=ow.MapMean(-1))),
                       ("MapMean('a')", lambda: ow.MapMean("a")), ("MapMean(nan)", lambda: ow.MapMean(NAN)),
                       ("Node(0, (1.5, 2))", lambda: ow.Node(0, (1.5, 2))),
                       ("Node(0, (1, 2, 3))", lambda: ow.Node(0, (1, 2, 3))), ("Unit(1.5)", lambda: ow.Unit(1.5)),
                       ("MapMean(0) * nan", lambda: ow.MapMean(0) * NAN), ("MapMean(0) + 3", lambda: ow.MapMean(0) + 3),
                       ("MapMean(0) * '2'", lambda: ow.MapMean(0) * "2"),
                       ("MapMean(0) * inf", lambda: ow.MapMean(0) * INF)]:
        add(Case("objective", name, make))
    for obj in ["MapMean(999)", "Node(0, (99, 99))", "Unit(0) on a conv layer"]:
        build = {"MapMean(999)": lambda: ow.MapMean(999), "Node(0, (99, 99))": lambda: ow.Node(0, (99, 99)),
                 "Unit(0) on a conv layer": lambda: ow.Unit(0)}[obj]
        add(Case("objective", f"run with {obj}", lambda b=build: run(objective=b())))
    add(Case("objective", "0.5*MapMean(1) - MapMean(2) (valid)", lambda: run(
        objective=0.5 * ow.MapMean(1) - ow.MapMean(2)), bad=False, check=finite_result((28, 28, 1))))
    for name, make in [("Multiscale(stages=())", lambda: ow.Multiscale(stages=())),
                       ("Multiscale(stages=(0, 10))", lambda: ow.Multiscale(stages=(0, 10))),
                       ("Multiscale(stages=(2.5,))", lambda: ow.Multiscale(stages=(2.5,))),
                       ("Precursor(n=0)", lambda: ow.Precursor(n=0)), ("Precursor(steps=-1)", lambda: ow.Precursor(
                           steps=-1)), ("Precursor(n=nan)", lambda: ow.Precursor(n=NAN))]:
        add(Case("strategy", name, lambda mk=make: run(strategy=mk())))
    # ------------------------------------------------------------------ engine construction and models
    m = mnist
    for kw in [dict(layer="nope"), dict(layer=99), dict(layer=-100), dict(layer=2.5), dict(layer=None),
               dict(layer="Conv2D_3", input_mode="clamp"), dict(layer="Conv2D_3", memory_budget=0),
               dict(layer="Conv2D_3", memory_budget=-1), dict(layer="Conv2D_3", memory_budget=NAN),
               dict(layer="Conv2D_3", memory_budget="lots"), dict(layer="Conv2D_3", memory_budget=1.5),
               dict(layer="Conv2D_3", input_shape=(28, 28)), dict(layer="Conv2D_3", input_shape=(0, 28, 1)),
               dict(layer="Conv2D_3", input_shape=(-1, 28, 1)), dict(layer="Conv2D_3", input_shape="28x28"),
               dict(layer="Conv2D_3", input_shape=(32, 32, 1))]:
        add(Case("engine", f"OIPEngine(mnist, {kw})", lambda k=kw: ow.OIPEngine(m(), **k).run(0, steps=2, seed=0)))
    for name, make, layer in [("a string for the model", lambda: "mnist", "Conv2D_3"),
                              ("None for the model", lambda: None, "Conv2D_3"),
                              ("a numpy array for the model", lambda: np.zeros(3), "Conv2D_3"),
                              ("channels-first model", channels_first, "c"),
                              ("two-input model", two_inputs, "c"),
                              ("(None, None, 3) model without input_shape", any_size, "c")]:
        add(Case("engine", name, lambda mk=make, ly=layer: ow.OIPEngine(mk(), ly).run(0, steps=2, seed=0)))
    for name, make, layer, kw, shape in [
            ("(None, None, 3) model with input_shape=(40, 40, 3)", any_size, "c", dict(input_shape=(40, 40, 3)),
             (40, 40, 3)),
            ("mixed-float16 model", float16, "c", {}, (32, 32, 3)),
            ("odd-size colour model 33x47x3", odd_colour, "c", {}, (33, 47, 3)),
            ("BatchNorm + residual, layer 'add'", residual_bn, "add", {}, (64, 64, 3)),
            ("BatchNorm + residual, layer 'bn'", residual_bn, "bn", {}, (64, 64, 3)),
            ("256 maps at 128x128x3, 3 maps", wide128, "wide", {}, (128, 128, 3))]:
        add(Case("engine", name + " (valid)", lambda mk=make, ly=layer, k=kw: ow.OIPEngine(mk(), ly, **k).run_layer(
            [0, 1, 2], steps=3, seed=0), bad=False, check=finite_result(shape)))
    # ------------------------------------------------------------------ examples (top-k, map means)
    imgs = np.zeros((4, 28, 28, 1), np.float32)
    for name, call in [("top_k with k=0", lambda: top_k(m(), "Conv2D_3", 0, imgs, k=0)),
                       ("top_k with k=99 of 4 images", lambda: top_k(m(), "Conv2D_3", 0, imgs, k=99)),
                       ("top_k of map 999", lambda: top_k(m(), "Conv2D_3", 999, imgs)),
                       ("top_k of colour images on a grey model", lambda: top_k(m(), "Conv2D_3", 0,
                                                                                np.zeros((4, 28, 28, 3)))),
                       ("top_k of no images", lambda: top_k(m(), "Conv2D_3", 0, np.zeros((0, 28, 28, 1)))),
                       ("top_k of NaN images", lambda: top_k(m(), "Conv2D_3", 0, np.full((4, 28, 28, 1), np.nan))),
                       ("map_means of a string", lambda: map_means(m(), "images", layer="Conv2D_3")),
                       ("map_means of 27x28 images", lambda: map_means(m(), np.zeros((2, 27, 28)), layer="Conv2D_3"))]:
        add(Case("examples", name, call))
    # ------------------------------------------------------------------ widgets
    for cls in (ow.OIPExplorer, ow.LayerZoo):
        for key, value in [("seed", -1), ("seed", 1.5), ("steps", 0), ("steps", NAN), ("epsilon", NAN),
                           ("epsilon", -1.0), ("epsilon", 1e9), ("strategy", "fast"), ("colormap", "rainbow!"),
                           ("noise_scales", [(0, 3)]), ("noise_scales", [(20000, 20000)]),
                           ("noise_weights", [-1.0]), ("layer", "nope"), ("layer", 99), ("colour", "red")]:
            add(Case("widgets", f"{cls.__name__}({key}={value!r})", lambda c=cls, k=key, v=value: _widget_run(
                c, {k: v})))
        add(Case("widgets", f"{cls.__name__}(examples=[])", lambda c=cls: c(m(), examples=np.zeros((0, 28, 28, 1)))))
    for key, value in [("map_index", 99), ("map_index", -1), ("map_index", 2.5)]:
        add(Case("widgets", f"OIPExplorer.{key} = {value!r}", lambda k=key, v=value: setattr(
            ow.OIPExplorer(m()), k, v)))
    for key, value in [("cols", 0), ("cols", -3), ("cols", 2.5), ("k", 0), ("selected", 999), ("sort", "size")]:
        add(Case("widgets", f"LayerZoo {key}={value!r}", lambda k=key, v=value: _zoo_setting(k, v)))
    for kw in [dict(images=np.zeros((0, 28, 28, 1))), dict(images=np.zeros((3, 27, 28, 1))),
               dict(images="digits"), dict(images=np.zeros((3, 28, 28, 1)), cols=0),
               dict(images=np.zeros((3, 28, 28, 1)), labels=[1]), dict(images=np.full((2, 28, 28, 1), np.nan))]:
        add(Case("widgets", f"ActivationViewer({', '.join(f'{k}={np.shape(v)}' for k, v in kw.items())})",
                 lambda k=kw: ow.ActivationViewer(m(), **k)))
    add(Case("widgets", "ActivationViewer image_index=5 of 3", lambda: setattr(
        ow.ActivationViewer(m(), np.zeros((3, 28, 28, 1))), "image_index", 5)))
    # ------------------------------------------------------------------ CLI (exit 2 with "error:" expected)
    tmp = Path(tempfile.mkdtemp())
    (tmp / "ro").mkdir()
    (tmp / "ro").chmod(0o500)
    for argv in [["train", "--dataset", "mnist", "--batch-size", "0", "--out", str(tmp / "m.keras")],
                 ["train", "--dataset", "mnist", "--epochs", "0", "--out", str(tmp / "m.keras")],
                 ["train", "--dataset", "mnist", "--epochs", "-3", "--out", str(tmp / "m.keras")],
                 ["train", "--dataset", "mnist", "--out", "/nonexistent/dir/m.keras"],
                 ["train", "--dataset", "cifar", "--out", str(tmp / "m.keras")],
                 ["train", "--dataset", "mnist", "--data", str(tmp / "missing"), "--out", str(tmp / "m.keras")],
                 ["zoo", "--steps", "0"], ["zoo", "--steps", "x"], ["zoo", "--epsilon", "nan"],
                 ["zoo", "--epsilon", "-1"], ["zoo", "--cols", "0"], ["zoo", "--cmap", "nonsense"],
                 ["zoo", "--layer", "nope"], ["zoo", "--layer", "Dense_1"], ["zoo", "--model", str(tmp / "x.keras")],
                 ["zoo", "--seed", "-1"], ["zoo", "--strategy", "fast"], ["zoo", "--out", "/etc/passwd/z.png"],
                 ["zoo", "--html", "/etc/passwd/z.html"], ["evaluate", "--model", "nope"],
                 ["evaluate", "--model", "mnist", "--data", str(tmp)], ["frobnicate"], []]:
        add(Case("cli", " ".join(argv) or "(no command)", lambda a=argv: _cli(a)))
    # ------------------------------------------------------------------ IDX files
    header = struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">III", 2, 28, 28)
    idx_cases = [("empty file", b"", True), ("not gzip, truncated", header + bytes(784), False),
                 ("wrong magic", b"\x01\x02" + header[2:] + bytes(2 * 784), True),
                 ("unknown type code", header[:2] + b"\x07" + header[3:] + bytes(2 * 784), True),
                 ("truncated data", header + bytes(784), True), ("more data than declared", header + bytes(3 * 784),
                                                                True),
                 ("declares 10^9 images (bomb)", struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">III", 10**9, 28,
                                                                                               28) + bytes(784), True),
                 ("zero dimensions", struct.pack(">BBBB", 0, 0, 8, 0), True), ("header only", header, True)]
    for name, data, gz in idx_cases:
        add(Case("idx", name, lambda d=data, g=gz: read_idx(_idx_file(d, gz=g is True))))
    add(Case("idx", "gzip bomb: 1 MB file of 1 GB zeros", lambda: read_idx(_bomb(tmp))))
    add(Case("idx", "a directory", lambda: read_idx(tmp)))
    add(Case("idx", "a missing file", lambda: read_idx(tmp / "missing.gz")))
    # ------------------------------------------------------------------ exports
    res = lambda: run(steps=2)  # noqa: E731
    for name, call in [("save_png under a file", lambda: save_png(res(), "/etc/passwd/a.png")),
                       ("save_png scale=0", lambda: save_png(res(), tmp / "a.png", scale=0)),
                       ("save_png cmap='nope'", lambda: save_png(res(), tmp / "a.png", cmap="nope")),
                       ("load_default_model('cifar')", lambda: ow.load_default_model("cifar")),
                       ("load_model of a text file", lambda: ow.load_model(_text(tmp))),
                       ("load_model of a missing file", lambda: ow.load_model(tmp / "missing.keras"))]:
        add(Case("output", name, call))
    return out


def _widget_run(cls, kwargs):
    w = cls(mnist(), **{"steps": 2, **kwargs})
    try:
        return w.run(wait=True)
    finally:
        w.close()


def _zoo_setting(key, value):
    if key == "cols":
        return ow.LayerZoo(mnist(), cols=value)
    z = ow.LayerZoo(mnist(), steps=2)
    try:
        setattr(z, key, value)
    finally:
        z.close()


def _cli(argv):
    code = cli.main(argv)
    raise SystemExit(code)


def _bomb(tmp: Path) -> Path:
    path = tmp / "bomb-idx1-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 10))
        zeros = bytes(1 << 20)
        for _ in range(1024):
            f.write(zeros)
    return path


def _text(tmp: Path) -> Path:
    path = tmp / "model.keras"
    path.write_text("not a model")
    return path
