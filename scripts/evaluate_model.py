#!/usr/bin/env python
"""NoC evaluation of EMC-Click checkpoints: one process, ``torch.distributed.launch`` or ``torchrun``.

    python scripts/evaluate_model.py EMC-Click --model_dir=./weights/ --checkpoint=hr18s.pth \\
        --eval-mode=emc-click --datasets=GrabCut,Berkeley --cpu

Samples are split across processes (rank r takes indices r, r + W, ...); rank 0 gathers the
per-sample IoUs back into dataset order, prints the original's table, appends it to the log and
writes the IoU files. nccl is used on GPUs, gloo with ``--cpu``.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from isegm.inference.evaluation import evaluate_dataset
from isegm.inference.metrics import compute_noc_metric, format_miou, get_results_table
from isegm.inference.onnx_backend import load_onnx_model
from isegm.inference.predictor import MIN_INFER_SIZE
from isegm.inference.predictors import get_predictor
from isegm.inference.utils import get_dataset, load_is_model
from isegm.model.checkpoint import list_checkpoints
from isegm.model.refiner import ATTENTION
from isegm.utils import distributed as du
from isegm.utils.cli import add_debug_flag, run_cli
from isegm.utils.errors import ConfigKeyError, InputError, MissingFileError
from isegm.utils.exp import load_config_file
from isegm.utils.malloc import retain_freed_memory


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["EMC-Click"], help="predictor (EMC-Click only)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--checkpoint", default="", help="comma-separated checkpoint names or paths")
    group.add_argument("--exp-path", default="", help="experiment folder relative to EXPS_PATH, optional :prefix")
    parser.add_argument("--model_dir", "--model-dir", dest="model_dir", default="",
                        help="folder in which --checkpoint names are looked up")
    parser.add_argument("--datasets", default="GrabCut,Berkeley,DAVIS,SBD,PascalVOC")
    device = parser.add_mutually_exclusive_group()
    device.add_argument("--gpus", default="0", help="comma-separated GPU ids")
    device.add_argument("--cpu", action="store_true", help="run on CPU (gloo when distributed)")
    iou = parser.add_mutually_exclusive_group()
    iou.add_argument("--target-iou", type=float, default=0.90, help="stop a sample at this IoU (at least 0.8)")
    iou.add_argument("--iou-analysis", action="store_true", help="never stop early; save an IoU-curve pickle")
    parser.add_argument("--n-clicks", type=int, default=20)
    parser.add_argument("--min-n-clicks", type=int, default=1)
    parser.add_argument("--thresh", type=float, default=0.49, help="probability threshold (original default)")
    parser.add_argument("--clicks-limit", type=int, default=None, help="clicks the network sees (-1: n-clicks)")
    parser.add_argument("--eval-mode", default="cvpr",
                        help="'emc-click': short side 384 (576 for DAVIS); 'cvpr' (default): 400 (600 for DAVIS)")
    parser.add_argument("--attention", choices=ATTENTION, default="exact",
                        help="the correction head's attention: 'exact' (the original's arithmetic, default) or "
                             "'fast' (queries at the templates, scaled_dot_product_attention; see the README)")
    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="'torch' (default) or 'onnx': each checkpoint exported to a temporary folder and run "
                             "by onnxruntime (see scripts/export_onnx.py)")
    parser.add_argument("--onnx-threads", type=int, default=0, help="onnxruntime's threads (0: one per core)")
    parser.add_argument("--infer-size", type=int, default=None,
                        help="short side of the network input, overriding --eval-mode's size")
    parser.add_argument("--save-ious", action="store_true")
    parser.add_argument("--print-ious", action="store_true")
    parser.add_argument("--model-name", default=None)
    parser.add_argument("--config-path", default="./config.yml")
    parser.add_argument("--logs-path", default="")
    parser.add_argument("--target-crop-r", type=float, default=1.40, help="unused by EMC-Click (kept for scripts)")
    parser.add_argument("--focus-crop-r", type=float, default=1.40, help="unused by EMC-Click (kept for scripts)")
    parser.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, default=0,
                        help="set by torch.distributed.launch (torchrun sets LOCAL_RANK instead)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    check_ranges(args)
    if (args.iou_analysis or args.print_ious) and args.min_n_clicks <= 1:
        args.target_iou = 1.01
    else:
        args.target_iou = max(0.8, args.target_iou)
    if args.clicks_limit == -1:
        args.clicks_limit = args.n_clicks
    return args


def check_ranges(args: argparse.Namespace) -> None:
    """Values argparse cannot check; :class:`InputError` names the flag."""
    if args.n_clicks < 1:
        raise InputError(f"--n-clicks must be at least 1, got {args.n_clicks}")
    if not 1 <= args.min_n_clicks <= args.n_clicks:
        raise InputError(f"--min-n-clicks must be between 1 and --n-clicks ({args.n_clicks}), got {args.min_n_clicks}")
    if not 0 < args.thresh < 1:
        raise InputError(f"--thresh is a probability threshold: 0 < thresh < 1, got {args.thresh}")
    if args.clicks_limit is not None and args.clicks_limit != -1 and args.clicks_limit < 1:
        raise InputError(f"--clicks-limit must be at least 1 (or -1 for --n-clicks), got {args.clicks_limit}")
    if args.infer_size is not None and args.infer_size < MIN_INFER_SIZE:
        raise InputError(f"--infer-size (the network input's short side) must be at least {MIN_INFER_SIZE}, "
                         f"got {args.infer_size}")
    if args.eval_mode not in EVAL_MODES:
        raise InputError(f"--eval-mode {args.eval_mode!r} is not supported by EMC-Click: use one of {list(EVAL_MODES)}")
    if not 0 < args.target_iou <= 1:
        raise InputError(f"--target-iou must be in (0, 1], got {args.target_iou}")


BACKENDS = ("torch", "onnx")

EVAL_MODES = {"emc-click": (384, 576), "cvpr": (400, 600)}
"""--eval-mode -> the network input's short side (most datasets, DAVIS)."""


