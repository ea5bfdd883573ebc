"""Reading images and annotation masks from disk (OpenCV, as the original does)."""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator, List, Union

import cv2
import numpy as np

from isegm.utils.errors import InputError, MissingFileError

PathLike = Union[str, "os.PathLike[str]"]

# ANYCOLOR | ANYDEPTH keeps gray images single-channel and 16-bit images 16-bit, so that the
# conversions below are explicit, and (unlike IMREAD_UNCHANGED) still applies the EXIF
# orientation that the original's plain ``cv2.imread(path)`` applies. Alpha is dropped by OpenCV.
_IMAGE_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


def _imread(path: PathLike, flags: int, what: str) -> np.ndarray:
    """``cv2.imread`` that refuses what the decoder warns about (a truncated or corrupt file).

    OpenCV returns a partly decoded image for a truncated JPEG and only prints libjpeg's warning
    ("Premature end of JPEG file"); the warning is captured here and turned into an error.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"{what} file not found: {path}")
    with _captured_stderr() as decoder_messages:
        data = cv2.imread(path, flags)
    message = " ".join(decoder_messages[0].split()) if decoder_messages else ""
    if data is None:
        raise InputError(f"{what} file {path} is not an image OpenCV can decode" + (f" ({message})" if message else ""))
    if message:
        raise InputError(f"{what} file {path} is truncated or corrupt: the decoder reported {message!r}")
    return data


@contextmanager
def _captured_stderr() -> Iterator[List[str]]:
    """Collect what C libraries write to file descriptor 2 during the block (one string, after it).

    The descriptor is shared by the process: a line another thread writes meanwhile would be
    collected too (the readers run in one thread per process: the evaluation loop, or a
    DataLoader worker).
    """
    sys.stderr.flush()
    collected: List[str] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield collected
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            collected.append(sink.read().decode(errors="replace"))


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
        raise InputError(f"unsupported pixel type {image.dtype} (expected 8- or 16-bit) in image {os.fspath(path)}")
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    channels = image.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        return np.ascontiguousarray(np.repeat(image[:, :, :1], 3, axis=2))
    if channels in (3, 4):  # BGR, BGRA
        return np.ascontiguousarray(image[:, :, 2::-1])
    raise InputError(f"unsupported number of channels {channels} in image {os.fspath(path)}")


def read_mask(path: PathLike) -> np.ndarray:
    """Read an annotation file as the original does, ``cv2.imread(path)``: HxWx3 uint8 BGR.

    Gray masks come back replicated to three channels and palette PNGs as their BGR colours; each
    dataset then decodes the channels its own way. 16-bit masks are read by value (the original's
    8-bit read keeps the high byte, which turns labels 0/1 into an empty mask); one with a value
    above 255 is not a label mask this code can read, and is refused.
    """
    mask = _imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, "mask")
    if mask.dtype == np.uint16:
        top = int(mask.max())
        if top > 255:
            raise InputError(f"mask file {os.fspath(path)} is 16-bit with values up to {top}: label masks must "
                             "hold values 0-255 (e.g. 0/1 or 0/255)")
        mask = mask.astype(np.uint8)
    elif mask.dtype != np.uint8:
        raise InputError(f"unsupported pixel type {mask.dtype} (expected 8- or 16-bit) in mask {os.fspath(path)}")
    return mask
