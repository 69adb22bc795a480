"""Load MNIST / Fashion-MNIST from local IDX files, with a keras download fallback.

Places searched, in order (the first that works wins):

1. the ``path`` argument (a directory; if given, it must hold the files),
2. the directory named by ``$OIPWIDGETS_MNIST_DIR`` / ``$OIPWIDGETS_FASHION_MNIST_DIR``,
3. Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist`` (Debian package
   ``dataset-fashion-mnist``, which ships the four ``*.gz`` files),
4. ``keras.datasets.<name>.load_data()`` (downloads; needs internet).

If none works, one ``DatasetNotFoundError`` lists every place and why it failed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Iterable, Mapping, Optional, Union

import numpy as np

from .idx import read_idx

__all__ = [
    "CLASS_NAMES",
    "DatasetError",
    "DatasetNotFoundError",
    "IDX_FILE_STEMS",
    "find_idx_dir",
    "idx_files_in",
    "load_fashion_mnist",
    "load_idx_dir",
    "load_mnist",
    "samples",
    "validate_split",
]

PathLike = Union[str, "os.PathLike[str]"]
Split = tuple[np.ndarray, np.ndarray]

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(i) for i in range(10)],
    "fashion": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}

#: Role -> file name (without the optional ``.gz``) of the four IDX files.
IDX_FILE_STEMS: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: Where Debian's ``dataset-fashion-mnist`` package installs the (gzipped) files.
#: Module-level so tests can monkeypatch it.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


class DatasetError(ValueError):
    """Dataset files were found but their contents are inconsistent or invalid."""


class DatasetNotFoundError(FileNotFoundError):
    """No place held the dataset; the message lists every place tried and why."""


@dataclass(frozen=True)
class _DatasetSpec:
    """Per-dataset search settings."""

    title: str  # for messages, e.g. "Fashion-MNIST"
    env_var: str
    keras_module: str  # keras.datasets.<keras_module>
    loader_name: str  # public function name, for messages
    debian_package: Optional[str] = None


_SPECS: dict[str, _DatasetSpec] = {
    "mnist": _DatasetSpec("MNIST", "OIPWIDGETS_MNIST_DIR", "mnist", "load_mnist"),
    "fashion_mnist": _DatasetSpec(
        "Fashion-MNIST",
        "OIPWIDGETS_FASHION_MNIST_DIR",
        "fashion_mnist",
        "load_fashion_mnist",
        debian_package="dataset-fashion-mnist",
    ),
}


# --------------------------------------------------------------------------- search


def idx_files_in(directory: PathLike) -> tuple[dict[str, Path], list[str]]:
    """Find the four IDX files in ``directory``, each raw or ``.gz`` (raw preferred).

    Returns ``(found, missing)``: role -> path for the files present, and the
    ``name[.gz]`` of each absent file. Does not read the files.
    """
    directory = Path(directory)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, stem in IDX_FILE_STEMS.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[role] = hit
    return found, missing


def _dir_problem(directory: Path) -> Optional[str]:
    """Why ``directory`` cannot be used (None if it holds all four files)."""
    if not directory.exists():
        return "directory does not exist"
    if not directory.is_dir():
        return "not a directory"
    _, missing = idx_files_in(directory)
    if missing:
        return "missing " + ", ".join(missing)
    return None


def find_idx_dir(
    name: str,
    path: Optional[PathLike] = None,
    env_var: Optional[str] = None,
    extra_dirs: Iterable[PathLike] = (),
    environ: Optional[Mapping[str, str]] = None,
) -> tuple[Optional[Path], list[str]]:
    """Return the first directory holding all four IDX files, plus notes on each try.

    Looks at ``path``, then ``$env_var`` (read from ``environ``, default
    ``os.environ``), then ``extra_dirs`` in order. Returns ``(directory or None,
    tried)`` where ``tried`` has one ``"<place>: <why it failed>"`` line per place
    that did not work. An explicit ``path`` lacking the files raises
    ``DatasetNotFoundError`` at once (no silent fallback). ``name`` (e.g.
    ``"MNIST"``) is only used in messages.
    """
    environ = os.environ if environ is None else environ
    tried: list[str] = []

    if path is not None:
        directory = Path(path)
        problem = _dir_problem(directory)
        if problem is not None:
            raise DatasetNotFoundError(
                f"{name}: path={os.fspath(path)!r} cannot be used: {problem}. It must be "
                f"a directory holding {', '.join(s + '[.gz]' for s in IDX_FILE_STEMS.values())}."
            )
        return directory, tried
    tried.append("path argument: not given")

    if env_var is not None:
        value = environ.get(env_var)
        if not value:
            tried.append(f"${env_var}: not set")
        else:
            directory = Path(value)
            problem = _dir_problem(directory)
            if problem is None:
                return directory, tried
            tried.append(f"${env_var}={value}: {problem}")

    for extra in extra_dirs:
        directory = Path(extra)
        problem = _dir_problem(directory)
        if problem is None:
            return directory, tried
        tried.append(f"{directory}: {problem}")

    return None, tried


# ----------------------------------------------------------------------- validation


def validate_split(
    images: np.ndarray,
    labels: np.ndarray,
    images_name: str = "images",
    labels_name: str = "labels",
) -> Split:
    """Check one split: images uint8 (N, 28, 28), labels uint8 (N,) in 0..9.

    ``images_name``/``labels_name`` (normally file paths) are used in the
    ``DatasetError`` messages. Returns ``(images, labels)`` unchanged.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(
            f"{images_name}: images must be uint8 of shape (N, 28, 28), got "
            f"{images.dtype} of shape {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"{labels_name}: labels must be uint8 of shape (N,), got "
            f"{labels.dtype} of shape {labels.shape}"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DatasetError(
            f"{labels_name}: labels must be 0..{NUM_CLASSES - 1}, found "
            f"{int(labels.max())}"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"image/label count mismatch: {images_name} has {len(images)} images "
            f"but {labels_name} has {len(labels)} labels"
        )
    return images, labels


def load_idx_dir(directory: PathLike) -> tuple[Split, Split]:
    """Read and validate the four IDX files in ``directory``.

    Returns ``(x_train, y_train), (x_test, y_test)``; x uint8 (N, 28, 28), y uint8 (N,).
    Raises ``DatasetNotFoundError`` if files are missing, ``IDXError`` /
    ``DatasetError`` if they are malformed or inconsistent.
    """
    found, missing = idx_files_in(directory)
    if missing:
        raise DatasetNotFoundError(f"{os.fspath(directory)}: missing {', '.join(missing)}")
    splits = []
    for part in ("train", "test"):
        img_path, lbl_path = found[f"{part}_images"], found[f"{part}_labels"]
        splits.append(
            validate_split(read_idx(img_path), read_idx(lbl_path), str(img_path), str(lbl_path))
        )
    return splits[0], splits[1]


# --------------------------------------------------------------------------- loaders


def _keras_loader(keras_module: str) -> tuple[Split, Split]:
    """Call ``keras.datasets.<keras_module>.load_data()`` (downloads if not cached).

    Module-level so tests can monkeypatch it and never touch the network.
    """
    import importlib

    try:
        datasets = importlib.import_module("keras.datasets")
    except ImportError:
        datasets = importlib.import_module("tensorflow.keras.datasets")
    return getattr(datasets, keras_module).load_data()


def _extra_dirs(key: str) -> list[Path]:
    """System directories to search for dataset ``key`` (read at call time)."""
    return [DEBIAN_FASHION_MNIST_DIR] if key == "fashion_mnist" else []


def _how_to_get(spec: _DatasetSpec) -> list[str]:
    """Instructions for obtaining the data, one per line."""
    files = ", ".join(f"{s}.gz" for s in IDX_FILE_STEMS.values())
    lines = [
        f"put {files} in a directory DIR, then call {spec.loader_name}(path=DIR) "
        f"or set {spec.env_var}=DIR",
    ]
    if spec.debian_package:
        lines.append(
            f"on Debian/Ubuntu: sudo apt-get install {spec.debian_package} "
            f"(installs into {DEBIAN_FASHION_MNIST_DIR})"
        )
    lines.append(
        f"connect to the internet so keras.datasets.{spec.keras_module}.load_data() "
        f"can download it (cached in ~/.keras/datasets)"
    )
    return lines


def _load(key: str, path: Optional[PathLike]) -> tuple[Split, Split]:
    """Search the places described in the module docstring for dataset ``key``."""
    spec = _SPECS[key]
    directory, tried = find_idx_dir(spec.title, path, spec.env_var, _extra_dirs(key))
    if directory is not None:
        return load_idx_dir(directory)

    where = f"keras.datasets.{spec.keras_module}.load_data()"
    try:
        (x_train, y_train), (x_test, y_test) = _keras_loader(spec.keras_module)
    except Exception as exc:  # network errors, missing keras, ... all mean "not here"
        tried.append(f"{where}: failed ({type(exc).__name__}: {exc})")
        message = "\n".join(
            [f"{spec.title} not found. Looked in:"]
            + [f"  {i}. {t}" for i, t in enumerate(tried, 1)]
            + ["To get the data, do one of:"]
            + [f"  - {line}" for line in _how_to_get(spec)]
        )
        raise DatasetNotFoundError(message) from exc
    return (
        validate_split(x_train, y_train, f"{where} x_train", f"{where} y_train"),
        validate_split(x_test, y_test, f"{where} x_test", f"{where} y_test"),
    )


def load_mnist(path: Optional[PathLike] = None) -> tuple[Split, Split]:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``.

    x uint8 (N, 28, 28), y uint8 (N,) with digits 0..9 (60000 train, 10000 test
    for the real set). ``path``: a directory with the four IDX files (raw or
    ``.gz``); otherwise ``$OIPWIDGETS_MNIST_DIR``, then a keras download.
    """
    return _load("mnist", path)


def load_fashion_mnist(path: Optional[PathLike] = None) -> tuple[Split, Split]:
    """Load Fashion-MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Same shapes/dtypes as ``load_mnist``; label meanings in
    ``CLASS_NAMES["fashion"]``. Searches ``path``, ``$OIPWIDGETS_FASHION_MNIST_DIR``,
    ``/usr/share/datasets/fashion-mnist`` (Debian), then a keras download.
    """
    return _load("fashion_mnist", path)


# --------------------------------------------------------------------------- samples


def _sample_file(name: str) -> Union[Traversable, Path]:
    """Location of the shipped sample file ``oipwidgets/data/samples_<name>.npz``.

    Module-level so tests can point it at a temporary file.
    """
    return resources.files("oipwidgets") / "data" / f"samples_{name}.npz"


def samples(name: str = "mnist") -> Split:
    """Return the small shipped sample set ``(images, labels)`` for ``name``.

    images uint8 (N, 28, 28), labels uint8 (N,). Works offline: the data ship
    inside the package. ``name`` is ``"mnist"`` or ``"fashion"``.
    """
    if name not in CLASS_NAMES:
        raise ValueError(
            f"unknown sample set {name!r}; valid names: {', '.join(map(repr, CLASS_NAMES))}"
        )
    source = _sample_file(name)
    with source.open("rb") as fh, np.load(fh) as npz:
        missing = [k for k in ("images", "labels") if k not in npz.files]
        if missing:
            raise DatasetError(
                f"{source}: missing key(s) {', '.join(missing)}; has {', '.join(npz.files)}"
            )
        images, labels = npz["images"], npz["labels"]
    return validate_split(images, labels, f"{source}[images]", f"{source}[labels]")
