"""The ascent driver: runs the compiled loop (``loop.AscentLoop``) in chunks, with snapshots, progress and cancel.

``ascend`` takes a batch state, the objective's parameters, ``AscentOptions`` (step size, convergence, callbacks)
and a ``Stage`` (how many steps, which snapshot steps, where in a longer plan it stands) and drives chunks of about
``options.chunk_seconds``, so progress callbacks arrive often and a cancel takes effect quickly; snapshots come
from the recorded images (or, for large images, chunks end at snapshot steps). Images that stopped (dead,
converged, cancelled) leave the batch: they cost nothing more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from .loop import CONVERGED, DEAD, ERROR, NONFINITE, RUNNING, STOPPED, AscentLoop, Counters

__all__ = ["snapshot_schedule", "AscentOptions", "AscentState", "Progress", "Stage", "ascend"]

#: The status name of each loop code while a batch runs ("running" until an image stops).
STATUS_NAMES = {RUNNING: "running", CONVERGED: "converged", DEAD: "dead", STOPPED: "stopped", NONFINITE: "nonfinite",
                ERROR: "error"}
WATCH_SECONDS = 0.01  # how often a stop request is looked for while a chunk runs
RECORD_BYTES = 64 * 2**20  # keep every step's images in a chunk when they take at most this much memory


def snapshot_schedule(steps: int, levels: int = 6, offset: int = 0) -> list[int]:
    """The article's snapshot steps: 0, n·2^k for k < levels (n = steps // 2^levels), and the last step.

    For 400 steps: [0, 6, 12, 24, 48, 96, 192, 399]. Steps are 0-based and shifted by ``offset``.
    """
    n = steps // 2**levels
    marks = {0, steps - 1} | {n * 2**k for k in range(levels) if n > 0}
    return sorted(offset + m for m in marks if 0 <= m < steps)


@dataclass
class AscentState:
    """Per-image state of a batch between chunks (numpy, B images).

    ``images`` holds the loop's states: the images themselves in the article's pixel space, else the parameters
    (and optimiser slots) whose images ``AscentLoop.images_of`` gives."""

    images: np.ndarray  # (B, H, W, C) float32, or (B, …) states
    loss_old: np.ndarray  # (B,) float32
    n_zero: np.ndarray  # (B,) int32
    conv_run: np.ndarray  # (B,) int32
    conv_at: np.ndarray  # (B,) int32, -1 while not converged
    status: np.ndarray  # (B,) int32 codes
    updates: np.ndarray  # (B,) int, updates made
    last_step: np.ndarray  # (B,) int, global step number of the last update, -1 before any
    last_loss: np.ndarray  # (B,) float, the loss measured at that step
    losses: list = field(default_factory=list)  # per image: list of floats
    error: Exception | None = None  # what ended the run early (the images keep the steps done before it)

    def take(self, idx: np.ndarray) -> AscentState:
        """The state of the images ``idx`` (copies)."""
        arrays = {f: np.array(getattr(self, f)[idx]) for f in ("images", "loss_old", "n_zero", "conv_run", "conv_at",
                                                               "status", "updates", "last_step", "last_loss")}
        return AscentState(**arrays, losses=[list(self.losses[i]) for i in idx], error=self.error)

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
    chunk ended at a snapshot step; ``status``: per-image status names so far; ``stage``: (index, count);
    ``compiling``: True for the call made just before a chunk that first compiles the steps (a slow wait on large
    models, during which a stop takes effect as soon as the compilation returns); ``at_once``: how many images
    climb at the same time (the batch, or fewer when the memory budget says so).
    """

    step: int
    total: int
    images: np.ndarray
    losses: np.ndarray
    snapshot: tuple | None
    status: list
    stage: tuple = (0, 1)
    compiling: bool = False
    at_once: int = 0


@dataclass
class _Snapshots:
    steps: list = field(default_factory=list)  # per image: list of step numbers
    images: list = field(default_factory=list)  # per image: list of (H, W, C)
    losses: list = field(default_factory=list)


