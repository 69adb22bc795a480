"""Where an atlas's dataset examples come from: an array, a ``tf.data.Dataset`` or a folder of image files, read as
batches of raw images at the model's input size, each image named by its id (its position in the set).

``image_source(images, (H, W, C))`` gives an ``ImageSource``; ``source.batches(batch_size)`` yields ``(first id,
raw batch)`` with the raw batch (b, H, W, C) as the data holds it (uint8, or float) after two adaptations, both
only when needed: the size (``keras.ops.image.resize(..., crop_to_aspect_ratio=True)``: the middle of the image at
the model's aspect ratio, scaled) and the channels (grey → RGB repeated, RGB → grey by luminance). Memory stays at a
batch: an array is sliced, a Dataset and a folder are streamed (a folder through
``keras.utils.image_dataset_from_directory(labels=None, shuffle=False, crop_to_aspect_ratio=True)``: ids are
positions in its ``file_paths``, the files found under the folder in sorted order).

Raw values: integers are 0..255; floats are 0..255 when the first batch holds a value above 1, else 0..1
(``source.scale``: 255 or 1, known after the first batch). ``in_space`` brings a raw batch where the engine's images
live (as ``widgets.recipes.examples_in_space``): per-image standardised for the article's preprocessing (of the raw
values), else RGB in [0, 1] (raw / scale) in the input mode's range. ``thumbnails`` makes the small uint8 pictures
the store keeps.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["ImageSource", "image_source", "in_space", "thumbnails", "thumbnail_shape", "THUMBNAIL_SIDE"]

#: the longest side of a stored thumbnail, in pixels (smaller images are kept at their size)
THUMBNAIL_SIDE = 64


class ImageSource:
    """A set of images read in batches at the model's input size (see the module doc).

    kind: "array", "dataset" or "folder"; count: the number of images (None for a Dataset of unknown length);
    scale: 255 or 1, what the raw values are divided by for RGB in [0, 1] (None until the first batch of floats);
    input_shape: (H, W, C) of the batches.
    """

    def __init__(self, kind: str, input_shape: tuple, count: int | None, describe: dict, scale: float | None = None,
                 array=None, dataset=None):
        self.kind, self.count, self.scale = kind, count, scale
        self.input_shape = tuple(int(v) for v in input_shape)
        self._describe, self._array, self._dataset = describe, array, dataset

    def describe(self) -> dict:
        """What the store records of the source: kind, images, the data's own shape and dtype or the folder."""
        return {"kind": self.kind, "images": self.count, **self._describe}

    def batches(self, batch_size: int):
        """Yield ``(first id, raw images (b, H, W, C))``, in order, every image once."""
        if self._array is not None:
            for lo in range(0, self.count, batch_size):
                yield lo, self._adapt(self._array[lo: lo + batch_size])
            return
        lo = 0
        for batch in self._dataset_batches(batch_size):
            if len(batch):
                yield lo, self._adapt(batch)
                lo += len(batch)

    def _dataset_batches(self, batch_size: int):
        """The Dataset's images in batches of at most ``batch_size``: single images (H, W, C) or (H, W) are resized
        (when their size differs) and batched; batches (B, H, W, C) or grey (B, H, W) are cut to ``batch_size``."""
        import keras
        import tensorflow as tf

        ds, spec = self._dataset, self._dataset.element_spec
        if isinstance(spec, (tuple, list)):  # (image, label, ...): the images
            ds, spec = ds.map(lambda *parts: parts[0]), spec[0]
        if isinstance(spec, dict) or not hasattr(spec, "shape"):
            raise ValueError("the Dataset must yield images, batches of images or (image, label) pairs; map it to "
                             "images first (ds.map(lambda d: d['image']))")
        if spec.dtype.is_integer and self.scale is None:
            self.scale = 255.0
        shape = tuple(spec.shape)
        single = _single_images(spec)
        if not single and len(shape) not in (3, 4):
            raise ValueError(f"a Dataset of images must yield (H, W, C) images or (B, H, W, C) batches; its elements "
                             f"have shape {shape}")
        if single:
            h, w = self.input_shape[:2]
            if len(shape) == 2:
                ds = ds.map(lambda im: im[..., None])
            if tuple(shape[:2]) != (h, w):  # any size, one by one: the middle at the model's aspect ratio, scaled
                ds = ds.map(lambda im: keras.ops.image.resize(tf.cast(im, tf.float32), (h, w),
                                                              crop_to_aspect_ratio=True, antialias=True))
            ds = ds.batch(batch_size)
        for batch in ds.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            batch = np.asarray(batch)
            for lo in range(0, len(batch), batch_size):  # batches larger than batch_size are cut
                yield batch[lo: lo + batch_size]

    def _adapt(self, batch) -> np.ndarray:
        """A raw batch at the model's size and channels (the dtype kept when nothing changes; float32 otherwise)."""
        x = np.asarray(batch)
        h, w, c = self.input_shape
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4:
            raise ValueError(f"images must be (N, H, W) or (N, H, W, C); got a batch of shape {x.shape}")
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise ValueError(f"images must be numeric; got dtype {x.dtype}")
        if self.scale is None:
            big = np.issubdtype(x.dtype, np.integer) or (x.size and float(np.nanmax(x)) > 1.0)
            self.scale = 255.0 if big else 1.0
        if x.shape[-1] != c:
            x = _channels(x, c)
        if x.shape[1:3] != (h, w):
            import keras

            x = np.asarray(keras.ops.image.resize(x.astype(np.float32), (h, w), crop_to_aspect_ratio=True,
                                                  antialias=True), np.float32)
        return x


