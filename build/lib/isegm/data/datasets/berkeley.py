"""Berkeley: GrabCut's format with ``<root>/images`` and ``<root>/masks``."""
from __future__ import annotations

from .grabcut import GrabCutDataset


class BerkeleyDataset(GrabCutDataset):
    name = "Berkeley"

    def __init__(self, dataset_path, **kwargs):
        super().__init__(dataset_path, images_dir_name="images", masks_dir_name="masks", **kwargs)
