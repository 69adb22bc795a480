"""The compiled gradient-ascent loop (the article's strategy 0) for a batch of images, run in chunks.

Each step, for every still-active image b of the batch (all images independent, each exactly as if run alone):

    loss_b = objective(probe(img_b))                         # e.g. the mean of one map
    g_b    = d loss_b / d img_b;  g_b /= sqrt(mean(g_b²)) + 1e-7
    img_b  = mode(img_b + epsilon * g_b)                      # mode: re-standardise (default), clip, …

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
the chunk's steps are run again up to the stop (the same computation, so the same numbers). ``ascend`` drives
chunks of about ``chunk_seconds``, so progress callbacks arrive often and a cancel takes effect quickly; snapshots
come from the recorded images (or, for large images, chunks end at snapshot steps). A batch is split into
``oipwidgets.runtime.workers()`` parts (one per core when TensorFlow runs one intra-op thread, see
``oipwidgets.runtime``), run by worker threads at the same time; the images are independent, so the results are
those of the whole batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from . import runtime

__all__ = ["snapshot_schedule", "AscentLoop", "AscentState", "Progress", "ascend"]

RUNNING, CONVERGED, DEAD, STOPPED, NONFINITE = 0, 1, 2, 3, 4
STATUS_NAMES = {RUNNING: "max_steps", CONVERGED: "converged", DEAD: "dead", STOPPED: "stopped", NONFINITE: "stopped"}
DEAD_LIMIT = 10  # more than this many zero-loss, zero-gradient steps → dead
CONV_RUN = 4  # the convergence test must hold this many steps in a row
CONV_FROM = 11  # the test applies from this step on (the article's j > 10)
RECORD_BYTES = 64 * 2**20  # keep every step's images in a chunk when they take at most this much memory


def snapshot_schedule(steps: int, levels: int = 6, offset: int = 0) -> list[int]:
    """The article's snapshot steps: 0, n·2^k for k < levels (n = steps // 2^levels), and the last step.

    For 400 steps: [0, 6, 12, 24, 48, 96, 192, 399]. Steps are 0-based and shifted by ``offset``.
    """
    n = steps // 2**levels
    marks = {0, steps - 1} | {n * 2**k for k in range(levels) if n > 0}
    return sorted(offset + m for m in marks if 0 <= m < steps)


class AscentLoop:
    """A compiled chunk of ascent steps for one probe, objective and input mode.

    ``probe``: images (B, H, W, C) → activations; ``objective(activations, params)`` → (B,) scores;
    ``mode``: an InputMode. ``jit_compile`` asks XLA to compile the step (on CPU usually slower: XLA's
    convolution gradients are slow there). ``workers``: how many parts a batch is split into, each run by its own
    thread (default: ``oipwidgets.runtime.workers()``, one per core when TensorFlow uses one intra-op thread).
    """

    def __init__(self, probe, objective, mode, jit_compile: bool = False, workers: int | None = None):
        self.probe, self.objective, self.mode = probe, objective, mode
        self.workers = workers
        # The step is its own function, called (not inlined) from the loop: TensorFlow lowers a while loop into a
        # cyclic graph whose oneDNN rewrite depends on memory addresses, and about half of the compiled loops then
        # ran the max-pooling gradient without oneDNN, 2× slower for a whole run. An acyclic step graph is
        # rewritten the same way every time.
        self._step = tf.function(self._step_py, jit_compile=jit_compile, experimental_attributes={"_noinline": True})
        self._steps = tf.function(self._steps_py, jit_compile=jit_compile, reduce_retracing=True)
        self._concrete: dict = {}

    def _call(self, img, n, epsilon, params, record: bool):
        """Call the traced steps through their concrete function, cached per batch size, objective structure and
        ``record``: skips tf.function's argument matching (about 1 ms a call, 10% of a short single-image run)."""
        key = (int(img.shape[0]), record, tuple((k, tuple(v.shape)) for k, v in _flat_items(params)))
        fn = self._concrete.get(key)
        if fn is None:
            fn = self._concrete[key] = self._steps.get_concrete_function(img, n, epsilon, params, record)
        return fn(img, n, epsilon, params, record)

    def _step_py(self, img, epsilon, params):
        """One ascent step for a batch: returns the next images, the loss (B,) before the step and the sum of the
        normalised gradient (B,), which is finite iff every value is (RMS 1: no overflow) and exactly 0 iff the
        mean is."""
        axes = [1, 2, 3]
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = self.objective(self.probe(img), params)
            total = tf.reduce_sum(loss)
        grad = tape.gradient(total, img)
        grad = grad / (tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True)) + 1e-7)
        return self.mode.apply(img + epsilon * grad), loss, tf.reduce_sum(grad, axis=axes)

    def _steps_py(self, img, n, epsilon, params, record=False):
        """``n`` plain ascent steps for every image of the batch: returns the images after them and, per step, the
        loss (n, B) and the sum of the normalised gradient (n, B) that the stop tests need. No test runs in the
        graph: each costs ops in every step; ``run_chunk`` applies them afterwards, exactly."""
        losses = tf.TensorArray(tf.float32, size=n, element_shape=img.shape[:1])
        sums = tf.TensorArray(tf.float32, size=n, element_shape=img.shape[:1])
        trail = tf.TensorArray(tf.float32, size=n if record else 0, element_shape=img.shape)

        def body(i, img, losses, sums, trail):
            img, loss, grad_sum = self._step(img, epsilon, params)
            sums = sums.write(i, grad_sum)
            losses = losses.write(i, loss)
            if record:  # every step's image, so that snapshots need not end a chunk
                trail = trail.write(i, img)
            return i + 1, img, losses, sums, trail

        _, img, losses, sums, trail = tf.while_loop(
            lambda i, *_: i < n, body, (tf.constant(0), img, losses, sums, trail)
        )
        return (img, losses.stack(), sums.stack()) + ((trail.stack(),) if record else ())

    def _run_steps(self, images: np.ndarray, n: int, epsilon, params: dict, record: bool = False):
        """``_steps`` on numpy images, the batch split over the worker threads when there are several.

        Returns images (B, H, W, C), losses (n, B), gradient sums (n, B) and, with ``record``, every step's images
        (n, B, H, W, C), else None."""
        b = images.shape[0]
        parts = min(b, self.workers if self.workers is not None else runtime.workers())
        n_t = tf.constant(n, tf.int32)
        if parts <= 1:
            out = tuple(t.numpy() for t in self._call(tf.constant(images), n_t, epsilon, params, record))
            return out if record else out + (None,)
        bounds = np.linspace(0, b, parts + 1).round().astype(int)
        flat, treedef = tf.nest.flatten(params), params

        def run(lo, hi):
            p = tf.nest.pack_sequence_as(treedef, [t[lo:hi] for t in flat])
            return tuple(t.numpy() for t in self._call(tf.constant(images[lo:hi]), n_t, epsilon, p, record))

        outs = [f.result() for f in [runtime.executor().submit(run, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]]
        return (np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs], axis=1),
                np.concatenate([o[2] for o in outs], axis=1),
                np.concatenate([o[3] for o in outs], axis=1) if record else None)

    def run_chunk(self, images, loss_old, ints, j0: int, n: int, consts: tuple, params: dict, record: bool = False):
        """Up to ``n`` steps from step ``j0`` for a batch (numpy in, numpy out), with the article's tests.

        ``ints`` (B, 6) int32: n_zero, conv_run, conv_at, status, measured, updated. The steps run without tests;
        the tests then replay the recorded losses and gradient sums step by step. If an image must stop at step s
        (dead, converged with stopping on, non-finite), the chunk is cut there: the stopping images keep their image
        before step s's update and the others take it, both read from the trail when ``record`` is on, else from
        the steps up to s run again from the chunk's start (the same computation, so the same numbers). Returns
        images, loss_old, ints, done (steps taken), the losses (done, B), 0 where an image measured nothing, and
        with ``record`` every step's images (done, B, H, W, C) (valid for the images that made that step's update),
        else None.
        """
        epsilon, criterion, stop_conv = consts
        crit, stop = np.float32(criterion.numpy()), bool(stop_conv.numpy())
        ints = ints.copy()
        n_zero, conv_run, conv_at, status, measured, updated = (ints[:, c] for c in range(6))
        loss_old = np.array(loss_old, np.float32)
        out, losses, sums, trail = self._run_steps(images, n, epsilon, params, record)
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
            new = np.where(running[:, None, None, None], out, images)
            return new, loss_old, ints, np.int32(n), record_losses, trail
        # an image stops at step k: the stopping ones keep their image before step k's update, the others take it.
        # With the recorded trail both are at hand; else steps 0..k are run again (the same computation as the
        # first pass, so the same numbers)
        if trail is not None:
            before = trail[k - 1] if k > 0 else images
            after = trail[k]
        else:
            before = self._run_steps(images, k, epsilon, params)[0] if k > 0 else images
            after = self._run_steps(before, 1, epsilon, params)[0] if go.any() else before
        new = np.where(go[:, None, None, None], after, np.where(running[:, None, None, None], before, images))
        return new, loss_old, ints, np.int32(k + 1), record_losses, None if trail is None else trail[: k + 1]


