"""The atlas's progress bar: channels done (one channel of one seed = one OIP) out of all, in a notebook or a terminal.

In a Jupyter kernel it is an ipywidgets ``IntProgress`` with a label beside it; elsewhere a line on stderr redrawn
in place (``\\r``). ``compute()`` feeds it from ``distributed.as_completed``: each finished task adds its block's
channels. (tqdm is not needed: the notebook bar is an ipywidget, as the rest of oipwidgets.)
"""

from __future__ import annotations

import sys
import time

__all__ = ["ChannelProgress", "in_notebook"]

_WIDTH = 30


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets are shown), False in a terminal or a plain script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class ChannelProgress:
    """Counts channels done of ``total`` (``done`` of them before this run), shown as a bar labelled ``label``.

    ``show``: True (a widget in a notebook, else text on stderr), "text", "widget" or False (count only).
    ``unit``: what is counted ("channels"; "images" for the dataset examples' pass); ``total`` 0: not known (the
    bar then shows the count only).
    """

    def __init__(self, total: int, done: int = 0, label: str = "atlas", show=True, stream=None,
                 unit: str = "channels"):
        self.total, self.done, self.label, self.unit = int(total), int(done), label, unit
        self.start_done = self.done
        self.t0 = time.perf_counter()
        self.stream = stream or sys.stderr
        self.mode = ("widget" if in_notebook() else "text") if show is True else (show or None)
        self._widget = None
        if self.mode == "widget":
            import ipywidgets as widgets
            from IPython.display import display

            self._bar = widgets.IntProgress(value=self.done, min=0, max=max(1, self.total),
                                            description=label, layout=widgets.Layout(width="50%"))
            self._text = widgets.Label(self._caption())
            self._widget = widgets.HBox([self._bar, self._text])
            display(self._widget)
        elif self.mode == "text":
            self._draw()

    def advance(self, channels: int) -> None:
        """``channels`` more are done."""
        self.done = self.done + int(channels)
        if self.total:
            self.done = min(self.total, self.done)
        if self.mode == "widget":
            self._bar.value = min(self.done, self._bar.max)
            self._text.value = self._caption()
        elif self.mode == "text":
            self._draw()

    def close(self, note: str = "") -> None:
        """The final state, with ``note`` ("interrupted: …") after it."""
        if self.mode == "widget":
            self._text.value = self._caption() + (f" — {note}" if note else "")
            self._bar.bar_style = "success" if self.done >= self.total and not note else "warning"
            self._bar.value = self._bar.max if self.done >= self.total and not note else self._bar.value
        elif self.mode == "text":
            self._draw(note)
            self.stream.write("\n")
            self.stream.flush()

    def _caption(self) -> str:
        count = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        return f"{count} {self.unit} {time.perf_counter() - self.t0:6.1f} s"

    def _draw(self, note: str = "") -> None:
        frac = self.done / max(1, self.total) if self.total else 0.0
        filled = int(round(_WIDTH * frac))
        self.stream.write(f"\r{self.label} [{'#' * filled}{'-' * (_WIDTH - filled)}] {self._caption()}"
                          + (f" — {note}" if note else ""))
        self.stream.flush()
