"""Training data: DSample object trees and augmentation, FirstPointSampler, augmentations, ISDataset.__getitem__,
COCO+LVIS and SBD training datasets (tiny inputs, written to tmp_path)."""
import pickle
import random
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
import scipy.io
import scipy.ndimage
import torch

from isegm.data.base import ISDataset, SampleLoadError
from isegm.data.datasets import CocoLvisDataset, SBDDataset, SyntheticDataset, export_coco_lvis, generate_scene
from isegm.data.points_sampler import FirstPointSampler, generate_probs, get_point_candidates
from isegm.data.sample import DSample
from isegm.data.transforms import UniformRandomResize, reseed_augmentator, train_augmentator, val_augmentator
from isegm.engine.recipe import first_point_sampler
from isegm.utils.pickles import UnsafePickleError


@pytest.fixture(autouse=True)
def _seeded():
    random.seed(0)
    np.random.seed(0)


def tree_sample(height=40, width=60) -> DSample:
    """Root 0 (layer 0, value 1) > child 1 (layer 1, 1) > child 2 (layer 1, 2); root 3 (layer 0, value 2)."""
    layers = np.zeros((height, width, 2), np.uint8)
    layers[5:35, 5:30, 0] = 1
    layers[10:30, 8:20, 1] = 1
    layers[12:14, 22:24, 1] = 2  # 4 px, inside root 0
    layers[5:35, 40:55, 0] = 2
    layers[0, 0, 0] = 9  # a label that belongs to no object
    objects = {
        0: {"parent": None, "children": [1], "mapping": (0, 1), "node_level": 0},
        1: {"parent": 0, "children": [2], "mapping": (1, 1), "node_level": 1},
        2: {"parent": 1, "children": [], "mapping": (1, 2), "node_level": 2},
        3: {"parent": None, "children": [], "mapping": (0, 2), "node_level": 0},
    }
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return DSample(image, layers, objects=objects, sample_id=5)


# --------------------------------------------------------------------------------------------------
# DSample


def test_dsample_tree_accessors():
    sample = tree_sample()
    assert len(sample) == 4 and sample.root_objects == [0, 3] and sample.sample_id == 5
    mask = sample.get_object_mask(1)
    assert mask.dtype == np.int32 and mask.sum() == 20 * 12 and mask[10, 8] == 1
    background = sample.get_background_mask()
    assert background.dtype == bool and not background[0, 0] and background[39, 59] and not background[6, 6]
    with pytest.raises(ValueError, match="exactly one object"):
        _ = sample.gt_mask
    with pytest.raises(ValueError, match="either objects .* or objects_ids"):
        DSample(sample.image, sample.encoded_masks, objects_ids=[(0, 1)], objects={0: {"mapping": (0, 1)}})
    with pytest.raises(ValueError, match="maps to layer 5"):
        DSample(sample.image, sample.encoded_masks, objects={0: {"mapping": (5, 1)}})


def test_dsample_remove_small_objects_reparents_children():
    sample = tree_sample()
    original_layers = sample.encoded_masks.copy()
    sample.remove_small_objects(min_area=5)  # object 2 (4 px) goes
    assert sample.objects_ids == [0, 1, 3] and sample.objects[1]["children"] == []
    assert sample.objects[0]["area"] == 30 * 25 and sample.objects[1]["area"] == 240
    sample.remove_small_objects(min_area=300)  # object 1 (240 px) goes, it had no children left
    assert sample.objects_ids == [0, 3] and sample.objects[0]["children"] == []
    np.testing.assert_array_equal(original_layers[:, :, 1], sample.encoded_masks[:, :, 1])
    assert sample.encoded_masks[0, 0, 0] == 0 and sample._original_data[1][0, 0, 0] == 9  # zeroed in a copy

    sample = tree_sample()
    sample.remove_small_objects(min_area=0)
    sample._objects[1]["area"] = 0  # remove the middle node: its child moves up to the root
    sample.remove_small_objects(min_area=1)
    assert sample.objects[2]["parent"] == 0 and sample.objects[0]["children"] == [2]
    assert sample.root_objects == [0, 3]