def _flat_items(params: dict, prefix: str = ""):
    """(path, tensor) pairs of a nested dict of tensors, in a fixed order."""
    for key in sorted(params):
        value = params[key]
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


@dataclass
class AscentState:
    """Per-image state of a batch between chunks (numpy, B images)."""

    images: np.ndarray  # (B, H, W, C) float32
    loss_old: np.ndarray  # (B,) float32
    n_zero: np.ndarray  # (B,) int32
    conv_run: np.ndarray  # (B,) int32
    conv_at: np.ndarray  # (B,) int32, -1 while not converged
    status: np.ndarray  # (B,) int32 codes
    updates: np.ndarray  # (B,) int, updates made
    last_step: np.ndarray  # (B,) int, global step number of the last update, -1 before any
    last_loss: np.ndarray  # (B,) float, the loss measured at that step
    losses: list = field(default_factory=list)  # per image: list of floats

    @classmethod
    def start(cls, images: np.ndarray) -> AscentState:
        b = images.shape[0]
        return cls(
            images=np.array(images, dtype=np.float32),
            loss_old=np.zeros(b, np.float32),
            n_zero=np.zeros(b, np.int32),
            conv_run=np.zeros(b, np.int32),
            conv_at=np.full(b, -1, np.int32),
            status=np.zeros(b, np.int32),
            updates=np.zeros(b, np.int64),
            last_step=np.full(b, -1, np.int64),
            last_loss=np.full(b, np.nan),
            losses=[[] for _ in range(b)],
        )


