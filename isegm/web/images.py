"""Images the server opens: decoding uploads safely, and the fixed listing of the ``--images`` folder.

A client names a listed image by its index or its exact file name, which is looked up in the
listing: no string from a client is ever joined to a folder.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from isegm.web.errors import ApiError

__all__ = ["SUFFIXES", "decode_image", "ListedImage", "ImageListing"]

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""File name endings the listing picks up (any case)."""

MIN_SIDE = 4   # the predictor needs at least 4 pixels per side


def decode_image(data: bytes, max_pixels: int, what: str = "the upload") -> np.ndarray:
    """Encoded image bytes -> ``H x W x 3`` uint8 RGB, EXIF orientation applied (as browsers show it).

    The size is read from the header and checked against ``max_pixels`` before anything is
    decoded, so a small file that expands to a huge image is refused cheaply.

    Raises:
        ApiError: 415 ``not_an_image`` (not a format PIL reads, or a corrupt file), 413
            ``too_many_pixels``, 422 ``image_too_small``; each message names ``what``.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ApiError(413, "too_many_pixels", f"{what} is {width}x{height} = {width * height} pixels; the "
                               f"limit is {max_pixels} pixels (demo.py --max-pixels)")
            if min(width, height) < MIN_SIDE:
                raise ApiError(422, "image_too_small", f"{what} is {width}x{height}; both sides must be at least "
                               f"{MIN_SIDE} pixels")
            rgb = ImageOps.exif_transpose(image).convert("RGB")
            return np.asarray(rgb, dtype=np.uint8).copy()
    except Image.DecompressionBombError as exc:
        raise ApiError(413, "too_many_pixels", f"{what}: {exc}") from None
    except UnidentifiedImageError:
        raise ApiError(415, "not_an_image", f"{what} is not an image (PNG, JPEG, BMP, WebP or TIFF data)") from None
    except (OSError, ValueError, SyntaxError) as exc:   # what PIL raises on a truncated or corrupt file
        raise ApiError(415, "not_an_image", f"{what} is not a readable image (truncated or corrupt?): {exc}") from None


@dataclass(frozen=True)
class ListedImage:
    """One image of the listing.

    Attributes:
        index: position in the listing (sorted by name).
        name: file name, without folder: what clients see and may ask for.
        path: where the server reads it.
        output_stem: name of its annotation files (``<stem>.png``, ``<stem>.json``): the file
            stem, or ``<stem>_<suffix>`` when two listed files share a stem.
    """

    index: int
    name: str
    path: Path
    output_stem: str


class ImageListing:
    """The images directly inside ``folder`` (not its subfolders), fixed when the server starts.

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
        ValueError: it holds no image (see :data:`SUFFIXES`).
    """

    def __init__(self, folder: Union[str, "os.PathLike[str]"]):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"image folder {str(self.folder)!r} does not exist or is not a folder")
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
        if not files:
            raise ValueError(f"image folder {str(self.folder)!r} holds no image ({', '.join(SUFFIXES)})")
        stems = [p.stem.lower() for p in files]
        self._images: List[ListedImage] = [
            ListedImage(i, p.name, p, p.stem if stems.count(p.stem.lower()) == 1 else f"{p.stem}_{p.suffix[1:]}")
            for i, p in enumerate(files)]
        self._by_name = {image.name: image for image in self._images}

    def __len__(self) -> int:
        return len(self._images)

    def __iter__(self):
        return iter(self._images)

    def get(self, key: Union[int, str]) -> ListedImage:
        """The image at index ``key``, or named ``key`` (an exact file name of the listing).

        Raises:
            ApiError: 404 ``unknown_image`` naming the index or name.
        """
        image: Optional[ListedImage]
        if isinstance(key, int):
            image = self._images[key] if 0 <= key < len(self._images) else None
            what = f"index {key} (the listing has {len(self._images)} images, 0 to {len(self._images) - 1})"
        else:
            image = self._by_name.get(key)
            what = f"name {key!r} (not a file name of the listing: GET /api/images)"
        if image is None:
            raise ApiError(404, "unknown_image", f"no image with {what}")
        return image

    def read(self, image: ListedImage, max_pixels: int) -> np.ndarray:
        """Decode a listed image (see :func:`decode_image`)."""
        return decode_image(image.path.read_bytes(), max_pixels, f"image {image.name!r}")
