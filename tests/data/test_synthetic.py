"""Synthetic data: determinism by seed, scene structure, evaluation form, registry entry and COCO+LVIS export."""
import pickle

import numpy as np
import pytest

from isegm.data.datasets import (
    SYNTHETIC_SEEDS,
    SyntheticDataset,
    SyntheticEvaluationDataset,
    export_coco_lvis,
    generate_scene,
)
from isegm.inference.evaluation import evaluate_dataset
from isegm.inference.utils import DATASETS, get_dataset


def assert_same_scene(a, b):
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.layers, b.layers)
    assert a.objects == b.objects
    assert (a.stuff is None) == (b.stuff is None)
    if a.stuff is not None:
        np.testing.assert_array_equal(a.stuff, b.stuff)


def test_deterministic_by_seed_and_index():
    assert_same_scene(generate_scene(0, 3), generate_scene(0, 3))
    first = SyntheticDataset(num_samples=5, seed=0).get_sample(4)
    again = SyntheticDataset(num_samples=5, seed=0).get_sample(4)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.encoded_masks, again.encoded_masks)
    assert first.objects == again.objects
    # other seed, other index: other images; (seed, index) is not seed + index
    assert not np.array_equal(generate_scene(0, 3).image, generate_scene(1, 3).image)
    assert not np.array_equal(generate_scene(0, 3).image, generate_scene(0, 4).image)
    assert not np.array_equal(generate_scene(0, 1000).image, generate_scene(1000, 0).image)


def test_default_seeds_are_disjoint():
    assert SYNTHETIC_SEEDS == {"train": 0, "val": 500, "eval": 1000}
    assert SyntheticDataset(num_samples=1).seed == 0
    assert SyntheticDataset(num_samples=1, split="val").seed == 500
    assert SyntheticEvaluationDataset(num_images=2).seed == 1000
    with pytest.raises(ValueError, match="split"):
        SyntheticDataset(num_samples=1, split="test")


@pytest.mark.parametrize("index", range(8))
def test_scene_structure(index):
    scene = generate_scene(0, index, image_size=(120, 160), min_objects=2, max_objects=5)
    assert scene.image.shape == (120, 160, 3) and scene.image.dtype == np.uint8
    assert scene.layers.dtype == np.uint8 and scene.layers.shape[:2] == (120, 160) and scene.layers.shape[2] in (1, 2)
    roots = [i for i, node in scene.objects.items() if node["parent"] is None]
    assert 1 <= len(roots) <= 5 and sorted(scene.objects) == list(range(len(scene.objects)))
    layer0 = scene.layers[:, :, 0]
    assert sorted(np.unique(layer0[layer0 > 0])) == [scene.objects[i]["mapping"][1] for i in roots]
    for obj_id, node in scene.objects.items():
        layer, value = node["mapping"]
        mask = scene.layers[:, :, layer] == value
        assert mask.sum() >= 80
        if node["parent"] is None:
            assert layer == 0 and node["node_level"] == 0
        else:  # a part lies inside its parent and is listed as its child
            parent = scene.objects[node["parent"]]
            assert layer == 1 and obj_id in parent["children"] and node["node_level"] == 1
            assert np.all(scene.layers[:, :, 0][mask] == parent["mapping"][1])
    if scene.stuff is not None:
        assert scene.stuff.sum() > 500 and not np.any(scene.stuff & (layer0 > 0))
    assert scene.image.std() > 10  # textured, not flat


def test_objects_differ_from_background():
    scene = generate_scene(0, 1)
    for node in scene.objects.values():
        mask = scene.layers[:, :, node["mapping"][0]] == node["mapping"][1]
        assert mask.any() and not mask.all()