@dataclass(frozen=True)
class AscentOptions:
    """How a batch climbs: step size, the convergence test, and the hooks a caller gives.

    epsilon: step size (the image moves by epsilon × the gradient scaled to unit RMS); conv_criterion: the relative
    loss change below which a step counts as converged; stop_on_convergence: end an image's run there;
    callback: f(Progress) after each chunk; cancelled: () -> bool polled between chunks; chunk_seconds: the wall
    time a chunk aims at (progress and cancel latency); at_once: how many images may climb at the same time
    (``oipwidgets.engine.memory``; None: all).
    """

    epsilon: float = 0.01
    conv_criterion: float = 5e-4
    stop_on_convergence: bool = False
    callback: Callable[[Progress], None] | None = None
    cancelled: Callable[[], bool] | None = None
    chunk_seconds: float = 0.04
    at_once: int | None = None  # at most this many images climb at the same time (the memory budget)


@dataclass(frozen=True)
class Stage:
    """One article loop within a run: ``steps`` steps, numbered from ``offset`` in a plan of ``total`` steps.

    snapshot_steps: 0-based steps within this stage whose images are kept (None: the article's schedule);
    index, count: which stage of how many (shown in progress).
    """

    steps: int
    snapshot_steps: tuple | None = None
    offset: int = 0
    total: int | None = None
    index: int = 0
    count: int = 1

    @property
    def marks(self) -> list[int]:
        return sorted(set(snapshot_schedule(self.steps) if self.snapshot_steps is None else self.snapshot_steps))


def ascend(loop: AscentLoop, state: AscentState, params: dict, options: AscentOptions, stage: Stage,
           snaps: _Snapshots | None = None) -> tuple[AscentState, _Snapshots]:
    """Run up to ``stage.steps`` steps of ``loop`` from ``state`` (its counters restart: one article loop), in chunks.

    ``options.cancelled()`` is watched while a chunk runs (the compiled steps end within one step when it turns
    True) and polled between chunks: the active images then get status "stopped". Returns the new state and the
    snapshots (appended to ``snaps`` when given).
    """
    b = state.images.shape[0]
    snaps = snaps or _Snapshots([[] for _ in range(b)], [[] for _ in range(b)], [[] for _ in range(b)])
    # each call is one article loop: fresh convergence/dead counters for the still-running images
    state.loss_old[:] = 0
    state.n_zero[:] = 0
    state.conv_run[:] = 0
    epsilon = tf.constant(options.epsilon, tf.float32)
    with _Halt(options.cancelled) as halt:
        try:
            conv_at_local = _chunks(loop, state, params, options, stage, snaps, epsilon, halt.flag)
        except Exception as exc:  # noqa: BLE001 - the run ends, keeping the steps done so far (state is whole
            # between chunks: it is only written after a chunk's numbers are all there)
            state.status[state.status == RUNNING] = ERROR
            state.error = exc
            conv_at_local = np.full(b, -1, np.int32)
    state.conv_at[:] = np.where((conv_at_local >= 0) & (state.conv_at < 0), conv_at_local + stage.offset,
                                state.conv_at)
    return state, snaps