def test_dsample_augment_and_reset():
    sample = tree_sample()
    image0, layers0 = sample.image.copy(), sample.encoded_masks.copy()
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    sample.augment(flip)
    np.testing.assert_array_equal(sample.image, image0[:, ::-1])
    np.testing.assert_array_equal(sample.get_object_mask(3), (layers0[:, ::-1, 0] == 2).astype(np.int32))
    assert sample.encoded_masks[0, -1, 0] == 0  # unknown label 9 zeroed in the augmented copy
    np.testing.assert_array_equal(sample._original_data[1], layers0)  # the original arrays are untouched
    assert sample.objects[0]["area"] == 750 and sample.objects[2]["area"] == 4

    crop_right = A.Compose([A.Crop(x_min=35, y_min=0, x_max=60, y_max=40)])
    sample.augment(crop_right)  # only root 3 stays visible
    assert sample.image.shape == (40, 25, 3) and sample.objects_ids == [3] and sample.root_objects == [3]
    sample.reset_augmentation()
    assert sample.objects_ids == [0, 1, 2, 3] and "area" not in sample.objects[0]
    np.testing.assert_array_equal(sample.image, image0)
    np.testing.assert_array_equal(sample.encoded_masks, layers0)


def test_dsample_evaluation_constructor_unchanged():
    encoded = np.array([[0, 1, 2], [220, 1, 0]], np.int32)
    sample = DSample(np.zeros((2, 3, 3), np.uint8), encoded, objects_ids=[1, 2], ignore_ids=[220], sample_id=3)
    assert sample.root_objects == [0, 1]
    np.testing.assert_array_equal(sample.get_object_mask(0), [[0, 1, 0], [-1, 1, 0]])
    sample.remove_small_objects(min_area=2)  # object 1 has one pixel
    assert sample.objects_ids == [0]


# --------------------------------------------------------------------------------------------------
# FirstPointSampler


def emc_sampler(**kwargs) -> FirstPointSampler:
    params = dict(prob_gamma=0.80, merge_objects_prob=0.15, max_num_merged_objects=2, use_hierarchy=False,
                  first_click_center=True)
    params.update(kwargs)
    return FirstPointSampler(24, **params)


def two_object_sample() -> DSample:
    layer = np.zeros((60, 80), np.uint8)
    cv2.ellipse(layer, (20, 30), (15, 22), 0, 0, 360, 1, thickness=-1)
    layer[10:50, 45:75] = 2
    return DSample(np.zeros((60, 80, 3), np.uint8), layer.astype(np.int32), objects_ids=[1, 2])


def test_generate_probs():
    probs = generate_probs(24, 0.8)
    assert probs.shape == (24,) and np.isclose(probs.sum(), 1.0)
    np.testing.assert_allclose(probs[1:] / probs[:-1], 0.8)
    assert abs(probs[0] - 0.2009) < 1e-4
    assert generate_probs(24, 0.8) is probs  # cached ...
    with pytest.raises(ValueError):
        probs[0] = 1.0  # ... hence read-only


def test_first_click_inside_eroded_object_on_candidates():
    sample = two_object_sample()
    sampler = emc_sampler(merge_objects_prob=0.0, positive_erode_prob=1.0)
    seen = set()
    for _ in range(30):
        sampler.sample_object(sample)
        points = np.array(sampler.sample_points())
        assert points.shape == (48, 3)
        np.testing.assert_array_equal(points[1:], -1)
        y, x, order = points[0]
        assert order == 0
        target = sampler.selected_mask
        assert target.shape == (1, 60, 80) and target.dtype == np.float32
        label = sample.encoded_masks[y, x, 0]
        assert label in (1, 2)
        np.testing.assert_array_equal(target[0], sample.encoded_masks[:, :, 0] == label)
        eroded = cv2.erode((sample.encoded_masks[:, :, 0] == label).astype(np.uint8), np.ones((3, 3), np.uint8),
                           iterations=3)
        assert eroded[y, x] == 1
        padded = np.pad(eroded, 1)
        dt = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        assert dt[y, x] > dt.max() / 1.7
        seen.add(int(label))
    assert seen == {1, 2}


