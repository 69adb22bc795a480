#!/usr/bin/env bash
# Set everything up, then open the tutorial notebook demo.ipynb in JupyterLab (the explorer runs on the built-in
# default MNIST model). Extra arguments go to `jupyter lab`, e.g. --no-browser --port 8890.
# Headless machines: `bash scripts/run.sh --no-browser` and open the printed URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
extra=()
# containers often run as root, where jupyter refuses to start unless told
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
exec .venv/bin/jupyter lab demo.ipynb "${extra[@]}" "$@"
