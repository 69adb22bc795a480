"""Worker: runs one long job at a time in a background thread, so the notebook kernel stays free.

A job is ``job(cancel: threading.Event) -> value`` and must poll ``cancel``; ``on_done(value, error)`` is called in
the worker thread when it ends (``error`` is the exception, or None). Starting a new job cancels the running one
first and waits for it, so two jobs never overlap.
"""

from __future__ import annotations

import threading

__all__ = ["Worker", "RunsInBackground"]


class Worker:
    def __init__(self, name: str = "oipwidgets-worker"):
        self.name = name
        self._thread: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._lock = threading.Lock()
        self.value = None
        self.error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, job, on_done=None) -> threading.Event:
        """Cancel any running job and start ``job`` in a new daemon thread, which first waits for the old one to
        end: two jobs never run at once, and the caller (the kernel thread) never waits. Returns the cancel event."""
        with self._lock:
            previous = self._thread
            self.cancel(wait=False)
            cancel = threading.Event()

            def body():
                if previous is not None:
                    previous.join()
                value, error = None, None
                try:
                    value = job(cancel)
                except BaseException as exc:  # noqa: BLE001 - reported to on_done, never lost
                    error = exc
                self.value, self.error = value, error
                if on_done is not None:
                    on_done(value, error)

            self.value, self.error = None, None
            self._cancel = cancel
            self._thread = threading.Thread(target=body, name=self.name, daemon=True)
            self._thread.start()
            return cancel

    def cancel(self, wait: bool = True, timeout: float = 0.2) -> None:
        """Ask the running job to stop; with ``wait``, block until its thread has ended, at most ``timeout`` s (a
        stop takes effect within one step; a longer step finishes in the background)."""
        if self._cancel is not None:
            self._cancel.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def outcome(self, timeout: float | None = None):
        """Wait for the job to end; return its value, or raise its exception."""
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.value

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


class RunsInBackground:
    """Mixin for widgets whose runs go to a ``Worker`` (``self._worker``): launch (optionally waiting), stop, wait.

    The widget provides ``_on_done(value, error, run_id)`` (called in the worker thread) and a ``result`` trait.
    """

    def _launch(self, job, run_id: int, wait: bool):
        self._worker.start(job, lambda value, error: self._on_done(value, error, run_id))
        if wait:
            try:
                self._worker.outcome()  # raises what the run raised
            except KeyboardInterrupt:  # Ctrl-C / the notebook's interrupt: the run stops too
                self._worker.cancel(wait=True, timeout=2.0)
                raise
            return self.result
        return None

    def stop(self) -> None:
        """Stop the running run; what was done so far stays shown and becomes ``result`` (status "stopped")."""
        self._worker.cancel(wait=False)

    def wait(self, timeout: float | None = None):
        """Block until the current run has ended; returns ``result``."""
        self._worker.join(timeout)
        return self.result
