"""Masks on the wire: 8-bit PNGs (probabilities, instance ids) and COCO-style run-length encoding.

Run-length encoding follows COCO's uncompressed RLE: ``{"size": [H, W], "counts": [...]}``, runs
over the mask in column-major order, alternating 0 and 1 and starting with a run of 0 (possibly
empty).
"""
from __future__ import annotations

from typing import Dict, List

import cv2
import numpy as np

__all__ = ["probabilities_png", "instances_png", "encode_rle", "decode_rle"]

# zlib level 1 with run-length matching only: on a 480x640 probability map, a quarter faster than
# level 1's default strategy and smaller (measured here); higher levels save little on masks.
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def _png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(array), _PNG_PARAMS)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {array.shape} {array.dtype} array as PNG")
    return data.tobytes()


def probabilities_png(probs: np.ndarray) -> bytes:
    """``H x W`` float probabilities in [0, 1] -> 8-bit grayscale PNG, pixel = ``round(255 * p)``."""
    return _png(np.rint(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8))


def instances_png(ids: np.ndarray) -> bytes:
    """``H x W`` uint8 instance ids (0 = background, 1..255 objects) -> 8-bit grayscale PNG."""
    if ids.dtype != np.uint8:
        raise ValueError(f"instance ids must be uint8, got {ids.dtype}")
    return _png(ids)


def encode_rle(mask: np.ndarray) -> Dict[str, List[int]]:
    """``H x W`` boolean mask -> ``{"size": [H, W], "counts": [runs]}`` (column-major, 0-run first)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be H x W, got shape {mask.shape}")
    flat = mask.ravel(order="F")
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], starts, [flat.size])))
    if flat.size and flat[0]:
        counts = np.concatenate(([0], counts))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts.tolist()}


def decode_rle(rle: Dict[str, List[int]]) -> np.ndarray:
    """Inverse of :func:`encode_rle`: ``H x W`` boolean mask."""
    height, width = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != height * width:
        raise ValueError(f"RLE counts add up to {counts.sum()}, not {height} x {width} = {height * width}")
    values = np.arange(counts.size) % 2 == 1
    return np.repeat(values, counts).reshape((height, width), order="F")
