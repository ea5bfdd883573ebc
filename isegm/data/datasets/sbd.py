"""SBD evaluation set: ``<root>/img/<id>.jpg``, ``<root>/inst/<id>.mat``, ``<root>/{train,val}.txt``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat

from ..base import ISDataset, check_same_size
from ..image_io import read_image_rgb
from ..sample import DSample


def read_sbd_instances(mat_path) -> np.ndarray:
    """HxW int32 instance map of an SBD ``inst/*.mat`` (first field of ``GTinst``: 0 background, k instance k)."""
    return loadmat(str(mat_path))["GTinst"][0][0][0].astype(np.int32)


class SBDEvaluationDataset(ISDataset):
    """One sample per (image, instance): images in the split file's order, instances by increasing id.

    The original cached this list as ``<root>/<split>_images_and_ids_list.pkl`` inside the dataset
    folder (and reused a stale cache); here it is computed in memory on construction and nothing is
    written (an existing cache file is ignored).
    """

    name = "SBDEvaluation"  # not "SBD": training code treats name == 'SBD' specially

    def __init__(self, dataset_path, split: str = "val", **kwargs):
        super().__init__(**kwargs)
        if split not in ("train", "val"):
            raise ValueError(f"SBD split must be 'train' or 'val', got {split!r}")
        self.dataset_split = split
        self.dataset_path = self._require_dir(Path(dataset_path), "root folder")
        self._images_path = self._require_dir(self.dataset_path / "img", "images folder")
        self._insts_path = self._require_dir(self.dataset_path / "inst", "instances folder")
        list_path = self.dataset_path / f"{split}.txt"
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
