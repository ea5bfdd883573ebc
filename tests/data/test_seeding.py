"""isegm.data.seeding: distinct numpy / python / albumentations streams per DataLoader worker and per rank."""
import random

import albumentations as A
import numpy as np
import torch

from isegm.data.datasets import SyntheticDataset
from isegm.data.seeding import seed_everything_for_worker, worker_init_fn
from isegm.data.transforms import UniformRandomResize, train_augmentator


class DrawDataset(torch.utils.data.Dataset):
    """Each item: one draw of numpy's, python's and the augmentator's RNG."""

    def __init__(self):
        self.augmentator = A.Compose([UniformRandomResize()])

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return (int(np.random.randint(1 << 30)), random.getrandbits(30),
                self.augmentator.transforms[0].py_random.getrandbits(30))


def test_worker_init_fn_gives_each_worker_its_own_streams(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(DrawDataset(), batch_size=None, num_workers=2, worker_init_fn=worker_init_fn)
    draws = [tuple(int(v) for v in item) for item in loader]
    worker0, worker1 = draws[0::2], draws[1::2]  # workers take the indices in turn
    for a, b in zip(worker0, worker1):
        assert all(x != y for x, y in zip(a, b)), draws


def test_seeds_depend_on_seed_and_rank_and_reach_wrapped_datasets():
    seeds = {seed_everything_for_worker(123, rank) for rank in range(4)}
    assert len(seeds) == 4
    assert seed_everything_for_worker(123, 1) == seed_everything_for_worker(123, 1)
    dataset = DrawDataset()
    seed_everything_for_worker(5, 0, torch.utils.data.Subset(dataset, [0]))
    first = dataset.augmentator.transforms[0].py_random.random()
    seed_everything_for_worker(5, 0, dataset)
    assert dataset.augmentator.transforms[0].py_random.random() == first
    seed_everything_for_worker(5, 1, dataset)
    assert dataset.augmentator.transforms[0].py_random.random() != first
    trainset = SyntheticDataset(num_samples=2, augmentator=train_augmentator((320, 480)))
    seed_everything_for_worker(9, 0, torch.utils.data.ConcatDataset([trainset]))
    assert len({t.py_random.random() for t in trainset.augmentator.transforms}) == 6  # independent transforms


def test_worker_init_fn_mixes_in_the_launchers_rank(monkeypatch):
    """In a worker that has not joined the process group the rank comes from the launcher's $RANK."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    draws = []
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        torch.manual_seed(0)
        worker_init_fn(0)  # in the main process: no worker info, the global streams are seeded
        draws.append((int(np.random.randint(1 << 30)), random.getrandbits(30)))
    assert draws[0][0] != draws[1][0] and draws[0][1] != draws[1][1]
    monkeypatch.setenv("RANK", "1")
    torch.manual_seed(0)
    worker_init_fn(0)
    assert (int(np.random.randint(1 << 30)), random.getrandbits(30)) == draws[1]
