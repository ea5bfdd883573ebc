import base64
import contextlib
import importlib.util
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, Tuple

import cv2
import numpy as np
import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VARIANTS = ["hr18s", "hr18", "hr32", "segb0", "segb3"]


def pytest_collection_modifyitems(items):
    """Fast tests first, then the ``slow`` ones (each group keeps its collected order)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)


def load_script(name: str):
    """``scripts/<name>.py`` (or ``train.py`` for ``'train'``) as a module, to call its ``main`` in-process."""
    path = REPO / "train.py" if name == "train" else REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"script_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_env(**extra: str) -> dict:
    """Environment of a script run in a subprocess: this checkout's ``isegm`` comes first on the path
    (whatever an editable install elsewhere points to), and nothing phones home."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, NO_ALBUMENTATIONS_UPDATE="1", **extra)


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


@contextlib.contextmanager
def opencv_settings(threads: int, ipp: bool) -> Iterator[None]:
    """OpenCV's thread count and (per-thread) IPP switch inside the block; the previous ones after it."""
    saved_threads, saved_ipp = cv2.getNumThreads(), cv2.ipp.useIPP()
    cv2.setNumThreads(threads)
    cv2.ipp.setUseIPP(ipp)
    try:
        yield
    finally:
        cv2.setNumThreads(saved_threads)
        cv2.ipp.setUseIPP(saved_ipp)


def original_next_click(gt_mask: np.ndarray, pred_mask: np.ndarray, not_clicked_map: np.ndarray,
                        padding: bool = True, ignore_label: int = -1) -> Tuple[bool, Tuple[int, int]]:
    """RITM's ``Clicker._get_next_click``, transcribed statement by statement, independent of
    ``isegm``: ``(is_positive, (y, x))`` = ``(row, col)`` of the next click.

    ``gt_mask``: ``H x W`` ints (1 object, ``ignore_label`` ignored); ``pred_mask``: ``H x W``
    bool; ``not_clicked_map``: ``H x W`` bool, False at clicked pixels. The transform is the plain
    ``cv2.distanceTransform`` call of the original, so its numbers depend on OpenCV's settings:
    call it under ``opencv_settings(threads, ipp=False)`` (OpenCV's own exact transform, the one
    the original runs on evaluation images with OpenCV's default threads) unless the image has at
    least 2**14 pixels with the frame and OpenCV has several threads, where the defaults give it.
    """
    gt = gt_mask == 1
    not_ignore_mask = gt_mask != ignore_label
    fn_mask = np.logical_and(np.logical_and(gt, np.logical_not(pred_mask)), not_ignore_mask)
    fp_mask = np.logical_and(np.logical_and(np.logical_not(gt), pred_mask), not_ignore_mask)

    if padding:
        fn_mask = np.pad(fn_mask, ((1, 1), (1, 1)), "constant")
        fp_mask = np.pad(fp_mask, ((1, 1), (1, 1)), "constant")

    fn_mask_dt = cv2.distanceTransform(fn_mask.astype(np.uint8), cv2.DIST_L2, 0)
    fp_mask_dt = cv2.distanceTransform(fp_mask.astype(np.uint8), cv2.DIST_L2, 0)

    if padding:
        fn_mask_dt = fn_mask_dt[1:-1, 1:-1]
        fp_mask_dt = fp_mask_dt[1:-1, 1:-1]

    fn_mask_dt = fn_mask_dt * not_clicked_map
    fp_mask_dt = fp_mask_dt * not_clicked_map

    fn_max_dist = np.max(fn_mask_dt)
    fp_max_dist = np.max(fp_mask_dt)

    is_positive = fn_max_dist > fp_max_dist
    if is_positive:
        coords_y, coords_x = np.where(fn_mask_dt == fn_max_dist)
    else:
        coords_y, coords_x = np.where(fp_mask_dt == fp_max_dist)
    return bool(is_positive), (int(coords_y[0]), int(coords_x[0]))


# ----------------------------------------------------------------------------- web tests
RADIUS = 24   # of DiskModel's disks, in network-input pixels


class DiskModel(torch.nn.Module):
    """A model with the network's two calls whose answer is known: disks around the clicks.

    Random weights give masks that say nothing about where one clicked, so the tests that check
    *where* the mask is (the page's overlay, undo, objects, saving) use this model: logits +8
    within ``RADIUS`` network pixels of a positive click, -8 elsewhere, a negative click's disk
    set back to -8, clicks applied in click order. Each call is counted.
    """

    def __init__(self):
        super().__init__()
        self.calls = {"encode": 0, "correct": 0}

    def encode(self, image: torch.Tensor, points: torch.Tensor):
        self.calls["encode"] += 1
        return SimpleNamespace(size=tuple(image.shape[-2:]), batch=image.shape[0])

    def correct(self, embedding, points: torch.Tensor, prev=None, attention: str = "exact", logits_lr=None):
        self.calls["correct"] += 1
        height, width = embedding.size
        yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                                indexing="ij")
        logits = torch.full((points.shape[0], 1, height, width), -8.0)
        num = points.shape[1] // 2
        for b in range(points.shape[0]):
            rows = [(int(i), float(y), float(x), slot < num) for slot, (y, x, i) in enumerate(points[b].tolist())
                    if i >= 0]
            for _, y, x, positive in sorted(rows):
                logits[b, 0][(yy - y) ** 2 + (xx - x) ** 2 <= RADIUS ** 2] = 8.0 if positive else -8.0
        return SimpleNamespace(logits=logits)


def png_bytes(image: np.ndarray) -> bytes:
    """``H x W x 3`` RGB uint8 -> PNG bytes."""
    return cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def decode_png(data: str) -> np.ndarray:
    """base64 PNG of the API -> ``H x W`` uint8."""
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_UNCHANGED)


def sample_image(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
