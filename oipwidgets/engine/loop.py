"""The compiled ascent steps for a batch and the exact replay of the article's stop tests (``AscentLoop``).

Each step, for every still-active image b of the batch (all images independent, each exactly as if run alone):

    loss_b = objective(probe(img_b))                         # e.g. the mean of one map
    g_b    = d loss_b / d img_b;  g_b /= sqrt(mean(g_b²)) + 1e-7
    img_b  = mode(img_b + epsilon * g_b)                      # mode: re-standardise (default), clip, …

(that is the article's climb; other climbs (``climb.py``) step a parameterisation's state instead of the image, with
their optimiser, and the model sees the state's image after a seeded robustness transform drawn for each step),
with the article's two tests measured before the update: convergence (|Δloss| / (|loss| + 1e-7) < conv_criterion,
from step 11 on, 4 steps in a row; stopping on it optional) and dead map (loss and mean gradient exactly 0 in more
than 10 steps → stop). (The article's code writes the denominator as ``loss + 1.-7``, i.e. loss − 6, a typo for
1e-7; the intended relative change is used here.)

The steps run inside one ``tf.function`` as a ``tf.while_loop`` of ``n`` steps, ``n`` a tensor and the map index a
tensor, so one trace serves every chunk length and map; the step itself is a separate function that the loop calls
(not inlined), which keeps TensorFlow's oneDNN rewrite of the step graph the same in every trace. The graph only
steps (fewer ops per step) and records each step's loss and gradient sum, and for small images each step's image.
``AscentLoop.run_chunk`` then replays the two tests exactly in numpy; when an image must stop inside a chunk, the
chunk is cut there: its images at the stop come from the recorded trail of every step's images, or, without one,
the chunk's steps are run again up to the stop (the same computation, so the same numbers). A batch is split into
``oipwidgets.engine.runtime.workers(...)`` parts, run by worker threads at the same time; the images are independent,
so the results are those of the whole batch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from . import runtime, warmup
from .optimizers import RMSAscent, normalised
from .parameterizations import Pixel

__all__ = ["AscentLoop", "Counters", "RUNNING", "CONVERGED", "DEAD", "STOPPED", "NONFINITE", "ERROR"]

#: Per-image status codes inside the loop (``result.STATUSES`` names what a finished run reports).
RUNNING, CONVERGED, DEAD, STOPPED, NONFINITE, ERROR = 0, 1, 2, 3, 4, 5
DEAD_LIMIT = 10  # more than this many zero-loss, zero-gradient steps → dead
CONV_RUN = 4  # the convergence test must hold this many steps in a row
CONV_FROM = 11  # the test applies from this step on (the article's j > 10)


@dataclass
class Counters:
    """The article's per-image test counters between chunks, each (B,) int32.

    n_zero: steps with loss and gradient exactly 0; conv_run: convergence tests met in a row; conv_at: step (within
    the current article loop) where the convergence test first held 4 times, -1 before; status: a status code;
    measured: losses measured in the last chunk; updated: updates made in the last chunk.
    """

    n_zero: np.ndarray
    conv_run: np.ndarray
    conv_at: np.ndarray
    status: np.ndarray
    measured: np.ndarray
    updated: np.ndarray

    @classmethod
    def zeros(cls, b: int) -> Counters:
        z = lambda: np.zeros(b, np.int32)  # noqa: E731
        return cls(z(), z(), np.full(b, -1, np.int32), z(), z(), z())

    def copy(self) -> Counters:
        return Counters(*(np.array(getattr(self, f.name), np.int32) for f in fields(self)))

    def take(self, idx: np.ndarray) -> Counters:
        """The counters of the images ``idx``."""
        return Counters(*(getattr(self, f.name)[idx] for f in fields(self)))

    def put(self, idx: np.ndarray, part: Counters) -> None:
        """Write ``part`` (the counters of images ``idx``) back in place."""
        for f in fields(self):
            getattr(self, f.name)[idx] = getattr(part, f.name)


class AscentLoop:
    """A compiled chunk of ascent steps for one probe, objective and input mode.

    ``probe``: images (B, H, W, C) → activations; ``objective(activations, params)`` → (B,) scores;
    ``mode``: an InputMode. ``jit_compile`` asks XLA to compile the step (on CPU usually slower: XLA's
    convolution gradients are slow there). ``workers``: how many parts a batch is split into, each run by its own
    thread (default: ``runtime.workers(batch, image values)``, chosen from the work and the device).
    """

    def __init__(self, probe, objective, mode, jit_compile: bool = False, workers: int | None = None, *,
                 space=None, optimizer=None, transform=None, warmup: int = 0):
        self.probe, self.objective, self.mode = probe, objective, mode
        self.space = space if space is not None else Pixel(tuple(probe.input_shape))
        self.optimizer = optimizer if optimizer is not None else RMSAscent()
        self.transform = transform
        self.warmup = int(warmup)  # steps 0..warmup-1 redirect the ReLU gradient (``warmup.py``)
        self.workers = workers
        # The step is its own function, called (not inlined) from the loop: TensorFlow lowers a while loop into a
        # cyclic graph whose oneDNN rewrite depends on memory addresses, and about half of the compiled loops then
        # ran the max-pooling gradient without oneDNN, 2× slower for a whole run. An acyclic step graph is
        # rewritten the same way every time.
        self._step = tf.function(self._step_py, jit_compile=jit_compile, experimental_attributes={"_noinline": True})
        self._steps = tf.function(self._steps_py, jit_compile=jit_compile, reduce_retracing=True)
        self._concrete: dict = {}

    # ------------------------------------------------------------------ states and images
    @property
    def plain(self) -> bool:
        """True when the state is the image itself (pixel space, no optimiser slots, an input mode that shows its
        states as they are): no conversion at all."""
        return self.space.projected and self.optimizer.slots == 0 and not self.mode.viewed

    def _unpack(self, state):
        """(x, slots): the parameter (B, *shape) and the optimiser's slot arrays, stacked on axis 1 in the state."""
        if self.optimizer.slots == 0:
            return state, []
        return state[:, 0], [state[:, k + 1] for k in range(self.optimizer.slots)]

    def _pack(self, x, slots):
        return x if not slots else tf.stack([x, *slots], axis=1)

    def _image(self, x):
        """The images (B, H, W, C) of parameters x (before robustness transforms and the model's preprocessing)."""
        return self.mode.view(x) if self.space.projected else self.mode.smooth(self.space.to_images(x))

    def states_of(self, images: np.ndarray, keep: bool = False) -> np.ndarray:
        """Loop states (B, …) that start from ``images`` (B, H, W, C): the parameters and zero optimiser slots.

        A parameterised space starts from its images scaled by its ``start_scale`` (start noise: the pattern soon
        outgrows it); ``keep`` starts from the images at full scale (a start that must survive the first steps,
        such as a real image)."""
        if self.plain:
            return np.asarray(images, np.float32)
        if self.space.projected:
            x = np.asarray(self.mode.unview(images), np.float32)
        else:
            scale = 1.0 if keep else self.space.start_scale
            x = np.asarray(self.space.from_images(self.mode.unsmooth(images) * scale), np.float32)
        return x if self.optimizer.slots == 0 else np.stack([x] + [np.zeros_like(x)] * self.optimizer.slots, axis=1)

    def images_of(self, states: np.ndarray) -> np.ndarray:
        """The images (B, H, W, C) of loop states (numpy; the states themselves in the article's pixel space)."""
        if self.plain:
            return states
        x, _ = self._unpack(tf.constant(states, tf.float32))
        return self._image(x).numpy()

    def _call(self, img, n, epsilon, params, halt, clock, record: bool):
        """Call the traced steps through their concrete function, cached per batch size, objective structure and
        ``record``: skips tf.function's argument matching (about 1 ms a call, 10% of a short single-image run)."""
        key = self._key(int(img.shape[0]), params, record)
        fn = self._concrete.get(key)
        if fn is None:
            fn = self._concrete[key] = self._steps.get_concrete_function(img, n, epsilon, params, halt, clock, record)
        return fn(img, n, epsilon, params, halt, clock, record)

    @staticmethod
    def _key(batch: int, params: dict, record: bool) -> tuple:
        return (batch, record, tuple((k, tuple(v.shape)) for k, v in _flat_items(params)))

    def _partition(self, b: int, at_once: int | None) -> tuple[list, int]:
        """How a batch of ``b`` images is run: (lo, hi) bounds of its parts and how many parts run at the same time,
        so that at most ``at_once`` images climb together (the memory budget) and the cores are used."""
        if self.objective.couples_batch:  # the images' scores depend on each other: one piece, one thread
            return [(0, b)], 1
        values = int(np.prod([d or 0 for d in tuple(self.probe.input_shape)[1:]]))  # H·W·C (0: not fixed)
        workers = max(1, min(b, self.workers if self.workers is not None else runtime.workers(b, values)))
        if at_once is None or b <= at_once:
            bounds = np.linspace(0, b, workers + 1).round().astype(int)
            return list(zip(bounds[:-1].tolist(), bounds[1:].tolist())), workers
        together = max(1, min(workers, at_once))
        size = max(1, at_once // together)
        return [(lo, min(b, lo + size)) for lo in range(0, b, size)], together

    def traced(self, batch: int, params: dict, record: bool, at_once: int | None = None) -> bool:
        """Whether a batch of this size already has its compiled steps (else the next chunk first compiles)."""
        sizes = {hi - lo for lo, hi in self._partition(batch, at_once)[0]}
        return all(self._key(s, params, record) in self._concrete for s in sizes)

    def _step_py(self, state, epsilon, params, t):
        """One ascent step for a batch at step ``t``: returns the next states, the loss (B,) before the step and the
        sum of the RMS-normalised gradient (B,), which is finite iff every value is (RMS 1: no overflow) and
        exactly 0 iff the mean is. The sum also carries 0 × the sum of the next state, so an image that overflowed
        or became NaN makes it non-finite: such an image stops as "nonfinite", never as a dead or converged map.

        In the article's pixel space with its RMS step this is exactly: loss = objective(probe(img)); img =
        mode(img + epsilon · g / RMS(g)). Other spaces climb their parameters and the model sees their images
        (after the robustness transform drawn for step ``t``, when there is one)."""
        x, slots = self._unpack(state)
        with tf.GradientTape() as tape:
            tape.watch(x)
            img = self._image(x)
            seen = img if self.transform is None else self._transformed(img, t)
            with warmup.redirected(self.probe.model, t < self.warmup) if self.warmup else contextlib.nullcontext():
                activations = self.probe(self.mode.to_model(seen))
            loss = self.objective.evaluate(activations, params, img)
            total = tf.reduce_sum(loss)
        grad = tape.gradient(total, x)
        unit = normalised(grad)
        new, slots = self.optimizer.update(x, grad, unit, slots, t, epsilon)
        if self.space.projected:
            new = self.mode.apply(new)
        axes = list(range(1, unit.shape.rank))
        return self._pack(new, slots), loss, tf.reduce_sum(unit, axis=axes) + 0.0 * tf.reduce_sum(new, axis=axes)

    def _transformed(self, images, t):
        """The robustness transform drawn for step ``t``, about the input mode's centre (borders filled with it)."""
        c = float(self.mode.centre)
        seed = tf.stack([tf.constant(0), t])
        return self.transform(images, seed) if c == 0 else self.transform(images - c, seed) + c

    def _steps_py(self, img, n, epsilon, params, halt, clock, record=False):
        """Up to ``n`` plain ascent steps for every image of the batch, fewer when ``halt`` (a boolean variable,
        read before every step) is raised from another thread: returns the steps done, the images after them and,
        per step, the loss (done, B) and the sum of the normalised gradient (done, B) that the stop tests need. No
        test runs in the graph: each costs ops in every step; ``run_chunk`` applies them afterwards, exactly."""
        losses = tf.TensorArray(tf.float32, size=n, element_shape=img.shape[:1])
        sums = tf.TensorArray(tf.float32, size=n, element_shape=img.shape[:1])
        trail = tf.TensorArray(tf.float32, size=n if record else 0, element_shape=img.shape)

        def body(i, img, losses, sums, trail):
            img, loss, grad_sum = self._step(img, epsilon, params, clock + i)
            sums = sums.write(i, grad_sum)
            losses = losses.write(i, loss)
            if record:  # every step's image, so that snapshots need not end a chunk
                trail = trail.write(i, img)
            return i + 1, img, losses, sums, trail

        done, img, losses, sums, trail = tf.while_loop(
            lambda i, *_: tf.logical_and(i < n, tf.logical_not(halt.read_value())), body,
            (tf.constant(0), img, losses, sums, trail),
        )
        taken = tf.range(done)
        return (done, img, losses.gather(taken), sums.gather(taken)) + ((trail.gather(taken),) if record else ())

    def _run_parts(self, images: np.ndarray, n: int, epsilon, params: dict, record: bool = False, halt=None,
                   at_once: int | None = None, t0: int = 0):
        """``_steps`` on numpy images, the batch split into parts run by the worker threads, at most ``at_once``
        images at the same time (waves of parts when the batch is larger).

        Returns one ``_Part`` per part of the batch (all parts did the same number of steps unless ``halt`` was
        raised during the run)."""
        b = images.shape[0]
        n_t = tf.constant(n, tf.int32)
        halt = _never() if halt is None else halt
        clock = tf.constant(t0, tf.int32)
        flat, treedef = tf.nest.flatten(params), params

        def run(lo, hi):
            p = params if (lo, hi) == (0, b) else tf.nest.pack_sequence_as(treedef, [t[lo:hi] for t in flat])
            out = [t.numpy() for t in self._call(tf.constant(images[lo:hi]), n_t, epsilon, p, halt, clock, record)]
            return _Part(lo, hi, int(out[0]), *out[1:4], out[4] if record else None)

        bounds, together = self._partition(b, at_once)
        if len(bounds) == 1:
            return [run(0, b)]
        parts = []
        for w in range(0, len(bounds), together):  # a wave of parts at once: memory stays within the budget
            wave = [runtime.executor().submit(run, lo, hi) for lo, hi in bounds[w : w + together]]
            parts += [f.result() for f in wave]
        return parts

    def _run_steps(self, images: np.ndarray, n: int, epsilon, params: dict, at_once: int | None, t0: int) -> np.ndarray:
        """The states after exactly ``n`` steps from step ``t0`` (never halted)."""
        return np.concatenate([p.images for p in self._run_parts(images, n, epsilon, params, at_once=at_once,
                                                                  t0=t0)])

    def run_chunk(self, images, loss_old, counters: Counters, j0: int, n: int, epsilon: tf.Tensor,
                  criterion: float, stop_on_convergence: bool, params: dict, record: bool = False, halt=None,
                  at_once: int | None = None):
        """Up to ``n`` steps from step ``j0`` for a batch (numpy in, numpy out), with the article's tests; fewer
        when ``halt`` (a boolean tf.Variable) is raised meanwhile: the steps then end within one step.

        Each part of a batch that was split over worker threads may have been halted after a different number of
        steps; the tests are then replayed per part, and ``done`` is the most steps any image made (the counters
        say how many each one made).

        ``counters`` are those of the batch before the chunk (not changed; updated ones are returned). The steps run
        without tests;
        the tests then replay the recorded losses and gradient sums step by step. If an image must stop at step s
        (dead, converged with stopping on, non-finite), the chunk is cut there: the stopping images keep their image
        before step s's update and the others take it, both read from the trail when ``record`` is on, else from
        the steps up to s run again from the chunk's start (the same computation, so the same numbers). Returns
        images, loss_old, counters, done (steps taken), the losses (done, B), 0 where an image measured nothing,
        and with ``record`` every step's images (done, B, H, W, C) (valid for the images that made that step's
        update), else None.
        """
        parts = self._run_parts(images, n, epsilon, params, record, halt, at_once, t0=j0)
        settings = (epsilon, np.float32(criterion), bool(stop_on_convergence), at_once)
        if len({p.done for p in parts}) == 1:
            whole = _Part(0, images.shape[0], parts[0].done, np.concatenate([p.images for p in parts]),
                          np.concatenate([p.losses for p in parts], axis=1),
                          np.concatenate([p.sums for p in parts], axis=1),
                          np.concatenate([p.trail for p in parts], axis=1) if record else None)
            return self._replay(images, loss_old, counters, j0, whole, settings, params)
        # halted: the parts made different numbers of steps; replay each one on its own, then join them
        b, done = images.shape[0], max(p.done for p in parts)
        new, loss_old, counters = images.copy(), np.array(loss_old, np.float32), counters.copy()
        losses = np.zeros((done, b), np.float32)
        trail = np.zeros((done, *images.shape), np.float32) if record else None
        flat, treedef = tf.nest.flatten(params), params
        for p in parts:
            idx = np.arange(p.lo, p.hi)
            sub = tf.nest.pack_sequence_as(treedef, [t[p.lo : p.hi] for t in flat])
            im, lo, part, k, ls, tr = self._replay(images[idx], loss_old[idx], counters.take(idx), j0,
                                                   p._replace(lo=0, hi=len(idx)), settings, sub)
            new[idx], loss_old[idx] = im, lo
            counters.put(idx, part)
            losses[:k, idx] = ls
            if record:
                trail[:k, idx] = tr
        return new, loss_old, counters, done, losses, trail

    def _replay(self, images, loss_old, counters: Counters, j0: int, part: _Part, settings: tuple, params: dict):
        """The article's tests replayed over the ``part.done`` steps a (sub-)batch made; see ``run_chunk``."""
        epsilon, crit, stop, at_once = settings
        n, out, losses, sums, trail = part.done, part.images, part.losses, part.sums, part.trail
        counters = counters.copy()
        n_zero, conv_run, conv_at = counters.n_zero, counters.conv_run, counters.conv_at
        status, measured, updated = counters.status, counters.measured, counters.updated
        loss_old = np.array(loss_old, np.float32)
        if n == 0:  # halted before the first step
            measured[:], updated[:] = 0, 0
            return images, loss_old, counters, 0, losses, trail
        running = status == RUNNING
        # the tests for all n steps at once, as if no image stopped (valid up to the first stop, which ends the chunk)
        steps = np.arange(n)[:, None]
        finite = np.isfinite(losses) & np.isfinite(sums)
        previous = np.concatenate([loss_old[None], losses[:-1]])
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            rel = np.abs(losses - previous) / (np.abs(losses) + np.float32(1e-7))
        met = ((j0 + steps) >= CONV_FROM) & (rel < crit)
        last_miss = np.maximum.accumulate(np.where(~met, steps, -1), axis=0)
        runs = np.where(last_miss < 0, conv_run[None] + steps + 1, steps - last_miss)  # met steps in a row
        conv_now = running[None] & (runs >= CONV_RUN)
        zeros = n_zero[None] + np.cumsum(running[None] & (losses == 0) & (sums == 0), axis=0)
        stop_c = conv_now & stop
        dead = running[None] & ~stop_c & (zeros > DEAD_LIMIT)
        bad = running[None] & ~finite
        stopping = stop_c | dead | bad
        hit = np.flatnonzero(stopping.any(axis=1))
        last = int(hit[0]) if hit.size else n - 1  # the steps 0..last are taken
        k = last
        conv_run[:] = np.where(running, runs[k], conv_run)
        n_zero[:] = np.where(running, zeros[k], n_zero)
        first_conv = np.where(conv_now[: k + 1].any(axis=0), conv_now[: k + 1].argmax(axis=0) + j0, -1)
        conv_at[:] = np.where((conv_at < 0) & (first_conv >= 0), first_conv, conv_at)
        take = running[None] & finite[: k + 1]
        record_losses = np.where(take, losses[: k + 1], 0).astype(np.float32)
        measured[:] = take.sum(axis=0)
        loss_old = np.where(running, losses[k], loss_old).astype(np.float32)
        stops = stopping[k]
        status[:] = np.where(stop_c[k], CONVERGED, np.where(dead[k], DEAD, np.where(bad[k], NONFINITE, status)))
        go = running & ~stops
        updated[:] = np.where(running, k + go, 0)
        if not hit.size:
            new = np.where(_col(running, images), out, images)
            return new, loss_old, counters, n, record_losses, trail
        # an image stops at step k: the stopping ones keep their image before step k's update, the others take it.
        # With the recorded trail both are at hand; else steps 0..k are run again (the same computation as the
        # first pass, so the same numbers)
        if trail is not None:
            before = trail[k - 1] if k > 0 else images
            after = trail[k]
        else:
            before = self._run_steps(images, k, epsilon, params, at_once, j0) if k > 0 else images
            after = self._run_steps(before, 1, epsilon, params, at_once, j0 + k) if go.any() else before
        new = np.where(_col(go, images), after, np.where(_col(running, images), before, images))
        return new, loss_old, counters, k + 1, record_losses, None if trail is None else trail[: k + 1]


class _Part(NamedTuple):
    """What the compiled steps returned for the images ``lo:hi`` of a batch: steps done, images after them, losses
    and gradient sums (done, b), every step's images (done, b, H, W, C) or None."""

    lo: int
    hi: int
    done: int
    images: np.ndarray
    losses: np.ndarray
    sums: np.ndarray
    trail: np.ndarray | None


_NEVER: list = []


def _never() -> tf.Variable:
    """A halt flag that is never raised (for steps that must all run)."""
    if not _NEVER:
        _NEVER.append(tf.Variable(False, trainable=False, name="oipwidgets_never"))
    return _NEVER[0]


def _col(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A per-image mask (B,) shaped to broadcast over states ``like`` (B, …)."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def _flat_items(params: dict, prefix: str = ""):
    """(path, tensor) pairs of a nested dict of tensors, in a fixed order."""
    for key in sorted(params):
        value = params[key]
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


