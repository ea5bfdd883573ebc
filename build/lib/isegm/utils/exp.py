"""Experiment configuration (``config.yml``) and experiment folders (``EXPS_PATH/<family>/<model>/NNN_<name>``)."""
from __future__ import annotations

import os
import pprint
import shutil
from datetime import datetime
from pathlib import Path
from typing import Optional

import torch
import yaml
from easydict import EasyDict

from isegm.utils import distributed as du
from isegm.utils.errors import ConfigKeyError, InputError, MissingFileError


def load_config_file(config_path, model_name: Optional[str] = None, return_edict: bool = True):
    """Read a YAML config (``config.yml``); a missing file is an error naming it.

    A ``SUBCONFIGS`` mapping may hold per-model overrides: the entry named ``model_name`` replaces
    top-level keys, then ``SUBCONFIGS`` is dropped.
    """
    path = Path(config_path)
    if not path.is_file():
        raise MissingFileError(f"config file not found: {os.fspath(path)!r} (pass --config-path)")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if not isinstance(cfg, dict):
        raise InputError(f"config file {os.fspath(path)!r} must hold a mapping of keys, not {type(cfg).__name__}")
    subconfigs = cfg.pop("SUBCONFIGS", None) or {}
    if model_name is not None and model_name in subconfigs:
        cfg.update(subconfigs[model_name])
    return EasyDict(cfg) if return_edict else cfg


def load_config(model_path, config_path=None) -> EasyDict:
    """The experiment config of a model script.

    With ``config_path``, that file alone. Otherwise the original lookup: ``<model stem>.yml``
    beside the script, then every ``config.yml`` from the script's folder up to the current
    directory, closer files winning key by key (run from the repository root).
    """
    model_path = Path(model_path)
    if config_path:
        return load_config_file(config_path, model_path.stem)
    cfg = {}
    own = model_path.with_suffix(".yml")
    if own.is_file():
        cfg.update(load_config_file(own, return_edict=False))
    cwd = Path.cwd().resolve()
    folder = model_path.parent.resolve()
    while True:
        candidate = folder / "config.yml"
        if candidate.is_file():
            for key, value in load_config_file(candidate, model_path.stem, return_edict=False).items():
                cfg.setdefault(key, value)
        if folder == cwd or folder.parent == folder:
            break
        folder = folder.parent
    if not cfg:
        raise MissingFileError(f"no config.yml found between {model_path.parent} and {cwd} "
                                "(run from the repository root or pass --config-path)")
    return EasyDict(cfg)


def update_config(cfg: EasyDict, args) -> None:
    """Copy the command-line arguments into ``cfg``; YAML keys of the same name (any case) win, as in the original."""
    for name, value in vars(args).items():
        if name.lower() in cfg or name.upper() in cfg:
            continue
        cfg[name] = value


def experiment_family(model_path: Path, model_name: str) -> list:
    """``models/emcclick/x.py`` -> ``['emcclick', model_name]``: the script's folders below ``models``."""
    parts = model_path.resolve().parent.parts
    if "models" not in parts:
        raise InputError(f"model script {model_path} must live under a folder named 'models' "
                         "(its experiment folder is named after the folders below it)")
    below = parts[len(parts) - parts[::-1].index("models"):]
    return [*below, model_name]


def _next_index(parent: Path) -> int:
    indices = [int(p.name[:3]) for p in parent.iterdir() if p.is_dir() and p.name[:3].isdigit()]
    return max(indices) + 1 if indices else 0


def find_resume_folder(parent: Path, prefix: str) -> Path:
    """The single experiment folder of ``parent`` whose name starts with ``prefix`` and holds a checkpoint.

    Folders without any checkpoint (a start that failed before its first save) are ignored.
    """
    matches = sorted(p for p in parent.glob(f"{prefix}*") if p.is_dir() and any((p / "checkpoints").glob("*.pth")))
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise MissingFileError(f"--resume-exp {prefix!r}: expected exactly one experiment folder {parent}/{prefix}* "
                               f"with a checkpoint, found {found}")
    return matches[0]


