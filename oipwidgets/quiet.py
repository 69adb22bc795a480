"""Hold back TensorFlow's native start-up log lines while oipwidgets imports it.

On a CPU-only machine TensorFlow 2.21 writes lines such as "All log messages before absl::InitializeLog() is called
are written to STDERR", oneDNN and CUDA notes and "failed call to cuInit" straight to file descriptor 2 while it
loads and first looks for devices — before absl's log initialisation, so neither ``TF_CPP_MIN_LOG_LEVEL`` nor
absl's flags reach them. In a notebook they land in the importing cell as a red block. ``native_stderr_held()``
points descriptor 2 at a temporary file for the duration of the import only and points it back afterwards (no
lasting change); if the import fails, what was held back is written to ``sys.stderr`` with the error. Python-level
warnings in a notebook go through ``sys.stderr``, not descriptor 2, and are not affected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

__all__ = ["native_stderr_held"]


@contextlib.contextmanager
def native_stderr_held():
    """Redirect file descriptor 2 to a temporary file inside the block; on an exception, replay it to stderr."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 to hold (an embedded interpreter)
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
