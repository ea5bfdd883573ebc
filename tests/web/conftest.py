"""Fixtures of the web tests: a server on :class:`conftest.DiskModel` and a random-weight hr18s."""
from __future__ import annotations

from typing import Iterator

import pytest
import torch
from conftest import DiskModel
from fastapi.testclient import TestClient

from isegm.build import build_emc_click
from isegm.web import ServerLimits, create_app


@pytest.fixture
def disk_model() -> DiskModel:
    return DiskModel().eval()


@pytest.fixture(scope="module")
def hr18s() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_emc_click("hr18s").eval().requires_grad_(False)


@pytest.fixture
def disk_client(disk_model, tmp_path) -> Iterator[TestClient]:
    app = create_app(disk_model, "cpu", output_dir=tmp_path / "out", limits=ServerLimits(max_sessions=3),
                     infer_size=96)
    with TestClient(app) as client:
        yield client
