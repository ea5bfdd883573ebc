"""Reading images and annotation masks from disk (OpenCV, as the original does)."""
from __future__ import annotations

import os
from typing import Union

import cv2
import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

# ANYCOLOR | ANYDEPTH keeps gray images single-channel and 16-bit images 16-bit, so that the
# conversions below are explicit, and (unlike IMREAD_UNCHANGED) still applies the EXIF
# orientation that the original's plain ``cv2.imread(path)`` applies. Alpha is dropped by OpenCV.
_IMAGE_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


def _imread(path: PathLike, flags: int, what: str) -> np.ndarray:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    data = cv2.imread(path, flags)
    if data is None:
        raise FileNotFoundError(f"{what} file could not be read (not an image OpenCV can decode?): {path}")
    return data


def read_image_rgb(path: PathLike) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB.

    Gray images are replicated to three channels and an alpha channel is dropped. 16-bit images
    keep their high byte (``>> 8``), which is what ``cv2.imread(path)`` (IMREAD_COLOR) does for
    16-bit PNGs, so the result equals the original's ``cvtColor(cv2.imread(path), BGR2RGB)``.

    Raises:
        FileNotFoundError: the file is missing or cannot be decoded.
        ValueError: the pixels are neither 8- nor 16-bit unsigned integers.
    """
    image = _imread(path, _IMAGE_FLAGS, "image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype} (expected 8- or 16-bit) in image {os.fspath(path)}")
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    channels = image.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        return np.ascontiguousarray(np.repeat(image[:, :, :1], 3, axis=2))
    if channels in (3, 4):  # BGR, BGRA
        return np.ascontiguousarray(image[:, :, 2::-1])
    raise ValueError(f"unsupported number of channels {channels} in image {os.fspath(path)}")


def read_mask(path: PathLike) -> np.ndarray:
    """Read an annotation file exactly as the original does, ``cv2.imread(path)``: HxWx3 uint8 BGR.

    Gray masks come back replicated to three channels, palette PNGs as their BGR colours and
    16-bit masks as their high byte; each dataset then decodes the channels its own way.
    """
    return _imread(path, cv2.IMREAD_COLOR, "mask")
