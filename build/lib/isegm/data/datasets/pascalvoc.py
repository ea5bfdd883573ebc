"""PASCAL VOC 2012 instances: ``JPEGImages/<id>.jpg``, ``SegmentationObject/<id>.png``,
``ImageSets/Segmentation/<split>.txt``."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from isegm.utils.errors import InputError

from ..base import ISDataset, check_same_size
from ..image_io import read_image_rgb, read_mask
from ..sample import DSample

VOID_GRAY = 220  # gray level of the VOC "void" colour (224, 224, 192)


def read_voc_gray(png_path) -> np.ndarray:
    """HxW int32 gray levels of a VOC palette PNG, decoded as the original does (BGR colours, then BGR2GRAY)."""
    return cv2.cvtColor(read_mask(png_path), cv2.COLOR_BGR2GRAY).astype(np.int32)


class PascalVocDataset(ISDataset):
    """One sample per (image, instance) in the split file's order.

    Quirk kept from the original on purpose: instances are not the palette indices but the GRAY
    LEVELS of the palette colours (index 1 -> 38, 2 -> 75, 3 -> 113, 4 -> 15, ...; void -> 220).
    So the instances of an image come sorted by gray level, not by index (instance 4 first), and
    palette colours sharing a gray level (1 & 16, 3 & 18, 6 & 21, 9 & 24) form one merged object.
    Void pixels (gray 220) are ignored (-1).
    """

    name = "Pascal"

    def __init__(self, dataset_path, split: str = "val", **kwargs):
        super().__init__(**kwargs)
        if split not in ("train", "val", "trainval", "test"):
            raise InputError(f"PascalVOC split must be one of train, val, trainval, test, got {split!r}")
        self.dataset_split = split
        self.dataset_path = self._require_dir(Path(dataset_path), "root folder")
        self._images_path = self._require_dir(self.dataset_path / "JPEGImages", "images folder")
        self._insts_path = self._require_dir(self.dataset_path / "SegmentationObject", "instances folder")
        list_path = self.dataset_path / "ImageSets" / "Segmentation" / f"{split}.txt"
        self._list_instances(list_path, lambda name: self._insts_path / f"{name}.png", read_voc_gray,
                             (0, VOID_GRAY), "instance mask")

    def get_sample(self, index: int) -> DSample:
        name, instance_gray = self.dataset_samples[index]
        image_path = self._images_path / f"{name}.jpg"
        png_path = self._insts_path / f"{name}.png"
        image = read_image_rgb(image_path)
        gray = read_voc_gray(png_path)
        check_same_size(image, gray, image_path, png_path)
        instances_mask = np.zeros_like(gray)
        instances_mask[gray == VOID_GRAY] = VOID_GRAY
        instances_mask[gray == instance_gray] = 1
        return DSample(image, instances_mask, objects_ids=[1], ignore_ids=[VOID_GRAY], sample_id=index)
