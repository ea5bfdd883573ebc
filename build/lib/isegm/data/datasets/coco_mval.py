"""COCO MVal: ``<root>/img/<name>.jpg`` images, ``<root>/gt/<name>.png`` masks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from isegm.utils.errors import MissingFileError

from ..base import ISDataset, check_same_size
from ..image_io import read_image_rgb, read_mask
from ..sample import DSample


class COCOMValDataset(ISDataset):
    """One sample per file of ``img/`` whose name contains ``.jpg``; its mask is the same name with
    ``.jpg`` replaced by ``.png`` in ``gt/``; object = first mask channel > 128.

    The original used the unsorted ``os.listdir`` order (filesystem-dependent); here the names are
    sorted, so the order is reproducible (per-dataset means are unaffected).
    """

    name = "COCOMVal"

    def __init__(self, dataset_path, images_dir_name: str = "img", masks_dir_name: str = "gt", **kwargs):
        super().__init__(**kwargs)
        self.dataset_path = self._require_dir(Path(dataset_path), "root folder")
        self._images_path = self._require_dir(self.dataset_path / images_dir_name, "images folder")
        self._insts_path = self._require_dir(self.dataset_path / masks_dir_name, "masks folder")
        self.dataset_samples = sorted(name for name in os.listdir(self._images_path)
                                      if ".jpg" in name and (self._images_path / name).is_file())
        self._require_samples(self._images_path)
        self._masks_paths = {name: self._insts_path / name.replace(".jpg", ".png") for name in self.dataset_samples}
        for name, mask_path in self._masks_paths.items():
            if not mask_path.is_file():
                raise MissingFileError(f"{self.name} dataset: no mask for image {self._images_path / name}: "
                                        f"expected {mask_path}")

    def get_sample(self, index: int) -> DSample:
        name = self.dataset_samples[index]
        image_path, mask_path = self._images_path / name, self._masks_paths[name]
        image = read_image_rgb(image_path)
        instances_mask = (read_mask(mask_path)[:, :, 0] > 128).astype(np.int32)
        check_same_size(image, instances_mask, image_path, mask_path)
        return DSample(image, instances_mask, objects_ids=[1], sample_id=index)
