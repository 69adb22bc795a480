"""LossCurves: the explorer's two views of a run's objective, one bqplot figure each, and a toggle between them.

* "objective": the objective per step (drawn live during a run);
* "relative change": the convergence measure the article printed, |loss_j − loss_{j−1}| / (|loss_j| + 1e-7), on a
  log scale, with the criterion drawn as a dashed line and the step where the run converged marked (after a run).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
from bqplot import Axis, Figure, LinearScale, Lines, LogScale

__all__ = ["LossCurves", "relative_change"]

MAX_CURVE_POINTS = 4000  # longer runs are drawn thinned: a curve, not megabytes
FLOOR = 1e-12  # a relative change of exactly 0 is drawn here (a log scale has no 0)


def relative_change(losses) -> np.ndarray:
    """The article's convergence measure per step (from step 1): |Δloss| / (|loss| + 1e-7), (n − 1,)."""
    losses = np.asarray(losses, np.float64)
    return np.abs(np.diff(losses)) / (np.abs(losses[1:]) + 1e-7)


def _figure(marks, x_scale, y_scale, y_label: str, y_format: str) -> Figure:
    return Figure(
        marks=marks,
        axes=[Axis(scale=x_scale, label="step", label_offset="32px"),
              Axis(scale=y_scale, side="left", label=y_label, tick_format=y_format, label_offset="52px")],
        fig_margin={"top": 10, "bottom": 42, "left": 72, "right": 12},
        layout=widgets.Layout(width="420px", height="220px"),
    )


class LossCurves:
    """The curves of one explorer: ``box`` holds the toggle and the figure shown."""

    def __init__(self):
        self.x, self.y = LinearScale(), LinearScale()
        self.line = Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32), scales={"x": self.x, "y": self.y},
                          colors=["#1f77b4"])
        self.figure = _figure([self.line], self.x, self.y, "objective", ".3g")
        self.figure.add_class("oip-loss")
        self.cx, self.cy = LinearScale(), LogScale()
        self.change = Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                            scales={"x": self.cx, "y": self.cy}, colors=["#1f77b4"])
        self.criterion = Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                               scales={"x": self.cx, "y": self.cy}, colors=["#b00020"], line_style="dashed",
                               labels=["criterion"], display_legend=False)
        self.converged = Lines(x=np.zeros(0, np.float32), y=np.zeros(0, np.float32),
                               scales={"x": self.cx, "y": self.cy}, colors=["#2e7d32"])
        self.change_figure = _figure([self.change, self.criterion, self.converged], self.cx, self.cy,
                                     "relative change", ".0e")
        self.change_figure.add_class("oip-change")
        self.toggle = widgets.ToggleButtons(options=["objective", "relative change"], value="objective",
                                            style={"button_width": "140px"})
        self.holder = widgets.Box([self.figure])
        self.toggle.observe(lambda change: self._show(change["new"]), names="value")
        self.box = widgets.VBox([self.toggle, self.holder])

    def _show(self, which: str) -> None:
        self.holder.children = [self.figure if which == "objective" else self.change_figure]

    def live(self, steps, losses) -> None:
        """The objective so far (during a run)."""
        self.line.x = np.asarray(steps, np.float32)
        self.line.y = np.asarray(losses, np.float32)

    def clear(self) -> None:
        self.live([], [])
        for mark in (self.change, self.criterion, self.converged):
            mark.x, mark.y = np.zeros(0, np.float32), np.zeros(0, np.float32)

    def result(self, losses, criterion: float, converged_at: int | None) -> None:
        """Both curves of a finished run: the objective, its relative change with the criterion and the step where
        the run converged (a vertical line), thinned to at most MAX_CURVE_POINTS points."""
        losses = np.asarray(losses, np.float64)
        stride = max(1, len(losses) // MAX_CURVE_POINTS)
        with self.figure.hold_sync(), self.change_figure.hold_sync():
            self.line.x = np.arange(len(losses), dtype=np.float32)[::stride]
            self.line.y = losses.astype(np.float32)[::stride]
            rel = np.maximum(relative_change(losses), FLOOR) if len(losses) > 1 else np.zeros(0)
            self.change.x = np.arange(1, len(losses), dtype=np.float32)[::stride]
            self.change.y = rel.astype(np.float32)[::stride]
            end = float(max(1, len(losses) - 1))
            self.criterion.x = np.array([1.0, end], np.float32)
            self.criterion.y = np.array([criterion, criterion], np.float32)
            if converged_at is not None and len(rel):
                low, high = float(max(rel.min(), FLOOR)), float(max(rel.max(), criterion))
                self.converged.x = np.array([converged_at, converged_at], np.float32)
                self.converged.y = np.array([low, high], np.float32)
            else:
                self.converged.x, self.converged.y = np.zeros(0, np.float32), np.zeros(0, np.float32)
