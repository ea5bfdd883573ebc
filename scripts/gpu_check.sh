#!/usr/bin/env bash
# One command that tells whether EMC-Click works on this machine's GPU, in under 8 minutes:
#
#   bash scripts/gpu_check.sh [--dry-run] [OUT_DIR]      # default OUT_DIR: gpu_check/
#
# Steps (each timed and capped, its output in OUT_DIR/logs/<step>.log; a failed step is recorded
# and the next one still runs):
#   parity     the five networks on CUDA against the CPU (scripts/gpu_check.py parity)
#   train      20 iterations of hr18s with --fp16, one nccl process under torch.distributed.run
#   evaluate   NoC of that checkpoint on the Synthetic set (scripts/evaluate_model.py)
#   benchmark  scripts/benchmark.py --quick on CUDA, torch and onnx backends
# then OUT_DIR/report.json gathers statuses, wall times, key numbers and versions
# (scripts/gpu_check.py report). Exit status: 0 all steps ok, 1 a step failed, 2 no GPU.
#
# --dry-run (or GPU_CHECK_DRY_RUN=1) runs the same steps on the CPU at tiny sizes, to test the
# check itself on a machine without a GPU (parity of hr18s alone: building the big networks is
# most of a CPU's time). A run replaces the outputs of an earlier one in OUT_DIR.
set -uo pipefail

# Caps in seconds; their sum with the kill grace stays under 8 minutes.
PARITY_LIMIT=90
TRAIN_LIMIT=90
EVAL_LIMIT=75
BENCH_LIMIT=180
KILL_GRACE=5

DRY_RUN=0
[[ "${GPU_CHECK_DRY_RUN:-0}" =~ ^(1|true|yes)$ ]] && DRY_RUN=1
OUT="gpu_check"
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "gpu_check: unknown option $arg (see --help)" >&2; exit 64 ;;
        *) OUT="$arg" ;;
    esac
done

PYTHON="${PYTHON:-python}"
export NO_ALBUMENTATIONS_UPDATE=1
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)" || exit 1
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1   # train.py and scripts/ are found from the repository root

if [[ $DRY_RUN == 0 ]]; then
    if ! command -v nvidia-smi >/dev/null 2>&1 \
        || ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' >/dev/null 2>&1; then
        echo "gpu_check: no CUDA GPU here (nvidia-smi missing or torch.cuda.is_available() false); --dry-run checks the script on the CPU" >&2
        exit 2
    fi
    DEVICE=cuda MODELS=hr18s,hr18,hr32,segb0,segb3 SIZE=192x256 BATCH=8 ITERS=20 NUM_IMAGES=20 INFER_SIZE=128
    TRAIN_FLAGS=(--gpus=0 --fp16 --workers=2)
    EVAL_FLAGS=(--gpus=0)
    BENCH_FLAGS=(--device cuda --backend torch,onnx)
else
    DEVICE=cpu MODELS=hr18s SIZE=64x96 BATCH=2 ITERS=2 NUM_IMAGES=1 INFER_SIZE=64
    # One thread: several spinning OpenMP threads on a busy machine made the training step 4-7x slower.
    export OMP_NUM_THREADS=1
    TRAIN_FLAGS=(--cpu --workers=0)
    EVAL_FLAGS=(--cpu --n-clicks=3)
    BENCH_FLAGS=(--device cpu --backend torch --models hr18s --repeats 1 --no-session --no-flops --clicks 2
                 --size 64x64 --baseline-clicks 1)
fi

rm -rf "$OUT/exps" "$OUT/eval" "$OUT/logs"
rm -f "$OUT/steps.tsv" "$OUT/parity.json" "$OUT/benchmark.json" "$OUT/report.json"
mkdir -p "$OUT/logs"
cat >"$OUT/config.yml" <<EOF
# Written by scripts/gpu_check.sh: the check's experiments and logs stay under its folder.
EXPS_PATH: "$OUT/exps"
SYNTHETIC_NUM_IMAGES: $NUM_IMAGES
IMAGENET_PRETRAINED_MODELS:
  HRNETV2_W18_SMALL: ""
EOF

# run_step NAME LIMIT CMD...: run CMD under a time limit, output to logs/NAME.log, and append
# "NAME rc start end log" to steps.tsv for the report. Sets STEP_RC; never stops the script.
run_step() {
    local name="$1" limit="$2" log="$OUT/logs/$1.log" start
    shift 2
    echo "gpu_check: $name ($log)"
    printf '$ %s\n' "$*" >"$log"
    start="$(date +%s.%N)"
    timeout --kill-after="$KILL_GRACE" "$limit" "$@" >>"$log" 2>&1
    STEP_RC=$?
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$STEP_RC" "$start" "$(date +%s.%N)" "$log" >>"$OUT/steps.tsv"
}

run_step parity "$PARITY_LIMIT" "$PYTHON" scripts/gpu_check.py parity --device "$DEVICE" --models "$MODELS" \
    --size "$SIZE" --json "$OUT/parity.json"

run_step train "$TRAIN_LIMIT" "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node=1 \
    train.py models/quickstart/hrnet18s_synthetic.py "${TRAIN_FLAGS[@]}" --batch-size="$BATCH" --epochs=1 \
    --epoch-len="$((ITERS * BATCH))" --seed=0 --exp-name=gpucheck --config-path="$OUT/config.yml"

CHECKPOINT="$(find "$OUT/exps" -path '*_gpucheck/checkpoints/last_checkpoint.pth' 2>/dev/null | sort | tail -n 1)"
if [[ $STEP_RC == 0 && -n "$CHECKPOINT" ]]; then
    run_step evaluate "$EVAL_LIMIT" "$PYTHON" scripts/evaluate_model.py EMC-Click --checkpoint="$CHECKPOINT" \
        --datasets=Synthetic "${EVAL_FLAGS[@]}" --infer-size="$INFER_SIZE" --logs-path="$OUT/eval" \
        --config-path="$OUT/config.yml"
else
    run_step evaluate 5 sh -c 'echo "no checkpoint from the training step" >&2; exit 1'
fi

run_step benchmark "$BENCH_LIMIT" "$PYTHON" scripts/benchmark.py --quick "${BENCH_FLAGS[@]}" \
    --json "$OUT/benchmark.json"

report_flags=()
[[ $DRY_RUN == 1 ]] && report_flags=(--dry-run)
"$PYTHON" scripts/gpu_check.py report "$OUT" "${report_flags[@]}" || exit 1   # 1 also when a step failed
