"""COCO+LVIS training data in RITM's layout (config key ``LVIS_v1_PATH``)::

    <root>/<split>/hannotation.pickle    {image_id: {'num_instance_masks': int, 'hierarchy': {id: None | node}}}
    <root>/<split>/images/<image_id>.jpg
    <root>/<split>/masks/<image_id>.pickle   (PNG-encoded uint8 layers, objs_mapping[id] = (layer, value))

Pickles are read with a restricted unpickler (builtin containers, numbers, strings, numpy arrays).
"""
from __future__ import annotations

import json
import random
from copy import deepcopy
from pathlib import Path

import cv2
import numpy as np

from isegm.utils.errors import InputError, MissingFileError
from isegm.utils.pickles import safe_pickle_load

from ..base import ISDataset, check_same_size
from ..image_io import read_image_rgb
from ..sample import DSample

CONFIG_KEY = "LVIS_v1_PATH"


class CocoLvisDataset(ISDataset):
    """Multi-object samples with LVIS/COCO object trees.

    Args:
        dataset_path: the root folder (``LVIS_v1_PATH``).
        split: sub-folder, ``'train'`` or ``'val'``.
        img_split: unused (kept for config compatibility).
        stuff_prob: probability that a sample also offers its COCO "stuff" regions (instances
            ``num_instance_masks ..``) as root objects; otherwise their pixels are erased.
        allow_list_name: optional JSON file in the split folder listing the image ids to keep.
        anno_file: annotation pickle in the split folder.
        **kwargs: :class:`ISDataset` arguments.
    """

    name = "CocoLvis"

    def __init__(self, dataset_path, split: str = "train", img_split: str = "train2017", stuff_prob: float = 0.0,
                 allow_list_name=None, anno_file: str = "hannotation.pickle", **kwargs):
        super().__init__(**kwargs)
        root = Path(dataset_path)
        self.dataset_path = root
        self.split = split
        self.img_split = img_split
        self.stuff_prob = stuff_prob
        self._split_path = root / split
        self._images_path = self._split_path / "images"
        self._masks_path = self._split_path / "masks"
        for path, what in ((root, "root folder"), (self._split_path, f"split folder {split!r}"),
                           (self._images_path, "images folder"), (self._masks_path, "masks folder")):
            if not path.is_dir():
                raise MissingFileError(f"{self.name} dataset: {what} not found: {path} (set {CONFIG_KEY} in "
                                        "config.yml to the COCO+LVIS root)")
        anno_path = self._split_path / anno_file
        if not anno_path.is_file():
            raise MissingFileError(f"{self.name} dataset: annotation file not found: {anno_path} (set {CONFIG_KEY} "
                                    "in config.yml to the COCO+LVIS root)")
        annotation = safe_pickle_load(anno_path, f"{self.name} annotation")
        if not isinstance(annotation, dict):
            raise InputError(f"{self.name} dataset: {anno_path} must hold a dict image_id -> annotation, "
                             f"got {type(annotation).__name__}")
        self.dataset_samples = sorted(annotation.items())
        if allow_list_name is not None:
            allow_path = self._split_path / allow_list_name
            if not allow_path.is_file():
                raise MissingFileError(f"{self.name} dataset: allow list not found: {allow_path}")
            with open(allow_path, "r") as f:
                allowed = set(json.load(f))
            self.dataset_samples = [item for item in self.dataset_samples if item[0] in allowed]
        self._require_samples(anno_path)

    def image_id(self, index: int) -> str:
        return self.dataset_samples[index][0]

    def get_sample(self, index: int) -> DSample:
        image_id, info = self.dataset_samples[index]
        image_path = self._images_path / f"{image_id}.jpg"
        image = read_image_rgb(image_path)
        masks_path = self._masks_path / f"{image_id}.pickle"
        layers, objs_mapping = self.read_masks(masks_path)
        check_same_size(image, layers, image_path, masks_path)

        try:
            num_things = int(info["num_instance_masks"])
            objects = deepcopy(info["hierarchy"])
        except (KeyError, TypeError) as exc:
            raise InputError(f"{self.name} dataset: bad annotation of image {image_id!r}: expected a dict with "
                             f"'num_instance_masks' and 'hierarchy' ({exc!r})") from None

        def mapping_of(inst_id):
            try:
                return tuple(objs_mapping[inst_id])
            except (IndexError, KeyError, TypeError):
                raise InputError(f"{self.name} dataset: instance {inst_id!r} of image {image_id!r} has no layer "
                                 f"mapping in {masks_path} ({len(objs_mapping)} entries)") from None

        for inst_id, node in list(objects.items()):
            if node is None:
                node = {"children": [], "parent": None, "node_level": 0}
                objects[inst_id] = node
            node["mapping"] = mapping_of(inst_id)

        stuff_ids = range(num_things, len(objs_mapping))
        if self.stuff_prob > 0 and random.random() < self.stuff_prob:
            for inst_id in stuff_ids:
                objects[inst_id] = {"mapping": mapping_of(inst_id), "parent": None, "children": []}
        else:
            for inst_id in stuff_ids:
                layer_index, value = mapping_of(inst_id)
                layer = layers[:, :, layer_index]
                layer[layer == value] = 0
        return DSample(image, layers, objects=objects, sample_id=index)

    def read_masks(self, path: Path):
        """``(H x W x L uint8 layers, objs_mapping)`` from a ``masks/<id>.pickle``."""
        packed = safe_pickle_load(path, f"{self.name} masks")
        if not (isinstance(packed, (tuple, list)) and len(packed) == 2 and isinstance(packed[0], (list, tuple))
                and len(packed[0]) > 0):
            raise InputError(f"{self.name} dataset: {path} must hold (encoded_layers, objs_mapping) with at least "
                             "one layer")
        encoded_layers, objs_mapping = packed
        layers = []
        for i, encoded in enumerate(encoded_layers):
            layer = None
            if isinstance(encoded, np.ndarray) and encoded.dtype == np.uint8 and encoded.size > 0:
                layer = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
            if layer is None or layer.ndim != 2:
                raise InputError(f"{self.name} dataset: layer {i} of {path} is not a PNG-encoded single-channel image")
            if layers and layer.shape != layers[0].shape:
                raise InputError(f"{self.name} dataset: layer {i} of {path} is {layer.shape}, layer 0 is "
                                 f"{layers[0].shape}")
            layers.append(layer)
        return np.stack(layers, axis=2), objs_mapping