def infer_size(eval_mode: str, dataset_name: str, override: int = None) -> int:
    if override is not None:
        return override
    usual, davis = EVAL_MODES[eval_mode]
    return davis if dataset_name == "DAVIS" else usual


def find_checkpoint(folder: str, name: str) -> Path:
    """A ``.pth`` name as given (if it exists) or under ``folder``; other names are globbed as ``name*.pth``."""
    if name.endswith(".pth"):
        path = Path(name) if Path(name).exists() else Path(folder) / name
        if not path.exists():
            raise MissingFileError(f"checkpoint {name!r} not found (looked at {name} and {path})")
        return path
    matches = sorted(p for p in Path(folder).rglob(f"{name}*.pth") if p in list_checkpoints(p.parent))
    if len(matches) != 1:
        raise MissingFileError(f"checkpoint {name!r}: expected one {name}*.pth under {folder!r}, found {len(matches)}")
    return matches[0]


def exps_path(cfg, why: str) -> Path:
    """``EXPS_PATH`` of config.yml; :class:`ConfigKeyError` when it is missing or empty."""
    value = cfg.get("EXPS_PATH")
    if value is None or str(value).strip() == "":
        raise ConfigKeyError(f"config.yml has no EXPS_PATH (missing or empty), which {why}")
    return Path(str(value))


