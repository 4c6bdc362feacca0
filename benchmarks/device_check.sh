#!/usr/bin/env bash
# One device check for issue 14: on a machine with an NVIDIA GPU, run the benchmark
# suite (minibatch 1 and 32, every network incl. the large one, with per-step HLO
# and fusion counts as the GPU compiles them), the tutorial fit and the 1M-neuron
# model, in under 8 minutes, and write benchmarks/results/gpu.md (+ gpu/*.json).
#
# Usage (from the repository root):
#   bash benchmarks/device_check.sh                  # GPU run; results in benchmarks/results/
#   bash benchmarks/device_check.sh --precision highest   # full-f32 matmuls instead of TF32
#   bash benchmarks/device_check.sh --install        # pip-install first (needs network)
#   bash benchmarks/device_check.sh --cpu-dry-run    # CPU, tiny sizes, < 1 min, temp dir
#
# Install (only with --install; each line on its own so a failure is clear). A
# machine without network needs them done beforehand:
#   pip install -e .
#   pip install "jax[cuda12]"
#
# Without --install the script uses the installed JAX and stops if its backend is
# not a GPU (except in --cpu-dry-run). Timeouts per part keep the total under 8
# minutes; a part that runs out is recorded as such in gpu.md, not retried.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
cd "$ROOT"
PY="${PYTHON:-python}"

DRY=0
INSTALL=0
PRECISION="${JAX_DEFAULT_MATMUL_PRECISION:-default}"
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-dry-run) DRY=1 ;;
        --install) INSTALL=1 ;;
        --precision) PRECISION="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$INSTALL" = 1 ] && [ "$DRY" = 0 ]; then
    "$PY" -m pip install -e . || exit 1
    "$PY" -m pip install "jax[cuda12]" || exit 1
fi

# several processes share the GPU in turn (run.py runs each network in its own
# process while the parent holds a little memory): allocate on demand
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ "$PRECISION" != "default" ]; then
    export JAX_DEFAULT_MATMUL_PRECISION="$PRECISION"
fi

if [ "$DRY" = 1 ]; then
    export JAX_PLATFORMS=cpu
    OUT="$(mktemp -d -t nengojax-device-check.XXXXXX)"
    RUN_ARGS=(--quick --only tutorial --steps 20 --seq-steps 10 --reps 1 --no-fit)
    FIT_ARGS=(--seeds 0 --modes rate --epochs 1)
    BIG_ARGS=(--neurons 2000 --ensembles 10 --no-solve)
    T_RUN=40; T_FIT=30; T_BIG=30
else
    OUT="$ROOT/benchmarks/results/gpu"
    backend="$("$PY" -c 'import jax; print(jax.default_backend())' 2>/dev/null)"
    if [ "$backend" != "gpu" ] && [ "$backend" != "cuda" ]; then
        echo "JAX backend is '$backend', not a GPU: install CUDA JAX (see --install)" >&2
        exit 1
    fi
    # full sizes, shorter timed runs than the CPU suite (each network's compile
    # and nengo's reference run dominate); the whole script stays under 8 min
    # --no-fit: fit_tutorial measures training; --decoder-cache: nengojax's builds
    # reuse the reference build's decoder solves (build times then don't compare).
    # run.py writes its table after each network, so a timeout keeps what ran.
    RUN_ARGS=(--steps 500 --seq-steps 50 --reps 2 --no-fit --decoder-cache)
    FIT_ARGS=(--seeds 0 --modes rate)
    # NoSolver decoders in the 1M chain: the same step, without ~1000 decoder solves
    BIG_ARGS=(--neurons 1000000 --ensembles 1000 --no-solve)
    T_RUN=300; T_FIT=40; T_BIG=110
fi
mkdir -p "$OUT"
START=$(date +%s)
echo "device check: output in $OUT (matmul precision: $PRECISION)"

status_run=0; status_fit=0; status_big=0
timeout "$T_RUN" "$PY" benchmarks/run.py "${RUN_ARGS[@]}" --tag device --out "$OUT" \
    > "$OUT/run.log" 2>&1 || status_run=$?
echo "benchmark suite: exit $status_run ($(($(date +%s) - START)) s)"
timeout "$T_FIT" "$PY" benchmarks/fit_tutorial.py "${FIT_ARGS[@]}" --out "$OUT/fit_tutorial.json" \
    > "$OUT/fit.log" 2>&1 || status_fit=$?
echo "tutorial fit: exit $status_fit ($(($(date +%s) - START)) s)"
timeout "$T_BIG" "$PY" benchmarks/big.py "${BIG_ARGS[@]}" --out "$OUT" \
    > "$OUT/big.log" 2>&1 || status_big=$?
echo "1M-neuron model: exit $status_big ($(($(date +%s) - START)) s)"

if [ "$DRY" = 1 ]; then
    REPORT="$OUT/gpu.md"
else
    REPORT="$ROOT/benchmarks/results/gpu.md"
fi
"$PY" benchmarks/device_report.py --dir "$OUT" --report "$REPORT" \
    --status "run=$status_run,fit=$status_fit,big=$status_big" \
    --elapsed "$(($(date +%s) - START))" $([ "$DRY" = 1 ] && echo --dry-run) || exit 1
echo "wrote $REPORT"
# the dry run fails if any part failed; the device run reports failures in gpu.md
if [ "$DRY" = 1 ] && [ $((status_run + status_fit + status_big)) -ne 0 ]; then
    tail -5 "$OUT"/*.log >&2
    exit 1
fi
exit 0
