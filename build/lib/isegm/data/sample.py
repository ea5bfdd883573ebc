"""One annotated image as the datasets hand it out (evaluation: one object; training: an object tree)."""
from __future__ import annotations

from copy import deepcopy
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from isegm.utils.errors import InputError

ObjectRef = Union[int, Tuple[int, int]]


class DSample:
    """An RGB image with its objects, encoded as label layers.

    An object is a ``(layer, value)`` pair of the ``H x W x L`` label stack (its ``mapping``). Training
    datasets (COCO+LVIS) pass ``objects``, a tree ``{id: {'parent': id | None, 'children': [ids],
    'mapping': (layer, value), ...}}``; evaluation datasets pass ``objects_ids`` (flat, no parents).

    Args:
        image: HxWx3 uint8 RGB.
        encoded_masks: HxW or HxWxL integer label map(s).
        objects_ids: the objects, as values of a single layer or as ``(layer, value)`` pairs;
            object ``i`` of the sample is the ``i``-th entry.
        ignore_ids: values (or ``(layer, value)`` pairs) whose pixels are marked -1 ("ignore") in
            every object mask.
        sample_id: index of the sample in its dataset.
        init_mask: optional HxW float initial mask (None for the standard benchmarks).
        objects: the object tree (instead of ``objects_ids``); deep-copied, extra keys are kept.
    """

    def __init__(self, image: np.ndarray, encoded_masks: np.ndarray,
                 objects_ids: Optional[Sequence[ObjectRef]] = None,
                 ignore_ids: Optional[Sequence[ObjectRef]] = None,
                 sample_id: Optional[int] = None, init_mask: Optional[np.ndarray] = None,
                 objects: Optional[Dict[Any, dict]] = None):
        self.image = image
        self.sample_id = sample_id
        self.init_mask = init_mask
        if encoded_masks.ndim == 2:
            encoded_masks = encoded_masks[:, :, np.newaxis]
        self._encoded_masks = encoded_masks
        if objects is not None and objects_ids is not None:
            raise InputError("DSample takes either objects (a tree) or objects_ids (a flat list), not both")
        if objects is not None:
            self._objects = self._checked_tree(objects)
        else:
            self._objects = {i: {"parent": None, "mapping": mapping, "children": []}
                             for i, mapping in enumerate(self._as_layer_refs(objects_ids or []))}
        self._ignored_regions = self._as_layer_refs(ignore_ids or [])
        self._augmented = False
        self._original_data = (self.image, self._encoded_masks, deepcopy(self._objects))

    def _as_layer_refs(self, ids: Sequence[ObjectRef]) -> list:
        refs = []
        for ref in ids:
            if isinstance(ref, tuple):
                refs.append((int(ref[0]), int(ref[1])))
            else:
                if self._encoded_masks.shape[2] != 1:
                    raise InputError(f"object id {ref!r} needs a (layer, value) pair: the sample has "
                                     f"{self._encoded_masks.shape[2]} mask layers")
                refs.append((0, int(ref)))
        return refs

    def _checked_tree(self, objects: Dict[Any, dict]) -> Dict[Any, dict]:
        tree = deepcopy(objects)
        num_layers = self._encoded_masks.shape[2]
        for obj_id, info in tree.items():
            if not isinstance(info, dict) or "mapping" not in info:
                raise InputError(f"object {obj_id!r} of sample {self.sample_id}: expected a dict with a 'mapping' "
                                 f"(layer, value), got {info!r}")
            layer, value = info["mapping"]
            if not 0 <= int(layer) < num_layers:
                raise InputError(f"object {obj_id!r} of sample {self.sample_id} maps to layer {layer}, but the sample "
                                 f"has {num_layers} mask layers")
            info["mapping"] = (int(layer), int(value))
            info.setdefault("parent", None)
            info["children"] = list(info.get("children") or [])
        return tree

    # -- accessors -----------------------------------------------------------------------------

    @property
    def encoded_masks(self) -> np.ndarray:
        """HxWxL label layers."""
        return self._encoded_masks

    @property
    def objects(self) -> Dict[Any, dict]:
        """The object tree ``{id: {'parent', 'children', 'mapping', ['area'], ...}}`` (not a copy)."""
        return self._objects

    @property
    def objects_ids(self) -> list:
        return list(self._objects)

    @property
    def root_objects(self) -> list:
        """Ids of the objects without a parent."""
        return [obj_id for obj_id, info in self._objects.items() if info["parent"] is None]

    def get_object_mask(self, obj_id) -> np.ndarray:
        """HxW int32 mask of one object: 1 object, 0 background, -1 ignored pixels."""
        layer, value = self._objects[obj_id]["mapping"]
        mask = (self._encoded_masks[:, :, layer] == value).astype(np.int32)
        for ignore_layer, ignore_value in self._ignored_regions:
            mask[self._encoded_masks[:, :, ignore_layer] == ignore_value] = -1
        return mask

    def get_background_mask(self) -> np.ndarray:
        """HxW bool: pixels that are 0 in every layer."""
        return np.max(self._encoded_masks, axis=2) == 0

    @property
    def gt_mask(self) -> np.ndarray:
        """HxW int32 mask of the sample's single object (1 object, 0 background, -1 ignore)."""
        if len(self._objects) != 1:
            raise InputError(f"gt_mask needs exactly one object, sample {self.sample_id} has {len(self._objects)}")
        return self.get_object_mask(self.objects_ids[0])

    def __len__(self) -> int:
        return len(self._objects)

    # -- training: augmentation and object filtering -------------------------------------------

    def augment(self, augmentator: Callable[..., dict]) -> None:
        """Reset to the original data, then apply ``augmentator(image=, mask=)`` (an albumentations Compose).

        The mask is the HxWxL layer stack. Object areas are recomputed on the result and objects
        that are no longer visible (area 0) are removed.
        """
        self.reset_augmentation()
        output = augmentator(image=self.image, mask=self._encoded_masks)
        image, masks = output["image"], output["mask"]
        if masks.ndim == 2:
            masks = masks[:, :, np.newaxis]
        self.image = image
        self._encoded_masks = masks
        self._augmented = True
        self._compute_objects_areas()
        self.remove_small_objects(min_area=1)

    def reset_augmentation(self) -> None:
        """Back to the image, masks and object tree the sample was built with."""
        if not self._augmented:
            return
        image, masks, objects = self._original_data
        self.image = image
        self._encoded_masks = masks
        self._objects = deepcopy(objects)
        self._augmented = False

    def remove_small_objects(self, min_area: int) -> None:
        """Drop the objects with fewer than ``min_area`` pixels; their children move up to their parent."""
        if self._objects and any("area" not in info for info in self._objects.values()):
            self._compute_objects_areas()
        for obj_id, info in list(self._objects.items()):
            if info["area"] < min_area:
                self._remove_object(obj_id)

    def _compute_objects_areas(self) -> None:
        """Set ``area`` of every object; zero the labels of a layer that belong to no object.

        Ignored regions are left as they are. The label stack is copied before it is modified, so
        the arrays the sample was built with (which a dataset may cache) are never written.
        """
        by_mapping = {info["mapping"]: obj_id for obj_id, info in self._objects.items()}
        ignored = set(self._ignored_regions)
        copied = False
        for layer_index in range(self._encoded_masks.shape[2]):
            layer = self._encoded_masks[:, :, layer_index]
            values, counts = _labels_with_sizes(layer)
            for value, count in zip(values, counts):
                key = (layer_index, value)
                if key in ignored:
                    continue
                obj_id = by_mapping.pop(key, None)
                if obj_id is not None:
                    self._objects[obj_id]["area"] = count
                    continue
                if not copied:
                    self._encoded_masks = self._encoded_masks.copy()
                    copied = True
                layer = self._encoded_masks[:, :, layer_index]
                layer[layer == value] = 0
        for obj_id in by_mapping.values():
            self._objects[obj_id]["area"] = 0

    def _remove_object(self, obj_id) -> None:
        info = self._objects.pop(obj_id)
        parent = info["parent"]
        for child_id in info["children"]:
            if child_id in self._objects:
                self._objects[child_id]["parent"] = parent
        if parent is not None and parent in self._objects:
            siblings = [x for x in self._objects[parent]["children"] if x != obj_id]
            self._objects[parent]["children"] = siblings + list(info["children"])


def _labels_with_sizes(layer: np.ndarray) -> Tuple[list, list]:
    """Non-zero labels of a layer (ascending, as python ints) and their pixel counts."""
    if layer.size == 0:
        return [], []
    if np.issubdtype(layer.dtype, np.integer) and layer.min() >= 0:
        sizes = np.bincount(layer.ravel())
        labels = np.nonzero(sizes)[0]
        labels = labels[labels != 0]
        return labels.tolist(), sizes[labels].tolist()
    labels, sizes = np.unique(layer, return_counts=True)
    keep = labels != 0
    return [int(x) for x in labels[keep]], sizes[keep].tolist()
