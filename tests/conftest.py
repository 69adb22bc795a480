"""Shared fixtures: small synthetic image sets made here, never read from ../shared."""

import numpy as np
import pytest


def bar_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 28×28 images of two easy classes: label 0 a horizontal bar, label 1 a vertical bar, on noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    y = (np.arange(n) % 2).astype(np.uint8)
    for i in range(n):
        pos = rng.integers(6, 22)
        if y[i] == 0:
            x[i, pos - 2 : pos + 2, 4:24] = 255
        else:
            x[i, 4:24, pos - 2 : pos + 2] = 255
    return x, y


@pytest.fixture
def bars():
    return bar_images(256)


@pytest.fixture(scope="module")
def mnist():
    """The shipped MNIST CNN (a fresh copy per test module)."""
    import oipwidgets as ow

    return ow.load_default_model("mnist")


@pytest.fixture(scope="module")
def engine(mnist):
    """An engine on the MNIST CNN's Conv2D_3 (64 maps)."""
    import oipwidgets as ow

    return ow.OIPEngine(mnist, "Conv2D_3")
