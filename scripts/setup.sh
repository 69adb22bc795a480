#!/usr/bin/env bash
# Create .venv and install oipwidgets with its test tools, the real trained model of the demo (mtcnn's O-Net), the
# atlas (Dask, Zarr) and the app server (Voila); a second run reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.oipwidgets-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c "import oipwidgets" 2>/dev/null; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,real,atlas,app]"
  echo "$want" > "$stamp"
fi
