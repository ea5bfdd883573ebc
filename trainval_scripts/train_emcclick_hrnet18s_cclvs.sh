#!/usr/bin/env bash
# EMC-Click hrnet18s: 4 GPUs, global batch 64 (16 per GPU), 4 data workers per process.
CONFIG=models/emcclick/hrnet18s_att_cclvis.py EXP_NAME=hrnet18s_att_cclvis nGPUS=${nGPUS:-4} \
    exec "$(dirname "$0")/launch.sh" "$@"