@dataclass
class Progress:
    """What a progress callback receives after each chunk of a batch run.

    ``step``: steps done so far (all stages); ``total``: steps planned; ``images``: current images (B, H, W, C);
    ``losses``: latest loss per image (B,); ``snapshot``: None, or (step, images (B, H, W, C), losses (B,)) when the
    chunk ended at a snapshot step; ``status``: per-image status names so far; ``stage``: (index, count).
    """

    step: int
    total: int
    images: np.ndarray
    losses: np.ndarray
    snapshot: tuple | None
    status: list
    stage: tuple = (0, 1)


@dataclass
class _Snapshots:
    steps: list = field(default_factory=list)  # per image: list of step numbers
    images: list = field(default_factory=list)  # per image: list of (H, W, C)
    losses: list = field(default_factory=list)


def ascend(
    loop: AscentLoop,
    state: AscentState,
    params: dict,
    *,
    steps: int,
    epsilon: float,
    conv_criterion: float = 5e-4,
    stop_on_convergence: bool = False,
    snapshot_steps=None,
    offset: int = 0,
    total: int | None = None,
    stage: tuple = (0, 1),
    callback=None,
    cancelled=None,
    snaps: _Snapshots | None = None,
    chunk_seconds: float = 0.04,
) -> tuple[AscentState, _Snapshots]:
    """Run up to ``steps`` steps of ``loop`` from ``state`` (its counters restart: one article loop), in chunks.

    Step numbers are shifted by ``offset`` (for later stages); ``snapshot_steps`` are 0-based within this call
    (default: the article's schedule). ``cancelled()`` is polled between chunks: when it returns True the active
    images get status "stopped". Returns the new state and the snapshots (appended to ``snaps`` when given).
    """
    b = state.images.shape[0]
    marks = sorted(set(snapshot_schedule(steps) if snapshot_steps is None else snapshot_steps))
    snaps = snaps or _Snapshots([[] for _ in range(b)], [[] for _ in range(b)], [[] for _ in range(b)])
    total = steps if total is None else total
    # each call is one article loop: fresh convergence/dead counters for the still-running images
    state.loss_old[:] = 0
    state.n_zero[:] = 0
    state.conv_run[:] = 0
    consts = (
        tf.constant(epsilon, tf.float32),
        tf.constant(conv_criterion, tf.float32),
        tf.constant(bool(stop_on_convergence)),
    )
    j, chunk = 0, 2  # a short first chunk measures the speed
    conv_at_local = np.full(b, -1, np.int32)
    while j < steps and np.any(state.status == RUNNING):
        if cancelled is not None and cancelled():
            state.status[state.status == RUNNING] = STOPPED
            break
        # a chunk may run past snapshot steps when every step's image can be kept (small images); else it ends at
        # the next snapshot step
        record = state.images[0].nbytes * b * chunk <= RECORD_BYTES
        next_mark = steps - 1 if record else next((m for m in marks if m >= j), steps - 1)
        n = max(1, min(chunk, next_mark + 1 - j, steps - j))
        before = state.status == RUNNING
        t0 = time.perf_counter()
        ints = np.stack(
            [state.n_zero, state.conv_run, conv_at_local, state.status, np.zeros(b, np.int32), np.zeros(b, np.int32)],
            axis=1,
        ).astype(np.int32)
        images, loss_old, ints, done, losses, trail = _run_live(
            loop, before, state.images, state.loss_old, ints, j, n, consts, params, record
        )
        n_zero, conv_run, conv_at, status, measured, updated = (np.ascontiguousarray(c) for c in ints.T)
        done = int(done)
        dt = time.perf_counter() - t0
        if done > 0:
            chunk = max(1, min(4096, int(chunk_seconds * done / max(dt, 1e-6))))
        first = [len(state.losses[k]) for k in range(b)]
        for k in np.flatnonzero(before):  # the losses each image really measured (a stopped one: up to its stop)
            state.losses[k].extend(float(v) for v in losses[: measured[k], k])
        state.updates += updated
        moved = updated > 0  # an active image updates at every step from the chunk's start until it stops
        state.last_step[moved] = offset + j + updated[moved] - 1
        state.last_loss[moved] = losses[updated[moved] - 1, np.flatnonzero(moved)]
        state.images, state.loss_old, state.status = images, loss_old, status
        state.n_zero, state.conv_run = n_zero, conv_run
        conv_at_local = conv_at
        # snapshots: the steps of this chunk that are snapshot steps, for the images that made that step's update
        taken = [m for m in marks if j <= m < j + done] if trail is not None else (
            [j + done - 1] if done == n and (j + done - 1) in marks else []
        )
        for m in taken:
            local = m - j
            shown = trail[local] if trail is not None else images
            for k in np.flatnonzero(before & (updated > local)):
                _add_snapshot(snaps, k, offset + m, shown[k], state.losses[k][first[k] + local])
            if callback is not None and m != j + done - 1:
                callback(Progress(step=offset + m + 1, total=total, images=shown, losses=losses[local],
                                  snapshot=(offset + m, shown, losses[local]), status=_names(status), stage=stage))
        j += done
        if callback is not None:
            last = taken[-1] if taken and taken[-1] == j - 1 else None
            callback(
                Progress(
                    step=offset + j,
                    total=total,
                    images=images,
                    losses=_last_losses(state),
                    snapshot=None if last is None else (offset + last, images, _last_losses(state)),
                    status=_names(status),
                    stage=stage,
                )
            )
    state.conv_at[:] = np.where((conv_at_local >= 0) & (state.conv_at < 0), conv_at_local + offset, state.conv_at)
    return state, snaps


