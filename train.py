"""Train an EMC-Click model from a model script (``models/emcclick/*.py``).

    python -m torch.distributed.launch --nproc_per_node=4 train.py models/emcclick/hrnet18s_att_cclvis.py \\
        --ngpus=4 --workers=4 --batch-size=64 --exp-name=hrnet18s_att_cclvis
    torchrun --nproc_per_node=2 train.py <model script> --cpu --batch-size=8   # gloo on the CPU
    python train.py <model script> --cpu                                      # one process
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from isegm.utils.cli import add_debug_flag, run_cli
from isegm.utils.errors import InputError, MissingFileError
from isegm.utils.exp import init_experiment
from isegm.utils.malloc import retain_freed_memory

cv2.setNumThreads(0)
cv2.ocl.setUseOpenCL(False)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train an EMC-Click model.")
    parser.add_argument("model_path", type=str, help="model script, e.g. models/emcclick/hrnet18s_att_cclvis.py")
    parser.add_argument("--exp-name", type=str, default="", help="suffix of the experiment folder name")
    parser.add_argument("--workers", type=int, default=4, metavar="N", help="data loader workers per process")
    parser.add_argument("--batch-size", type=int, default=-1, help="global batch size (the script's default when < 1)")
    parser.add_argument("--ngpus", type=int, default=1, help="number of GPUs (or give --gpus)")
    parser.add_argument("--gpus", type=str, default="", required=False, help="ids of the GPUs, e.g. 0,1")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU (gloo when several processes run)")
    parser.add_argument("--resume-exp", type=str, default=None,
                        help="prefix of the experiment folder to continue, e.g. 000")
    parser.add_argument("--resume-prefix", type=str, default="latest",
                        help="checkpoint to resume from: 'latest' (last_checkpoint.pth) or a file prefix such as 150")
    parser.add_argument("--start-epoch", type=int, default=0,
                        help="first epoch when the checkpoint has no training state beside it")
    parser.add_argument("--weights", type=str, default=None, help="initialise from this checkpoint's weights")
    parser.add_argument("--temp-model-path", type=str, default="",
                        help="load the model script from this file (deleted once copied into the experiment)")
    parser.add_argument("--fp16", action="store_true", help="mixed precision on CUDA (autocast + gradient scaling)")
    parser.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, default=0,
                        help="set by torch.distributed.launch (torchrun sets LOCAL_RANK instead)")
    parser.add_argument("--config-path", type=str, default=None,
                        help="config.yml to use instead of the ones found from the model script up to here")
    parser.add_argument("--epochs", type=int, default=None, help="override the script's number of epochs")
    parser.add_argument("--epoch-len", type=int, default=None, help="override the script's samples per epoch")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed python, numpy and torch (rank added); default: unseeded, as the original")
    add_debug_flag(parser)
    return parser.parse_args(argv)


def load_module(script_path: str):
    path = Path(script_path)
    if not path.is_file():
        raise MissingFileError(f"model script not found: {script_path!r}")
    spec = importlib.util.spec_from_file_location("model_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.cpu:
        retain_freed_memory()  # a step reallocates the same large tensors: keep them instead of page-faulting
    model_script = load_module(args.temp_model_path or args.model_path)
    if not hasattr(model_script, "main"):
        raise InputError(f"model script {args.model_path!r} has no main(cfg)")
    model_name = getattr(model_script, "MODEL_NAME", None) or Path(args.model_path).stem
    cfg = init_experiment(args, model_name)
    if args.seed is not None:
        random.seed(args.seed + cfg.rank)
        np.random.seed(args.seed + cfg.rank)
        torch.manual_seed(args.seed)  # same initial weights on every rank (DDP broadcasts rank 0's anyway)
    try:
        model_script.main(cfg)
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(run_cli(main))