def test_point_candidates_centre_of_rectangle():
    mask = np.zeros((21, 41), np.uint8)
    mask[1:20, 1:40] = 1  # 19 x 39 rectangle: the deepest pixels are on its middle row
    candidates = get_point_candidates(mask, k=1.7)
    assert set(candidates[:, 0]) == set(range(6, 15)) and set(candidates[:, 1]) == set(range(6, 35))
    assert get_point_candidates(mask, k=1.7, full_prob=1.0).shape[0] == mask.sum()


def test_merge_two_roots():
    sample = two_object_sample()
    sampler = emc_sampler(merge_objects_prob=1.0, positive_erode_prob=0.0)
    sampler.sample_object(sample)
    points = np.array(sampler.sample_points())
    np.testing.assert_array_equal(sampler.selected_mask[0], sample.encoded_masks[:, :, 0] > 0)
    clicked = {int(sample.encoded_masks[y, x, 0]) for y, x, _ in points[:2]}
    assert clicked == {1, 2} and (points[:2, 2] == 0).all()
    np.testing.assert_array_equal(points[2:], -1)


def test_sampler_small_object_not_eroded_and_empty_sample():
    layer = np.zeros((30, 30), np.int32)
    layer[10:15, 10:15] = 1  # 25 px: eroding 3 times leaves nothing, the mask is used as is
    sample = DSample(np.zeros((30, 30, 3), np.uint8), layer, objects_ids=[1])
    sampler = emc_sampler(positive_erode_prob=1.0)
    sampler.sample_object(sample)
    y, x, _ = sampler.sample_points()[0]
    assert layer[y, x] == 1

    empty = DSample(np.zeros((30, 30, 3), np.uint8), np.zeros((30, 30), np.int32), objects_ids=[])
    sampler.sample_object(empty)
    assert sampler.selected_mask.sum() == 0 and np.all(np.array(sampler.sample_points()) == -1)
    with pytest.raises(RuntimeError, match="sample_object"):
        FirstPointSampler(24).sample_points()


def test_sampler_uniform_first_click_and_hierarchy():
    sample = tree_sample()
    sample.remove_small_objects(0)
    sampler = FirstPointSampler(24, use_hierarchy=True, positive_erode_prob=0.0)
    for _ in range(20):
        sampler.sample_object(sample)
        target = sampler.selected_mask[0]
        y, x, order = sampler.sample_points()[0]
        assert target[y, x] == 1 and order == 0
        root_masks = [sample.get_object_mask(i) for i in sample.root_objects]
        assert any(np.all(target <= m) for m in root_masks)  # a node (minus children) of one root


# --------------------------------------------------------------------------------------------------
# augmentations


