"""oipwidgets beside its peers (tf-keras-vis, Xplique) on the same work: one process per run, runs alternated,
medians and ratios printed.

Run: ``.venv/bin/python benchmarks/bench_peers.py`` (10–15 minutes on 2 cores; the first time it also builds the
peers' venvs, a minute more). Options: ``--case i|ii|both``, ``--libs oipwidgets,tf-keras-vis,xplique``,
``--repeats N`` (``--repeats-ii N`` for case ii alone), ``--quick`` (1 repeat, 50 / 32 steps: a smoke test, its
ratios mean little), ``--width`` (case ii's model width), ``--envs DIR`` (where the peers' venvs live, default
``~/.cache/oipwidgets-bench``), ``--timeout`` (seconds per run), ``--keep`` (keep the work directory),
``--oipw-threads VALUE`` (``OIPWIDGETS_TF_THREADS`` for the oipwidgets runs only).

The cases (the project's issue):

(i) the article's CNN (``ow.load_default_model("mnist")``), all 64 maps of ``Conv2D_3`` at once, map-mean
    objective, 400 steps, pixel parameterisation, no transforms.
(ii) a VGG-style model of random weights (seeded): VGG16's convolutional base on 128×128×3, every layer ``--width``
    × as wide (default 0.5: 32, 64, 128, 256, 256 maps per block, a quarter of VGG16's FLOPs, to keep the run
    short on 2 cores; ``--width 1`` is VGG16's), the first 16 maps of ``block3_conv3`` (the middle block), 256
    steps, each library's Fourier / decorrelated parameterisation with its standard transforms.

How a run is measured (``benchmarks/peers/``): the orchestrator (this file, standard library only) has
``peers/prepare.py`` write each case's model to a ``.keras`` file and draw the start images once, so every library
sees the same weights. Each run is a fresh process, ``peers/run_<library>.py``, in that library's environment:
it loads the model, does one short warm-up call (a few steps, same settings), then times one full call with
``time.perf_counter`` (what a user calls: ``run_layer``, ``ActivationMaximization.__call__``, ``optimize``) and
prints one JSON line. Per case the runs alternate (repeat 1: every library, repeat 2: every library, …), so slow
drifts of a noisy host hit all libraries alike.

The model's input form is the per-image standardised image (the article's; for the random VGG-style model it fixes
the image's scale, which a ReLU network's activations otherwise grow with). oipwidgets re-standardises its image
itself (``input_mode="standardize"``); the peers get the same layers behind a standardisation layer
(``peers/common.py: peer_model``), so they may keep the image in their own range.

The objective, the same for all: each library's final images, standardised (``tf.image.per_image_standardization``;
Xplique's 3-channel workaround images are first averaged to one channel), go through
``keras.Model(model.inputs, layer.output)`` — the output *after* the layer's ReLU — and the spatial mean of the
channel each image was made for is read. "obj mean" / "obj median" are the mean and median over the channels (each
the median over the runs).

Columns: ``runs`` (ok / done), ``median s`` (wall time of the timed call, median over runs, with min–max),
``obj mean``, ``obj median``, ``× oipw``: the row's median time ÷ oipwidgets' (how many times slower than
oipwidgets), ``warm-up s``: the median time of the warm-up call (a few steps; for oipwidgets mostly the trace of its
compiled loop, which the timed call then reuses; Xplique traces again in every call, the timed one included),
``GFLOP/s``: the convolutions' arithmetic (forward + input gradient up to the layer, per image and step) ÷ median s:
how close a library runs to the machine's arithmetic rate (bench_engine.py measures it); a case whose libraries
all run near that rate cannot be sped up 3× without doing less arithmetic.
The verdict: the fastest working peer's median time ÷ oipwidgets' against the target (≥ 3×), and
oipwidgets' objective (mean and median over channels) against that peer's: "same or better" = at least 98 % of it.

What differs (also printed with the table):
* Variants of oipwidgets (``peers/run_oipwidgets.py: parse_variant``): ``[step 0.1, 1/2 of the steps]`` (case i:
  the article's climb with a step of 0.1 instead of 0.01, 200 of the 400 steps) and ``[1/4 of the steps]``
  (case ii: its recipe stopped after 64 of the 256 steps). Their verdicts ask the question the target poses — how
  much sooner does oipwidgets reach at least the peers' objective — and are printed beside the full-length
  one, not instead of it.
* Threads: oipwidgets runs with what ``import oipwidgets`` sets up by default (``--oipw-threads`` sets
  ``OIPWIDGETS_TF_THREADS`` for its runs), the peers with TensorFlow's default threading; the intra-op threads and
  the number of parts oipwidgets splits the batch into are printed with the versions.
* tf-keras-vis 0.8.7 (installs beside TF 2.21, Keras 3): eager loop, one GradientTape per step; optimiser its
  default RMSprop(1.0, rho=0.999) (oipwidgets: the article's RMS-normalised step 0.01 in (i), Adam 0.05 in (ii));
  it starts from the same start images as oipwidgets (its Rotate2D draws angles from an unseeded generator, so
  its (ii) objective varies between runs). In (ii) it has no Fourier parameterisation (climbs pixels)
  and its standard set is different: Jitter(4) + Rotate2D(1°) modifiers and TotalVariation2D(1.0) + Norm(0.3, L1)
  regularisers (on the image before standardisation).
* Xplique: 2.0.x wants ``tensorflow[and-cuda]<=2.20`` on Linux, so 1.3.3 is the one that installs beside TF 2.21.
  Defaults: Adam(0.05), its own random start (std 0.01), sigmoid then min–max to (0, 1). In (i) it fails on the
  1-channel model (its colour recorrelation reshapes every image to 3 channels even with ``use_fft=False``): that
  row reports the failure; the row marked ``[rgb-wrapper]`` is a workaround (a 3-channel input averaged into the
  model's one channel). In (ii): Fourier with decay 0.85 (oipwidgets: 1.0) and ImageNet colour decorrelation, its
  standard transformations, ``custom_shape=(128, 128)`` (its default climbs a 512×512 image resized to the
  model's 128). Those transformations pad by 32 px, crop by 16 + 16 + 32 + 32 + 32 px, scale by 0.92–0.96, blur,
  crop by 8 + 8 px, flip, and resize what is left (about 44 px) back to 128: the model sees a window of the image
  magnified about 2.9× while it climbs, whereas the objective reads the whole final image at scale 1 (as it does
  for every library). oipwidgets' standard set keeps the scale (shifts ±12/±8/±4 px, zoom 0.9–1.1, turn ±10°).
  Each ``optimize`` call traces its step anew: the timed call includes that trace.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS_DIR = Path(__file__).resolve().parent / "peers"
RESULT_TAG = "BENCH_RESULT "
TARGET_SPEEDUP = 3.0
SAME_OBJECTIVE = 0.98  # "the same or better objective": at least this fraction of the peer's
SEED = 1
NOISE_PREFIXES = ("I0000", "W0000", "E0000", "WARNING: All log messages")


# ----------------------------------------------------------------------------------------------- environments
@dataclass(frozen=True)
class Env:
    """A peer's venv: python -m venv, a .pth onto the project's site-packages (TensorFlow, Keras, NumPy are used
    from there, not downloaded again), the library with --no-deps, then its small dependencies resolved by pip under
    a constraints file pinning everything the project has (so pip cannot replace TensorFlow, Keras or NumPy)."""

    name: str
    package: str  # pip requirement of the library, pinned
    deps: tuple  # its other dependencies, installed with the constraints
    module: str  # what the runner imports

    def key(self) -> dict:
        return {"package": self.package, "deps": list(self.deps), "module": self.module}


ENVS = {
    "tf-keras-vis": Env("tf-keras-vis-0.8.7", "tf-keras-vis==0.8.7",
                        ("deprecated", "imageio", "pillow", "scipy", "packaging"), "tf_keras_vis"),
    # opencv-python is declared; the headless build gives the same cv2 without GUI libraries
    "xplique": Env("xplique-1.3.3", "xplique==1.3.3",
                   ("deprecated", "scipy", "scikit-learn", "scikit-image", "opencv-python-headless", "matplotlib"),
                   "xplique"),
}


def project_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def run_quiet(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def last_line(text: str) -> str:
    """The last meaningful line of a process's output (TensorFlow's log lines skipped)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(NOISE_PREFIXES)]
    return lines[-1][:300] if lines else "(no output)"


