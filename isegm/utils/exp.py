"""Experiment configuration: ``config.yml`` loading."""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from easydict import EasyDict


def load_config_file(config_path, return_edict: bool = True):
    """Read a YAML config (``config.yml``) into an EasyDict; a missing file is an error naming it."""
    path = Path(config_path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {os.fspath(path)!r} (pass --config-path)")
    with open(path) as f:
        cfg = yaml.safe_load(f) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"config file {os.fspath(path)!r} must hold a mapping of keys, not {type(cfg).__name__}")
    return EasyDict(cfg) if return_edict else cfg