def test_evaluation_form():
    dataset = SyntheticEvaluationDataset(num_images=4, image_size=(100, 150), seed=1000)
    assert dataset.name == "SyntheticEvaluation" and len(dataset) == len(dataset.dataset_samples) > 4
    assert sorted({image for image, _ in dataset.dataset_samples}) == [0, 1, 2, 3]
    for index in range(len(dataset)):
        sample = dataset.get_sample(index)
        assert len(sample) == 1 and sample.sample_id == index and sample.init_mask is None
        gt = sample.gt_mask
        assert gt.dtype == np.int32 and gt.shape == (100, 150) and set(np.unique(gt)) == {0, 1}
        assert gt.sum() >= 0.03 * 100 * 150
        image_index, obj_id = dataset.dataset_samples[index]
        scene = generate_scene(1000, image_index, (100, 150))
        np.testing.assert_array_equal(sample.image, scene.image)
        layer, value = scene.objects[obj_id]["mapping"]
        np.testing.assert_array_equal(gt, scene.layers[:, :, layer] == value)
    big = SyntheticEvaluationDataset(num_images=4, image_size=(100, 150), seed=1000, min_area_ratio=0.05)
    assert 0 < len(big) < len(dataset)
    with pytest.raises(ValueError, match="no object of at least"):
        SyntheticEvaluationDataset(num_images=1, min_area_ratio=0.99)


def test_evaluation_loop_runs_on_synthetic():
    class PerfectPredictor:  # predicts the ground truth of the current sample
        def set_input_image(self, image):
            pass

        def get_prediction(self, clicker, prev_mask=None):
            return self.gt.astype(np.float32)

    dataset = SyntheticEvaluationDataset(num_images=2, image_size=(80, 120))
    predictor = PerfectPredictor()
    for index in range(len(dataset)):
        predictor.gt = dataset.get_sample(index).gt_mask
        ious, _ = evaluate_dataset(dataset, predictor, indices=[index], max_iou_thr=0.9)
        assert ious[0][0] == pytest.approx(1.0)


def test_get_dataset_synthetic_needs_no_config():
    assert DATASETS["Synthetic"][1] is None
    dataset = get_dataset("Synthetic", {})
    assert isinstance(dataset, SyntheticEvaluationDataset) and dataset.seed == 1000 and len(dataset) > 0
    np.testing.assert_array_equal(dataset.get_sample(0).gt_mask, get_dataset("Synthetic", None).get_sample(0).gt_mask)
    with pytest.raises(KeyError, match="DAVIS_PATH"):  # datasets with a key still need it
        get_dataset("DAVIS", {})


def test_export_layout(tmp_path):
    split_path = export_coco_lvis(tmp_path / "cclvis", num_images=3, split="val", seed=7, image_size=(64, 96))
    assert sorted(p.name for p in (split_path / "images").iterdir()) == [f"{i:012d}.jpg" for i in range(3)]
    assert sorted(p.name for p in (split_path / "masks").iterdir()) == [f"{i:012d}.pickle" for i in range(3)]
    with open(split_path / "hannotation.pickle", "rb") as f:
        annotation = pickle.load(f)
    assert sorted(annotation) == [f"{i:012d}" for i in range(3)]
    for image_id, info in annotation.items():
        scene = generate_scene(7, int(image_id), (64, 96))
        assert info["num_instance_masks"] == len(scene.objects)
        with open(split_path / "masks" / f"{image_id}.pickle", "rb") as f:
            encoded, mapping = pickle.load(f)
        assert len(encoded) == scene.layers.shape[2] and all(x.dtype == np.uint8 for x in encoded)
        assert mapping[:len(scene.objects)] == [scene.objects[i]["mapping"] for i in range(len(scene.objects))]
        assert len(mapping) == len(scene.objects) + (scene.stuff is not None)
        for obj_id, node in info["hierarchy"].items():
            expected = scene.objects[obj_id]
            if node is None:
                assert expected["parent"] is None and not expected["children"]
            else:
                assert (node["parent"], node["children"]) == (expected["parent"], expected["children"])


def test_training_form_with_epoch_len():
    dataset = SyntheticDataset(num_samples=3, image_size=(200, 300), epoch_len=7, min_object_area=0)
    assert len(dataset) == 7 and dataset.get_samples_number() == 3
    sample = dataset.get_sample(2)
    assert sample.sample_id == 2 and len(sample) >= 1 and sample.root_objects