def _chunks(loop, state, params, options, stage, snaps, epsilon, halt):
    """The chunk loop of ``ascend``; returns the convergence steps within this stage (-1: none)."""
    b = state.images.shape[0]
    steps, offset, marks = stage.steps, stage.offset, stage.marks
    total = steps if stage.total is None else stage.total
    where = (stage.index, stage.count)
    callback, cancelled = options.callback, options.cancelled
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
        counters = Counters(state.n_zero, state.conv_run, conv_at_local, state.status, np.zeros(b, np.int32),
                            np.zeros(b, np.int32)).copy()
        if callback is not None and not loop.traced(int(before.sum()), params, record, options.at_once):
            callback(Progress(step=offset + j, total=total, images=loop.images_of(state.images),
                              losses=_last_losses(state), snapshot=None, status=_names(state.status), stage=where,
                              compiling=True,
                              at_once=_at_once(b, options)))
        images, loss_old, counters, done, losses, trail = _run_live(
            loop, before, state.images, state.loss_old, counters, j, n, epsilon, options, params, record, halt
        )
        updated = counters.updated
        dt = time.perf_counter() - t0
        if done > 0:
            chunk = max(1, min(4096, int(options.chunk_seconds * done / max(dt, 1e-6))))
        first = [len(state.losses[k]) for k in range(b)]
        for k in np.flatnonzero(before):  # the losses each image really measured (a stopped one: up to its stop)
            state.losses[k].extend(float(v) for v in losses[: counters.measured[k], k])
        state.updates += updated
        moved = updated > 0  # an active image updates at every step from the chunk's start until it stops
        state.last_step[moved] = offset + j + updated[moved] - 1
        state.last_loss[moved] = losses[updated[moved] - 1, np.flatnonzero(moved)]
        state.images, state.loss_old, state.status = images, loss_old, counters.status
        state.n_zero, state.conv_run = counters.n_zero, counters.conv_run
        conv_at_local = counters.conv_at
        # snapshots: the steps of this chunk that are snapshot steps, for the images that made that step's update
        taken = [m for m in marks if j <= m < j + done] if trail is not None else (
            [j + done - 1] if done == n and (j + done - 1) in marks else []
        )
        for m in taken:
            local = m - j
            shown = loop.images_of(trail[local] if trail is not None else images)
            for k in np.flatnonzero(before & (updated > local)):
                _add_snapshot(snaps, k, offset + m, shown[k], state.losses[k][first[k] + local])
            if callback is not None and m != j + done - 1:
                callback(Progress(step=offset + m + 1, total=total, images=shown, losses=losses[local],
                                  snapshot=(offset + m, shown, losses[local]), status=_names(state.status),
                                  stage=where, at_once=_at_once(b, options)))
        j += done
        if callback is not None:
            last = taken[-1] if taken and taken[-1] == j - 1 else None
            now = loop.images_of(images)
            callback(Progress(step=offset + j, total=total, images=now, losses=_last_losses(state),
                              snapshot=None if last is None else (offset + last, now, _last_losses(state)),
                              status=_names(state.status), stage=where, at_once=_at_once(b, options)))
    return conv_at_local


class _Halt:
    """The flag the compiled steps read before every step, raised by a watcher thread as soon as ``cancelled()``
    says so: a stop then takes effect within one step, however long a chunk is."""

    def __init__(self, cancelled):
        self.flag = tf.Variable(False, trainable=False, name="oipwidgets_halt")
        self._cancelled, self._done, self._thread = cancelled, threading.Event(), None

    def __enter__(self) -> _Halt:
        if self._cancelled is not None:
            self._thread = threading.Thread(target=self._watch, name="oipwidgets-stop-watch", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(WATCH_SECONDS):
            if self._cancelled():
                self.flag.assign(True)
                return

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def _run_live(loop, live, images, loss_old, counters, j, n, epsilon, options, params, record, halt):
    """``loop.run_chunk`` on the images still running only (a stopped image costs nothing more), results scattered
    back into the whole batch: images, loss_old, counters, done, losses (done, B), trail (done, B, …) or None."""
    settings = (epsilon, options.conv_criterion, options.stop_on_convergence)
    if live.all():
        return loop.run_chunk(images, loss_old, counters, j, n, *settings, params, record, halt, options.at_once)
    idx = np.flatnonzero(live)
    sub = tf.nest.map_structure(lambda t: tf.gather(t, idx), params)
    im, lo, part, done, ls, tr = loop.run_chunk(images[idx], loss_old[idx], counters.take(idx), j, n, *settings, sub,
                                                record, halt, options.at_once)
    images, loss_old = images.copy(), loss_old.copy()
    images[idx], loss_old[idx] = im, lo
    counters.put(idx, part)
    losses = np.zeros((int(done), len(live)), np.float32)
    losses[:, idx] = ls
    trail = None
    if tr is not None:
        trail = np.zeros((int(done), *images.shape), np.float32)
        trail[:, idx] = tr
    return images, loss_old, counters, done, losses, trail


def _at_once(b: int, options: AscentOptions) -> int:
    return b if options.at_once is None else min(b, options.at_once)


def _names(status: np.ndarray) -> list:
    return [STATUS_NAMES[s] for s in status]


def _last_losses(state: AscentState) -> np.ndarray:
    return np.array([lk[-1] if lk else np.nan for lk in state.losses])


def _add_snapshot(snaps: _Snapshots, k: int, step: int, image: np.ndarray, loss: float) -> None:
    if snaps.steps[k] and snaps.steps[k][-1] == step:
        return
    snaps.steps[k].append(step)
    snaps.images[k].append(np.array(image, dtype=np.float32))
    snaps.losses[k].append(loss)
