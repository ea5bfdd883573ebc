"""EMC-Click checkpoints: the one place where a ``.pth`` file is read, checked, loaded and written.

The released format is ``{'state_dict': ..., 'config': {'class': <dotted path>, 'params': ...}}``
(see :mod:`isegm.utils.serialization`). Reading uses ``weights_only=True`` and builds only
allow-listed classes; loading is strict (every missing key, unexpected key and shape mismatch is
listed); a DDP ``module.`` prefix is dropped and the model translates legacy names itself
(``checkpoint_filter_fn``, the refiner's aliased keys). Everything that reads a checkpoint goes
through here: :func:`isegm.inference.utils.load_is_model`, :func:`isegm.build.build_emc_click`,
the trainer's ``--weights`` and resume.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Union

import torch
from torch import nn

from isegm.utils.errors import CheckpointError
from isegm.utils.serialization import load_model
from isegm.utils.torch_files import PathLike, atomic_save, read_torch_file

__all__ = ["Checkpoint", "CheckpointError", "read_checkpoint", "load_weights", "model_from_checkpoint",
           "prepare_for_inference", "save_checkpoint", "list_checkpoints", "LEGACY_STATE_SUFFIX"]

LEGACY_STATE_SUFFIX = ".state.pth"
"""Training-state files of earlier versions of this project, which ``*.pth`` patterns also matched.
The trainer now writes ``<name>.state`` (no ``.pth``): nothing beside the checkpoints looks like one."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's content, checked for the released layout.

    Attributes:
        state_dict: parameter and buffer tensors by name.
        config: ``{'class': dotted path, 'params': {...}}`` as written by ``@serialize``.
        source: names the checkpoint in messages (``"checkpoint 'weights/hr18s.pth'"``).
    """

    state_dict: Dict[str, torch.Tensor]
    config: Dict[str, Any]
    source: str


def read_checkpoint(checkpoint: Union[PathLike, Mapping], what: str = "checkpoint") -> Checkpoint:
    """Read a released-format file (or check an already loaded dict).

    Args:
        checkpoint: a path, or the dict ``torch.load`` returned.
        what: what the file is to the caller (``'checkpoint'``, ``'--weights'``...), for messages.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable file, or not a dict with a ``state_dict`` of tensors and a
            ``config`` with ``class`` and ``params``; the message names the file.
    """
    source = what
    if isinstance(checkpoint, (str, os.PathLike)):
        source = f"{what} {os.fspath(checkpoint)!r}"
        checkpoint = read_torch_file(checkpoint, what)
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint or "config" not in checkpoint:
        found = list(checkpoint)[:8] if isinstance(checkpoint, Mapping) else f"a {type(checkpoint).__name__}"
        raise CheckpointError(f"{source} is not an EMC-Click checkpoint: expected a dict with 'state_dict' and "
                              f"'config' (as training writes them), found {found}")
    state, config = checkpoint["state_dict"], checkpoint["config"]
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{source}: 'state_dict' must map names to tensors")
    if not isinstance(config, Mapping) or "class" not in config or "params" not in config:
        keys = list(config)[:5] if isinstance(config, Mapping) else type(config).__name__
        raise CheckpointError(f"{source}: 'config' must be a dict with 'class' and 'params', found {keys}")
    return Checkpoint(dict(state), dict(config), source)


def load_weights(model: nn.Module, checkpoint: Checkpoint, strict: bool = True) -> None:
    """Load ``checkpoint``'s state dict into ``model``, reporting every mismatch.

    With ``strict=True`` (default) any missing key, unexpected key or shape mismatch raises
    :class:`CheckpointError` listing them; with ``strict=False`` they are logged as a warning and
    the matching entries are loaded. The mode (train / eval) of ``model`` is left as it is.
    """
    state = checkpoint.state_dict
    if state and all(k.startswith("module.") for k in state):   # saved from a DDP wrapper
        state = {k[len("module."):]: v for k, v in state.items()}
    filter_fn = getattr(model, "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, checkpoint.source)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:20]) + (f", ... ({len(items)} in all)" if len(items) > 20 else "")
            problems.append(f"{title}: {shown}")
    if problems:
        message = f"{checkpoint.source} does not match the model; " + "; ".join(problems)
        if strict:
            raise CheckpointError(message)
        logger.warning("%s (strict=False: loading the matching entries)", message)
    bad = {s.split(":")[0] for s in shapes}
    model.load_state_dict({k: v for k, v in state.items() if k in own and k not in bad}, strict=False)


def prepare_for_inference(model: nn.Module, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """Freeze the parameters, switch to eval mode and move to ``device``: how every loader hands a model out."""
    for param in model.parameters():
        param.requires_grad = False
    return model.to(device).eval()


def model_from_checkpoint(checkpoint: Union[PathLike, Mapping, Checkpoint], device: Union[str, torch.device] = "cpu",
                          strict: bool = True, **overrides: Any) -> nn.Module:
    """Build the model a checkpoint's config names, load its weights, and prepare it for inference.

    ``overrides`` are constructor arguments that replace stored ones.
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint)
    try:
        model = load_model(checkpoint.config, **overrides)
    except CheckpointError as exc:
        raise CheckpointError(f"{checkpoint.source}: {exc}") from exc
    load_weights(model, checkpoint, strict=strict)
    return prepare_for_inference(model, device)


def save_checkpoint(model: nn.Module, path: PathLike) -> None:
    """Write ``{'state_dict', 'config'}`` exactly as the released files, atomically.

    A DDP / DataParallel wrapper is unwrapped so keys carry no ``module.`` prefix. The file
    appears under its final name only once completely written.
    """
    net = model.module if hasattr(model, "module") else model
    if not hasattr(net, "_config"):
        raise TypeError(f"{type(net).__name__} has no _config: decorate its __init__ with @serialize")
    atomic_save({"state_dict": net.state_dict(), "config": net._config}, path)


def list_checkpoints(folder: PathLike, prefix: str = "") -> List[Path]:
    """The checkpoint files ``<prefix>*.pth`` of an experiment's ``checkpoints/`` folder, sorted by name.

    Only checkpoints match: the trainer's training-state files (``*.state``, and the legacy
    ``*.state.pth``) and temporary files of an interrupted write (``*.pth.tmp*``) are left out.
    """
    return sorted(p for p in Path(folder).glob(f"{prefix}*.pth")
                  if p.is_file() and not p.name.endswith(LEGACY_STATE_SUFFIX))