def checkpoints_and_logs(args, cfg):
    logs_root = Path(args.logs_path) if args.logs_path else exps_path(
        cfg, "holds the evaluation logs unless --logs-path is given") / "evaluation_logs"
    if args.checkpoint:
        checkpoints = [find_checkpoint(args.model_dir, c) for c in args.checkpoint.split(",")]
        return checkpoints, logs_root / "others" / checkpoints[0].stem, ""
    rel, _, prefix = args.exp_path.partition(":")
    root = exps_path(cfg, "--exp-path is relative to")
    exp = root / rel
    checkpoints = list_checkpoints(exp / "checkpoints", prefix)[::-1]
    if not checkpoints:
        raise MissingFileError(f"no checkpoints matching {prefix}*.pth in {exp / 'checkpoints'}")
    logs_prefix = (checkpoints[0].stem if len(checkpoints) == 1 else f"all_{prefix}") if prefix else "all_checkpoints"
    return checkpoints, logs_root / rel, logs_prefix


def setup_device(args):
    """-> (device, rank, world_size); joins the process group when launched with several processes."""
    distributed = du.is_launched()
    args.local_rank = du.local_rank_from_env(args.local_rank)
    gpu_ids = [int(g) for g in args.gpus.split(",") if g.strip()] if not args.cpu else []
    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is available: add --cpu (in place of --gpus) to evaluate on the CPU")
    if args.cpu:
        device = torch.device("cpu")
    else:
        index = gpu_ids[args.local_rank] if distributed and args.local_rank < len(gpu_ids) else (
            args.local_rank if distributed else gpu_ids[0])
        torch.cuda.set_device(index)
        device = torch.device("cuda", index)
    if distributed:
        dist.init_process_group(backend="gloo" if args.cpu else "nccl", init_method="env://")
        return device, du.get_rank(), du.get_world_size()
    return device, 0, 1


_LAST_LOADED: dict = {}


def load_network(args, model_path: Path, device):
    """-> ``(model, predictor device)``. The last one is kept: the datasets loop runs over the same
    checkpoints again, and an ONNX export takes seconds (only one is held, whatever their number)."""
    key = (model_path, args.backend, str(device))
    if key not in _LAST_LOADED:
        _LAST_LOADED.clear()
        if args.backend == "onnx":   # onnxruntime hands back host arrays, whatever its provider
            model = load_onnx_model(model_path, threads=args.onnx_threads, device=device), torch.device("cpu")
        else:
            model = load_is_model(model_path, device), device
        _LAST_LOADED[key] = model
    return _LAST_LOADED[key]


def evaluate_one(args, model_path: Path, dataset, dataset_name: str, device, rank: int, world: int):
    """Evaluate this process's shard; rank 0 returns ``(all_ious in dataset order, elapsed, clicks)``."""
    model, device = load_network(args, model_path, device)
    predictor_params = {"attention": args.attention}
    if args.clicks_limit is not None:
        predictor_params["net_clicks_limit"] = args.clicks_limit
    predictor = get_predictor(model, args.mode, device, prob_thresh=args.thresh, focus_crop_r=args.focus_crop_r,
                              zoom_in_params={"target_size": infer_size(args.eval_mode, dataset_name, args.infer_size),
                                              "expansion_ratio": args.target_crop_r},
                              predictor_params=predictor_params)
    indices = list(range(rank, len(dataset), world))
    ious, elapsed = evaluate_dataset(dataset, predictor, indices=indices, progress=rank == 0,
                                     pred_thr=args.thresh, max_iou_thr=args.target_iou,
                                     min_clicks=args.min_n_clicks, max_clicks=args.n_clicks)
    # SPC is this process's wall time per click (the original divided by every rank's clicks).
    local = (indices, ious, elapsed, sum(len(x) for x in ious))
    shards = [local]
    if world > 1:
        shards = [None] * world
        dist.all_gather_object(shards, local)
    if rank != 0:
        return None
    all_ious = [None] * len(dataset)
    for shard_indices, shard_ious, _, _ in shards:
        for i, sample_ious in zip(shard_indices, shard_ious):
            all_ious[i] = sample_ious
    return all_ious, elapsed, local[3]


