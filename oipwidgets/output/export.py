"""Exports of an OIPResult: the final OIP as PNG, the snapshot grid as PNG, the emerging pattern as animated GIF.

(The result itself goes to ``.npz`` with ``OIPResult.to_npz``.) Pictures use matplotlib colour maps and Pillow;
each function returns the path written. An OIP with a ``value_range`` (RGB in [0, 1]) is drawn as it is in that
range (its contrast-enhanced rendering is still stretched).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .render import as_rgb
from ..engine.result import OIPResult
from ..engine.validation import check_int

__all__ = ["save_png", "save_grid_png", "save_gif", "writable_path"]


def writable_path(name) -> Path:
    """``name`` as a Path, checked before any work: not a directory, in a directory that exists (missing parents
    are made) and can be written to; else a ValueError naming the problem."""
    path = Path(name)
    if path.is_dir():
        raise ValueError(f"{str(name)!r} is a directory; give a file name to write")
    parent = path.parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ValueError(f"cannot write {str(name)!r}: {str(existing)!r} is not a writable directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"cannot write {str(name)!r}: the file is read-only")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def save_png(result: OIPResult, path, *, cmap: str = "viridis", contrast: bool = False, scale: int = 8) -> Path:
    """The final OIP as a PNG, each image pixel as ``scale``×``scale`` screen pixels."""
    from PIL import Image

    path = writable_path(path)
    scale = check_int(scale, "scale (screen pixels per image pixel)")
    Image.fromarray(_upscale(as_rgb(result.image, cmap, contrast, result.value_range), scale)).save(path, format="PNG")
    return path


def save_grid_png(result: OIPResult, path, *, cmap: str = "viridis", dpi: int = 100) -> Path:
    """The start image and the snapshots, plain (top row) and contrast-enhanced (bottom row), labelled, as PNG."""
    from matplotlib.figure import Figure

    images = [result.start, *result.snapshots]
    titles = ["start"] + [f"step {s}\nloss {v:.3g}" for s, v in zip(result.snapshot_steps, result.snapshot_losses)]
    n = len(images)
    fig = Figure(figsize=(1.3 * n, 3.0), dpi=dpi)
    axes = fig.subplots(2, n, squeeze=False)
    for k, (img, title) in enumerate(zip(images, titles)):
        for row, contrast in enumerate((False, True)):
            ax = axes[row, k]
            ax.imshow(as_rgb(img, cmap, contrast, result.value_range), interpolation="nearest")
            ax.set_axis_off()
        axes[0, k].set_title(title, fontsize=7)
    where = result.params.get("layer"), result.params.get("map")
    fig.suptitle(f"{where[0]} map {where[1]}: {result.status}", fontsize=9)
    path = writable_path(path)
    fig.savefig(path, format="png")
    return path


def save_gif(result: OIPResult, path, *, cmap: str = "viridis", scale: int = 6, frame_ms: int = 400) -> Path:
    """The emerging pattern: start image then each snapshot as frames of an endlessly looping GIF."""
    from PIL import Image

    frames = [Image.fromarray(_upscale(as_rgb(img, cmap, value_range=result.value_range), int(scale)))
              for img in [result.start, *result.snapshots]]
    path = writable_path(path)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=int(frame_ms), loop=0)
    return path
