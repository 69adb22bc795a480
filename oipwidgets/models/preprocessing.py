"""Turning raw images into what the default models take: per-image standardised float32 tensors.

The article's CNN was trained on images standardised one by one (zero mean, unit standard deviation, as
``tf.image.per_image_standardization`` does), and the OIP ascent re-standardises after every step; both use the
formula here so that a raw MNIST digit and an OIP live on the same scale.
"""

from __future__ import annotations

import numpy as np

__all__ = ["standardize", "to_model_input"]


def standardize(images: np.ndarray) -> np.ndarray:
    """Standardise each image to mean 0 and standard deviation 1 over its pixels and channels.

    Same formula as ``tf.image.per_image_standardization``: ``(x - mean) / max(std, 1/sqrt(N))`` with N the
    number of values of one image, so a constant image maps to zeros instead of dividing by zero.

    images: array of shape (H, W, C) or (..., H, W, C), any numeric dtype.
    Returns float32 of the same shape.
    """
    x = np.asarray(images)
    if x.ndim < 3:
        raise ValueError(
            f"standardize needs images of shape (H, W, C) or (N, H, W, C); got shape {x.shape}. "
            "Add a channel axis for grey images, e.g. with to_model_input()."
        )
    x = x.astype(np.float64)
    axes = (-3, -2, -1)
    n = x.shape[-3] * x.shape[-2] * x.shape[-1]
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    return ((x - mean) / np.maximum(std, 1.0 / np.sqrt(n))).astype(np.float32)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Make a batch the default models accept: add the channel axis to grey images and standardise.

    images: uint8 or float, shape (H, W), (N, H, W) for grey images or (N, H, W, C) already with channels.
    Returns float32 of shape (N, H, W, C).
    """
    x = np.asarray(images)
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[..., None]
    elif x.ndim != 4:
        raise ValueError(
            f"to_model_input takes (H, W), (N, H, W) or (N, H, W, C) images; got shape {x.shape}"
        )
    return standardize(x)
