"""The evaluation loop with fake predictors: early stop, click limits, empty masks, progressive merge."""
import logging
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from isegm.inference.evaluation import evaluate_dataset, evaluate_sample, progressive_merge


def square(shape, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


class ScriptedPredictor:
    """Returns ``masks[min(n, len) - 1]`` as probabilities after the n-th click (``H x W`` float32)."""

    def __init__(self, masks, value=1.0):
        self.masks = masks
        self.value = value
        self.images, self.prev_masks, self.num_clicks = [], [], []
        self.inference_mode = []

    def set_input_image(self, image):
        self.images.append(image)

    def set_prev_mask(self, mask):
        self.prev_masks.append(mask)

    def get_prediction(self, clicker):
        self.inference_mode.append(torch.is_inference_mode_enabled())
        n = len(clicker.get_clicks())
        self.num_clicks.append(n)
        return self.masks[min(n, len(self.masks)) - 1].astype(np.float32) * self.value


class DiskPredictor:
    """Disks of radius ``r`` around positive clicks, minus disks around negative clicks."""

    def __init__(self, shape, r):
        yy, xx = np.mgrid[: shape[0], : shape[1]]
        self.disk = lambda y, x: (yy - y) ** 2 + (xx - x) ** 2 <= r * r

    def set_input_image(self, image):
        pass

    def get_prediction(self, clicker):
        clicks = clicker.get_clicks()
        pos = np.zeros_like(self.disk(0, 0))
        for c in clicks:
            if c.is_positive:
                pos |= self.disk(*c.coords)
        for c in clicks:
            if not c.is_positive:
                pos &= ~self.disk(*c.coords)
        return pos.astype(np.float32)


IMAGE = np.zeros((16, 16, 3), dtype=np.uint8)
GT = square((16, 16), 4, 12, 4, 12).astype(np.int32)
EMPTY = np.zeros((16, 16), dtype=bool)


def test_stops_at_first_click_reaching_the_target():
    predictor = ScriptedPredictor([EMPTY, EMPTY, GT == 1])
    clicks, ious, probs = evaluate_sample(IMAGE, GT, predictor, max_iou_thr=0.9)
    assert ious.dtype == np.float32 and ious.tolist() == [0.0, 0.0, 1.0]
    assert len(clicks) == 3 and predictor.num_clicks == [1, 2, 3]
    assert np.array_equal(probs, (GT == 1).astype(np.float32))
    assert all(predictor.inference_mode)
    assert clicks[0].is_positive and tuple(map(int, clicks[0].coords)) == (7, 7)


def test_min_clicks_delays_the_stop():
    predictor = ScriptedPredictor([GT == 1])
    _, ious, _ = evaluate_sample(IMAGE, GT, predictor, max_iou_thr=0.9, min_clicks=4)
    assert ious.tolist() == [1.0] * 4      # stop once iou >= thr and click_indx + 1 >= min_clicks


def test_max_clicks_when_never_reached():
    predictor = ScriptedPredictor([EMPTY])
    clicks, ious, _ = evaluate_sample(IMAGE, GT, predictor, max_iou_thr=0.9, max_clicks=7)
    assert len(ious) == 7 and len(clicks) == 7
    _, ious, _ = evaluate_sample(IMAGE, GT, ScriptedPredictor([GT == 1]), max_iou_thr=1.01, max_clicks=5)
    assert ious.tolist() == [1.0] * 5      # a target above 1 never stops early (--iou-analysis)


def test_iou_equal_to_target_stops():
    half = square((16, 16), 4, 12, 4, 8)   # IoU exactly 0.5
    _, ious, _ = evaluate_sample(IMAGE, GT, ScriptedPredictor([half]), max_iou_thr=0.5, max_clicks=5)
    assert ious.tolist() == [0.5]


def test_strict_probability_threshold_and_thresholded_feedback():
    # probs == pred_thr is background; the clicker always sees the thresholded mask, so it keeps
    # clicking inside the object (a new pixel each time).
    predictor = ScriptedPredictor([GT == 1], value=0.49)
    clicks, ious, _ = evaluate_sample(IMAGE, GT, predictor, max_iou_thr=0.9, pred_thr=0.49, max_clicks=3)
    assert ious.tolist() == [0.0] * 3 and all(c.is_positive for c in clicks)
    assert len({tuple(map(int, c.coords)) for c in clicks}) == 3
    _, ious, _ = evaluate_sample(IMAGE, GT, ScriptedPredictor([GT == 1], value=0.5), max_iou_thr=0.9)
    assert ious.tolist() == [1.0]


def test_disk_predictor_click_sequence():
    # Disks of radius 5 never cover the square's corners without cutting elsewhere: 20 clicks are used.
    gt = np.zeros((32, 32), dtype=np.int32)
    gt[8:24, 8:24] = 1
    clicks, ious, _ = evaluate_sample(np.zeros((32, 32, 3), np.uint8), gt, DiskPredictor(gt.shape, 5),
                                      max_iou_thr=0.85, max_clicks=20)
    assert len(ious) == 20 and ious.max() < 0.85
    assert [c.indx for c in clicks] == list(range(20))
    # centre first (first of the distance-8 pixels), then the four uncovered corners, then a negative
    assert [(bool(c.is_positive), tuple(map(int, c.coords))) for c in clicks[:6]] == [
        (True, (15, 15)), (True, (21, 21)), (True, (10, 21)), (True, (21, 10)), (True, (10, 10)), (False, (6, 10))]
    assert np.all(np.diff(ious[:5]) > 0)


def test_callback_sees_raw_probs_and_click_index():
    seen = []
    predictor = ScriptedPredictor([EMPTY, GT == 1])
    evaluate_sample(IMAGE, GT, predictor, max_iou_thr=0.9, sample_id="s7",
                    callback=lambda image, gt, probs, sid, k, clicks: seen.append((sid, k, len(clicks))))
    assert seen == [("s7", 0, 1), ("s7", 1, 2)]


def test_empty_gt_warns_and_never_reaches_target(caplog):
    gt = np.zeros((16, 16), dtype=np.int32)
    gt[0, :] = -1
    predictor = ScriptedPredictor([EMPTY, square((16, 16), 2, 6, 2, 6)])
    with caplog.at_level(logging.WARNING, logger="isegm"), warnings.catch_warnings():
        warnings.simplefilter("error")        # no 0/0 RuntimeWarning
        clicks, ious, _ = evaluate_sample(IMAGE, gt, predictor, max_iou_thr=0.9, max_clicks=4, sample_id=42)
    assert ious.tolist() == [0.0] * 4
    assert not any(c.is_positive for c in clicks)
    # No error after clicks 1 and 2 (empty prediction): every distance is 0, so the click goes to the
    # row-major first pixel (0, 0) -- even though it is ignored and already clicked -- as the original.
    assert [tuple(map(int, c.coords)) for c in clicks[:2]] == [(0, 0), (0, 0)]
    assert tuple(map(int, clicks[2].coords)) == (3, 3)   # then the centre of the 4x4 false positive
    records = [r for r in caplog.records if r.name.startswith("isegm") and r.levelno == logging.WARNING]
    assert len(records) == 1 and "42" in records[0].getMessage()


def test_progressive_merge_adds_only_the_clicked_component():
    init = square((16, 16), 4, 12, 4, 8)            # left half of the object
    blob_a = square((16, 16), 4, 12, 8, 12)         # missing right half (the click lands here)
    blob_b = square((16, 16), 0, 2, 0, 2)           # a disconnected false positive
    predictor = ScriptedPredictor([init | blob_a | blob_b])
    clicks, ious, _ = evaluate_sample(IMAGE, GT, predictor, max_iou_thr=0.9, init_mask=init)
    assert len(predictor.prev_masks) == 1 and predictor.prev_masks[0] is init
    assert clicks[0].is_positive and blob_a[tuple(clicks[0].coords)]
    assert ious.tolist() == [1.0]                   # blob_b was not merged
    _, ious, _ = evaluate_sample(IMAGE, GT, ScriptedPredictor([init | blob_a | blob_b]), max_iou_thr=0.9)
    assert ious[0] < 1.0                            # without an init mask the raw prediction is scored


def test_progressive_merge_removes_only_the_clicked_component():
    init = square((16, 16), 4, 12, 4, 12) | square((16, 16), 0, 16, 13, 16)   # object + a false strip
    strip = square((16, 16), 0, 16, 13, 16)
    hole = square((16, 16), 6, 8, 6, 8)                                        # the prediction also drops this
    predictor = ScriptedPredictor([init & ~strip & ~hole])
    clicks, ious, _ = evaluate_sample(IMAGE, GT, predictor, max_iou_thr=0.9, init_mask=init.astype(np.uint8))
    assert not clicks[0].is_positive and strip[tuple(clicks[0].coords)]
    assert ious.tolist() == [1.0]                   # the hole inside the object was not applied


def test_progressive_merge_quirk_when_click_did_not_change():
    # Kept from the original: an unchanged click pixel has label 0, the label of every unchanged pixel.
    prev = square((6, 6), 0, 3, 0, 3)
    pred = prev | square((6, 6), 4, 6, 4, 6)
    merged = progressive_merge(pred, prev, 1, 1)          # prev == 1 at the click: unchanged pixels removed
    assert np.array_equal(merged, np.zeros((6, 6), dtype=bool))
    merged = progressive_merge(pred, prev, 0, 5)          # prev == 0: unchanged pixels added
    assert np.array_equal(merged, ~square((6, 6), 4, 6, 4, 6))
    # 8-connectivity: a diagonal neighbour belongs to the same component
    diag = np.zeros((4, 4), dtype=bool)
    diag[0, 0] = diag[1, 1] = True
    assert np.array_equal(progressive_merge(diag, np.zeros_like(diag), 0, 0), diag)


class FakeDataset:
    def __init__(self, n):
        self.samples = [SimpleNamespace(image=np.full((16, 16, 3), i, np.uint8), gt_mask=GT, init_mask=None)
                        for i in range(n)]
        self.loaded = []

    def __len__(self):
        return len(self.samples)

    def get_sample(self, index):
        self.loaded.append(index)
        return self.samples[index]


@pytest.mark.parametrize("progress", [False, True])
def test_evaluate_dataset(progress):
    dataset = FakeDataset(5)
    predictor = ScriptedPredictor([EMPTY, GT == 1])
    all_ious, elapsed = evaluate_dataset(dataset, predictor, progress=progress, max_iou_thr=0.9, max_clicks=4)
    assert len(all_ious) == 5 and all(ious.tolist() == [0.0, 1.0] for ious in all_ious)
    assert dataset.loaded == [0, 1, 2, 3, 4] and elapsed >= 0.0

    dataset = FakeDataset(5)
    predictor = ScriptedPredictor([EMPTY, GT == 1])
    all_ious, _ = evaluate_dataset(dataset, predictor, indices=range(1, 5, 2), max_iou_thr=0.9)
    assert dataset.loaded == [1, 3] and len(all_ious) == 2
    assert [int(img[0, 0, 0]) for img in predictor.images] == [1, 3]
