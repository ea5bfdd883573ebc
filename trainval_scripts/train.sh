#!/usr/bin/env bash
# The original's train.sh: hr18s (see train_emcclick_hrnet18s_cclvs.sh).
exec "$(dirname "$0")/train_emcclick_hrnet18s_cclvs.sh" "$@"
