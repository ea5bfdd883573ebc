"""Base class of the interactive-segmentation datasets: evaluation access, the training ``__getitem__``
and the checks the datasets share."""
from __future__ import annotations

import abc
import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from isegm.utils.errors import DataError, EMCClickError, InputError, MissingFileError
from isegm.utils.pickles import safe_pickle_load

from .points_sampler import BasePointSampler
from .sample import DSample


class SampleLoadError(DataError):
    """A sample of a dataset could not be read or processed; the message names the dataset and the sample."""


class ISDataset(Dataset, abc.ABC):
    """A list of samples (``dataset_samples``), each turned into a :class:`DSample` by ``get_sample``.

    Evaluation code uses ``get_sample(i)`` / ``len(dataset)`` only. Training indexes the dataset:
    ``dataset[i]`` augments a sample, picks its target object and first click(s) with
    ``points_sampler`` and returns::

        {'images': torch.float32 (3, H, W) in [0, 1],
         'points': np.float32 (2 * max_num_points, 3) rows [y, x, order], (-1, -1, -1) = empty,
         'instances': np.float32 (1, H, W) 0/1 target mask,
         'image_info': sample id (only with ``with_image_info``)}

    Args:
        augmentator: an albumentations ``Compose`` applied to the image and the label layers.
        points_sampler: picks the target and the clicks (the training recipe's is
            ``isegm.engine.recipe.first_point_sampler()``); None: no training access, ``dataset[i]``
            raises (evaluation datasets need none).
        min_object_area: objects with fewer pixels (after augmentation) are removed.
        keep_background_prob: probability of accepting an augmentation that leaves no object
            (negative: always); with 0 the augmentation is redrawn.
        with_image_info: add ``'image_info'`` (the sample id) to the output.
        samples_scores_path: pickle of ``[(index, _, score), ...]``; samples are then drawn with
            probability ``(1 - score) ** samples_scores_gamma``.
        samples_scores_gamma: see above.
        epoch_len: when > 0, ``len(dataset)`` reports this and every ``dataset[i]`` draws a random
            sample (the index is ignored).
        min_mask_area, max_mask_area_ratio: a target mask is accepted with more than
            ``min_mask_area`` pixels and less than ``max_mask_area_ratio`` of the crop.
        small_region_size: connected parts of the target smaller than this are erased (only when the
            class attribute ``remove_small_target_regions`` is True).
    """

    name: str = "ISDataset"  # display name, for messages only
    # Erase the target's connected parts smaller than small_region_size (remove_small_regions);
    # the original skipped this for SBD only.
    remove_small_target_regions: bool = True
    # Caps that turn a sample that can never be accepted into an error instead of an endless loop.
    max_sample_attempts: int = 1000  # consecutive rejected samples in one __getitem__
    max_augment_attempts: int = 100  # augmentations of one sample that leave no object

    def __init__(self, augmentator=None, points_sampler: Optional[BasePointSampler] = None,
                 min_object_area: int = 0, keep_background_prob: float = 0.0, with_image_info: bool = False,
                 samples_scores_path=None, samples_scores_gamma: float = 1.0, epoch_len: int = -1,
                 min_mask_area: int = 1000, max_mask_area_ratio: float = 0.85, small_region_size: int = 900):
        super().__init__()
        # Acceptance rules of __getitem__; the defaults are the original's constants.
        self.min_mask_area = min_mask_area
        self.max_mask_area_ratio = max_mask_area_ratio
        self.small_region_size = small_region_size
        self.augmentator = augmentator
        self.points_sampler = points_sampler
        self.min_object_area = min_object_area
        self.keep_background_prob = keep_background_prob
        self.with_image_info = with_image_info
        self.epoch_len = epoch_len
        self.samples_precomputed_scores = self._load_sample_scores(samples_scores_path, samples_scores_gamma)
        self.dataset_samples: list = []

    @abc.abstractmethod
    def get_sample(self, index: int) -> DSample:
        """The ``index``-th sample (0 <= index < ``get_samples_number()``)."""

    def get_samples_number(self) -> int:
        return len(self.dataset_samples)

    def __len__(self) -> int:
        return self.epoch_len if self.epoch_len > 0 else self.get_samples_number()

    def describe_sample(self, index: int) -> str:
        """A short name of a sample for error messages: ``image '<id>'`` where :meth:`image_id` knows it."""
        try:
            image_id = self.image_id(index)
            text = repr(self.dataset_samples[index]) if image_id is None else f"image {image_id!r}"
        except (IndexError, KeyError, TypeError):
            return "?"
        return text if len(text) <= 80 else text[:77] + "..."

    def image_id(self, index: int) -> Optional[str]:
        """The image id of sample ``index`` (None: the dataset has none, the sample entry names it)."""
        return None

    # -- training ------------------------------------------------------------------------------

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """A training sample (see the class docstring).

        Samples are redrawn while they are rejected (no object left after augmentation and
        ``min_object_area``, or a target mask area outside ``(min_mask_area, max_mask_area_ratio *
        H * W)``); after ``max_sample_attempts`` rejections in a row a RuntimeError is raised. Any
        other failure (unreadable file, corrupt annotation, ...) raises :class:`SampleLoadError`
        naming the dataset and the sample; nothing is skipped silently. Without a ``points_sampler``
        a RuntimeError is raised.
        """
        if self.points_sampler is None:
            raise DataError(f"{self.name} dataset: no points_sampler was given, so dataset[{index}] (training "
                               "access) cannot pick a target and clicks; pass points_sampler=..., e.g. "
                               "isegm.engine.recipe.first_point_sampler()")
        num_samples = self.get_samples_number()
        if num_samples == 0:
            raise IndexError(f"{self.name} dataset is empty")
        if self.epoch_len <= 0 and self.samples_precomputed_scores is None:
            if not -num_samples <= index < num_samples:
                raise IndexError(f"{self.name} dataset: index {index} out of range ({num_samples} samples)")
            index %= num_samples
        for _ in range(self.max_sample_attempts):
            if self.samples_precomputed_scores is not None:
                index = int(np.random.choice(self.samples_precomputed_scores["indices"],
                                             p=self.samples_precomputed_scores["probs"]))
            elif self.epoch_len > 0:
                index = random.randrange(0, num_samples)
            try:
                output = self._make_training_sample(index)
            except Exception as exc:
                # The project's own errors already say what is wrong; others get their type named.
                cause = str(exc) if isinstance(exc, EMCClickError) else f"{type(exc).__name__}: {exc}"
                raise SampleLoadError(f"{self.name} dataset: sample {index} ({self.describe_sample(index)}) "
                                      f"failed: {cause}") from exc
            if output is not None:
                return output
            # Rejected. The original draws randint(len - 1) here (never the last sample; kept, but
            # a one-sample dataset retries its only sample instead of crashing).
            index = int(np.random.randint(max(num_samples - 1, 1)))
        raise DataError(f"{self.name} dataset: no acceptable training sample in {self.max_sample_attempts} "
                           f"attempts: every sample drawn had no object of at least {self.min_object_area} pixels "
                           f"after augmentation, or a target mask of at most {self.min_mask_area} pixels or at "
                           f"least {self.max_mask_area_ratio} of the crop (check the data, min_object_area and "
                           "the crop size)")

    def _make_training_sample(self, index: int) -> Optional[Dict[str, Any]]:
        """One attempt of ``__getitem__`` on sample ``index``; None when the sample is rejected."""
        sample = self.get_sample(index)
        if not self.augment_sample(sample):
            return None
        sample.remove_small_objects(self.min_object_area)
        if len(sample) == 0:
            return None
        self.points_sampler.sample_object(sample)
        points = np.array(self.points_sampler.sample_points(), dtype=np.float32)
        mask = self.points_sampler.selected_mask
        if self.remove_small_target_regions:
            mask = self.remove_small_regions(mask)
        height, width = mask.shape[-2:]
        mask_area = mask.sum()
        if not self.min_mask_area < mask_area < height * width * self.max_mask_area_ratio:
            return None
        image = np.ascontiguousarray(sample.image.transpose(2, 0, 1))
        output = {
            "images": torch.from_numpy(image).to(torch.float32).div_(255.0),
            "points": points,
            "instances": mask,
        }
        if self.with_image_info:
            output["image_info"] = sample.sample_id
        return output

    def augment_sample(self, sample: DSample) -> bool:
        """Augment until the sample keeps an object (or ``keep_background_prob`` says keep it anyway).

        Returns False (reject) when the sample has no object to begin with or
        ``max_augment_attempts`` augmentations all lost every object; the original looped forever.
        """
        def keep_background() -> bool:
            return self.keep_background_prob < 0.0 or random.random() < self.keep_background_prob

        if self.augmentator is None:
            return True
        if len(sample) == 0:  # augmenting cannot create objects: one draw decides
            if not keep_background():
                return False
            sample.augment(self.augmentator)
            return True
        for _ in range(self.max_augment_attempts):
            sample.augment(self.augmentator)
            if len(sample) > 0 or keep_background():
                return True
        return False

    def remove_small_regions(self, mask: np.ndarray) -> np.ndarray:
        """Binarise ``(1, H, W)`` at 0.5 and erase 4-connected parts smaller than ``small_region_size``.

        Same as the original's ``skimage.morphology.remove_small_objects(mask > 0.5, min_size=900)``:
        its default ``connectivity=1`` is the cross-shaped (edge-neighbour) structuring element, i.e.
        4-connectivity in 2D (and 6-connectivity on the (1, H, W) volume, which is the same thing for
        a single slice), and it removes components with ``size < min_size``.
        """
        binary = (mask[0] > 0.5).astype(np.uint8)
        num, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4, ltype=cv2.CV_32S)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < self.small_region_size)
        small = small[small != 0]  # label 0 is the background
        if small.size:
            binary[np.isin(labels, small)] = 0
        return binary[np.newaxis].astype(np.float32)

    def _load_sample_scores(self, path, gamma: float) -> Optional[dict]:
        if path is None:
            return None
        scores = safe_pickle_load(path, f"{self.name} dataset: samples scores")
        probs = np.array([(1.0 - float(item[2])) ** gamma for item in scores], dtype=np.float64)
        if probs.size == 0 or probs.sum() <= 0:
            raise InputError(f"{self.name} dataset: samples scores {path} give no sample a positive weight")
        return {"indices": [int(item[0]) for item in scores], "probs": probs / probs.sum()}

    # -- helpers for the constructors of subclasses --------------------------------------------

    def _require_dir(self, path: Path, what: str = "folder") -> Path:
        if not path.is_dir():
            raise MissingFileError(f"{self.name} dataset: {what} not found: {path}")
        return path

    def _require_file(self, path: Path, what: str = "file") -> Path:
        if not path.is_file():
            raise MissingFileError(f"{self.name} dataset: {what} not found: {path}")
        return path

    def _require_samples(self, where: Path) -> None:
        if not self.dataset_samples:
            raise InputError(f"{self.name} dataset: no samples found in {where}")

    def _list_instances(self, list_path: Path, annotation_path, read_labels, skip_labels, what: str) -> None:
        """Samples ``(image id, label)`` for every id of a split list and every label of its annotation.

        ``annotation_path(id)`` names the annotation file (``what`` it is, for errors), its image is
        ``<images folder>/<id>.jpg``; labels come in ascending order, ``skip_labels`` left out.
        """
        samples = []
        for name in self._read_id_list(list_path):
            path = annotation_path(name)
            if not path.is_file():
                raise MissingFileError(f"{self.name} dataset: no {what} {path} for image {name!r} "
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
                raise MissingFileError(f"{self.name} dataset: no mask for image {images_dir / name}: expected "
                                        f"{masks_dir / name.split('.')[0]}.<ext>")
        return names, {name: masks[name.split(".")[0]] for name in names}


def check_same_size(image: np.ndarray, mask: np.ndarray, image_path, mask_path) -> None:
    """Raise ValueError when an image and its mask differ in height or width."""
    if image.shape[:2] != mask.shape[:2]:
        raise InputError(f"image {image_path} is {image.shape[1]}x{image.shape[0]} but its mask {mask_path} "
                         f"is {mask.shape[1]}x{mask.shape[0]}")
