#!/usr/bin/env bash
# EMC-Click segb3: 8 GPUs, global batch 64 (8 per GPU), 4 data workers per process.
CONFIG=models/emcclick/segformerB3_att_cclvis.py EXP_NAME=segformerB3_att_cclvis nGPUS=${nGPUS:-8} \
    exec "$(dirname "$0")/launch.sh" "$@"
