"""GrabCut (and, through BerkeleyDataset, Berkeley): ``<root>/data_GT`` images, ``<root>/boundary_GT`` masks."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import ISDataset, check_same_size
from ..image_io import read_image_rgb, read_mask
from ..sample import DSample


class GrabCutDataset(ISDataset):
    """One sample per image of ``sorted(<root>/<images_dir_name>/*.*)``.

    The mask is the first channel of the mask file: 128 marks the ignored band (-1), values
    above 128 the object; other values stay as they are, so only 0 (and, as in the original,
    a raw value of exactly 1) are meaningful.
    """

    name = "GrabCut"

    def __init__(self, dataset_path, images_dir_name: str = "data_GT", masks_dir_name: str = "boundary_GT",
                 **kwargs):
        super().__init__(**kwargs)
        self.dataset_path = self._require_dir(Path(dataset_path), "root folder")
        self._images_path = self._require_dir(self.dataset_path / images_dir_name, "images folder")
        self._insts_path = self._require_dir(self.dataset_path / masks_dir_name, "masks folder")
        self.dataset_samples, self._masks_paths = self._match_masks_by_stem(self._images_path, self._insts_path)

    def get_sample(self, index: int) -> DSample:
        image_path = self._images_path / self.dataset_samples[index]
        mask_path = self._masks_paths[self.dataset_samples[index]]
        image = read_image_rgb(image_path)
        instances_mask = self.decode_mask(read_mask(mask_path))
        check_same_size(image, instances_mask, image_path, mask_path)
        return DSample(image, instances_mask, objects_ids=[1], ignore_ids=[-1], sample_id=index)

    @staticmethod
    def decode_mask(mask_bgr: np.ndarray) -> np.ndarray:
        """``H x W x 3`` mask as cv2 reads it -> ``H x W`` int32: 128 = ignore (-1), above 128 = object."""
        instances_mask = mask_bgr[:, :, 0].astype(np.int32)
        instances_mask[instances_mask == 128] = -1
        instances_mask[instances_mask > 128] = 1
        return instances_mask