def test_uniform_random_resize_sizes_and_nearest_masks():
    image = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    labels = np.random.default_rng(2).choice(np.array([0, 3, 7], np.int32), size=(50, 70, 6))
    fixed = A.Compose([UniformRandomResize(scale_range=(1.3, 1.3))])
    out = fixed(image=image, mask=labels)
    assert out["image"].shape == (65, 91, 3) and out["mask"].shape == (65, 91, 6) and out["mask"].dtype == np.int32
    assert set(np.unique(out["mask"])) <= {0, 3, 7}
    np.testing.assert_array_equal(out["mask"], cv2.resize(labels, (91, 65), interpolation=cv2.INTER_NEAREST))
    np.testing.assert_array_equal(out["image"], cv2.resize(image, (91, 65), interpolation=cv2.INTER_LINEAR))
    assert np.any(out["image"] != cv2.resize(image, (91, 65), interpolation=cv2.INTER_NEAREST))

    aug = A.Compose([UniformRandomResize()], seed=7)
    sizes = set()
    for _ in range(40):
        out = aug(image=image, mask=labels[:, :, :1])
        height, width = out["image"].shape[:2]
        assert out["mask"].shape == (height, width, 1)
        assert 0.75 * 50 - 1 <= height <= 1.40 * 50 + 1 and abs(width / 70 - height / 50) < 0.03
        sizes.add((height, width))
    assert len(sizes) > 10
    again = A.Compose([UniformRandomResize()], seed=7)
    assert again(image=image)["image"].shape == A.Compose([UniformRandomResize()], seed=7)(image=image)["image"].shape
    with pytest.raises(ValueError):
        UniformRandomResize(scale_range=(1.2, 0.8))


@pytest.mark.parametrize("size", [(200, 300), (500, 700)])
def test_train_and_val_augmentators(size):
    image = np.random.default_rng(0).integers(0, 256, size + (3,), dtype=np.uint8)
    layers = np.zeros(size + (3,), np.uint8)
    layers[20:150, 30:200, 0] = 1
    layers[60:90, 60:90, 1] = 2
    train = train_augmentator((320, 480))
    names = [type(t).__name__ for t in train.transforms]
    assert names == ["UniformRandomResize", "HorizontalFlip", "PadIfNeeded", "RandomCrop",
                     "RandomBrightnessContrast", "RGBShift"]
    for aug in (train, val_augmentator((320, 480))):
        out = aug(image=image, mask=layers)
        assert out["image"].shape == (320, 480, 3) and out["image"].dtype == np.uint8
        assert out["mask"].shape == (320, 480, 3) and set(np.unique(out["mask"])) <= {0, 1, 2}
    small = val_augmentator((320, 480))(image=image[:100, :100], mask=layers[:100, :100])
    assert small["image"][:110].sum() == 0  # centred zero padding: 110 rows above the content


def test_reseed_gives_each_transform_its_own_stream():
    aug = train_augmentator((32, 48))
    aug.set_random_seed(5)  # albumentations: the same stream in every transform
    assert len({t.py_random.random() for t in aug.transforms}) == 1
    reseed_augmentator(aug, 5)
    first = [t.py_random.random() for t in aug.transforms]
    assert len(set(first)) == len(aug.transforms)
    reseed_augmentator(aug, 5)
    assert [t.py_random.random() for t in aug.transforms] == first
    nested = A.Compose([A.OneOf([A.HorizontalFlip(), A.VerticalFlip()]), A.HorizontalFlip()])
    reseed_augmentator(nested, 1)
    inner = nested.transforms[0].transforms
    assert len({inner[0].py_random.random(), inner[1].py_random.random(),
                nested.transforms[1].py_random.random()}) == 3
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    a = train_augmentator((32, 48), seed=3)(image=image)["image"]
    np.testing.assert_array_equal(a, train_augmentator((32, 48), seed=3)(image=image)["image"])


# --------------------------------------------------------------------------------------------------
# ISDataset.__getitem__


def synthetic_trainset(**kwargs) -> SyntheticDataset:
    params = dict(num_samples=20, image_size=(200, 300), augmentator=train_augmentator((320, 480)),
                  points_sampler=emc_sampler(), min_object_area=1000, epoch_len=50)
    params.update(kwargs)
    return SyntheticDataset(**params)


