"""AdaptiveIoU (training metric, training.md 6.6) against hand-computed thresholds, EMAs and epoch values."""
import math

import pytest
import torch

from isegm.model.metrics import AdaptiveIoU, TrainMetric, _compute_iou


def logits(probs):
    p = torch.tensor(probs, dtype=torch.float64)
    return torch.log(p / (1 - p)).float()


# Two 2x3 samples. At t = 0.4 / 0.375 / 0.425:
#   sample 0 (the 0.9 at the ignore pixel never counts): IoU 2/2, 2/3, 1/2
#   sample 1: 2/4, 4/4, 1/4
# batch (mean of the two): 0.75, 5/6, 0.375 -> the lower threshold wins.
GT = torch.tensor([[[[1, 1, 0], [0, -1, 0]]],
                   [[[1, 1, 1], [1, 0, 0]]]], dtype=torch.float32)
PROBS = [[[[0.9, 0.41, 0.38], [0.1, 0.9, 0.2]]],
         [[[0.9, 0.42, 0.39], [0.38, 0.1, 0.1]]]]


class FakeWriter:
    def __init__(self):
        self.calls = []

    def add_scalar(self, tag, value, global_step=None):
        self.calls.append((tag, value, global_step))


def test_defaults_and_base_class():
    m = AdaptiveIoU()
    assert isinstance(m, TrainMetric)
    assert m.name == "AdaptiveIoU"
    assert m.pred_outputs == ("instances",) and m.gt_outputs == ("instances",)
    assert m.iou_thresh == 0.4 and m.ema_iou == 0.0
    assert m.get_epoch_value() == 0.0
    assert AdaptiveIoU(pred_output="instances_refined").pred_outputs == ("instances_refined",)

    base = TrainMetric(pred_outputs=("a",), gt_outputs=("b",))
    assert base.name == "TrainMetric"
    for call in (base.update, base.get_epoch_value, base.reset_epoch_stats):
        with pytest.raises(NotImplementedError):
            call()
    sw = FakeWriter()
    base.log_states(sw, "TrainMetrics", 0)
    assert sw.calls == []


def test_compute_iou_ignore_and_empty_union():
    gt = torch.tensor([[[[1, 0], [-1, 0]]], [[[0, 0], [-1, 0]]], [[[0, 0], [0, -1]]]], dtype=torch.float32)
    pred = torch.tensor([[[[1, 1], [1, 0]]], [[[0, 0], [1, 0]]], [[[1, 0], [0, 0]]]], dtype=torch.bool)
    iou = _compute_iou(pred, gt > 0.5, gt == -1)
    # sample 0: ignore pixel dropped -> 1/2; sample 1: only predicted on ignore -> empty union, dropped;
    # sample 2: prediction without object -> 0
    assert iou.tolist() == [0.5, 0.0]
    assert _compute_iou(pred, gt > 0.5).tolist() == [pytest.approx(1 / 3), 0.0, 0.0]


def test_update_hand_computed():
    m = AdaptiveIoU()
    pred = logits(PROBS)
    m.update(pred, GT)
    t1 = 0.99 * 0.4 + 0.01 * 0.375
    assert m.iou_thresh == pytest.approx(t1, abs=1e-12)
    assert m.ema_iou == pytest.approx(0.1 * 5 / 6, rel=1e-6)
    assert m.get_epoch_value() == pytest.approx(5 / 6, rel=1e-6)

    # second batch, same data: thresholds t1, t1 - 0.025, t1 + 0.025 give the same IoUs as before
    m.update(pred, GT)
    t2 = 0.99 * t1 + 0.01 * (t1 - 0.025)
    assert m.iou_thresh == pytest.approx(t2, abs=1e-12)
    assert m.ema_iou == pytest.approx(0.9 * 0.1 * 5 / 6 + 0.1 * 5 / 6, rel=1e-6)
    assert m.get_epoch_value() == pytest.approx(5 / 6, rel=1e-6)

    # third batch: perfect at every threshold -> tie, the current threshold stays (strict ">")
    gt3 = torch.tensor([[[[1, 0], [0, 0]]]], dtype=torch.float32)
    m.update(logits([[[[0.99, 0.01], [0.01, 0.01]]]]), gt3)
    assert m.iou_thresh == pytest.approx(t2, abs=1e-12)
    ema3 = 0.9 * (0.9 * 0.1 * 5 / 6 + 0.1 * 5 / 6) + 0.1 * 1.0
    assert m.ema_iou == pytest.approx(ema3, rel=1e-6)
    assert m.get_epoch_value() == pytest.approx((5 / 6 + 5 / 6 + 1.0) / 3, rel=1e-6)

    sw = FakeWriter()
    m.log_states(sw, "TrainMetrics", 42)
    assert [c[0] for c in sw.calls] == ["TrainMetrics/AdaptiveIoU_ema_iou", "TrainMetrics/AdaptiveIoU_iou_thresh"]
    assert sw.calls[0][1] == pytest.approx(ema3, rel=1e-6) and sw.calls[1][1] == pytest.approx(t2)
    assert all(c[2] == 42 for c in sw.calls)
    # RITM's trainer passed the prefix with the metric name already appended: same tags
    sw2 = FakeWriter()
    m.log_states(sw2, "TrainMetrics/AdaptiveIoU", 42)
    assert sw2.calls == sw.calls

    # a new epoch keeps the threshold and EMA
    m.reset_epoch_stats()
    assert m.get_epoch_value() == 0.0
    assert m.iou_thresh == pytest.approx(t2, abs=1e-12) and m.ema_iou == pytest.approx(ema3, rel=1e-6)


