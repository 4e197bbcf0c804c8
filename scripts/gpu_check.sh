#!/usr/bin/env bash
# The GPU checks of fedrobust, one short script for a machine with a CUDA device (a few minutes):
#   1. the aggregator benchmark on CUDA at d = 1.16M and 11.2M, n = 10, 32, 100 (geometric median,
#      coordinate median, trimmed mean, Krum, block selection, BGMD, and every defense next to
#      ByzFL's on the same CUDA tensor), with the CUDA targets of the geometric median;
#   2. one device=cuda simulation through Flower's simulation engine, 4 clients per GPU
#      (num-gpus 0.25);
#   3. the engine bench (plain torch loop, in-process engine, Ray engine) on CUDA.
#
# Usage, from a checkout:  bash scripts/gpu_check.sh [--cpu] [OUT_DIR]
#   --cpu   the same three steps on the CPU at small sizes (what tests/test_gpu_check.py runs
#           where no GPU is), to keep the script's paths working without one.
# Python: $PYTHON if set, else .venv/bin/python when it imports fedrobust, else a new venv
# .venv-gpu installed from the package registries (torch==2.13.0 and fedrobust[fast,bench] from
# this checkout; ByzFL 0.0.11 without its dependencies, as the cross-checks load it).
# Everything printed also goes to OUT_DIR/gpu_check.log (default results/gpu_check).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=cuda
if [ "${1:-}" = "--cpu" ]; then MODE=cpu; shift; fi
OUT_DIR=${1:-results/gpu_check}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_check.log"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1 FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ] && .venv/bin/python -c "import fedrobust" 2>/dev/null; then
        PYTHON=.venv/bin/python
    else
        python3 -m venv .venv-gpu
        .venv-gpu/bin/python -m pip install -q "torch==2.13.0" -e ".[fast,bench]"
        .venv-gpu/bin/python -m pip install -q --no-deps "byzfl==0.0.11"
        PYTHON=.venv-gpu/bin/python
    fi
fi
PATH="$(dirname "$PYTHON"):$PATH"  # Flower's tools (flower-superlink, ...) next to the interpreter
export PATH

echo "== gpu_check ($MODE), $(date -u +%Y-%m-%dT%H:%MZ)"
"$PYTHON" - "$MODE" <<'EOF'
import sys, torch, flwr
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, flwr {flwr.__version__}")
if sys.argv[1] == "cuda":
    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA device; run with --cpu for the CPU fallback")
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true

if [ "$MODE" = cuda ]; then
    SIZES=10x1160000,32x1160000,100x1160000,10x11200000,32x11200000,100x11200000
    AGG=(--device cuda --sizes "$SIZES" --repeats 3)
    SIM=(--device cuda --num-gpus 0.25 --num-clients 8 --clients-per-round 8 --rounds 3 --model lenet)
    ENG=(--device cuda --rounds 10 --sizes mlp:10,lenet:10)
else
    AGG=(--device cpu --sizes 10x20000 --repeats 1)
    SIM=(--device cpu --num-gpus 0 --num-clients 4 --clients-per-round 4 --rounds 1 --model mlp --dataset digits)
    ENG=(--device cpu --rounds 2 --sizes mlp:2 --no-ray)
fi

echo; echo "== 1. aggregators (${AGG[*]})"
"$PYTHON" scripts/bench_aggregators.py "${AGG[@]}"

echo; echo "== 2. one simulation through Flower's engine (${SIM[*]})"
"$PYTHON" -m fedrobust run --strategy bgmd --attack alie --byzantine-fraction 0.25 "${SIM[@]}" \
    --output "$OUT_DIR/simulation.json" --quiet
"$PYTHON" - "$OUT_DIR/simulation.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))
last, rounds = results["rounds"][-1], results["rounds"]
print(f"device {results['config']['device']}, num-gpus {results['config']['num-gpus']}: round {last['round']} "
      f"accuracy {last['accuracy']:.4f}, {sum(r['round_seconds'] for r in rounds) / len(rounds):.2f} s per round, "
      f"start-up {results.get('startup_seconds') or 0:.1f} s")
EOF

echo; echo "== 3. engines (${ENG[*]})"
"$PYTHON" scripts/bench_engines.py "${ENG[@]}"

echo; echo "gpu_check: done ($MODE); log in $LOG"
