#!/usr/bin/env bash
# Shared launch line of the train_emcclick_*.sh scripts (the original's torch.distributed.launch call).
# They set CONFIG, EXP_NAME and nGPUS; nBS (global batch) and nWORKERS (per process) may be overridden.
# Extra arguments are passed to train.py (e.g. --resume-exp=000, or --cpu for a CPU run; see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${CONFIG:?set CONFIG to a model script}" "${EXP_NAME:?set EXP_NAME}" "${nGPUS:?set nGPUS}"
nBS=${nBS:-64}
nWORKERS=${nWORKERS:-4}
PORT=$(expr $RANDOM + 5000)

python -m torch.distributed.launch --nproc_per_node=$nGPUS --master_port=$PORT \
    train.py $CONFIG \
    --ngpus=$nGPUS \
    --workers=$nWORKERS \
    --batch-size=$nBS \
    --exp-name=$EXP_NAME "$@"
