"""No TensorFlow native log lines when oipwidgets is imported (oipwidgets/quiet.py), and nothing lost on failure."""

import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_importing_oipwidgets_prints_nothing_to_stderr():
    proc = run("""
        import oipwidgets, tensorflow as tf
        print(tf.config.threading.get_intra_op_parallelism_threads())
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # no "absl::InitializeLog", oneDNN, cudart or cuInit lines
    assert proc.stdout.strip() == "0"  # TensorFlow's own threading: oipwidgets changes nothing (tests/test_runtime.py)


def test_held_lines_are_dropped_on_success_and_replayed_on_failure():
    proc = run("""
        import os, sys
        from oipwidgets.quiet import native_stderr_held
        with native_stderr_held():
            os.write(2, b"native chatter\\n")
        os.write(2, b"after the block\\n")
        try:
            with native_stderr_held():
                os.write(2, b"why the import failed\\n")
                raise ImportError("no tensorflow")
        except ImportError:
            print("raised", file=sys.stderr)
    """)
    assert proc.returncode == 0
    assert "native chatter" not in proc.stderr
    assert proc.stderr.index("after the block") < proc.stderr.index("why the import failed") < proc.stderr.index(
        "raised")