def _run_live(loop, live, images, loss_old, ints, j, n, consts, params, record):
    """``loop.run_chunk`` on the images still running only (a stopped image costs nothing more), results scattered
    back into the whole batch: images, loss_old, ints, done, losses (done, B), trail (done, B, …) or None."""
    if live.all():
        return loop.run_chunk(images, loss_old, ints, j, n, consts, params, record)
    idx = np.flatnonzero(live)
    sub = tf.nest.map_structure(lambda t: tf.gather(t, idx), params)
    im, lo, it, done, ls, tr = loop.run_chunk(images[idx], loss_old[idx], ints[idx], j, n, consts, sub, record)
    images, loss_old, ints = images.copy(), loss_old.copy(), ints.copy()
    images[idx], loss_old[idx], ints[idx] = im, lo, it
    losses = np.zeros((int(done), len(live)), np.float32)
    losses[:, idx] = ls
    trail = None
    if tr is not None:
        trail = np.zeros((int(done), *images.shape), np.float32)
        trail[:, idx] = tr
    return images, loss_old, ints, done, losses, trail


def _names(status: np.ndarray) -> list:
    return [STATUS_NAMES[s] if s != RUNNING else "running" for s in status]


def _last_losses(state: AscentState) -> np.ndarray:
    return np.array([lk[-1] if lk else np.nan for lk in state.losses])


def _add_snapshot(snaps: _Snapshots, k: int, step: int, image: np.ndarray, loss: float) -> None:
    if snaps.steps[k] and snaps.steps[k][-1] == step:
        return
    snaps.steps[k].append(step)
    snaps.images[k].append(np.array(image, dtype=np.float32))
    snaps.losses[k].append(loss)
