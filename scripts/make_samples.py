"""Write oipwidgets/data/samples_<name>.npz: the first 10 training images of each class (maintainers' tool).

    python scripts/make_samples.py mnist ../shared/data/mnist
    python scripts/make_samples.py fashion /usr/share/datasets/fashion-mnist
"""

import sys
from pathlib import Path

import numpy as np

from oipwidgets.models import datasets


def first_per_class(labels: np.ndarray, per_class: int = 10) -> np.ndarray:
    """Indices of the first ``per_class`` examples of every class, grouped by class."""
    return np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)])


def main(name: str, data_dir: str) -> None:
    loader = datasets.load_mnist if name == "mnist" else datasets.load_fashion_mnist
    (x, y), _ = loader(data_dir)
    idx = first_per_class(y)
    out = Path(__file__).resolve().parents[1] / "oipwidgets" / "data" / f"samples_{name}.npz"
    np.savez_compressed(out, images=x[idx], labels=y[idx], train_indices=idx.astype(np.int32))
    print(f"wrote {out}: {len(idx)} images")


if __name__ == "__main__":
    main(*sys.argv[1:3])
