"""The ``oipwidgets`` command line: headless jobs without a notebook.

``oipwidgets train``    trains the article's CNN and writes a model file with its card (rebuilds the defaults);
``oipwidgets evaluate`` reports a model's accuracy on a test set or on the shipped samples.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shlex
import sys
from pathlib import Path

__all__ = ["main"]

_DATASETS = ("mnist", "fashion")


def _load(dataset: str, data: str | None):
    from . import datasets

    loader = datasets.load_mnist if dataset == "mnist" else datasets.load_fashion_mnist
    return loader(data)


def card_path(model_path: Path) -> Path:
    """Where the card of a model file lives: ``mnist.keras`` → ``mnist.card.json``."""
    return model_path.with_name(model_path.stem + ".card.json")


def _cmd_train(args: argparse.Namespace, argv: list[str]) -> int:
    import keras
    import tensorflow as tf

    from .training import TrainConfig, evaluate, inference_copy, train_cnn

    out = Path(args.out)
    if out.suffix != ".keras":
        raise SystemExit(f"--out must name a .keras file; got {args.out!r}")
    if args.epochs < 1:
        raise SystemExit(f"--epochs must be at least 1; got {args.epochs}")
    (x_train, y_train), (x_test, y_test) = _load(args.dataset, args.data)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    print(f"Training the article's CNN on {len(x_train)} {args.dataset} images for {args.epochs} epochs "
          f"(seed {args.seed})", flush=True)
    result = train_cnn(x_train, y_train, config, verbose=args.verbose)
    accuracy = evaluate(result.model, x_test, y_test)
    print(f"Test accuracy on {len(x_test)} images: {accuracy:.4f}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    inference_copy(result.model).save(out)
    card = {
        "name": out.stem,
        "architecture": "article CNN: Conv2D_1(32) MaxPool Conv2D_2(64) MaxPool Conv2D_3(64) Dense_1(70) Dense_2(10)",
        "input": "28x28x1 images standardised per image (oipwidgets.preprocessing.to_model_input)",
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
    card_path(out).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"Wrote {out} ({out.stat().st_size // 1024} KiB) and {card_path(out)}")
    return 0


def _cmd_evaluate(args: argparse.Namespace, argv: list[str]) -> int:
    from . import datasets
    from .models import DEFAULT_MODELS, load_default_model, load_model
    from .training import evaluate

    model = load_default_model(args.model) if args.model in DEFAULT_MODELS else load_model(args.model)
    if args.data:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oipwidgets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train the article's CNN and write a .keras model with its card")
    train.add_argument("--dataset", choices=_DATASETS, required=True)
    train.add_argument("--data", metavar="DIR", help="directory of IDX files (default: the usual places)")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", metavar="FILE", required=True, help="the .keras file to write")
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                       help="progress display: 0 none, 1 progress bar, 2 one line per epoch")
    train.set_defaults(run=_cmd_train)

    ev = sub.add_parser("evaluate", help="accuracy of a model on a test set or the shipped samples")
    ev.add_argument("--model", default="mnist", help="'mnist', 'fashion' or a .keras/.h5 file")
    ev.add_argument("--dataset", choices=_DATASETS, help="which data set the model classifies")
    ev.add_argument("--data", metavar="DIR", help="directory of IDX files; default: the shipped samples")
    ev.set_defaults(run=_cmd_evaluate)
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