def test_higher_threshold_can_win():
    # one sample: background pixels at 0.41 and 0.42 are cut only by t + step = 0.425
    gt = torch.tensor([[[[1, 1, 0, 0]]]], dtype=torch.float32)
    m = AdaptiveIoU()
    m.update(logits([[[[0.9, 0.8, 0.41, 0.42]]]]), gt)
    assert m.iou_thresh == pytest.approx(0.99 * 0.4 + 0.01 * 0.425, abs=1e-12)
    assert m.get_epoch_value() == pytest.approx(1.0)


def test_empty_union_samples_dropped_from_batch_mean():
    gt = torch.tensor([[[[1, 0], [0, 0]]], [[[0, 0], [0, 0]]], [[[0, 0], [0, 0]]]], dtype=torch.float32)
    probs = [[[[0.9, 0.9], [0.1, 0.1]]],    # IoU 1/2
             [[[0.1, 0.1], [0.1, 0.1]]],    # no object, nothing predicted: dropped
             [[[0.9, 0.1], [0.1, 0.1]]]]    # no object, something predicted: IoU 0
    m = AdaptiveIoU()
    m.update(logits(probs), gt)
    assert m.get_epoch_value() == pytest.approx(0.25)
    assert m.iou_thresh == pytest.approx(0.4, abs=1e-12)   # a three-way tie keeps the threshold


@pytest.mark.parametrize("gt_values", [0.0, -1.0, 0.5])
def test_all_empty_gt_is_skipped(gt_values):
    m = AdaptiveIoU()
    gt = torch.zeros(2, 1, 3, 4)
    gt[:, :, 1:] = gt_values          # background, ignore or exactly 0.5: no gt pixel > 0.5
    m.update(torch.full((2, 1, 3, 4), 5.0), gt)
    assert m.iou_thresh == 0.4 and m.ema_iou == 0.0
    assert m.get_epoch_value() == 0.0 and m._epoch_batch_count == 0


def test_from_probabilities_and_no_grad():
    probs = torch.tensor(PROBS, dtype=torch.float32)
    a, b = AdaptiveIoU(from_logits=False), AdaptiveIoU()
    pred = logits(PROBS).requires_grad_(True)
    a.update(probs, GT)
    b.update(pred, GT)
    assert a.iou_thresh == b.iou_thresh and a.ema_iou == b.ema_iou
    assert isinstance(b.ema_iou, float) and isinstance(b.get_epoch_value(), float)
    assert not math.isnan(b.get_epoch_value())


def test_custom_steps_and_betas():
    m = AdaptiveIoU(init_thresh=0.5, thresh_step=0.1, thresh_beta=0.5, iou_beta=0.5)
    # 0.45 is kept only by t - step = 0.4: IoU 1 there, 2/3 at 0.5, 1/3 at 0.6
    gt = torch.tensor([[[[1, 1, 1, 0]]]], dtype=torch.float32)
    m.update(logits([[[[0.9, 0.55, 0.45, 0.1]]]]), gt)
    assert m.iou_thresh == pytest.approx(0.5 * 0.5 + 0.5 * 0.4)
    assert m.ema_iou == pytest.approx(0.5)
