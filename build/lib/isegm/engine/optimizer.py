"""Optimizers with per-parameter learning-rate multipliers (``LRMult``)."""
from __future__ import annotations

import logging
import math

import torch
from torch import nn

from isegm.utils.errors import InputError

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def get_optimizer(model: nn.Module, opt_name: str, opt_kwargs: dict,
                  logger: logging.Logger = None) -> torch.optim.Optimizer:
    """One parameter group per parameter, as the original: a parameter tagged ``lr_mult`` gets
    ``lr * lr_mult`` (the backbone's 0.1); the others take ``opt_kwargs['lr']``.
    """
    if opt_name.lower() not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {opt_name!r}; choose one of {sorted(OPTIMIZERS)}")
    groups = []
    base_lr = opt_kwargs["lr"]
    multiplied = {}
    for name, param in model.named_parameters():
        group = {"params": [param]}
        mult = getattr(param, "lr_mult", 1.0)
        if not math.isclose(mult, 1.0):
            multiplied.setdefault(mult, []).append(name)
            group["lr"] = base_lr * mult
        groups.append(group)
    if logger is not None:
        # The original logged one line per parameter; one line per multiplier (names at DEBUG) reads better.
        for mult, names in multiplied.items():
            logger.info("Applied lr_mult=%g to %d parameters (%s ... %s)", mult, len(names), names[0], names[-1])
            logger.debug("lr_mult=%g: %s", mult, ", ".join(names))
    return OPTIMIZERS[opt_name.lower()](groups, **opt_kwargs)