def test_getitem_output():
    dataset = synthetic_trainset(with_image_info=True)
    assert len(dataset) == 50 and dataset.get_samples_number() == 20
    for index in range(6):
        out = dataset[index]
        assert set(out) == {"images", "points", "instances", "image_info"}
        images, points, instances = out["images"], out["points"], out["instances"]
        assert isinstance(images, torch.Tensor) and images.dtype == torch.float32 and images.shape == (3, 320, 480)
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert points.dtype == np.float32 and points.shape == (48, 3)
        assert instances.dtype == np.float32 and instances.shape == (1, 320, 480)
        assert set(np.unique(instances)) <= {0.0, 1.0}
        assert 1000 < instances.sum() < 0.85 * 320 * 480
        assert 1 <= (points[:24, 0] >= 0).sum() <= 2 and np.all(points[24:] == -1)
        assert np.all(points[points[:, 0] >= 0, 2] == 0)
        assert 0 <= out["image_info"] < 20


def test_getitem_without_augmentation_and_index_range():
    # the scenes are small; accept any reasonable object
    dataset = SyntheticDataset(num_samples=3, image_size=(200, 300), min_object_area=0, min_mask_area=50,
                               points_sampler=first_point_sampler())
    out = dataset[1]
    assert out["images"].shape == (3, 200, 300) and out["instances"].shape == (1, 200, 300)
    with pytest.raises(IndexError):
        dataset[3]


def test_remove_small_regions_is_4_connected_and_strict():
    mask = np.zeros((1, 120, 120), np.float32)
    mask[0, 0:25, 0:25] = 1  # two 625 px squares touching at one corner: separate parts with 4-connectivity
    mask[0, 25:50, 25:50] = 1
    mask[0, 60:90, 0:30] = 1  # exactly 900 px: kept (size < 900 is removed)
    mask[0, 60:89, 40:71] = 1  # 899 px: removed
    mask[0, 95:120, 95:120] = 0.6  # > 0.5 counts; 625 px: removed
    cleaned = synthetic_trainset().remove_small_regions(mask)
    assert cleaned.dtype == np.float32 and cleaned.shape == mask.shape
    expected = np.zeros_like(mask)
    expected[0, 60:90, 0:30] = 1
    np.testing.assert_array_equal(cleaned, expected)
    # reference: scipy's default 2D structure is the cross (= skimage connectivity=1)
    labels, _ = scipy.ndimage.label(mask[0] > 0.5)
    sizes = np.bincount(labels.ravel())
    reference = (mask[0] > 0.5) & (sizes[labels] >= 900)
    np.testing.assert_array_equal(cleaned[0] > 0, reference)


def test_training_access_needs_a_points_sampler():
    dataset = SyntheticDataset(num_samples=2, image_size=(200, 300))
    assert dataset.points_sampler is None and len(dataset) == 2
    assert len(dataset.get_sample(1)) >= 1  # evaluation access needs no sampler
    with pytest.raises(RuntimeError, match=r"Synthetic dataset: no points_sampler was given, so dataset\[0\]"):
        dataset[0]


def test_small_region_cleaning_follows_the_attribute_not_the_name(monkeypatch):
    dataset = synthetic_trainset(num_samples=1, augmentator=None, epoch_len=-1, min_object_area=0, min_mask_area=0)
    clean = dataset.remove_small_regions
    raw_masks = []
    monkeypatch.setattr(dataset, "remove_small_regions", lambda mask: clean(raw_masks.append(mask) or mask))
    dataset.name = "SBD"  # only a display name: the cleaning still runs
    out = dataset[0]
    assert len(raw_masks) == 1
    np.testing.assert_array_equal(out["instances"], clean(raw_masks[0]))
    dataset.remove_small_target_regions = False
    out = dataset[0]
    assert len(raw_masks) == 1
    np.testing.assert_array_equal(out["instances"], dataset.points_sampler.selected_mask)


class BrokenDataset(ISDataset):
    name = "Broken"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dataset_samples = ["img_a", "img_b"]

    def get_sample(self, index):
        raise OSError(f"cannot read {self.dataset_samples[index]}.jpg")


