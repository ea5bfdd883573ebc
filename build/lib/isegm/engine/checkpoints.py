"""An experiment's ``checkpoints/`` folder: the weights in the released format and, beside the last
checkpoint, the training state that resumes it.

* ``last_checkpoint.pth`` (every epoch) and ``NNN.pth`` (at the interval epochs): weights and
  config only, the released format, each written atomically.
* ``last_checkpoint.state``: optimizer, scheduler, gradient scaler, epoch and a fingerprint of the
  weights it belongs to. It does not end in ``.pth``: nothing that is not a checkpoint matches a
  checkpoint pattern.

The pair is written so that a crash at any point leaves a pair that resumes: the new state goes
to ``last_checkpoint.state.new``, then the weights replace ``last_checkpoint.pth``, then the state
is renamed to ``last_checkpoint.state``. Killed before the weights, the previous pair is intact;
killed after them, the new weights' state waits under ``.state.new``. :func:`load_state` takes
the state file whose fingerprint matches the weights. Temporary files of an interrupted write
(``*.tmp<pid>``) are removed at the next save.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import List, Optional

from torch import nn

from isegm.model.checkpoint import LEGACY_STATE_SUFFIX, save_checkpoint
from isegm.utils.errors import CheckpointError
from isegm.utils.torch_files import atomic_save, read_torch_file

logger = logging.getLogger(__name__)

LAST = "last_checkpoint"
STATE_SUFFIX = ".state"
_PENDING = ".new"
_TEMPORARY = re.compile(r"\.tmp\d+$")


def weights_fingerprint(model: nn.Module) -> float:
    """A float64 sum of all floating-point state tensors: ties a training state to its weights."""
    net = model.module if hasattr(model, "module") else model
    return float(sum(t.double().sum() for t in net.state_dict().values() if t.is_floating_point()))


def state_path(checkpoint: Path) -> Path:
    """``checkpoints/last_checkpoint.pth`` -> ``checkpoints/last_checkpoint.state``."""
    return checkpoint.with_name(checkpoint.name[: -len(".pth")] + STATE_SUFFIX)


def checkpoint_epoch(checkpoint: Path) -> Optional[int]:
    """``005.pth`` -> 5; None for other names (``last_checkpoint.pth``, ``init.pth``)."""
    stem = checkpoint.name[: -len(".pth")]
    return int(stem) if stem.isdigit() else None


def remove_stale_temporaries(folder: Path) -> List[Path]:
    """Delete the ``*.tmp<pid>`` files an interrupted atomic write left in ``folder``; -> those removed."""
    stale = [p for p in folder.iterdir() if p.is_file() and _TEMPORARY.search(p.name)]
    for path in stale:
        path.unlink()
        logger.info("Removed %s, left by an interrupted save", path)
    return stale


def save_pair(model: nn.Module, state: dict, checkpoint: Path) -> None:
    """Write ``checkpoint`` (released format) and its training state so that a crash leaves a pair
    that resumes (see the module docstring). ``state`` gets the weights' fingerprint."""
    target = state_path(checkpoint)
    pending = target.with_name(target.name + _PENDING)
    atomic_save({**state, "weights_fingerprint": weights_fingerprint(model)}, pending)
    save_checkpoint(model, checkpoint)
    os.replace(pending, target)


def load_state(model: nn.Module, checkpoint: Path) -> Optional[dict]:
    """The training state saved with the weights now in ``model`` (read from ``checkpoint``).

    Returns None when ``checkpoint`` has no state file (an interval checkpoint, or one written by
    hand). Raises :class:`CheckpointError` when state files exist but none belongs to these weights.
    """
    target = state_path(checkpoint)
    candidates = [target, target.with_name(target.name + _PENDING),
                  checkpoint.with_name(checkpoint.name[: -len(".pth")] + LEGACY_STATE_SUFFIX)]
    present = [p for p in candidates if p.is_file()]
    if not present:
        return None
    fingerprint = weights_fingerprint(model)
    for path in present:
        state = read_torch_file(path, "training state")
        if isinstance(state, dict) and state.get("weights_fingerprint") == fingerprint:
            return state
    names = ", ".join(p.name for p in present)
    raise CheckpointError(f"no training state beside {str(checkpoint)!r} belongs to its weights (found {names}); "
                          "resume from another checkpoint with --resume-prefix, or move the state files away to "
                          "restart the optimizer from these weights")