def init_distributed(cfg: EasyDict) -> None:
    """Join the process group when launched (gloo on CPU, nccl on GPUs) and set the device."""
    cfg.distributed = du.is_launched()
    cfg.local_rank = du.local_rank_from_env(cfg.get("local_rank") or 0)
    use_cpu = bool(cfg.get("cpu"))
    if not use_cpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA device is available: add --cpu (in place of --gpus/--ngpus) to train on the CPU")
    if cfg.distributed and not du.is_initialized():
        torch.distributed.init_process_group(backend="gloo" if use_cpu else "nccl", init_method="env://")
    cfg.rank = du.get_rank()
    world = du.get_world_size()
    if use_cpu:
        cfg.device = torch.device("cpu")
        cfg.gpu_ids = []
        cfg.ngpus = world
        cfg.multi_gpu = world > 1
        return
    gpus = str(cfg.get("gpus") or "")
    gpu_ids = [int(g) for g in gpus.split(",") if g.strip()] or list(range(max(cfg.ngpus, world)))
    cfg.gpus = ",".join(map(str, gpu_ids))
    cfg.ngpus = len(gpu_ids)
    cfg.multi_gpu = cfg.ngpus > 1
    if cfg.distributed:
        cfg.device = torch.device("cuda", cfg.local_rank)
        cfg.gpu_ids = [cfg.local_rank]
        torch.cuda.set_device(cfg.local_rank)
    else:
        cfg.gpu_ids = gpu_ids
        cfg.device = torch.device("cuda", gpu_ids[0])


def _create_experiment_folder(cfg: EasyDict, parent: Path, model_path: Path) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    if cfg.get("resume_exp"):
        exp_path = find_resume_folder(parent, cfg.resume_exp)
    else:
        exp_path = parent / (f"{_next_index(parent):03d}" + (f"_{cfg.exp_name}" if cfg.get("exp_name") else ""))
    for sub in ("checkpoints", "vis", "logs"):
        (exp_path / sub).mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    source = Path(cfg.get("temp_model_path") or model_path)
    shutil.copy(source, exp_path / f"{model_path.stem}_{stamp}.py")
    if cfg.get("temp_model_path"):
        os.remove(source)
    return exp_path


def init_experiment(args, model_name: str) -> EasyDict:
    """Config, process group and experiment folder of a training run.

    New run: ``EXPS_PATH/<family>/<model_name>/NNN[_exp-name]`` with ``checkpoints/``, ``vis/``
    and ``logs/``; ``--resume-exp PREFIX`` reuses the single folder matching ``PREFIX*``. Rank 0
    chooses the folder and creates it; the other ranks receive its path.
    """
    model_path = Path(args.model_path)
    cfg = load_config(model_path, getattr(args, "config_path", None))
    update_config(cfg, args)
    init_distributed(cfg)
    if cfg.get("EXPS_PATH") is None or str(cfg.EXPS_PATH).strip() == "":
        raise ConfigKeyError("config.yml has no EXPS_PATH (missing or empty): it names the folder experiments are "
                             "written to")
    parent = Path(cfg.EXPS_PATH).joinpath(*experiment_family(model_path, model_name))
    exp_path, error = None, None
    if cfg.rank == 0:
        try:
            exp_path = _create_experiment_folder(cfg, parent, model_path)
        except (OSError, ValueError) as exc:  # every rank must leave the broadcast below, then raise
            error = exc
    exp_path, error = du.broadcast_object((str(exp_path) if exp_path else None, error))
    if error is not None:
        raise error
    exp_path = Path(exp_path)
    cfg.EXP_PATH = exp_path
    cfg.CHECKPOINTS_PATH = exp_path / "checkpoints"
    cfg.VIS_PATH = exp_path / "vis"
    cfg.LOGS_PATH = exp_path / "logs"
    if not cfg.get("cpu"):
        torch.backends.cudnn.benchmark = True
    torch.multiprocessing.set_sharing_strategy("file_system")

    from isegm.utils.log import setup_logging

    logger = setup_logging(logs_path=str(cfg.LOGS_PATH))
    logger.info("Number of processes: %d (%s)", du.get_world_size(), "CPU" if cfg.get("cpu") else f"GPUs {cfg.gpus}")
    if cfg.distributed:
        logger.info("Multi-process distributed training, backend %s", torch.distributed.get_backend())
    logger.info("Run experiment with config:\n%s", pprint.pformat(dict(cfg), indent=4))
    return cfg
