#!/usr/bin/env bash
# The prepared GPU check: one command, about 10 minutes on one H100/H200, for a machine that has
# torch, triton and numpy (no web stack, no pytest needed). Everything it prints is saved under
# OUT_DIR, one log per step, with a summary of each step's exit status and seconds.
#
#   bash bench/gpu_check.sh OUT_DIR
#   bash bench/gpu_check.sh --dry-run OUT_DIR    # the same steps on the CPU, in about a minute
#
# Steps, each under its own time limit:
#   env               nvidia-smi, torch/triton versions, the device
#   kernels           bench/kernels.py on CUDA: every Triton kernel compiled for real (not the
#                     interpreter the test suite uses), its max abs difference from the eager
#                     reference, and its time against eager and torch.compile
#   train_throughput  bench/train_throughput.py at autoresearch's shape: tokens/s, MFU and peak
#                     memory with our kernels off (plain torch.compile) and on, from the same start
#   worker_run        bench/gpu_track_run.py: baseline/train.py through the worker's execution
#                     (sandbox, guard, scorer, replica, the GPU bound in) on a synthetic GPU track
#   worker_run_kernels_off, small_vocab_launch_blocking (GPU only)
#                     the same run with our Triton kernels off, and the model alone at that track's
#                     vocabulary (512) with CUDA_LAUNCH_BLOCKING=1: where a crash on it comes from
#   doctor            `worker doctor` where the worker's CLI imports; otherwise the sandbox and
#                     guard layers from worker.execution, which needs only torch
#
# --dry-run runs every step on the CPU at tiny sizes, the kernels in Triton's interpreter
# (TRITON_INTERPRET=1), and writes the same files: a rehearsal of the script itself before a GPU
# is lent, with nothing installed and no figure worth reading. Neither mode installs anything.
set -uo pipefail

DRY_RUN=0
if [ "${1:-}" = "--dry-run" ]; then
    DRY_RUN=1
    shift
fi
OUT="${1:?usage: bash bench/gpu_check.sh [--dry-run] OUT_DIR}"
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: exit $rc, $((SECONDS - start)) s" | tee -a "$SUMMARY"
    tail -n 5 "$OUT/$name.log"
}

VERSIONS="import torch, triton, numpy; print(\"torch\", torch.__version__, \"triton\", triton.__version__, \"numpy\", numpy.__version__)"
if [ "$DRY_RUN" = 1 ]; then
    echo "dry run: every step on the CPU at tiny sizes; its figures measure nothing"
    step env 30 "$PY" -c "$VERSIONS; print(\"cpu (dry run)\")"
    step kernels 90 env TRITON_INTERPRET=1 "$PY" bench/kernels.py --device cpu --tokens 32 --warmup 0 --reps 1 --no-compile --json
    step train_throughput 150 env TRITON_INTERPRET=1 "$PY" bench/train_throughput.py --device cpu --small --tokens-per-step 128 --warmup 0 --steps 1 --json
    step worker_run 180 "$PY" bench/gpu_track_run.py --device cpu --hardware-class cpu --seq-len 64 --vocab-size 256 --budget 10
    DEVICE=cpu
else
    step env 30 bash -c "nvidia-smi; $PY -c '$VERSIONS; print(torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))'"
    step kernels 90 "$PY" bench/kernels.py --device cuda --json
    step train_throughput 150 "$PY" bench/train_throughput.py --device cuda --json
    step worker_run 180 "$PY" bench/gpu_track_run.py --budget 60 --hardware-class h100-sxm-80gb
    # Where the baseline fails on a small vocabulary (the worker_run track's): the same run with our
    # kernels off, and the model alone at that vocabulary with every launch synchronous, so that an
    # illegal memory access is reported at the kernel that made it.
    sed 's/^USE_TRITON_KERNELS = True$/USE_TRITON_KERNELS = False/' baseline/train.py > "$OUT/train_kernels_off.py"
    step worker_run_kernels_off 180 "$PY" bench/gpu_track_run.py --budget 60 --hardware-class h100-sxm-80gb \
        --train-py "$OUT/train_kernels_off.py"
    step small_vocab_launch_blocking 150 env CUDA_LAUNCH_BLOCKING=1 "$PY" bench/train_throughput.py --device cuda \
        --vocab-size 512 --warmup 1 --steps 2 --json
    DEVICE=cuda
fi
if "$PY" -c "import worker.cli" > /dev/null 2>&1; then
    step doctor 30 "$PY" -m worker.cli doctor --device "$DEVICE"
else
    step doctor 30 "$PY" -c "from worker.execution.sandbox import detect_report; print('\n'.join(detect_report(device='$DEVICE').lines()))"
fi

echo "== summary ($SUMMARY)"
cat "$SUMMARY"