def save_results(args, all_ious, elapsed, clicks, dataset_name, model_path, logs_path, logs_prefix, single, first):
    iou_thrs = np.arange(0.8, min(0.95, args.target_iou) + 0.001, 0.05).tolist()
    noc_list, over_max = compute_noc_metric(all_ious, iou_thrs, max_clicks=args.n_clicks)
    spc = elapsed / max(clicks, 1)
    row_name = args.mode if single else model_path.stem.replace("last_checkpoint", "last")
    model_name = str(logs_path.relative_to(logs_path.parents[1])) if logs_prefix else logs_path.stem
    header, row = get_results_table(noc_list, over_max, row_name, dataset_name, spc, elapsed, args.n_clicks,
                                    model_name=model_name)
    if args.print_ious:
        row += format_miou(all_ious)
    logs_path.mkdir(parents=True, exist_ok=True)
    name_prefix = f"{logs_prefix}_" if logs_prefix else ""
    stem = f"{name_prefix}{args.eval_mode}_{args.mode}_{args.n_clicks}"
    log_file = logs_path / f"{stem}.txt"
    if first and single:
        print(header)
    print(row)
    with open(log_file, "a") as f:
        if first and single and f.tell() == 0:
            f.write(header + "\n")
        f.write(row + "\n")
    if args.save_ious and single:
        ious_dir = logs_path / "ious" / logs_prefix
        ious_dir.mkdir(parents=True, exist_ok=True)
        with open(ious_dir / f"{dataset_name}_{args.eval_mode}_{args.mode}_{args.n_clicks}.pkl", "wb") as f:
            pickle.dump(all_ious, f)
    if args.iou_analysis:
        plots = logs_path / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        plot_file = plots / f"{name_prefix}{dataset_name}_{args.eval_mode}_{args.mode}_{args.n_clicks}.pickle"
        with open(plot_file, "wb") as f:
            pickle.dump({"dataset_name": dataset_name, "model_name": f"{args.model_name or model_name}_{args.mode}",
                         "all_ious": all_ious}, f)
    summary_file = logs_path / f"{stem}.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    names = [f"NoC@{round(t * 100)}" for t in iou_thrs]
    summary.setdefault(model_path.stem, {})[dataset_name] = {
        **dict(zip(names, map(float, noc_list))),
        **{f"NoF@{round(t * 100)}": int(n) for t, n in zip(iou_thrs, over_max)},
        "SPC": spc, "time_s": elapsed, "samples": len(all_ious), "clicks": int(sum(len(x) for x in all_ious)),
        "n_clicks": args.n_clicks, "target_iou": args.target_iou, "thresh": args.thresh,
        "eval_mode": args.eval_mode, "attention": args.attention, "backend": args.backend,
        "checkpoint": str(model_path),
        "date": datetime.now().isoformat(timespec="seconds"),
    }
    summary_file.write_text(json.dumps(summary, indent=2) + "\n")


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.cpu:
        retain_freed_memory()  # every click reallocates the same large tensors (see isegm/utils/malloc.py)
    cfg = load_config_file(args.config_path)
    _LAST_LOADED.clear()   # a call in-process must not reuse an earlier call's model
    device, rank, world = setup_device(args)
    checkpoints, logs_path, logs_prefix = checkpoints_and_logs(args, cfg)
    single = len(checkpoints) == 1
    if args.iou_analysis and not single:
        raise InputError("--iou-analysis needs exactly one checkpoint")
    if rank == 0:
        print(f"checkpoint list: {[str(c) for c in checkpoints]}")
    first = True
    for dataset_name in args.datasets.split(","):
        dataset = get_dataset(dataset_name, cfg)
        for model_path in checkpoints:
            result = evaluate_one(args, model_path, dataset, dataset_name, device, rank, world)
            if rank == 0:
                save_results(args, *result, dataset_name, model_path, logs_path, logs_prefix, single, first)
                first = False
            if world > 1:
                dist.barrier()
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(run_cli(main))
