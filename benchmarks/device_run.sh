#!/usr/bin/env bash
# The one GPU script (issue 15): install jaxhalo with its GPU extra, check the device against the
# CPU references committed in benchmarks/reference/, then run the GPU benchmarks, writing every
# record under $OUT (default ./device_out): checks_<device>.json, benchmarks_<device>.json and
# device_run.log. Nothing tracked is written. About 8 minutes on one H100/H200-class GPU.
#
#   benchmarks/device_run.sh                 # on the GPU machine
#   benchmarks/device_run.sh --quick         # end to end on a CPU in a few minutes (no install)
#   WHEELS=.whl benchmarks/device_run.sh     # install from a folder of wheels (no network)
#
# Options: --quick, --no-install; anything else goes to `python -m benchmarks.device_checks run`
# (e.g. --budget-s 300, --skip jaxhalo_fit). Exit code: 0 all checks passed, 1 a check failed,
# anything else: the script itself failed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
INSTALL=1
ARGS=()
for a in "$@"; do
  case "$a" in
    --quick) INSTALL=0; ARGS+=(--quick) ;;
    --no-install) INSTALL=0 ;;
    *) ARGS+=("$a") ;;
  esac
done

if [ "$INSTALL" = 1 ]; then
  if "$PY" -c "import jax, jaxhalo, sys; sys.exit(0 if jax.devices()[0].platform == 'gpu' else 1)" >/dev/null 2>&1; then
    echo "jax already sees a GPU: no install"
  else
    PIP_ARGS=(-q)
    if [ -n "${WHEELS:-}" ]; then PIP_ARGS+=(--no-index --find-links "$WHEELS"); fi
    "$PY" -m pip install "${PIP_ARGS[@]}" -e ".[gpu]"
  fi
fi

# The benchmarks start `jaxhalo fit` in a child process: take GPU memory on demand, not 75% up front.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONUNBUFFERED=1
set -o pipefail
"$PY" -m benchmarks.device_checks run --out "$OUT" "${ARGS[@]}" 2>&1 | tee "$OUT/device_run.log"
