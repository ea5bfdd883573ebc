"""DAVIS (the 345-frame interactive-segmentation benchmark): ``<root>/img`` images, ``<root>/gt`` masks."""
from __future__ import annotations

import numpy as np

from .grabcut import GrabCutDataset


class DavisDataset(GrabCutDataset):
    """One sample per image of ``sorted(<root>/img/*.*)``; object = any non-zero channel of the mask
    (so anti-aliased edge pixels count as object, as in the original)."""

    name = "DAVIS"

    def __init__(self, dataset_path, images_dir_name: str = "img", masks_dir_name: str = "gt", **kwargs):
        super().__init__(dataset_path, images_dir_name=images_dir_name, masks_dir_name=masks_dir_name, **kwargs)

    @staticmethod
    def decode_mask(mask_bgr: np.ndarray) -> np.ndarray:
        # No ignore band here: any non-zero channel is object (ignore_ids=[-1] then matches nothing).
        return (mask_bgr.max(axis=2) > 0).astype(np.int32)