def project_site(python: str) -> str:
    done = run_quiet([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True)
    return done.stdout.strip()


def base_interpreter(python: str) -> str:
    """The interpreter the project's venv was made from (a venv made from a venv's python would nest)."""
    done = run_quiet([python, "-c", "import sys; print(getattr(sys, '_base_executable', sys.executable))"],
                     check=True)
    return done.stdout.strip()


def ensure_env(env: Env, envs_dir: Path, python: str) -> tuple[str | None, str]:
    """(the peer's python, what was done) — or (None, why not). Idempotent: a marker file records a finished
    setup for this spec and project; a matching one is reused as it is."""
    where = envs_dir / env.name
    marker = where / "ready.json"
    peer_python = where / "bin" / "python"
    try:
        site = project_site(python)
        frozen = run_quiet([python, "-m", "pip", "freeze", "--exclude-editable"], check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        return None, f"cannot read the project's environment: {type(err).__name__}: {err}"
    pins = "".join(ln + "\n" for ln in frozen.splitlines() if "==" in ln)
    want = {"spec": env.key(), "project_site": site, "project_pins": hashlib.sha256(pins.encode()).hexdigest()}
    if marker.exists() and peer_python.exists():
        try:
            have = json.loads(marker.read_text())
            if {k: have.get(k) for k in want} == want:
                return str(peer_python), f"reused {where}"
        except (OSError, ValueError):
            pass
    steps = []
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        done = run_quiet([base_interpreter(python), "-m", "venv", "--clear", where])
        if done.returncode:
            return None, f"venv failed: {last_line(done.stderr)}"
        steps.append("venv")
        peer_site = run_quiet([peer_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True).stdout.strip()
        (Path(peer_site) / "oipwidgets_bench_project.pth").write_text(site + "\n")
        steps.append(f".pth → {site}")
        constraints = where / "constraints.txt"
        constraints.write_text(pins)
        pip = [peer_python, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        for cmd, what in ((pip + ["--no-deps", env.package], f"pip --no-deps {env.package}"),
                          (pip + ["-c", constraints, *env.deps], f"pip -c constraints {' '.join(env.deps)}")):
            done = run_quiet(cmd)
            if done.returncode:
                return None, f"{what} failed: {last_line(done.stderr + done.stdout)}"
            steps.append(what)
        check = run_quiet([peer_python, "-c", f"import {env.module}, tensorflow, keras, numpy; "
                           "print(tensorflow.__version__, keras.__version__, numpy.__version__)"],
                          env=child_env())
        if check.returncode:
            return None, f"import {env.module} failed: {last_line(check.stderr)}"
        steps.append(f"import ok (TF, Keras, NumPy {check.stdout.strip()})")
        marker.write_text(json.dumps({**want, "steps": steps}, indent=1))
        return str(peer_python), "built " + str(where) + ": " + "; ".join(steps)
    except (OSError, subprocess.CalledProcessError) as err:
        return None, f"setup failed after {steps}: {type(err).__name__}: {err}"


def child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


# ----------------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Entry:
    """One row of a case: a library (and a variant of how it is run)."""

    library: str
    runner: str
    variant: str | None = None

    @property
    def label(self) -> str:
        return self.library + (f" [{self.variant}]" if self.variant else "")


ENTRIES = {
    "i": [Entry("oipwidgets", "run_oipwidgets.py"),
          Entry("oipwidgets", "run_oipwidgets.py", "step 0.1, 1/2 of the steps"),
          Entry("tf-keras-vis", "run_tf_keras_vis.py"),
          Entry("xplique", "run_xplique.py"), Entry("xplique", "run_xplique.py", "rgb-wrapper")],
    "ii": [Entry("oipwidgets", "run_oipwidgets.py"), Entry("oipwidgets", "run_oipwidgets.py", "1/4 of the steps"),
           Entry("tf-keras-vis", "run_tf_keras_vis.py"),
           Entry("xplique", "run_xplique.py")],
}

DIFFERS = {
    ("i", "oipwidgets [step 0.1, 1/2 of the steps]"): "the article's climb with a step (epsilon) of 0.1 instead of "
                                                      "its 0.01, stopped after half the steps: the time to reach "
                                                      "the peers' objective (their steps are not the article's "
                                                      "either)",
    ("i", "tf-keras-vis"): "eager loop (one tape per step); its default optimiser RMSprop(1.0, rho=0.999) instead "
                           "of the RMS-normalised step 0.01; no modifiers, no regularisers; same start images",
    ("i", "xplique"): "1-channel model as it is: expected to fail (colour recorrelation reshapes to 3 channels)",
    ("i", "xplique [rgb-wrapper]"): "WORKAROUND: 3-channel input averaged into the model's 1 channel; Adam(0.05), "
                                    "its own random start (std 0.01), sigmoid + min-max to (0, 1)",
    ("ii", "oipwidgets [1/4 of the steps]"): "the same recipe stopped after a quarter of the steps: "
                                             "the time oipwidgets needs to reach the peers' objective, if it does "
                                             "(the verdict checks the objective too)",
    ("ii", "tf-keras-vis"): "no Fourier parameterisation (pixels); Jitter(4) + Rotate2D(1°), TotalVariation2D(1.0) "
                            "+ Norm(0.3, L1) regularisers; RMSprop(1.0, rho=0.999); eager; same start images",
    ("ii", "xplique"): "Fourier decay 0.85 (oipwidgets 1.0); its standard transformations, which feed the model a "
                       "~44 px window magnified ~2.9× (the objective reads the whole image at scale 1); "
                       "custom_shape=(128, 128); Adam(0.05); own random start; sigmoid + min-max to (0, 1); "
                       "step traced anew per call",
}


@dataclass
class Row:
    entry: Entry
    runs: list = field(default_factory=list)  # result dicts (with "seconds") or {"error": ...}

    @property
    def ok(self) -> list:
        return [r for r in self.runs if "error" not in r]

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.ok)


def run_one(python: str, entry: Entry, job: dict, timeout: float, extra_env: dict | None = None) -> dict:
    """One measurement in a fresh process: the runner's result line, or {"error": its last line}."""
    job = {**job, "variant": entry.variant}
    t0 = time.perf_counter()
    try:
        done = run_quiet([python, PEERS_DIR / entry.runner, json.dumps(job)], env=child_env(extra_env),
                         timeout=timeout, cwd=PEERS_DIR)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    wall = time.perf_counter() - t0
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if not lines:
        return {"error": f"exit {done.returncode}: {last_line(done.stderr)}", "process_s": wall}
    result = json.loads(lines[-1][len(RESULT_TAG):])
    result["process_s"] = wall
    return result


def describe_run(result: dict) -> str:
    if "error" in result:
        return f"FAILED  {result['error'][:200]}"
    return (f"{result['seconds']:8.2f} s  obj mean {result['objective_mean']:.4g}  median "
            f"{result['objective_median']:.4g}  (process {result['process_s']:.1f} s)")


def run_case(case: str, spec: dict, entries: list, pythons: dict, args) -> list[Row]:
    steps = args.steps_i if case == "i" else args.steps_ii
    repeats = args.repeats if case == "i" else args.repeats_ii
    job = {"case": case, "model": spec["model"], "starts": spec["starts"], "layer": spec["layer"],
           "channels": spec["channels"], "steps": steps, "warmup_steps": args.warmup, "seed": SEED}
    rows = [Row(e) for e in entries]
    for rep in range(1, repeats + 1):
        for row in rows:
            python = pythons.get(row.entry.library)
            if isinstance(python, dict):  # setup failed: one row saying why
                if not row.runs:
                    row.runs.append(python)
                continue
            if row.runs and not row.ok:  # its first run failed (a deterministic error such as Xplique's on 1
                # channel, or a timeout): repeating it would only cost time
                continue
            extra = ({"OIPWIDGETS_TF_THREADS": args.oipw_threads}
                     if row.entry.library == "oipwidgets" and args.oipw_threads is not None else None)
            result = run_one(python, row.entry, job, args.timeout, extra)
            row.runs.append(result)
            print(f"  case {case} repeat {rep}/{repeats}  {row.entry.label:<40} {describe_run(result)}", flush=True)
    return rows


# ----------------------------------------------------------------------------------------------- report
def fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"


def print_table(case: str, spec: dict, rows: list[Row], steps: int) -> None:
    print(f"\nCase ({case}): {spec['layer']} of {spec['name']}, {len(spec['channels'])} maps, {steps} steps "
          f"(layer output {spec['layer_shape']}, {spec['gflops_to_layer']:.3g} GFLOP forward per image to it)")
    work = work_gflop(spec, steps)  # a row that ran fewer steps (a variant) is credited with its own work
    print(f"  work per run ≈ {work:,.0f} GFLOP (convolutions up to the layer, forward + input gradient, "
          f"{len(spec['channels'])} images × {steps} steps)")
    base = next((r for r in rows if r.entry.library == "oipwidgets" and r.ok), None)
    if base is not None:
        info = base.ok[0].get("versions", {})
        print(f"  oipwidgets ran with TF intra-op threads {info.get('threads', {}).get('intra_op')} (0 = TensorFlow's "
              f"default), its batch split into {info.get('workers')} part(s)")
    wide = max([24] + [len(r.entry.label) for r in rows])
    head = (f"  {'library':<{wide}} {'runs':>5} {'median s':>9} {'(min–max)':>16} {'obj mean':>9} {'obj median':>10} "
            f"{'× oipw':>7} {'warm-up s':>9} {'GFLOP/s':>8}")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for row in rows:
        runs = f"{len(row.ok)}/{len(row.runs)}"
        if not row.ok:
            why = row.runs[0]["error"] if row.runs else "not run"
            print(f"  {row.entry.label:<{wide}} {runs:>5}   fails: {why[:160]}")
            continue
        secs = [r["seconds"] for r in row.ok]
        ratio = f"{row.median('seconds') / base.median('seconds'):.2f}" if base else "-"
        print(f"  {row.entry.label:<{wide}} {runs:>5} {row.median('seconds'):9.2f} "
              f"{f'({min(secs):.2f}–{max(secs):.2f})':>16} {fmt(row.median('objective_mean')):>9} "
              f"{fmt(row.median('objective_median')):>10} {ratio:>7} {row.median('warmup_seconds'):9.2f} "
              f"{work_gflop(spec, row.ok[0].get('steps', steps)) / row.median('seconds'):8.0f}")
        failed = [r["error"] for r in row.runs if "error" in r]
        if failed:
            print(f"  {'':<{wide}} {len(failed)} run(s) failed: {failed[0][:160]}")
    for own in (r for r in rows if r.entry.library == "oipwidgets" and r.ok):  # one verdict per oipwidgets row
        verdict(case, rows, own)
    print("  what differs:")
    for row in rows:
        note = DIFFERS.get((case, row.entry.label))
        if note:
            print(f"    {row.entry.label}: {note}")


def work_gflop(spec: dict, steps: int) -> float:
    """The arithmetic every library must do per run: forward and input gradient (about as much again) of the
    convolutions up to the layer, per image and step (pooling, activations, transforms not counted)."""
    return 2.0 * spec["gflops_to_layer"] * len(spec["channels"]) * steps


def verdict(case: str, rows: list[Row], base: Row | None) -> None:
    peers = [r for r in rows if r.entry.library != "oipwidgets" and r.ok]
    if base is None or not peers:
        print(f"  verdict: n/a ({'oipwidgets failed' if base is None else 'no peer ran'})")
        return
    fastest = min(peers, key=lambda r: r.median("seconds"))
    speedup = fastest.median("seconds") / base.median("seconds")
    obj = {k: base.median(k) / fastest.median(k) if fastest.median(k) > 0 else float("inf")
           for k in ("objective_mean", "objective_median")}
    fast_ok = speedup >= TARGET_SPEEDUP
    obj_ok = all(v >= SAME_OBJECTIVE for v in obj.values())
    me = base.entry.label
    print(f"  {me}: fastest peer {fastest.entry.label}; its time / {me}'s = {speedup:.2f}× (target ≥ "
          f"{TARGET_SPEEDUP:g}×): {'PASS' if fast_ok else 'FAIL'}")
    print(f"  objective {me} / {fastest.entry.label}: mean {obj['objective_mean']:.3f}, median "
          f"{obj['objective_median']:.3f} (target ≥ {SAME_OBJECTIVE:g}): {'PASS' if obj_ok else 'FAIL'}")
    others = [f"{r.entry.label} {base.median('objective_mean') / r.median('objective_mean'):.3f}"
              for r in peers if r is not fastest and r.median("objective_mean") > 0]
    if others:
        print(f"  objective mean {me} / other peers: {', '.join(others)}")
    print(f"  case ({case}) target with {me}: {'PASS' if fast_ok and obj_ok else 'FAIL'}")


def print_versions(rows_by_case: dict) -> None:
    seen = {}
    for rows in rows_by_case.values():
        for row in rows:
            for r in row.ok:
                seen.setdefault(row.entry.library, r.get("versions", {}))
    for lib, info in seen.items():
        parts = [f"{name} {v['version']} ({v['path']})" for name, v in info.items() if isinstance(v, dict)
                 and "version" in v]
        threads = info.get("threads", {})
        env = "".join(f", {k}={v if v is not None else '(unset)'}" for k, v in info.get("env", {}).items())
        print(f"  {lib}: " + "; ".join(parts) + f"; TF threads intra {threads.get('intra_op')} inter "
              f"{threads.get('inter_op')} (0 = TensorFlow's default)"
              + env)


# ----------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--case", choices=("i", "ii", "both"), default="both")
    p.add_argument("--libs", default="oipwidgets,tf-keras-vis,xplique",
                   help="comma-separated: oipwidgets, tf-keras-vis, xplique (default all)")
    p.add_argument("--repeats", type=int, default=3, help="runs per library and case (default 3)")
    p.add_argument("--repeats-ii", type=int, default=None, help="runs per library for case ii (default --repeats)")
    p.add_argument("--steps-i", type=int, default=400)
    p.add_argument("--steps-ii", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3, help="steps of the warm-up call in each process (default 3)")
    p.add_argument("--width", type=float, default=0.5, help="case ii: VGG16 widths × this (default 0.5)")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, 50 / 32 steps")
    p.add_argument("--envs", type=Path, default=Path.home() / ".cache" / "oipwidgets-bench",
                   help="where the peers' venvs are made (default ~/.cache/oipwidgets-bench)")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per run before it counts as failed")
    p.add_argument("--keep", action="store_true", help="keep the work directory (models, start images)")
    p.add_argument("--oipw-threads", default=None, metavar="VALUE",
                   help="OIPWIDGETS_TF_THREADS for the oipwidgets runs only (default: as in this shell, i.e. "
                        "the library's default when unset)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.repeats_ii, args.steps_i, args.steps_ii = 1, 1, 50, 32
    if args.repeats_ii is None:
        args.repeats_ii = args.repeats
    args.libs = [s.strip() for s in args.libs.split(",") if s.strip()]
    unknown = set(args.libs) - {"oipwidgets", *ENVS}
    if unknown:
        p.error(f"unknown libraries {sorted(unknown)}; choose from oipwidgets, {', '.join(ENVS)}")
    return args


def prepare(python: str, workdir: Path, cases: list, width: float) -> dict:
    job = {"workdir": str(workdir), "width": width, "seed": SEED, "cases": cases}
    done = run_quiet([python, PEERS_DIR / "prepare.py", json.dumps(job)], env=child_env(), cwd=PEERS_DIR)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if not lines:
        raise SystemExit(f"prepare.py failed: {last_line(done.stderr)}")
    specs = json.loads(lines[-1][len(RESULT_TAG):])
    names = {"i": "the article's CNN (mnist.keras)", "ii": f"a VGG-style model, width {width:g}, random weights"}
    for case, spec in specs.items():
        spec["name"] = names[case]
    return specs


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    cases = ["i", "ii"] if args.case == "both" else [args.case]
    python = project_python()
    print(f"bench_peers: cases {', '.join(cases)}; libraries {', '.join(args.libs)}; repeats (i) {args.repeats}, "
          f"(ii) {args.repeats_ii}; steps (i) {args.steps_i}, (ii) {args.steps_ii}; warm-up {args.warmup} steps")
    print(f"host: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"project python {python}")

    pythons = {"oipwidgets": python}
    for lib in args.libs:
        if lib in ENVS:
            peer_python, what = ensure_env(ENVS[lib], args.envs.expanduser(), python)
            print(f"env {lib}: {what}", flush=True)
            pythons[lib] = peer_python if peer_python else {"error": f"environment: {what}"}

    workdir = Path(tempfile.mkdtemp(prefix="oipwidgets-bench-"))
    try:
        specs = prepare(python, workdir, cases, args.width)
        print(f"models and start images written to {workdir}")
        rows_by_case = {}
        for case in cases:
            entries = [e for e in ENTRIES[case] if e.library in args.libs]
            print(f"\ncase ({case}): {len(entries)} rows × {args.repeats if case == 'i' else args.repeats_ii} "
                  "repeats, alternated", flush=True)
            rows_by_case[case] = run_case(case, specs[case], entries, pythons, args)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print("\n" + "=" * 100)
    print("Versions as each runner imported them:")
    print_versions(rows_by_case)
    for case in cases:
        print_table(case, specs[case], rows_by_case[case], args.steps_i if case == "i" else args.steps_ii)
    print(f"\nsettings: oipwidgets (i) pixel, no transforms, RMS step epsilon 0.01, input_mode standardize; (ii) "
          f"param fourier (1/f, decorrelated colours), transforms standard, Adam epsilon 0.05; start noise seed "
          f"{SEED}; "
          "pre_activation=True (affects only softmax/sigmoid dense layers: the conv maps are read after ReLU)")
    print(f"objective: spatial mean of the post-ReLU map at the standardised final image; 'same or better' = ≥ "
          f"{SAME_OBJECTIVE:g} × the peer's")
    print(f"total {time.perf_counter() - t_start:.0f} s; load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
