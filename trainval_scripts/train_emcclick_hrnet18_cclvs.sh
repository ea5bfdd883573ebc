#!/usr/bin/env bash
# EMC-Click hrnet18: 4 GPUs, global batch 64 (16 per GPU), 4 data workers per process.
# Extra arguments are passed to train.py (e.g. --resume-exp=000 or, for a CPU run, --cpu; see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=models/emcclick/hrnet18_att_cclvis.py
EXP_NAME=hrnet18_att_cclvis
nGPUS=${nGPUS:-4}
nBS=${nBS:-64}
nWORKERS=${nWORKERS:-4}
PORT=$(expr $RANDOM + 5000)

python -m torch.distributed.launch --nproc_per_node=$nGPUS --master_port=$PORT \
    train.py $CONFIG \
    --ngpus=$nGPUS \
    --workers=$nWORKERS \
    --batch-size=$nBS \
    --exp-name=$EXP_NAME "$@"