def _single_images(spec) -> bool:
    """Whether a Dataset's elements (``element_spec``; of (image, label) pairs the first) are single images (H, W)
    or (H, W, C) with C in 1, 3, 4, rather than batches (B, H, W, C) or grey batches (B, H, W)."""
    if isinstance(spec, (tuple, list)):
        spec = spec[0] if spec else None
    shape = tuple(getattr(spec, "shape", ()))
    return len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 3, 4))


def _channels(x: np.ndarray, c: int) -> np.ndarray:
    have = x.shape[-1]
    if have == 1 and c in (3, 4):
        return np.repeat(x, c, axis=-1)
    if have in (3, 4) and c == 1:
        rgb = x[..., :3].astype(np.float32)
        return (rgb @ np.array([0.2989, 0.5870, 0.1140], np.float32))[..., None]
    if have == 4 and c == 3:
        return x[..., :3]
    raise ValueError(f"the images have {have} channels and the model takes {c}; give images with {c} channel(s)")


def image_source(images, input_shape: tuple) -> ImageSource:
    """An ``ImageSource`` for ``images``: an array (N, H, W) or (N, H, W, C) (uint8 0..255 or floats), a
    ``tf.data.Dataset`` of images or batches (or of (image, label) pairs), or the path of a folder of image files
    (.png, .jpg, .jpeg, .bmp, .gif; searched below it too). ``input_shape``: the model's (H, W, C)."""
    shape = tuple(int(v) for v in input_shape)
    if isinstance(images, (str, os.PathLike)):
        return _folder(os.fspath(images), shape)
    try:
        import tensorflow as tf

        if isinstance(images, tf.data.Dataset):
            n = int(images.cardinality())  # elements: images when they are single images, else batches
            return ImageSource("dataset", shape, n if n >= 0 and _single_images(images.element_spec) else None,
                               {"element": str(images.element_spec)[:200]}, dataset=images)
    except ImportError:  # pragma: no cover - TensorFlow is a dependency
        pass
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], (str, os.PathLike)):
        raise TypeError("give a folder of image files as one path, not a list of paths")
    arr = images if isinstance(images, np.ndarray) else np.asarray(images)
    if arr.ndim not in (3, 4):
        raise ValueError(f"images must be an array (N, H, W) or (N, H, W, C), a tf.data.Dataset or a folder of image "
                         f"files; got an array of shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("the image set is empty (0 images): give at least one image")
    return ImageSource("array", shape, int(arr.shape[0]), {"shape": list(arr.shape), "dtype": str(arr.dtype)},
                       array=arr)


def _folder(path: str, shape: tuple) -> ImageSource:
    import keras

    if not os.path.isdir(path):
        raise ValueError(f"images {path!r} is not a folder; give an array, a tf.data.Dataset or a folder of image "
                         "files (.png, .jpg, .jpeg, .bmp, .gif)")
    h, w, c = shape
    modes = {1: "grayscale", 3: "rgb", 4: "rgba"}
    if c not in modes:
        raise ValueError(f"image files can be read for models with 1, 3 or 4 channels; this one takes {c}")
    ds = keras.utils.image_dataset_from_directory(path, labels=None, image_size=(h, w), crop_to_aspect_ratio=True,
                                                  shuffle=False, batch_size=None, color_mode=modes[c], verbose=False)
    files = list(ds.file_paths)
    return ImageSource("folder", shape, len(files), {"folder": os.path.abspath(path), "first_files": files[:3]},
                       scale=255.0, dataset=ds)


def in_space(mode, raw: np.ndarray, scale: float) -> np.ndarray:
    """A raw batch (b, H, W, C) in the image space of an engine with input mode ``mode``, its raw values divided by
    ``scale`` for RGB in [0, 1] (``engine.preprocess.images_in_space``). float32."""
    from ..engine.preprocess import images_in_space

    return images_in_space(mode, raw, scale)


def thumbnail_shape(input_shape: tuple, side: int = THUMBNAIL_SIDE) -> tuple[int, int, int]:
    """(th, tw, tc) of the thumbnails of (H, W, C) images: the longest side at most ``side`` pixels, the aspect
    ratio kept; one channel for grey images, three for colour (the first three of four)."""
    h, w, c = (int(v) for v in input_shape)
    f = min(1.0, side / max(h, w))
    return max(1, round(h * f)), max(1, round(w * f)), 1 if c == 1 else 3


def thumbnails(raw: np.ndarray, scale: float, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """uint8 thumbnails (b, th, tw, tc) of a raw batch (b, H, W, C): values raw / ``scale`` × 255, area-averaged
    down to ``thumbnail_shape``. Images that are already small are only converted."""
    x = np.asarray(raw)
    th, tw, tc = thumbnail_shape(x.shape[1:], side)
    if x.shape[-1] != tc:
        x = x[..., :3] if x.shape[-1] >= 3 else x.mean(axis=-1, keepdims=True)
    if x.dtype == np.uint8 and scale == 255.0 and x.shape[1:3] == (th, tw):
        return np.ascontiguousarray(x)
    x = np.clip(np.asarray(x, np.float32) * (255.0 / float(scale)), 0.0, 255.0)
    if x.shape[1:3] != (th, tw):
        import tensorflow as tf

        x = tf.image.resize(x, (th, tw), method="area").numpy()
    return np.round(x).astype(np.uint8)
