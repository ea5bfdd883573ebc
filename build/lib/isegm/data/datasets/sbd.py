"""SBD: ``<root>/img/<id>.jpg``, ``<root>/inst/<id>.mat``, ``<root>/{train,val}.txt`` (training and evaluation)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
from scipy.io import loadmat

from isegm.utils.errors import InputError, MissingFileError

from ..base import ISDataset, check_same_size
from ..image_io import read_image_rgb
from ..sample import DSample


def read_sbd_instances(mat_path) -> np.ndarray:
    """HxW int32 instance map of an SBD ``inst/*.mat`` (first field of ``GTinst``: 0 background, k instance k)."""
    return loadmat(str(mat_path))["GTinst"][0][0][0].astype(np.int32)


class _SBDLayout(ISDataset):
    """``<root>/img/<id>.jpg``, ``<root>/inst/<id>.mat`` and the split lists ``<root>/{train,val}.txt``."""

    def _open_layout(self, dataset_path, split: str) -> Path:
        """Check the folders; -> the split list's path."""
        if split not in ("train", "val"):
            raise InputError(f"SBD split must be 'train' or 'val', got {split!r}")
        self.dataset_split = split
        self.dataset_path = self._require_dir(Path(dataset_path), "root folder")
        self._images_path = self._require_dir(self.dataset_path / "img", "images folder")
        self._insts_path = self._require_dir(self.dataset_path / "inst", "instances folder")
        return self.dataset_path / f"{split}.txt"


class SBDEvaluationDataset(_SBDLayout):
    """One sample per (image, instance): images in the split file's order, instances by increasing id.

    The original cached this list as ``<root>/<split>_images_and_ids_list.pkl`` inside the dataset
    folder (and reused a stale cache); here it is computed in memory on construction and nothing is
    written (an existing cache file is ignored).
    """

    name = "SBDEvaluation"

    def __init__(self, dataset_path, split: str = "val", **kwargs):
        super().__init__(**kwargs)
        list_path = self._open_layout(dataset_path, split)
        self._list_instances(list_path, lambda name: self._insts_path / f"{name}.mat", read_sbd_instances,
                             (0,), "instance file")

    def get_sample(self, index: int) -> DSample:
        name, instance_id = self.dataset_samples[index]
        image_path = self._images_path / f"{name}.jpg"
        mat_path = self._insts_path / f"{name}.mat"
        image = read_image_rgb(image_path)
        instances_mask = (read_sbd_instances(mat_path) == instance_id).astype(np.int32)
        check_same_size(image, instances_mask, image_path, mat_path)
        return DSample(image, instances_mask, objects_ids=[1], sample_id=index)


class SBDDataset(_SBDLayout):
    """SBD for training: one multi-object sample per image of the split file (config key ``SBD_PATH``).

    Objects whose area is less than ``buggy_mask_thresh`` of their bounding box are erased (thin,
    broken annotations; the verdict is cached per image). The small-region cleaning of the target
    mask (:meth:`ISDataset.remove_small_regions`) is skipped, as in the original.
    """

    name = "SBD"
    remove_small_target_regions = False

    def __init__(self, dataset_path, split: str = "train", buggy_mask_thresh: float = 0.08, **kwargs):
        super().__init__(**kwargs)
        list_path = self._open_layout(dataset_path, split)
        self.dataset_samples = self._read_id_list(list_path)
        self._require_samples(list_path)
        self._buggy_mask_thresh = buggy_mask_thresh
        self._buggy_objects: Dict[int, List[int]] = {}

    def image_id(self, index: int) -> str:
        return self.dataset_samples[index]

    def get_sample(self, index: int) -> DSample:
        name = self.dataset_samples[index]
        image_path = self._images_path / f"{name}.jpg"
        mat_path = self._insts_path / f"{name}.mat"
        image = read_image_rgb(image_path)
        if not mat_path.is_file():
            raise MissingFileError(f"{self.name} dataset: instance file not found: {mat_path}")
        instances_mask = read_sbd_instances(mat_path)
        check_same_size(image, instances_mask, image_path, mat_path)
        instances_mask = self.remove_buggy_masks(index, instances_mask)
        instances_ids = [int(x) for x in np.unique(instances_mask) if x != 0]
        return DSample(image, instances_mask, objects_ids=instances_ids, sample_id=index)

    def remove_buggy_masks(self, index: int, instances_mask: np.ndarray) -> np.ndarray:
        """Erase (set to 0) the objects filling less than ``buggy_mask_thresh`` of their bounding box."""
        if self._buggy_mask_thresh <= 0.0:
            return instances_mask
        buggy = self._buggy_objects.get(index)
        if buggy is None:
            buggy = []
            for obj_id in np.unique(instances_mask):
                if obj_id == 0:
                    continue
                obj_mask = instances_mask == obj_id
                rows = np.flatnonzero(obj_mask.any(axis=1))
                cols = np.flatnonzero(obj_mask.any(axis=0))
                bbox_area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
                if obj_mask.sum() / bbox_area < self._buggy_mask_thresh:
                    buggy.append(int(obj_id))
            self._buggy_objects[index] = buggy
        for obj_id in buggy:
            instances_mask[instances_mask == obj_id] = 0
        return instances_mask
