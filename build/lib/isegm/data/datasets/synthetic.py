"""Procedural images with exact instance masks: training and evaluation data that need no files.

Every image is a function of ``(seed, index)`` only (``np.random.default_rng([seed, index])``, so
seed 0 / index 1000 and seed 1000 / index 0 are unrelated). A scene is a textured background
(two-colour gradient, smooth noise, stripes, sometimes a "ground" region) with 2-5 objects
(ellipses, star polygons, blobs) drawn in order, later ones occluding earlier ones, each with its
own colour and texture; an object may carry a "part" (a smaller differently coloured region
inside it, a child in the object tree, as LVIS parts inside COCO objects).

Masks are label layers as in COCO+LVIS: layer 0 holds the visible part of every object (values
1..), layer 1 (only when there are parts) the visible parts; the object tree is
``{id: {'parent', 'children', 'mapping': (layer, value), 'node_level'}}``.

Default seeds (held-out data never shares a seed with training data):
``SYNTHETIC_SEEDS = {'train': 0, 'val': 500, 'eval': 1000}``.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from isegm.utils.errors import InputError

from ..base import ISDataset
from ..sample import DSample

SYNTHETIC_SEEDS: Dict[str, int] = {"train": 0, "val": 500, "eval": 1000}
DEFAULT_IMAGE_SIZE: Tuple[int, int] = (200, 300)
MIN_OBJECT_PIXELS = 80  # smaller visible regions are not annotated (the COCO+LVIS converter's threshold)
MIN_STUFF_PIXELS = 500


@dataclass
class SyntheticScene:
    image: np.ndarray  # H x W x 3 uint8 RGB
    layers: np.ndarray  # H x W x L uint8 label layers (L = 1, or 2 with parts)
    objects: Dict[int, dict]  # object tree, ids 0.. (objects in drawing order, then parts)
    stuff: Optional[np.ndarray]  # H x W bool "ground" region outside every object, or None


def _check_args(image_size, min_objects: int, max_objects: int) -> Tuple[int, int]:
    height, width = (int(x) for x in image_size)
    if height < 16 or width < 16:
        raise InputError(f"synthetic images must be at least 16x16, got image_size={image_size}")
    if not 1 <= min_objects <= max_objects:
        raise InputError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    return height, width


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """3 x H x W float32 in about [0, 1]: a coarse random grid upsampled bicubically."""
    longest = max(height, width)
    grid = rng.random((max(2, round(cells * height / longest)), max(2, round(cells * width / longest)), 3),
                      dtype=np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)


def _projection(height: int, width: int, angle: float) -> np.ndarray:
    """H x W float32 ``x cos(angle) + y sin(angle)``."""
    ys = np.arange(height, dtype=np.float32)[:, None] * np.float32(np.sin(angle))
    xs = np.arange(width, dtype=np.float32)[None, :] * np.float32(np.cos(angle))
    return ys + xs


def _ramp(coord: np.ndarray) -> np.ndarray:
    """``coord`` rescaled to [0, 1]."""
    low = coord.min()
    return (coord - low) * np.float32(1.0 / max(float(coord.max() - low), 1.0))


def _colour(rng: np.random.Generator, low: float = 0.0, high: float = 255.0) -> np.ndarray:
    return rng.uniform(low, high, 3).astype(np.float32)[:, None, None]


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """3 x H x W float32 texture around a random colour (flat + noise, stripes, or a gradient).

    Channel-first: numpy broadcasts over a length-3 last axis very slowly.
    """
    colour = _colour(rng)
    kind = rng.integers(3)
    if kind == 0:
        return colour + 70 * (_smooth_noise(rng, height, width, int(rng.integers(2, 6))) - 0.5)
    coord = _projection(height, width, rng.uniform(0, np.pi))
    if kind == 1:
        wave = np.sin(coord * np.float32(2 * np.pi / rng.uniform(4, 16)))
        return colour + wave[None] * _colour(rng, -60, 60)
    return colour + (_colour(rng) - colour) * _ramp(coord)[None]


def _background(rng: np.random.Generator, height: int, width: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """3 x H x W float32 background and the H x W bool "ground" region (or None)."""
    c0 = _colour(rng)
    image = c0 + (_colour(rng) - c0) * _ramp(_projection(height, width, rng.uniform(0, 2 * np.pi)))[None]
    image += 80 * (_smooth_noise(rng, height, width, int(rng.integers(3, 9))) - 0.5)
    stripes = np.sin(_projection(height, width, rng.uniform(0, np.pi)) * np.float32(2 * np.pi / rng.uniform(8, 40)))
    image += stripes[None] * _colour(rng, -25, 25)
    ground = None
    if rng.random() < 0.7:  # a wavy "ground" band at the bottom with its own texture
        level = height * rng.uniform(0.55, 0.85)
        period = rng.uniform(width / 3, 2 * width)
        wave = level + height * 0.05 * np.sin(np.arange(width) * (2 * np.pi / period) + rng.uniform(0, 2 * np.pi))
        ground = np.arange(height)[:, None] > wave[None, :]
        top = int(ground.any(axis=1).argmax())
        np.copyto(image[:, top:], _texture(rng, height - top, width), where=ground[None, top:])
    return image, ground


def _shape_mask(rng: np.random.Generator, height: int, width: int, center, radius: float) -> np.ndarray:
    """H x W uint8 0/1: an ellipse, a star-shaped polygon or a blob of circles around ``center``."""
    mask = np.zeros((height, width), np.uint8)
    cy, cx = center
    kind = rng.integers(3)
    if kind == 0:
        axes = (max(2, int(radius)), max(2, int(radius * rng.uniform(0.45, 1.0))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, thickness=-1)
    elif kind == 1:
        count = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.5, 1.0, count)
        pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:
        cv2.circle(mask, (int(cx), int(cy)), max(2, int(radius * 0.55)), 1, thickness=-1)
        for _ in range(int(rng.integers(2, 6))):
            offset = rng.uniform(-0.5, 0.5, 2) * radius
            cv2.circle(mask, (int(cx + offset[0]), int(cy + offset[1])), max(2, int(radius * rng.uniform(0.3, 0.55))),
                       1, thickness=-1)
    return mask


def generate_scene(seed: int, index: int, image_size: Tuple[int, int] = DEFAULT_IMAGE_SIZE, min_objects: int = 2,
                   max_objects: int = 5, part_prob: float = 0.3) -> SyntheticScene:
    """The synthetic image number ``index`` of seed ``seed`` (deterministic; a few ms at 200x300)."""
    height, width = _check_args(image_size, min_objects, max_objects)
    rng = np.random.default_rng([int(seed), int(index)])
    canvas, ground = _background(rng, height, width)
    labels = np.zeros((height, width), np.uint8)
    parts = np.zeros((height, width), np.uint8)
    num_objects = int(rng.integers(min_objects, max_objects + 1))
    has_part = []
    for label in range(1, num_objects + 1):
        radius = rng.uniform(0.2, 0.42) * min(height, width)  # objects of ~3-30% of the image, as in the benchmarks
        center = (rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width)
        shape = _shape_mask(rng, height, width, center, radius)
        x0, y0, box_w, box_h = cv2.boundingRect(shape)
        if box_w == 0 or box_h == 0:
            has_part.append(False)
            continue
        y1, x1 = y0 + box_h, x0 + box_w
        box = shape[y0:y1, x0:x1].astype(bool)
        np.copyto(canvas[:, y0:y1, x0:x1], _texture(rng, y1 - y0, x1 - x0), where=box[None])
        labels[y0:y1, x0:x1][box] = label
        parts[y0:y1, x0:x1][box] = 0  # parts of occluded objects disappear with them
        with_part = rng.random() < part_prob
        if with_part:
            part = _shape_mask(rng, height, width, center, radius * rng.uniform(0.3, 0.45))[y0:y1, x0:x1]
            part = part.astype(bool) & box
            np.copyto(canvas[:, y0:y1, x0:x1], _texture(rng, y1 - y0, x1 - x0), where=part[None])
            parts[y0:y1, x0:x1][part] = label
        has_part.append(with_part)
    canvas += rng.standard_normal((height, width), dtype=np.float32) * np.float32(3.0)  # grain, all channels
    image = np.ascontiguousarray(np.clip(canvas, 0, 255, out=canvas).astype(np.uint8).transpose(1, 2, 0))

    objects: Dict[int, dict] = {}
    layer0 = np.zeros_like(labels)
    layer1 = np.zeros_like(parts)
    object_ids = {}
    for label in range(1, num_objects + 1):
        visible = labels == label
        if visible.sum() < MIN_OBJECT_PIXELS:
            continue
        value = len(object_ids) + 1
        layer0[visible] = value
        object_ids[label] = len(objects)
        objects[len(objects)] = {"children": [], "parent": None, "node_level": 0, "mapping": (0, value)}
    num_parts = 0
    for label, obj_id in object_ids.items():
        if not has_part[label - 1]:
            continue
        visible = (parts == label) & (labels == label)
        if visible.sum() < MIN_OBJECT_PIXELS:
            continue
        num_parts += 1
        layer1[visible] = num_parts
        part_id = len(objects)
        objects[part_id] = {"children": [], "parent": obj_id, "node_level": 1, "mapping": (1, num_parts)}
        objects[obj_id]["children"].append(part_id)
    layers = np.stack([layer0, layer1], axis=2) if num_parts else layer0[:, :, np.newaxis]
    stuff = None
    if ground is not None:
        stuff = ground & (layer0 == 0)
        if stuff.sum() <= MIN_STUFF_PIXELS:
            stuff = None
    return SyntheticScene(image=image, layers=layers, objects=objects, stuff=stuff)


class SyntheticDataset(ISDataset):
    """Training form: ``num_samples`` multi-object samples (image ``i`` = ``generate_scene(seed, i)``).

    Args:
        num_samples: number of distinct images.
        image_size: ``(H, W)`` of the generated images (before augmentation).
        seed: defaults to ``SYNTHETIC_SEEDS[split]`` (train 0, val 500).
        min_objects, max_objects: objects drawn per image (some may end up fully occluded).
        split: ``'train'`` or ``'val'``; only chooses the default seed.
        part_prob: probability that an object gets a part (a child in the object tree).
        **kwargs: :class:`ISDataset` arguments (augmentator, points_sampler, min_object_area, epoch_len, ...).
    """

    name = "Synthetic"

    def __init__(self, num_samples: int = 1000, image_size: Tuple[int, int] = DEFAULT_IMAGE_SIZE,
                 seed: Optional[int] = None, min_objects: int = 2, max_objects: int = 5, split: str = "train",
                 part_prob: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        if split not in ("train", "val"):
            raise InputError(f"Synthetic split must be 'train' or 'val', got {split!r}")
        if num_samples < 1:
            raise InputError(f"Synthetic dataset: num_samples must be >= 1, got {num_samples}")
        self.image_size = _check_args(image_size, min_objects, max_objects)
        self.seed = SYNTHETIC_SEEDS[split] if seed is None else int(seed)
        self.split = split
        self.min_objects = min_objects
        self.max_objects = max_objects
        self.part_prob = part_prob
        self.dataset_samples = list(range(num_samples))

    def describe_sample(self, index: int) -> str:
        return f"seed {self.seed}, image {index}"

    def get_sample(self, index: int) -> DSample:
        scene = generate_scene(self.seed, self.dataset_samples[index], self.image_size, self.min_objects,
                               self.max_objects, self.part_prob)
        return DSample(scene.image, scene.layers, objects=scene.objects, sample_id=index)


class SyntheticEvaluationDataset(ISDataset):
    """Evaluation form: one sample per (image, object) with the object covering ``>= min_area_ratio`` of the image.

    Images are ``generate_scene(seed, i)`` for ``i < num_images`` (default seed 1000, disjoint from
    the training seeds); objects and parts both count, in object-id order. Registered in
    ``isegm.inference.utils.DATASETS`` as ``'Synthetic'`` (no config key needed).
    """

    name = "SyntheticEvaluation"

    def __init__(self, num_images: int = 20, image_size: Tuple[int, int] = DEFAULT_IMAGE_SIZE,
                 seed: int = SYNTHETIC_SEEDS["eval"], min_objects: int = 2, max_objects: int = 5,
                 min_area_ratio: float = 0.03, part_prob: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.image_size = _check_args(image_size, min_objects, max_objects)
        self.seed = int(seed)
        self.min_objects = min_objects
        self.max_objects = max_objects
        self.part_prob = part_prob
        self._cached: Tuple[int, Optional[SyntheticScene]] = (-1, None)
        min_area = min_area_ratio * self.image_size[0] * self.image_size[1]
        samples = []
        for image_index in range(num_images):
            scene = self._scene(image_index)
            for obj_id, node in scene.objects.items():
                layer, value = node["mapping"]
                if (scene.layers[:, :, layer] == value).sum() >= min_area:
                    samples.append((image_index, obj_id))
        self.dataset_samples = samples
        if not samples:
            raise InputError(f"{self.name} dataset: no object of at least {min_area_ratio:.1%} of the image in "
                             f"{num_images} images (seed {self.seed})")

    def _scene(self, image_index: int) -> SyntheticScene:
        if self._cached[0] != image_index:
            self._cached = (image_index, generate_scene(self.seed, image_index, self.image_size, self.min_objects,
                                                        self.max_objects, self.part_prob))
        return self._cached[1]

    def describe_sample(self, index: int) -> str:
        image_index, obj_id = self.dataset_samples[index]
        return f"seed {self.seed}, image {image_index}, object {obj_id}"

    def get_sample(self, index: int) -> DSample:
        image_index, obj_id = self.dataset_samples[index]
        scene = self._scene(image_index)
        return DSample(scene.image, scene.layers, objects_ids=[scene.objects[obj_id]["mapping"]], sample_id=index)


def export_coco_lvis(root, num_images: int, split: str = "train", seed: int = 0,
                     image_size: Tuple[int, int] = DEFAULT_IMAGE_SIZE, min_objects: int = 2, max_objects: int = 5,
                     part_prob: float = 0.3, with_stuff: bool = True, jpeg_quality: int = 95) -> Path:
    """Write ``generate_scene(seed, i)``, ``i < num_images``, in the COCO+LVIS layout; returns ``<root>/<split>``.

    Writes ``hannotation.pickle`` (``{image_id: {'num_instance_masks', 'hierarchy'}}``, isolated
    objects as ``None``), ``images/<image_id>.jpg`` and ``masks/<image_id>.pickle`` =
    ``(list of cv2.imencode('.png') layers, objs_mapping)``, image ids ``'%012d' % i``. With
    ``with_stuff`` the ground region (when present) is added as one stuff instance after the things.
    ``CocoLvisDataset(root, split)`` then yields the same masks and trees as
    ``SyntheticDataset(seed=seed)`` (images up to JPEG loss).
    """
    height, width = _check_args(image_size, min_objects, max_objects)
    split_path = Path(root) / split
    (split_path / "images").mkdir(parents=True, exist_ok=True)
    (split_path / "masks").mkdir(parents=True, exist_ok=True)
    annotation = {}
    for index in range(num_images):
        scene = generate_scene(seed, index, (height, width), min_objects, max_objects, part_prob)
        image_id = f"{index:012d}"
        layers = scene.layers.copy()
        objs_mapping = [tuple(int(x) for x in scene.objects[i]["mapping"]) for i in range(len(scene.objects))]
        if with_stuff and scene.stuff is not None:
            value = int(layers[:, :, 0].max()) + 1
            layers[:, :, 0][scene.stuff] = value
            objs_mapping.append((0, value))
        hierarchy = {}
        for obj_id, node in scene.objects.items():
            if node["parent"] is None and not node["children"]:
                hierarchy[obj_id] = None
            else:
                hierarchy[obj_id] = {"children": list(node["children"]), "parent": node["parent"],
                                     "node_level": node["node_level"]}
        annotation[image_id] = {"num_instance_masks": len(scene.objects), "hierarchy": hierarchy}
        image_path = split_path / "images" / f"{image_id}.jpg"
        if not cv2.imwrite(os.fspath(image_path), scene.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
            raise OSError(f"could not write {image_path}")
        encoded = []
        for layer_index in range(layers.shape[2]):
            ok, data = cv2.imencode(".png", layers[:, :, layer_index])
            if not ok:
                raise OSError(f"could not PNG-encode layer {layer_index} of image {image_id}")
            encoded.append(data)
        with open(split_path / "masks" / f"{image_id}.pickle", "wb") as f:
            pickle.dump((encoded, objs_mapping), f)
    with open(split_path / "hannotation.pickle", "wb") as f:
        pickle.dump(annotation, f)
    return split_path
