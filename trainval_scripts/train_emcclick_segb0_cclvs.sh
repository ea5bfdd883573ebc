#!/usr/bin/env bash
# EMC-Click segb0: 4 GPUs, global batch 64 (16 per GPU), 4 data workers per process.
CONFIG=models/emcclick/segformerB0_att_cclvis.py EXP_NAME=segformerB0_att_cclvis nGPUS=${nGPUS:-4} \
    exec "$(dirname "$0")/launch.sh" "$@"
