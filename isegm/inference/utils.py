"""Loading models for inference (RITM's public names live here)."""
from __future__ import annotations

import os
from typing import Any, Union

import torch
from torch import nn

from isegm.utils.checkpoint import CheckpointError, clean_state_dict, load_state_dict_checked, read_torch_file
from isegm.utils.serialization import load_model


def load_is_model(checkpoint: Union[str, "os.PathLike[str]", dict, list], device: Union[str, torch.device],
                  strict: bool = True, **kwargs: Any):
    """Build a model from a released-format checkpoint and return it in eval mode on ``device``.

    Args:
        checkpoint: path of a ``.pth`` file (``{'state_dict': ..., 'config': ...}``), or that dict
            already loaded. Files are read with ``weights_only=True``; the model class comes from
            the config and must be allow-listed (``isegm.utils.serialization``).
        device: where to put the model.
        strict: by default any missing key, unexpected key or shape mismatch raises
            :class:`CheckpointError`; ``strict=False`` loads the matching entries with a warning.
        **kwargs: constructor arguments that override the stored config.

    Returns:
        the model, parameters frozen (``requires_grad=False``), ``eval()`` mode. A list of
        checkpoints (a multi-stage bundle) gives ``(first_model, [all models])`` as in RITM.
    """
    source = "checkpoint"
    if isinstance(checkpoint, (str, os.PathLike)):
        source = f"checkpoint {os.fspath(checkpoint)!r}"
        checkpoint = read_torch_file(checkpoint, "checkpoint")
    if isinstance(checkpoint, list):
        models = [_load_single(c, device, strict, f"{source}[{i}]", **kwargs) for i, c in enumerate(checkpoint)]
        return models[0], models
    return _load_single(checkpoint, device, strict, source, **kwargs)


def _load_single(checkpoint: Any, device, strict: bool, source: str, **kwargs) -> nn.Module:
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "config" not in checkpoint:
        keys = list(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{source} is not an EMC-Click checkpoint: expected a dict with 'state_dict' "
                              f"and 'config' (as written by training), found {keys}")
    try:
        model = load_model(checkpoint["config"], **kwargs)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from exc
    state = clean_state_dict(checkpoint["state_dict"], source)
    load_state_dict_checked(model, state, source, strict=strict)
    for param in model.parameters():
        param.requires_grad = False
    return model.to(device).eval()
