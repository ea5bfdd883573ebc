"""Masks on the wire: COCO run-length encoding and the 8-bit PNGs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from isegm.web.masks import decode_rle, encode_rle, instances_png, probabilities_png


def reference_rle(mask: np.ndarray) -> list:
    """COCO's uncompressed RLE written out pixel by pixel: column-major runs, starting with zeros."""
    counts, value, run = [], False, 0
    for pixel in mask.T.reshape(-1):
        if bool(pixel) != value:
            counts.append(run)
            value, run = not value, 0
        run += 1
    return counts + [run]


MASKS = {
    "random": np.random.default_rng(0).random((7, 5)) > 0.5,
    "empty": np.zeros((4, 6), bool),
    "full": np.ones((4, 6), bool),
    "first pixel": np.eye(3, 4, dtype=bool),
    "one row": np.array([[0, 1, 1, 0, 1]], bool),
}


@pytest.mark.parametrize("name", MASKS)
def test_rle_is_cocos_and_decodes_back(name):
    mask = MASKS[name]
    rle = encode_rle(mask)
    assert rle["size"] == list(mask.shape) and rle["counts"] == reference_rle(mask)
    np.testing.assert_array_equal(decode_rle(rle), mask)


def test_rle_refuses_counts_of_another_size():
    with pytest.raises(ValueError, match="not 2 x 3"):
        decode_rle({"size": [2, 3], "counts": [4, 1]})


def test_pngs_hold_the_values():
    probs = np.array([[0.0, 0.2, 0.5], [0.998, 1.0, 1.7]], np.float32)
    decoded = cv2.imdecode(np.frombuffer(probabilities_png(probs), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, [[0, 51, 128], [254, 255, 255]])
    ids = np.array([[0, 1], [255, 7]], np.uint8)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(instances_png(ids), np.uint8), cv2.IMREAD_UNCHANGED), ids)
    with pytest.raises(ValueError, match="uint8"):
        instances_png(ids.astype(np.int32))