def test_broken_sample_raises_with_dataset_and_id():
    with pytest.raises(SampleLoadError, match=r"Broken dataset: sample 1 \('img_b'\) failed: OSError: cannot read"):
        BrokenDataset(points_sampler=emc_sampler())[1]


def test_rejection_cap_names_dataset():
    dataset = synthetic_trainset(min_object_area=10 ** 6)
    dataset.max_sample_attempts = 4
    with pytest.raises(RuntimeError, match=r"Synthetic dataset: no acceptable training sample in 4 attempts"):
        dataset[0]
    no_objects = SyntheticDataset(num_samples=2, augmentator=val_augmentator((320, 480)), epoch_len=5,
                                  points_sampler=emc_sampler())
    no_objects.get_sample = lambda i: DSample(np.zeros((50, 50, 3), np.uint8), np.zeros((50, 50), np.uint8),
                                              objects_ids=[], sample_id=i)
    no_objects.max_sample_attempts = 3
    with pytest.raises(RuntimeError, match="no acceptable training sample"):  # the original looped forever
        no_objects[0]


def test_keep_background_prob():
    empty = DSample(np.zeros((50, 50, 3), np.uint8), np.zeros((50, 50), np.uint8), objects_ids=[])
    dataset = SyntheticDataset(num_samples=1, augmentator=val_augmentator((64, 64)), keep_background_prob=0.0)
    assert not dataset.augment_sample(empty)
    dataset.keep_background_prob = -1.0  # negative: always keep
    assert dataset.augment_sample(empty) and empty.image.shape == (64, 64, 3)


def test_samples_scores(tmp_path):
    path = tmp_path / "scores.pickle"
    path.write_bytes(pickle.dumps([(0, None, 0.0), (1, None, 1.0), (2, None, 0.5)]))
    dataset = synthetic_trainset(samples_scores_path=path, samples_scores_gamma=1.0, with_image_info=True)
    np.testing.assert_allclose(dataset.samples_precomputed_scores["probs"], [2 / 3, 0, 1 / 3])
    assert {dataset[i]["image_info"] for i in range(6)} <= {0, 2}


# --------------------------------------------------------------------------------------------------
# COCO+LVIS


def test_coco_lvis_round_trip(tmp_path):
    split_path = export_coco_lvis(tmp_path, num_images=6, split="train", seed=3)
    assert split_path == tmp_path / "train"
    assert sorted(p.name for p in split_path.iterdir()) == ["hannotation.pickle", "images", "masks"]
    dataset = CocoLvisDataset(tmp_path, split="train")
    synthetic = SyntheticDataset(num_samples=6, seed=3)
    assert dataset.get_samples_number() == 6 and dataset.dataset_samples[0][0] == "000000000000"
    with_parts = with_stuff = 0
    for index in range(6):
        sample, reference = dataset.get_sample(index), synthetic.get_sample(index)
        assert sample.sample_id == index
        np.testing.assert_array_equal(sample.encoded_masks, reference.encoded_masks)  # stuff erased (stuff_prob 0)
        for obj_id, node in reference.objects.items():
            got = sample.objects[obj_id]
            assert (got["parent"], got["children"], got["mapping"]) == \
                (node["parent"], node["children"], node["mapping"])
        assert set(sample.objects) == set(reference.objects)
        assert np.abs(sample.image.astype(int) - reference.image).mean() < 4  # JPEG
        with_parts += any(node["parent"] is not None for node in sample.objects.values())
        _, info = dataset.dataset_samples[index]
        stuff_ids = range(info["num_instance_masks"], len(dataset.read_masks(
            tmp_path / "train" / "masks" / f"{index:012d}.pickle")[1]))
        if len(stuff_ids):
            with_stuff += 1
            with_stuff_sample = CocoLvisDataset(tmp_path, stuff_prob=1.0).get_sample(index)
            for inst_id in stuff_ids:
                node = with_stuff_sample.objects[inst_id]
                assert node["parent"] is None and with_stuff_sample.get_object_mask(inst_id).sum() > 500
    assert with_parts and with_stuff  # the export exercised both


