"""Random streams of DataLoader workers: numpy, python and albumentations seeded per worker and per rank."""
from __future__ import annotations

import random
from typing import Any, List, Tuple

import numpy as np
import torch

from isegm.utils.distributed import get_rank

from .transforms import reseed_augmentator

__all__ = ["seed_everything_for_worker", "worker_init_fn"]


def _datasets_of(dataset: Any) -> List[Any]:
    """The dataset and the datasets it wraps (``Subset.dataset``, ``ConcatDataset.datasets``), each once."""
    found, stack = [], [dataset]
    while stack:
        current = stack.pop()
        if current is None or any(current is x for x in found):
            continue
        found.append(current)
        stack.append(getattr(current, "dataset", None))
        stack.extend(getattr(current, "datasets", None) or [])
    return found


def seed_everything_for_worker(base_seed: int, rank: int = 0, dataset: Any = None) -> Tuple[int, int, int]:
    """Seed numpy's and python's global RNGs and the albumentations Compose of ``dataset`` (and of the
    datasets it wraps), each transform of the Compose with its own seed (:func:`reseed_augmentator`).

    The three seeds are derived from ``(base_seed, rank)`` with ``np.random.SeedSequence``, so
    different workers and ranks get unrelated streams. Returns the ``(numpy, python, albumentations)`` seeds.
    """
    words = np.random.SeedSequence([int(base_seed) % (1 << 64), int(rank)]).generate_state(3, dtype=np.uint32)
    np_seed, py_seed, aug_seed = (int(x) for x in words)
    np.random.seed(np_seed)
    random.seed(py_seed)
    for item in _datasets_of(dataset):
        augmentator = getattr(item, "augmentator", None)
        if augmentator is not None and hasattr(augmentator, "set_random_seed"):
            reseed_augmentator(augmentator, aug_seed)  # one stream per transform, unlike Compose.set_random_seed
    return np_seed, py_seed, aug_seed


def worker_init_fn(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: distinct random streams per worker and per DDP rank.

    Without it, forked workers inherit the same numpy RNG state and the same albumentations RNGs,
    and produce identical augmentations and clicks. In a worker ``torch.initial_seed()`` is the
    loader's per-epoch base seed plus ``worker_id``; the rank (:func:`isegm.utils.distributed.get_rank`)
    is mixed in because ranks often share the torch seed.
    """
    info = torch.utils.data.get_worker_info()
    seed_everything_for_worker(torch.initial_seed(), get_rank(), info.dataset if info is not None else None)
