"""Memory budget of a batch run: how many images may climb at once without exhausting the machine.

A step keeps every activation between the input and the probed layer for the backward pass, so a step's memory
grows with the batch: at 224×224 a wide layer needs tens of MB per image, and a few hundred maps at once would
take more memory than the machine has (the kernel dies). The engine therefore estimates a step's memory per image
from the probe's activation sizes and runs at most as many images at once as fit into a budget; a single image
that does not fit is refused up front, with what it needs.

Estimate per image (bytes): ``ACTIVATION_FACTOR`` × 4 × (the outputs of every layer up to the probed one) + 8 ×
the input image (the image, its gradient and the next image). Measured peak RSS on CPU was 1.2–1.5× the activation
bytes per image (VGG16 block3 at 224², ResNet50 conv4 at 128²); the factor 2 leaves room for the allocator.
Budget: ``memory_budget`` given to the engine (bytes, or a fraction of the memory available), default
``DEFAULT_FRACTION`` of what is available when the run starts (MemAvailable, within a cgroup limit if any).
"""

from __future__ import annotations

import math
import os

__all__ = ["available_bytes", "device_bytes", "gpu_total_bytes", "image_bytes", "budget_bytes", "images_at_once", "format_bytes", "DEFAULT_FRACTION"]

ACTIVATION_FACTOR = 2.0
DEFAULT_FRACTION = 0.5


def available_bytes() -> int:
    """Memory this process may still use: MemAvailable (Linux), capped by a cgroup limit; else total memory."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            avail = 8 * 2**30
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f, open(usage_file) as g:
                limit, used = f.read().strip(), int(g.read().strip())
            if limit.isdigit() and int(limit) < 2**60:
                avail = min(avail, max(0, int(limit) - used))
        except (OSError, ValueError):
            continue
    return int(avail)


def image_bytes(shapes, input_shape: tuple) -> int:
    """Estimated memory of one image's ascent step (see the module doc) from ``shapes``: the output shapes without
    the batch axis of the layers a step computes up to the probed one (``Probe.shapes``: for a layer inside a
    nested model the outer layers before it and the nested model's layers up to it); shapes with unknown sizes
    are left out."""
    activations = sum(math.prod(shape) for shape in map(tuple, shapes)
                      if shape and all(s is not None for s in shape))
    return int(ACTIVATION_FACTOR * 4 * activations + 8 * 4 * math.prod(input_shape))


def gpu_total_bytes() -> int | None:
    """Memory of the first GPU in bytes (``nvidia-smi``), or None when it cannot be read."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=10).stdout
        return int(float(out.strip().splitlines()[0])) * 2**20  # MiB
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def device_bytes() -> int:
    """Memory the ascent may use on the device it runs on: with a GPU, the GPU's memory less what TensorFlow holds
    in tensors now (``tf.config.experimental.get_memory_info``; TensorFlow's own pool counts as free for it);
    without one (or when the GPU's size cannot be read), ``available_bytes()`` of the machine."""
    from . import runtime

    if runtime.gpu_present():
        total = gpu_total_bytes()
        if total is not None:
            try:
                import tensorflow as tf

                used = int(tf.config.experimental.get_memory_info("GPU:0")["current"])
            except (ValueError, RuntimeError, KeyError):
                used = 0
            return max(0, total - used)
    return available_bytes()


def budget_bytes(memory_budget=None) -> int:
    """The budget in bytes: ``memory_budget`` bytes (int), a fraction (float in (0, 1]) of the memory available on
    the device (``device_bytes``: the GPU's if there is one), or None for ``DEFAULT_FRACTION`` of it."""
    if memory_budget is None:
        return int(DEFAULT_FRACTION * device_bytes())
    if isinstance(memory_budget, float) and 0 < memory_budget <= 1:
        return int(memory_budget * device_bytes())
    if isinstance(memory_budget, int) and not isinstance(memory_budget, bool) and memory_budget > 0:
        return memory_budget
    raise ValueError(f"memory_budget must be a number of bytes (int > 0), a fraction of the available memory "
                     f"(float in (0, 1]) or None; got {memory_budget!r}")


def images_at_once(per_image: int, budget: int, what: str) -> int:
    """How many images fit into ``budget`` at once (at least 1); ValueError naming the need when not even one does."""
    if per_image > budget:
        raise ValueError(
            f"{what} needs about {format_bytes(per_image)} per image for one ascent step (forward and backward), "
            f"more than the memory budget of {format_bytes(budget)} ({format_bytes(available_bytes())} available). "
            "Use a smaller input_shape, an earlier layer, or a larger memory_budget= if you know the memory is there."
        )
    return max(1, budget // per_image)


def format_bytes(n: float) -> str:
    """Bytes as '512 KB', '37 MB', '2.4 GB'."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MB"
    return f"{n / 2**10:.0f} KB"