def test_coco_lvis_handmade_layers(tmp_path):
    split = tmp_path / "val"
    (split / "images").mkdir(parents=True)
    (split / "masks").mkdir()
    image = np.full((30, 40, 3), 128, np.uint8)
    cv2.imwrite(str(split / "images" / "000000000009.jpg"), image)
    layer0 = np.zeros((30, 40), np.uint8)
    layer0[0:20, 0:20] = 1
    layer0[20:30, 20:40] = 2  # stuff
    layer1 = np.zeros((30, 40), np.uint8)
    layer1[5:10, 5:10] = 1  # overlaps object 0: second layer
    encoded = [cv2.imencode(".png", layer0)[1], cv2.imencode(".png", layer1)[1]]
    (split / "masks" / "000000000009.pickle").write_bytes(pickle.dumps((encoded, [(0, 1), (1, 1), (0, 2)])))
    hierarchy = {0: {"children": [1], "parent": None, "node_level": 0},
                 1: {"children": [], "parent": 0, "node_level": 1}}
    annotation = {"000000000009": {"num_instance_masks": 2, "hierarchy": hierarchy}}
    (split / "hannotation.pickle").write_bytes(pickle.dumps(annotation))
    (split / "allow.json").write_text('["000000000009"]')

    sample = CocoLvisDataset(tmp_path, split="val", allow_list_name="allow.json").get_sample(0)
    assert sample.encoded_masks.shape == (30, 40, 2) and sample.root_objects == [0]
    assert sample.objects[1]["mapping"] == (1, 1) and sample.get_object_mask(1).sum() == 25
    assert sample.encoded_masks[25, 30, 0] == 0  # stuff erased
    assert CocoLvisDataset(tmp_path, split="val", stuff_prob=1.0).get_sample(0).root_objects == [0, 2]
    (split / "allow.json").write_text('["other"]')
    with pytest.raises(ValueError, match="no samples found"):
        CocoLvisDataset(tmp_path, split="val", allow_list_name="allow.json")
    hierarchy[0] = None  # isolated objects are stored as None
    hierarchy[1]["parent"] = None
    (split / "hannotation.pickle").write_bytes(pickle.dumps(annotation))
    sample = CocoLvisDataset(tmp_path, split="val").get_sample(0)
    assert sample.objects[0] == {"children": [], "parent": None, "node_level": 0, "mapping": (0, 1)}


def test_coco_lvis_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"root folder not found: .*nowhere .*LVIS_v1_PATH"):
        CocoLvisDataset(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"split folder 'train' not found: .*train .*LVIS_v1_PATH"):
        CocoLvisDataset(tmp_path)
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "masks").mkdir()
    with pytest.raises(FileNotFoundError, match=r"annotation file not found: .*hannotation\.pickle .*LVIS_v1_PATH"):
        CocoLvisDataset(tmp_path)


def test_coco_lvis_broken_samples(tmp_path):
    export_coco_lvis(tmp_path, num_images=3, seed=0)
    dataset = CocoLvisDataset(tmp_path, augmentator=val_augmentator((320, 480)), min_object_area=100,
                              min_mask_area=100, points_sampler=first_point_sampler())
    assert dataset[0]["instances"].shape == (1, 320, 480)
    (tmp_path / "train" / "images" / "000000000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SampleLoadError, match=r"CocoLvis dataset: sample 1 \(image '000000000001'\) failed: "
                                              r"image file .*000000000001\.jpg is not an image OpenCV can decode"):
        dataset[1]
    (tmp_path / "train" / "masks" / "000000000002.pickle").write_bytes(b"\x80\x04garbage")
    with pytest.raises(SampleLoadError, match=r"sample 2 \(image '000000000002'\).*000000000002\.pickle is not a "
                                              "valid pickle"):
        dataset[2]
    (tmp_path / "train" / "masks" / "000000000000.pickle").write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(SampleLoadError, match=r"sample 0 .*refusing to unpickle pathlib"):
        dataset[0]
    (tmp_path / "train" / "hannotation.pickle").write_bytes(pickle.dumps({"a": Path("x")}))
    with pytest.raises(UnsafePickleError, match=r"hannotation\.pickle: refusing"):
        CocoLvisDataset(tmp_path)


