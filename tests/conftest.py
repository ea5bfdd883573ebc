import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VARIANTS = ["hr18s", "hr18", "hr32", "segb0", "segb3"]


def shared_path(*parts: str) -> Path:
    """A file of the reference ``shared/`` folder beside the repo; skip the test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference file {path} not found (the shared/ folder with the spec and fixtures "
                    "sits beside the repository only for the project's developers and CI)")
    return path


def load_spec(name: str) -> dict:
    with open(shared_path("spec", "checkpoints", f"{name}.json")) as f:
        return json.load(f)


def load_fixture(*parts: str):
    return torch.load(shared_path("fixtures", *parts), map_location="cpu", weights_only=True)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return (a.double() - b.double()).abs().max().item()


@pytest.fixture(autouse=True)
def _single_thread_numerics():
    # The fixtures were produced with one thread; keep reductions in the same order.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
