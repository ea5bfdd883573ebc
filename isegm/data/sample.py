"""One annotated image as the datasets hand it out."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np

ObjectRef = Union[int, Tuple[int, int]]


class DSample:
    """An RGB image with its objects, encoded as label layers.

    Args:
        image: HxWx3 uint8 RGB.
        encoded_masks: HxW or HxWxL integer label map(s); an object is a ``(layer, value)`` pair.
        objects_ids: the objects, as values of a single layer or as ``(layer, value)`` pairs;
            object ``i`` of the sample is the ``i``-th entry.
        ignore_ids: values (or ``(layer, value)`` pairs) whose pixels are marked -1 ("ignore") in
            every object mask.
        sample_id: index of the sample in its dataset.
        init_mask: optional HxW float initial mask (None for the standard benchmarks).
    """

    def __init__(self, image: np.ndarray, encoded_masks: np.ndarray,
                 objects_ids: Optional[Sequence[ObjectRef]] = None,
                 ignore_ids: Optional[Sequence[ObjectRef]] = None,
                 sample_id: Optional[int] = None, init_mask: Optional[np.ndarray] = None):
        self.image = image
        self.sample_id = sample_id
        self.init_mask = init_mask
        if encoded_masks.ndim == 2:
            encoded_masks = encoded_masks[:, :, np.newaxis]
        self._encoded_masks = encoded_masks
        self._objects = {i: {"parent": None, "mapping": mapping, "children": []}
                         for i, mapping in enumerate(self._as_layer_refs(objects_ids or []))}
        self._ignored_regions = self._as_layer_refs(ignore_ids or [])

    def _as_layer_refs(self, ids: Sequence[ObjectRef]) -> list:
        refs = []
        for ref in ids:
            if isinstance(ref, tuple):
                refs.append((int(ref[0]), int(ref[1])))
            else:
                if self._encoded_masks.shape[2] != 1:
                    raise ValueError(f"object id {ref!r} needs a (layer, value) pair: the sample has "
                                     f"{self._encoded_masks.shape[2]} mask layers")
                refs.append((0, int(ref)))
        return refs

    @property
    def encoded_masks(self) -> np.ndarray:
        """HxWxL label layers."""
        return self._encoded_masks

    @property
    def objects_ids(self) -> list:
        return list(self._objects)

    def get_object_mask(self, obj_id: int) -> np.ndarray:
        """HxW int32 mask of one object: 1 object, 0 background, -1 ignored pixels."""
        layer, value = self._objects[obj_id]["mapping"]
        mask = (self._encoded_masks[:, :, layer] == value).astype(np.int32)
        for ignore_layer, ignore_value in self._ignored_regions:
            mask[self._encoded_masks[:, :, ignore_layer] == ignore_value] = -1
        return mask

    @property
    def gt_mask(self) -> np.ndarray:
        """HxW int32 mask of the sample's single object (1 object, 0 background, -1 ignore)."""
        if len(self._objects) != 1:
            raise ValueError(f"gt_mask needs exactly one object, sample {self.sample_id} has {len(self._objects)}")
        return self.get_object_mask(self.objects_ids[0])

    def __len__(self) -> int:
        return len(self._objects)
