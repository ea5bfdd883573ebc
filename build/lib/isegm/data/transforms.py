"""Training augmentations (albumentations 2 port of RITM's ``UniformRandomResize`` and the EMC-Click pipelines)."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import albumentations as A
import cv2
import numpy as np

from isegm.utils.errors import InputError

__all__ = ["UniformRandomResize", "reseed_augmentator", "resize", "train_augmentator", "val_augmentator"]


def resize(image: np.ndarray, height: int, width: int, interpolation: int) -> np.ndarray:
    """``cv2.resize`` to ``height x width``; the input itself when the size does not change.

    Keeps a trailing channel axis of size 1 and resizes more than 4 channels in chunks of 4
    (OpenCV handles at most 128 channels; per-channel results are the same either way).
    """
    if image.shape[:2] == (height, width):
        return image
    size = (width, height)
    if image.ndim == 2:
        return cv2.resize(image, size, interpolation=interpolation)
    channels = image.shape[2]
    if channels <= 4:
        out = cv2.resize(image, size, interpolation=interpolation)
        return out[:, :, np.newaxis] if out.ndim == 2 else out
    chunks = []
    for start in range(0, channels, 4):
        out = cv2.resize(np.ascontiguousarray(image[:, :, start:start + 4]), size, interpolation=interpolation)
        chunks.append(out[:, :, np.newaxis] if out.ndim == 2 else out)
    return np.concatenate(chunks, axis=2)


class UniformRandomResize(A.DualTransform):
    """Scale the image by ``s ~ U(scale_range)``: new size ``(round(H*s), round(W*s))``.

    The image uses ``interpolation``; masks always use nearest neighbour, so label layers keep only
    their original values. The scale comes from the transform's own RNG (``self.py_random``,
    seeded through ``Compose(seed=...)`` / ``set_random_seed``), not from the global ``random``
    module the albumentations 0.5 original used.
    """

    def __init__(self, scale_range: Sequence[float] = (0.75, 1.40), interpolation: int = cv2.INTER_LINEAR,
                 p: float = 1.0):
        super().__init__(p=p)
        low, high = scale_range
        if not 0 < low <= high:
            raise InputError(f"UniformRandomResize: scale_range must be 0 < low <= high, got {scale_range}")
        self.scale_range = (float(low), float(high))
        self.interpolation = interpolation

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        height, width = params["shape"][:2]
        scale = self.py_random.uniform(*self.scale_range)
        return {"new_height": int(round(height * scale)), "new_width": int(round(width * scale)),
                "scale_y": 0.0 if height == 0 else round(height * scale) / height,
                "scale_x": 0.0 if width == 0 else round(width * scale) / width}

    def apply(self, img: np.ndarray, new_height: int = 0, new_width: int = 0, **params: Any) -> np.ndarray:
        return resize(img, new_height, new_width, self.interpolation)

    def apply_to_mask(self, mask: np.ndarray, new_height: int = 0, new_width: int = 0, **params: Any) -> np.ndarray:
        return resize(mask, new_height, new_width, cv2.INTER_NEAREST)

    def apply_to_keypoints(self, keypoints: np.ndarray, scale_x: float = 1.0, scale_y: float = 1.0,
                           **params: Any) -> np.ndarray:
        keypoints = keypoints.astype(np.float32, copy=True)
        keypoints[:, 0] *= scale_x
        keypoints[:, 1] *= scale_y
        return keypoints

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        return bboxes  # albumentations 2 keeps boxes normalised: a uniform resize leaves them unchanged

    def get_transform_init_args_names(self) -> Tuple[str, ...]:
        return ("scale_range", "interpolation")


def reseed_augmentator(augmentator: Any, seed: int) -> None:
    """Seed an albumentations Compose so that every transform in it draws from its OWN stream.

    ``Compose(seed=s)`` / ``Compose.set_random_seed(s)`` give every transform the same seed, so
    their draws coincide (e.g. RandomCrop's vertical offset equals UniformRandomResize's scale
    draw, and HorizontalFlip, RandomBrightnessContrast and RGBShift fire together). Here each
    transform (recursively through nested composes) gets a seed spawned from ``seed``.
    """
    sequence = np.random.SeedSequence(int(seed))
    augmentator.set_random_seed(int(sequence.generate_state(1)[0]))
    children = list(getattr(augmentator, "transforms", None) or [])
    for child, child_sequence in zip(children, sequence.spawn(len(children))):
        child_seed = int(child_sequence.generate_state(1)[0])
        if getattr(child, "transforms", None) is not None:
            reseed_augmentator(child, child_seed)
        elif hasattr(child, "set_random_seed"):
            child.set_random_seed(child_seed)


def train_augmentator(crop_size: Tuple[int, int] = (320, 480), seed: Optional[int] = None,
                      scale_range: Tuple[float, float] = (0.75, 1.40)) -> A.Compose:
    """EMC-Click's training pipeline (identical in all five configs), albumentations 2 API.

    ``scale_range``: of the random resize (the configs' 0.75 to 1.40 by default).

    ``seed``: reproducible draws (see :func:`reseed_augmentator`); by default a seed is drawn from
    numpy's global generator, so a run seeded with ``train.py --seed`` is reproducible even without
    DataLoader workers (workers reseed it anyway, ``isegm.data.seeding.worker_init_fn``).
    """
    height, width = crop_size
    compose = A.Compose([
        UniformRandomResize(scale_range=scale_range),
        A.HorizontalFlip(),
        A.PadIfNeeded(min_height=height, min_width=width, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0),
        A.RandomCrop(height, width),
        A.RandomBrightnessContrast(brightness_limit=(-0.25, 0.25), contrast_limit=(-0.15, 0.4), p=0.75),
        A.RGBShift(r_shift_limit=10, g_shift_limit=10, b_shift_limit=10, p=0.75),
    ], p=1.0)
    reseed_augmentator(compose, _seed_or_draw(seed))
    return compose


def _seed_or_draw(seed: Optional[int]) -> int:
    """``seed``, or one drawn from numpy's global generator (not the OS, which albumentations would use)."""
    return int(np.random.randint(2 ** 31)) if seed is None else seed


def val_augmentator(crop_size: Tuple[int, int] = (320, 480), seed: Optional[int] = None) -> A.Compose:
    """EMC-Click's validation pipeline: zero padding to ``crop_size`` then a random crop."""
    height, width = crop_size
    compose = A.Compose([
        A.PadIfNeeded(min_height=height, min_width=width, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0),
        A.RandomCrop(height, width),
    ], p=1.0)
    reseed_augmentator(compose, _seed_or_draw(seed))
    return compose
