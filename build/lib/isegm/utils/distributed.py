"""torch.distributed helpers that work the same under ``torch.distributed.launch``, ``torchrun`` and alone."""
from __future__ import annotations

import os
from typing import Any, Dict

import torch
import torch.distributed as dist

from isegm.utils.errors import InputError


def local_rank_from_env(argv_local_rank: int = 0) -> int:
    """The local rank: ``LOCAL_RANK`` (torchrun, and launch >= 2.0) wins over ``--local-rank``."""
    return int(os.environ.get("LOCAL_RANK", argv_local_rank))


def is_launched() -> bool:
    """True when a launcher started several processes (the launchers export ``WORLD_SIZE``)."""
    return "WORLD_SIZE" in os.environ


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's rank: ``torch.distributed``'s once initialised, else the launcher's ``$RANK``, else 0.

    The environment serves processes of a launched run that have not joined the group (spawned
    DataLoader workers, code running before ``init_process_group``). ``$RANK`` counts only when a
    launcher also exported ``WORLD_SIZE`` (:func:`is_launched`): a stray ``RANK`` in a single-process
    run must not make it a non-master (no checkpoints, no INFO logs).
    """
    if is_initialized():
        return dist.get_rank()
    if not is_launched():
        return 0
    value = os.environ.get("RANK", "")
    try:
        return int(value) if value.strip() else 0
    except ValueError:
        raise InputError(f"environment variable RANK must be an integer, got {value!r}") from None


def get_world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def synchronize() -> None:
    """A barrier when several processes run; nothing otherwise."""
    if get_world_size() > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (pickled; for small objects such as paths)."""
    if get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def reduce_loss_dict(losses: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Mean of each scalar loss over all ranks (the value every rank logs)."""
    world = get_world_size()
    if world == 1 or not losses:
        return losses
    names = sorted(losses)
    values = torch.stack([losses[k].detach().float() for k in names])
    dist.all_reduce(values)
    values /= world
    return dict(zip(names, values))
