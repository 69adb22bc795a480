"""Bad and edge inputs, tried as a demanding user would: how many get a clear error, crash, hang or return garbage.

Run: .venv/bin/python benchmarks/bench_inputs.py [--only AREA] [--verbose]
Each case is a call with one bad (or unusual but valid) input. Outcomes:
  clear error   raised by oipwidgets itself (the raising frame is in the package) as ValueError/TypeError/
                IndexError/KeyError/FileNotFoundError, a TraitError (traitlets names the trait and, for an Enum,
                the valid choices), or the CLI's exit 2 with an "error:" line;
  crash         any other exception, or one raised deep inside TensorFlow/numpy/bqplot/traitlets;
  hang          still running after --timeout seconds, or more than --max-gb of extra peak memory;
  garbage       a bad input accepted, or a valid one that returned non-finite images / a wrong shape;
  worked        a valid edge input that returned a finite result of the right shape.
Target: 0 crash, 0 hang, 0 garbage. The cases live in ``bench_inputs_cases.py`` beside this file.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import resource
import sys
import threading
import time
import traceback
from pathlib import Path

from traitlets import TraitError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_inputs_cases  # noqa: E402  (the catalogue, beside this file)

import oipwidgets  # noqa: E402

PACKAGE = str(Path(oipwidgets.__file__).resolve().parent)
CLEAR = (ValueError, TypeError, TraitError, IndexError, KeyError, FileNotFoundError)
OUTCOMES = ("clear error", "crash", "hang", "garbage", "worked")


def raised_in_package(exc: BaseException) -> bool:
    """True when the frame that raised ``exc`` (or the exception it chains from, when re-raised on purpose) is
    oipwidgets' own code: the package checked the input instead of letting a library fail on it."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(PACKAGE)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def classify(case, timeout: float, max_gb: float) -> tuple[str, str]:
    """Run one case in a daemon thread; (outcome, detail)."""
    box: dict = {}
    peak0 = peak_mb()

    def target():
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                box["value"] = case.call()
        except SystemExit as exc:  # the CLI
            box["exit"] = (exc.code, stderr.getvalue())
        except BaseException as exc:  # noqa: BLE001 — what is being classified
            box["error"] = exc

    t0 = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return "hang", f"still running after {timeout:.0f} s"
    if peak_mb() - peak0 > max_gb * 1024:
        return "hang", f"peak memory grew by {(peak_mb() - peak0) / 1024:.1f} GB"
    seconds = time.perf_counter() - t0
    if "exit" in box:
        code, err = box["exit"]
        if code == 2 and "error:" in err:
            return ("clear error" if case.bad else "garbage"), err.strip().splitlines()[-1][:160]
        return "crash", f"exit {code}: {err.strip()[-160:]}"
    if "error" in box:
        exc = box["error"]
        text = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        if not case.bad:
            return "crash", "valid input refused: " + text
        if isinstance(exc, TraitError) or (isinstance(exc, CLEAR) and raised_in_package(exc)):
            return "clear error", text
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return "crash", f"{text} (raised in {Path(where.filename).name}:{where.lineno})"
    if case.bad:
        return "garbage", f"accepted: returned {type(box.get('value')).__name__} in {seconds:.1f} s"
    problem = case.check(box.get("value"))
    return ("garbage", problem) if problem else ("worked", f"{seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only the cases of this area")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case counts as a hang")
    parser.add_argument("--max-gb", type=float, default=4.0, help="extra peak memory that counts as a blow-up")
    parser.add_argument("--verbose", action="store_true", help="print every case, not only the failures")
    args = parser.parse_args()
    cases = [c for c in bench_inputs_cases.cases() if args.only in (None, c.area)]
    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    bad_lines = []
    t0 = time.perf_counter()
    for case in cases:
        outcome, detail = classify(case, args.timeout, args.max_gb)
        table[case.area][outcome] += 1
        line = f"  [{outcome:11s}] {case.area}: {case.name} -> {detail}"
        if outcome in ("crash", "hang", "garbage"):
            bad_lines.append(line)
        if args.verbose or outcome in ("crash", "hang", "garbage"):
            print(line, flush=True)
    total = collections.Counter()
    print(f"\n{'area':12s} {'tried':>6s} " + " ".join(f"{o:>12s}" for o in OUTCOMES))
    for area, counts in table.items():
        total.update(counts)
        print(f"{area:12s} {sum(counts.values()):6d} " + " ".join(f"{counts[o]:12d}" for o in OUTCOMES))
    print(f"{'all':12s} {sum(total.values()):6d} " + " ".join(f"{total[o]:12d}" for o in OUTCOMES))
    failures = total["crash"] + total["hang"] + total["garbage"]
    print(f"\ncrash / hang / garbage: {total['crash']} / {total['hang']} / {total['garbage']} "
          f"(target 0 / 0 / 0): {'PASS' if failures == 0 else 'FAIL'}   [{time.perf_counter() - t0:.0f} s]")
    sys.stdout.flush()
    os._exit(0 if failures == 0 else 1)  # a hung case's thread must not keep the process alive


if __name__ == "__main__":
    main()