# --------------------------------------------------------------------------------------------------
# SBD


def write_sbd(root: Path) -> np.ndarray:
    seg = np.zeros((120, 160), np.uint8)
    seg[10:70, 10:80] = 1  # solid: kept
    seg[80:110, 90:150] = 2  # solid: kept
    for i in range(50):  # a thin diagonal line: area / bbox area = 50 / 2500 < 0.08, erased
        seg[i, i + 100] = 3
    (root / "inst").mkdir(parents=True)
    (root / "img").mkdir()
    gtinst = {"Segmentation": seg, "Boundaries": np.zeros((1, 1), object), "Categories": np.array([[1]], np.uint8)}
    scipy.io.savemat(str(root / "inst" / "2008_000001.mat"), {"GTinst": gtinst})
    cv2.imwrite(str(root / "img" / "2008_000001.jpg"), np.full((120, 160, 3), 90, np.uint8))
    (root / "train.txt").write_text("2008_000001\n")
    (root / "val.txt").write_text("2008_000001\n")
    return seg


def test_sbd_training_dataset(tmp_path, monkeypatch):
    seg = write_sbd(tmp_path)
    dataset = SBDDataset(tmp_path, augmentator=val_augmentator((320, 480)), min_object_area=0, epoch_len=4,
                         points_sampler=first_point_sampler())
    assert dataset.name == "SBD" and dataset.dataset_samples == ["2008_000001"]
    assert not dataset.remove_small_target_regions
    sample = dataset.get_sample(0)
    assert len(sample) == 2 and sample.objects_ids == [0, 1]
    np.testing.assert_array_equal(sample.get_object_mask(0), seg == 1)
    assert not np.any(sample.encoded_masks == 3)  # buggy (thin) object erased
    assert dataset._buggy_objects == {0: [3]}
    assert len(SBDDataset(tmp_path, buggy_mask_thresh=0.0).get_sample(0)) == 3

    def must_not_run(mask):
        raise AssertionError("remove_small_regions must be skipped for SBD")

    monkeypatch.setattr(dataset, "remove_small_regions", must_not_run)
    out = dataset[0]
    areas = ((seg == 1).sum(), (seg == 2).sum())
    assert out["instances"].shape == (1, 320, 480) and out["instances"].sum() in areas + (sum(areas),)
    with pytest.raises(ValueError, match="split must be"):
        SBDDataset(tmp_path, split="test")
    (tmp_path / "inst" / "2008_000001.mat").unlink()
    with pytest.raises(SampleLoadError, match=r"SBD dataset: sample 0 \(image '2008_000001'\).*2008_000001\.mat"):
        dataset[0]


def test_synthetic_scene_trains_on_its_objects():
    scene = generate_scene(0, 0)
    dataset = synthetic_trainset(num_samples=1, augmentator=None, epoch_len=-1, min_object_area=0,
                                 points_sampler=emc_sampler(merge_objects_prob=0.0), min_mask_area=0)
    roots = [scene.layers[:, :, node["mapping"][0]] == node["mapping"][1]
             for node in scene.objects.values() if node["parent"] is None]
    for _ in range(5):
        out = dataset[0]
        target = out["instances"][0] > 0
        # one root object, minus its parts smaller than 900 px; the click is on the object
        assert any(np.all(target <= root) and target.sum() > 0 for root in roots)
        y, x = out["points"][0, :2].astype(int)
        assert any(root[y, x] for root in roots)
