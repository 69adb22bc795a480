#!/usr/bin/env bash
# Set everything up, then run the main job on the built-in default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/oipwidgets evaluate --model mnist "$@"
