"""oipwidgets runner for ``bench_peers.py`` (project venv): ``OIPEngine.run_layer`` on all target maps as one batch.

case i: the article's climb: pixel parameterisation, no transforms, the RMS step (epsilon 0.01 × gradient / its
RMS), re-standardised after each step (input_mode "standardize"), map-mean objective.
case ii: param="fourier" (1/f spectrum, decorrelated colours), transforms="standard" (lucid's set), Adam with
learning rate 0.05 (lucid's and Xplique's), same input mode (the Fourier image is standardised smoothly).
Both from the engine's start noise drawn with ``seed`` (the same images the orchestrator gave the peers).
Variants (``parse_variant``): "step X" (another epsilon), "N/M of the steps" (the case's recipe stopped after that
fraction of its steps: how long oipwidgets takes to reach the peers' objective), or both, comma-separated.
Warm-up: one ``run_layer`` of ``warmup_steps`` with the same settings (traces the compiled loop, which the engine
caches on the model; the timed run reuses it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import oipwidgets as ow  # noqa: E402 - first: applies OIPWIDGETS_TF_THREADS (if set) before any op

import common  # noqa: E402

LIBRARY = "oipwidgets"
SETTINGS = {
    "i": dict(epsilon=0.01),  # pixel, no transforms, "rms": the engine's defaults
    "ii": dict(param="fourier", transforms="standard", optimizer="adam", epsilon=0.05),
}


def parse_variant(variant: str | None) -> tuple[float | None, float]:
    """(epsilon or None, fraction of the case's steps) from a variant such as "step 0.1, 1/2 of the steps"."""
    epsilon, fraction = None, 1.0
    for part in filter(None, (p.strip() for p in (variant or "").split(","))):
        if part.startswith("step "):
            epsilon = float(part.split()[1])
        elif part.endswith(" of the steps"):
            num, den = part.split()[0].split("/")
            fraction = int(num) / int(den)
        else:
            raise ValueError(f"unknown variant part {part!r}; use 'step X' and/or 'N/M of the steps'")
    return epsilon, fraction


def main() -> None:
    job = common.read_job()
    try:
        from oipwidgets.engine import runtime

        common.seed_everything(job["seed"])
        model = common.load_model(job)
        engine = ow.OIPEngine(model, job["layer"])  # pre_activation=True only matters for softmax/sigmoid dense
        settings = dict(maps=list(job["channels"]), seed=int(job["seed"]), **SETTINGS[job["case"]])
        steps = int(job["steps"])
        epsilon, fraction = parse_variant(job.get("variant"))
        if epsilon is not None:
            settings["epsilon"] = epsilon
        steps = max(1, int(steps * fraction))
        warmup_seconds, _ = common.timed(lambda: engine.run_layer(steps=int(job["warmup_steps"]), **settings))
    except Exception as err:  # noqa: BLE001 - reported as a row
        return common.fail(job, LIBRARY, "setup", err)
    try:
        seconds, result = common.timed(lambda: engine.run_layer(steps=steps, **settings))
    except Exception as err:  # noqa: BLE001
        return common.fail(job, LIBRARY, "run", err)
    info = common.versions(ow)
    h, w, c = engine.input_shape
    info["workers"] = runtime.workers(len(settings["maps"]), h * w * c)
    info["env"] = {runtime.ENV_VAR: os.environ.get(runtime.ENV_VAR)} if hasattr(runtime, "ENV_VAR") else {}
    params = result[0].params
    common.report(job, LIBRARY, seconds=seconds, warmup_seconds=warmup_seconds, steps=steps,
                  **common.objective(job, model, result.images),
                  engine_objective_mean=float(result.final_losses.mean()), statuses=sorted(set(result.statuses)),
                  settings={k: params.get(k) for k in ("param", "transforms", "optimizer", "epsilon", "input_mode",
                                                       "noise")},
                  versions=info)


if __name__ == "__main__":
    main()
