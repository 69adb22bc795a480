"""The ``oipwidgets`` command line: headless jobs without a notebook.

``oipwidgets train``    trains the article's CNN (the planted CNN for ``--dataset planted``) and writes a model file
                        with its card (rebuilds the defaults);
``oipwidgets evaluate`` reports a model's accuracy on a test set or on the shipped samples (planted: generated);
``oipwidgets zoo``      computes the OIPs of every map of a layer with a recipe (``--recipe article|readable``, any
                        of its settings overridden by their own flags) and writes them as PNG, HTML and JSON;
``oipwidgets atlas``    ``compute`` makes (or finishes, or extends) the atlas of a model's layers on Dask in a Zarr
                        store; ``info`` says what an atlas holds and how much of it is done; ``export`` writes
                        its static web site (``atlas/site.py``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shlex
import sys
from pathlib import Path

from .engine.validation import check_float, check_int
from .output.export import writable_path
from .output.render import COLORMAPS

__all__ = ["main"]

_DATASETS = ("mnist", "fashion", "planted")
#: the planted set is generated: training and test images from different seeds
PLANTED_TRAIN, PLANTED_TEST = (12_000, 0), (2_000, 1)
_ARCHITECTURES = {
    "planted": "planted CNN: conv1(16) BN ReLU pool conv2(32) BN ReLU pool conv3(64) BN ReLU pool conv4(64) BN ReLU "
               "GAP logits(8) probs(softmax)",
}
_ARTICLE = "article CNN: Conv2D_1(32) MaxPool Conv2D_2(64) MaxPool Conv2D_3(64) Dense_1(70) Dense_2(10)"
#: the recipe presets and input conventions of the engine (engine/recipe.py RECIPES, engine/preprocess.py PRESETS;
#: named here so that the parser, and --help, need no TensorFlow)
_RECIPES = ("article", "readable")
_PREPROCESS = ("standardize", "unit", "byte", "tf", "caffe", "torch")
#: the zoo's flags that override a field of the recipe when given (flag attribute = recipe field)
_RECIPE_FLAGS = ("steps", "epsilon", "strategy", "param", "transforms", "optimizer")


def _load(dataset: str, data: str | None):
    from .models import datasets

    if dataset == "planted":
        if data is not None:
            raise ValueError("the planted set is generated; leave out --data")
        from .models.planted import make_planted

        return (make_planted(PLANTED_TRAIN[0], seed=PLANTED_TRAIN[1]),
                make_planted(PLANTED_TEST[0], seed=PLANTED_TEST[1]))
    loader = datasets.load_mnist if dataset == "mnist" else datasets.load_fashion_mnist
    return loader(data)


def card_path(model_path: Path) -> Path:
    """Where the card of a model file lives: ``mnist.keras`` → ``mnist.card.json``."""
    return model_path.with_name(model_path.stem + ".card.json")


def _cmd_train(args: argparse.Namespace, argv: list[str]) -> int:
    import keras
    import tensorflow as tf

    from .models.training import TrainConfig, evaluate, inference_copy, train_cnn

    if not args.out.endswith(".keras"):
        raise ValueError(f"--out must name a .keras file; got {args.out!r}")
    check_int(args.epochs, "--epochs")
    check_int(args.batch_size, "--batch-size")
    check_int(args.seed, "--seed", low=0)
    if args.dataset == "planted" and args.data is not None:
        raise ValueError("the planted set is generated; leave out --data")
    out = writable_path(args.out)
    (x_train, y_train), (x_test, y_test) = _load(args.dataset, args.data)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    what = "the planted CNN" if args.dataset == "planted" else "the article's CNN"
    print(f"Training {what} on {len(x_train)} {args.dataset} images for {args.epochs} epochs "
          f"(seed {args.seed})", flush=True)
    build, classes = None, 10
    if args.dataset == "planted":
        from .models.planted import PLANTED_CLASSES, build_planted_cnn

        build, classes = build_planted_cnn, len(PLANTED_CLASSES)
    result = train_cnn(x_train, y_train, config, verbose=args.verbose, build=build, num_classes=classes)
    accuracy = evaluate(result.model, x_test, y_test)
    print(f"Test accuracy on {len(x_test)} images: {accuracy:.4f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    inference_copy(result.model).save(out)
    card = {
        "name": out.stem,
        "architecture": _ARCHITECTURES.get(args.dataset, _ARTICLE),
        "input": f"{'x'.join(map(str, x_train.shape[1:]))} images standardised per image "
                 "(oipwidgets.preprocessing.to_model_input)",
        "dataset": args.dataset,
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "test_accuracy": round(accuracy, 4),
        "final_train_loss": round(float(result.history["loss"][-1]), 4),
        "training": config.as_dict(),
        "optimizer": "SGD with momentum, exponential learning-rate decay per epoch, L2 on kernels, "
                     "categorical cross-entropy, random shifts of the raw images",
        "command": shlex.join(["oipwidgets", *argv]),
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__},
        "date": _dt.date.today().isoformat(),
    }
    if args.dataset == "planted":
        from .models.planted import class_table

        card["classes"] = class_table()
        card["data"] = (f"generated: oipwidgets.models.planted.make_planted({PLANTED_TRAIN[0]}, seed="
                        f"{PLANTED_TRAIN[1]}) for training, ({PLANTED_TEST[0]}, seed={PLANTED_TEST[1]}) for test")
    card_path(out).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {out} ({out.stat().st_size // 1024} KiB) and {card_path(out)}")
    return 0


def _cmd_evaluate(args: argparse.Namespace, argv: list[str]) -> int:
    from .models import datasets
    from .models.models import DEFAULT_MODELS, load_default_model, load_model
    from .models.training import evaluate

    model = load_default_model(args.model) if args.model in DEFAULT_MODELS else load_model(args.model)
    if (args.dataset or args.model) == "planted" and not args.data:
        from .models.planted import make_planted

        x, y = make_planted(PLANTED_TEST[0], seed=PLANTED_TEST[1])
        where = f"the {len(x)} generated planted test images (seed {PLANTED_TEST[1]})"
    elif args.data:
        dataset = args.dataset or (args.model if args.model in _DATASETS else "mnist")
        _, (x, y) = _load(dataset, args.data)
        where = f"the {len(x)} test images in {args.data}"
    else:
        dataset = args.dataset or (args.model if args.model in _DATASETS else "mnist")
        x, y = datasets.samples(dataset)
        where = f"the {len(x)} {dataset} sample images shipped with oipwidgets"
    accuracy = evaluate(model, x, y)
    print(f"{args.model}: accuracy {accuracy:.4f} on {where}")
    return 0


def _cmd_zoo(args: argparse.Namespace, argv: list[str]) -> int:
    """Compute the OIPs of every map of a layer, write the zoo PNG (and HTML, JSON), report time and dead maps."""
    import time

    t_start = time.perf_counter()
    if args.steps is not None:
        check_int(args.steps, "--steps")
    check_int(args.cols, "--cols")
    if args.epsilon is not None:
        check_float(args.epsilon, "--epsilon")
    check_int(args.seed, "--seed", low=0)
    outs = [writable_path(args.out)] + [writable_path(p) for p in (args.html, args.json) if p]

    from . import __version__
    from .engine.ascent import Progress
    from .engine.engine import OIPEngine
    from .engine.probe import ensure_built, layer_key, layer_names
    from .engine.recipe import recipe_for
    from .models.models import DEFAULT_MODELS, load_default_model, load_model
    from .output.render import COLORMAPS
    from .output.zoo_render import zoo_html, zoo_png_bytes, zoo_size
    from .engine.examples import default_examples

    if args.cmap not in COLORMAPS:
        from matplotlib import colormaps

        if args.cmap not in colormaps:
            raise ValueError(f"unknown colour map {args.cmap!r}; try one of {', '.join(COLORMAPS)}")
    try:
        model = load_default_model(args.model) if args.model in DEFAULT_MODELS else load_model(args.model)
    except OSError as err:  # IsADirectoryError, PermissionError: one clear message, exit 2
        raise ValueError(str(err)) from err
    built = ensure_built(model)
    infos = OIPEngine.layers(built)
    with_maps = layer_listing([i for i in infos if i.kind == "maps"]) or "none"
    name = layer_key(built, args.layer)  # the plain name of a layer inside a nested model: its path
    info = next((i for i in infos if i.name == name), None)
    if info is None and name not in layer_names(built):
        raise ValueError(f"unknown layer {args.layer!r}; layers with maps: {with_maps}")
    if info is None or info.kind != "maps":
        what = f"its output is {info.shape[0]} units" if info is not None else "its output has no maps"
        raise ValueError(
            f"layer {args.layer!r} has no maps ({what}): the zoo needs a conv-like layer with 4-D output "
            f"(height, width, maps); layers with maps: {with_maps}"
        )
    given = {k: getattr(args, k) for k in _RECIPE_FLAGS if getattr(args, k) is not None}  # flags over the recipe
    if given.get("transforms") == "none":
        given["transforms"] = None
    recipe = recipe_for(args.recipe).replace(**given)
    recipe_text = recipe.name() or f"{args.recipe} with " + ", ".join(f"{k}={v!r}" for k, v in given.items())
    engine = OIPEngine(model, name, preprocess=args.preprocess)
    label = f"{args.layer} ({engine.size} maps)"
    bar = {"last": 0.0, "shown": -1, "t0": time.perf_counter()}

    def progress(p: Progress) -> None:
        now = time.perf_counter()
        if p.step < p.total and now - bar["last"] < 0.1:
            return
        frac = min(1.0, p.step / max(p.total, 1))
        filled = int(round(30 * frac))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'-' * (30 - filled)}] {p.step:>{len(str(p.total))}}/{p.total}"
                         f" steps {now - bar['t0']:6.1f} s")
        sys.stderr.flush()
        bar["last"], bar["shown"] = now, p.step

    examples = None if args.no_rescue else default_examples(engine.model)
    if examples is not None:  # a map that a shipped sample fires is re-run with a cure, never reported dead
        import numpy as np

        from .engine.preprocess import images_in_space

        examples = images_in_space(engine.mode, np.asarray(examples)[..., None])  # shipped samples: (N, 28, 28)
    result = engine.run_layer(seed=args.seed, recipe=recipe, callback=progress, examples=examples)
    if bar["shown"] >= 0:
        sys.stderr.write("\n")
        sys.stderr.flush()
    dead = [r.params["map"] for r in result if r.status == "dead"]
    png = zoo_png_bytes(result, cols=args.cols, cmap=args.cmap, contrast=args.contrast)
    written = []
    try:
        for p in outs:
            p.parent.mkdir(parents=True, exist_ok=True)
        outs[0].write_bytes(png)
        width, height = zoo_size(len(result), args.cols)
        written.append(f"{outs[0]} ({width}x{height} px PNG)")
        command = shlex.join(["oipwidgets", *argv])
        if args.html:
            facts = {"model": args.model, "layer": args.layer, "recipe": recipe_text,
                     "strategy": recipe.strategy, "steps": recipe.steps, "seed": args.seed, "epsilon": recipe.epsilon,
                     "param": recipe.param, "transforms": recipe.transforms or "none", "optimizer": recipe.optimizer,
                     "preprocess": args.preprocess, "recipe (JSON)": recipe.to_json(), "command": command,
                     "oipwidgets": __version__}
            zoo_html(result, Path(args.html), cols=args.cols, cmap=args.cmap, contrast=args.contrast, info=facts,
                     png=png)
            written.append(f"{args.html} (self-contained HTML)")
        if args.json:
            record = {"model": args.model, "layer": args.layer, "preprocess": args.preprocess, "seed": args.seed,
                      "recipe": recipe.to_dict(), "recipe_name": recipe.name(), "seconds": round(result.seconds, 3),
                      "dead": dead, "command": command, "oipwidgets": __version__,
                      "maps": [{"map": r.params["map"], "status": r.status, "final_objective": r.final_loss,
                                "steps": r.steps, "converged_at": r.converged_at, "saturated": r.saturated,
                                "cure": r.params.get("cure"), "best_example": r.params.get("best_example")}
                               for r in result]}
            Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            written.append(f"{args.json} (JSON record)")
    except OSError as err:  # read-only place, a file where a directory should be, …
        raise ValueError(f"could not write the zoo: {err}") from err
    wall = time.perf_counter() - t_start
    print(f"{args.model} {args.layer}: {len(result)} OIPs, {recipe.steps} steps ({recipe.strategy}, "
          f"seed {args.seed}) in {result.seconds:.1f} s of ascent; wall time {wall:.1f} s")
    print(f"recipe: {recipe_text}" + ("" if args.preprocess == "standardize" else
                                            f"; preprocess {args.preprocess}: OIPs are RGB in [0, 1]"))
    print(f"dead maps: {len(dead)} of {len(result)}" + (f" ({', '.join(map(str, dead))})" if dead else ""))
    for w in written:
        print(f"wrote {w}")
    return 0


def _cmd_atlas_compute(args: argparse.Namespace, argv: list[str]) -> int:
    """Create (or extend) the atlas at --store and compute what is not done; progress on stderr, summary on stdout."""
    if args.steps is not None:
        check_int(args.steps, "--steps")
    check_int(args.seeds, "--seeds")
    check_int(args.retries, "--retries", low=0)
    if args.block is not None:
        check_int(args.block, "--block")
    from .atlas import Atlas, AtlasTaskError
    from .engine.recipe import recipe_for
    from .models.models import DEFAULT_MODELS, load_default_model, load_model

    try:
        model = load_default_model(args.model) if args.model in DEFAULT_MODELS else load_model(args.model)
    except OSError as err:
        raise ValueError(str(err)) from err
    layers = "conv" if args.layers == "conv" else [name.strip() for name in args.layers.split(",") if name.strip()]
    recipe = recipe_for(args.recipe)
    if args.steps is not None:
        recipe = recipe.replace(steps=args.steps)
    atlas = Atlas.create(args.store, model, layers=layers, units=args.units, recipe=recipe,
                         seeds=tuple(range(args.seeds)), preprocess=args.preprocess, block=args.block)
    print(f"atlas {atlas.url}: {len(atlas.layers)} layers, seeds {', '.join(map(str, atlas.seeds))}, "
          f"{len(atlas.tasks())} tasks to run", flush=True)
    try:
        report = atlas.compute(client=args.scheduler, retries=args.retries, progress="text")
    except KeyboardInterrupt:
        done = sum(d for d, _ in atlas.progress().values())
        total = sum(t for _, t in atlas.progress().values())
        print(f"interrupted: {done}/{total} channels done and kept; run the same command again to finish",
              file=sys.stderr)
        return 130
    except AtlasTaskError as err:
        print(f"oipwidgets atlas compute: {err}", file=sys.stderr)
        return 1
    print(report)
    print(atlas.info())
    return 0


def _cmd_atlas_info(args: argparse.Namespace, argv: list[str]) -> int:
    """Print what the atlas at PATH holds: recipe, preprocess, seeds, model, channels done per layer."""
    from .atlas import Atlas

    print(Atlas.open(args.path).info())
    return 0


def _cmd_atlas_export(args: argparse.Namespace, argv: list[str]) -> int:
    """Write (or bring up to date) the static web site of the atlas at PATH into SITE."""
    from .atlas import Atlas

    print(Atlas.open(args.path).export_site(args.site, cmap=args.colormap, progress=True))
    return 0


def layer_listing(infos) -> str:
    """Layer names for a message, the layers of each nested model after its name: "conv1, conv2; in base:
    base/block_1, base/block_2" (paths, so that each one can be given to --layer)."""
    groups: dict[str, list[str]] = {}
    for info in infos:
        groups.setdefault(getattr(info, "group", ""), []).append(info.name)
    parts = [", ".join(names) if not group else f"in {group}: {', '.join(names)}" for group, names in groups.items()]
    return "; ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oipwidgets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train the article's CNN (or, for --dataset planted, the planted CNN on "
                                         "generated images) and write a .keras model with its card")
    train.add_argument("--dataset", choices=_DATASETS, required=True)
    train.add_argument("--data", metavar="DIR",
                       help="directory of IDX files (default: the usual places; not for the generated planted set)")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", metavar="FILE", required=True, help="the .keras file to write")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                       help="progress display: 0 none, 1 progress bar, 2 one line per epoch")
    train.set_defaults(run=_cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy of a model on a test set or the shipped samples")
    ev.add_argument("--model", default="mnist", help="'mnist', 'fashion', 'planted' or a .keras/.h5 file")
    ev.add_argument("--dataset", choices=_DATASETS, help="which data set the model classifies")
    ev.add_argument("--data", metavar="DIR", help="directory of IDX files; default: the shipped samples")
    ev.set_defaults(run=_cmd_evaluate)

    zoo = sub.add_parser("zoo", help="the OIPs of every map of a layer, tiled and labelled, as PNG (and HTML)")
    zoo.add_argument("--model", default="mnist",
                     help="'mnist', 'fashion', 'planted' or a .keras/.h5 file (default: mnist)")
    zoo.add_argument("--layer", default="Conv2D_3", help="a layer with maps (default: Conv2D_3)")
    zoo.add_argument("--no-rescue", action="store_true",
                     help="report maps dead as the article's test finds them (default: a map that one of the shipped "
                          "samples fires is re-run with a ReLU warm-up or a data start)")
    zoo.add_argument("--recipe", choices=_RECIPES, default="article",
                     help="how the image climbs: article (the article's: pixels, RMS step 0.01, 400 steps) or "
                          "readable (Fourier image, standard transforms, Adam 0.05, 256 steps, blur, ReLU warm-up); "
                          "the flags below override its settings (default: article)")
    zoo.add_argument("--preprocess", choices=_PREPROCESS, default="standardize",
                     help="the model's input convention: standardize (the article's per-image standardisation), "
                          "unit ([0, 1]), byte ([0, 255]), tf ([-1, 1]), caffe, torch; with any but standardize the "
                          "OIPs are RGB in [0, 1] (default: standardize)")
    zoo.add_argument("--steps", type=int, help="ascent steps per map (default: the recipe's; article: 400)")
    zoo.add_argument("--strategy", choices=("simple", "multiscale", "precursor"),
                     help="start strategy (default: the recipe's; article: simple)")
    zoo.add_argument("--seed", type=int, default=0, help="seed of the start noise (default: 0)")
    zoo.add_argument("--epsilon", type=float,
                     help="step size, Adam's learning rate for adam (default: the recipe's; article: 0.01)")
    zoo.add_argument("--param", choices=("pixel", "fourier", "maco"),
                     help="how the image climbs: pixel (the article's), fourier or maco (default: the recipe's)")
    zoo.add_argument("--transforms", choices=("none", "standard"),
                     help="robustness transforms at each step (default: the recipe's; article: none)")
    zoo.add_argument("--optimizer", choices=("rms", "adam"),
                     help="rms (the article's step) or adam (default: the recipe's)")
    zoo.add_argument("--cols", type=int, default=8, help="tiles per row (default: 8)")
    zoo.add_argument("--cmap", default="viridis", help="matplotlib colour map (default: viridis)")
    zoo.add_argument("--contrast", action="store_true", help="contrast-enhanced tiles instead of plain ones")
    zoo.add_argument("--out", metavar="FILE", default="zoo.png", help="the PNG to write (default: zoo.png)")
    zoo.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page")
    zoo.add_argument("--json", metavar="FILE",
                     help="also write a JSON record: model, layer, preprocess, the recipe (its dict) and each map's "
                          "status and final objective")
    zoo.set_defaults(run=_cmd_zoo)

    atlas = sub.add_parser("atlas", help="the OIP of every channel of a model's layers, computed on Dask and kept "
                                         "in a Zarr store (needs the 'atlas' extra)")
    atlas_sub = atlas.add_subparsers(dest="atlas_command", required=True, metavar="ACTION")
    compute = atlas_sub.add_parser("compute", help="make (or finish, or extend with layers and seeds) an atlas")
    compute.add_argument("model", metavar="MODEL", help="'mnist', 'fashion', 'planted' or a .keras/.h5 file")
    compute.add_argument("--layers", default="conv",
                         help="'conv' (every layer with maps) or layer names separated by commas (default: conv)")
    compute.add_argument("--units", action="store_true", help="with --layers conv: also the layers of units")
    compute.add_argument("--store", metavar="PATH", required=True,
                         help="the atlas: a folder (e.g. my.atlas.zarr) or an fsspec URL")
    compute.add_argument("--recipe", choices=_RECIPES, default="readable",
                         help="how each OIP is made (default: readable)")
    compute.add_argument("--steps", type=int, help="ascent steps per OIP (default: the recipe's)")
    compute.add_argument("--preprocess", choices=_PREPROCESS, default="standardize",
                         help="the model's input convention, as for zoo (default: standardize)")
    compute.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per channel (default: 1)")
    compute.add_argument("--block", type=int, help="channels per task (default: what fits a worker's memory, <= 64)")
    compute.add_argument("--scheduler", metavar="ADDRESS",
                         help="a Dask scheduler, e.g. tcp://scheduler:8786 (default: a local cluster, one worker "
                              "per core, shut down afterwards)")
    compute.add_argument("--retries", type=int, default=2, help="re-runs of a task that raised (default: 2)")
    compute.set_defaults(run=_cmd_atlas_compute)
    info = atlas_sub.add_parser("info", help="layers, channels done per layer, seeds and recipe of an atlas")
    info.add_argument("path", metavar="PATH", help="the atlas folder or URL")
    info.set_defaults(run=_cmd_atlas_info)
    export = atlas_sub.add_parser("export", help="a static web site of an atlas (HTML and PNG files, no server, "
                                                 "nothing fetched from elsewhere); again later adds the units "
                                                 "computed since")
    export.add_argument("path", metavar="PATH", help="the atlas folder or URL")
    export.add_argument("site", metavar="SITE", help="the site's folder (new, empty, or an earlier export)")
    export.add_argument("--colormap", default="viridis", choices=COLORMAPS,
                        help="colour map of grey OIPs (default: viridis)")
    export.set_defaults(run=_cmd_atlas_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args, argv)
    except (FileNotFoundError, ValueError) as err:
        print(f"oipwidgets {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
