"""DAVIS (the 345-frame interactive-segmentation benchmark): ``<root>/img`` images, ``<root>/gt`` masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import ISDataset, check_same_size
from ..image_io import read_image_rgb, read_mask
from ..sample import DSample


class DavisDataset(ISDataset):
    """One sample per image of ``sorted(<root>/img/*.*)``; object = any non-zero channel of the mask
    (so anti-aliased edge pixels count as object, as in the original)."""

    name = "DAVIS"

    def __init__(self, dataset_path, images_dir_name: str = "img", masks_dir_name: str = "gt", **kwargs):
        super().__init__(**kwargs)
        self.dataset_path = self._require_dir(Path(dataset_path), "root folder")
        self._images_path = self._require_dir(self.dataset_path / images_dir_name, "images folder")
        self._insts_path = self._require_dir(self.dataset_path / masks_dir_name, "masks folder")
        self.dataset_samples, self._masks_paths = self._match_masks_by_stem(self._images_path, self._insts_path)

    def get_sample(self, index: int) -> DSample:
        image_path = self._images_path / self.dataset_samples[index]
        mask_path = self._masks_paths[self.dataset_samples[index]]
        image = read_image_rgb(image_path)
        instances_mask = (read_mask(mask_path).max(axis=2) > 0).astype(np.int32)
        check_same_size(image, instances_mask, image_path, mask_path)
        return DSample(image, instances_mask, objects_ids=[1], sample_id=index)
