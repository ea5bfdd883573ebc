"""Base class of the interactive-segmentation datasets, and checks the datasets share."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from torch.utils.data import Dataset

from .sample import DSample


class ISDataset(Dataset, abc.ABC):
    """A list of samples (``dataset_samples``), each turned into a :class:`DSample` by ``get_sample``.

    Args:
        epoch_len: when > 0, ``len(dataset)`` reports this instead of the number of samples
            (training draws samples at random for a fixed-length epoch).
    """

    name: str = "ISDataset"

    def __init__(self, epoch_len: int = -1):
        super().__init__()
        self.epoch_len = epoch_len
        self.dataset_samples: list = []

    @abc.abstractmethod
    def get_sample(self, index: int) -> DSample:
        """The ``index``-th sample (0 <= index < ``get_samples_number()``)."""

    def get_samples_number(self) -> int:
        return len(self.dataset_samples)

    def __len__(self) -> int:
        return self.epoch_len if self.epoch_len > 0 else self.get_samples_number()

    # -- helpers for the constructors of subclasses --------------------------------------------

    def _require_dir(self, path: Path, what: str = "folder") -> Path:
        if not path.is_dir():
            raise FileNotFoundError(f"{self.name} dataset: {what} not found: {path}")
        return path

    def _require_file(self, path: Path, what: str = "file") -> Path:
        if not path.is_file():
            raise FileNotFoundError(f"{self.name} dataset: {what} not found: {path}")
        return path

    def _require_samples(self, where: Path) -> None:
        if not self.dataset_samples:
            raise ValueError(f"{self.name} dataset: no samples found in {where}")

    def _list_instances(self, list_path: Path, annotation_path, read_labels, skip_labels, what: str) -> None:
        """Samples ``(image id, label)`` for every id of a split list and every label of its annotation.

        ``annotation_path(id)`` names the annotation file (``what`` it is, for errors), its image is
        ``<images folder>/<id>.jpg``; labels come in ascending order, ``skip_labels`` left out.
        """
        samples = []
        for name in self._read_id_list(list_path):
            path = annotation_path(name)
            if not path.is_file():
                raise FileNotFoundError(f"{self.name} dataset: no {what} {path} for image {name!r} "
                                        f"listed in {list_path}")
            self._require_file(self._images_path / f"{name}.jpg", f"image of {name!r} (listed in {list_path})")
            samples.extend((name, int(label)) for label in np.unique(read_labels(path)) if label not in skip_labels)
        self.dataset_samples = samples
        self._require_samples(list_path)

    def _read_id_list(self, list_path: Path) -> List[str]:
        """Names from a split file, one per line, stripped (blank lines are skipped)."""
        with open(self._require_file(list_path, "split list"), "r") as f:
            return [line.strip() for line in f if line.strip()]

    def _match_masks_by_stem(self, images_dir: Path, masks_dir: Path) -> Tuple[List[str], Dict[str, Path]]:
        """RITM's image/mask pairing for GrabCut, Berkeley and DAVIS.

        Images are ``sorted(images_dir.glob('*.*'))``; the mask of ``name`` is the file of
        ``masks_dir`` whose stem equals ``name.split('.')[0]`` (up to the FIRST dot of the image
        name). The original built the stem dict from an unsorted glob, so with two masks of the
        same stem the winner was filesystem-dependent; here the last one in sorted order wins.
        """
        names = [p.name for p in sorted(images_dir.glob("*.*")) if p.is_file()]
        self.dataset_samples = names
        self._require_samples(images_dir)
        masks = {p.stem: p for p in sorted(masks_dir.glob("*.*")) if p.is_file()}
        for name in names:
            if name.split(".")[0] not in masks:
                raise FileNotFoundError(f"{self.name} dataset: no mask for image {images_dir / name}: expected "
                                        f"{masks_dir / name.split('.')[0]}.<ext>")
        return names, {name: masks[name.split(".")[0]] for name in names}


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path, mask_path) -> None:
    """Raise ValueError when an image and its mask differ in height or width."""
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image {image_path} is {image.shape[1]}x{image.shape[0]} but its mask {mask_path} "
                         f"is {mask.shape[1]}x{mask.shape[0]}")
