"""IoU, NoC / NoF and the results table, against hand-computed values and hand-written lines."""
import warnings

import numpy as np
import pytest

from isegm.inference.metrics import compute_noc_metric, format_miou, get_iou, get_results_table, miou_at_clicks

THRS = np.arange(0.8, min(0.95, 0.9) + 0.001, 0.05).tolist()


def test_thresholds_as_the_original():
    assert THRS == [0.8, 0.8500000000000001, 0.9000000000000001]


def test_iou_with_ignore():
    gt = np.array([[1, 1, 0, -1],
                   [1, 0, 0, -1]])
    pred = np.array([[1, 0, 1, 1],
                     [1, 0, 0, 1]], dtype=bool)
    # object {(0,0),(0,1),(1,0)}, prediction outside ignore {(0,0),(0,2),(1,0)}: 2 / 4
    assert get_iou(gt, pred) == 0.5
    assert isinstance(get_iou(gt, pred), float)
    # with another ignore label the -1 column counts as background false positives: 2 / 6
    assert get_iou(gt, pred, ignore_label=255) == pytest.approx(2 / 6)
    assert get_iou(gt, gt == 1) == 1.0
    assert get_iou(gt, np.zeros_like(pred)) == 0.0


def test_iou_empty_union_is_zero_without_warning():
    gt = np.array([[0, 0], [-1, -1]])
    pred = np.array([[0, 0], [1, 1]], dtype=bool)     # only predicted on ignored pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_iou(gt, pred) == 0.0
        assert get_iou(np.zeros((3, 3), dtype=np.int32), np.zeros((3, 3), dtype=bool)) == 0.0


def test_noc_hand_arrays():
    all_ious = [
        np.array([0.5, 0.82, 0.86, 0.91], dtype=np.float32),   # NoC 2 / 3 / 4
        np.array([0.95], dtype=np.float32),                     # NoC 1 / 1 / 1
        np.array([0.1] * 5 + [0.81] * 15, dtype=np.float32),    # NoC 6 / 20 / 20 (never 85 %)
        np.array([0.2] * 19 + [0.9], dtype=np.float32),         # reaches everything at click 20 exactly
    ]
    noc, over_max = compute_noc_metric(all_ious, THRS, max_clicks=20)
    assert noc == pytest.approx([(2 + 1 + 6 + 20) / 4, (3 + 1 + 20 + 20) / 4, (4 + 1 + 20 + 20) / 4])
    # NoF counts NoC == max_clicks, which includes the sample that made it exactly at the last click
    assert over_max == [1, 2, 2]
    assert all(isinstance(n, int) for n in over_max)


def test_noc_compares_in_float32():
    # float32(0.9) < 0.9000000000000001 in float64, but the original compared in the array's precision.
    ious = [np.array([0.5, 0.9], dtype=np.float32)]
    assert compute_noc_metric(ious, THRS, max_clicks=20)[0][2] == 2.0
    assert compute_noc_metric(ious, np.array(THRS), max_clicks=20)[0][2] == 2.0


def test_noc_other_max_clicks():
    noc, over_max = compute_noc_metric([np.array([0.1, 0.2, 0.3], dtype=np.float32)], [0.8], max_clicks=5)
    assert noc == [5.0] and over_max == [1]


def test_results_table_strings():
    header, row = get_results_table([1.5, 2.25, 3.0], [0, 4, 17], "EMC-Click", "GrabCut", 0.01234, 3725.9,
                                    n_clicks=20, model_name="hr18s")
    line = "-" * 95
    titles = "|  Pipeline   |  Dataset  | NoC@80% | NoC@85% | NoC@90% |>=20@85% |>=20@90% | SPC,s |  Time   |"
    assert header == f"Eval results for model: hr18s\n{line}\n{titles}\n{line}"
    assert row == "|  EMC-Click  |  GrabCut  |  1.50   |  2.25   |  3.00   |    4    |   17    | 0.012 | 1:02:05 |"


def test_results_table_without_model_name_and_short_lists():
    header, row = get_results_table([11.125], [3], "last", "PascalVOC", 1.0, 59.99, n_clicks=100)
    assert header.splitlines()[1] == (
        "|  Pipeline   |  Dataset  | NoC@80% | NoC@85% | NoC@90% |>=100@85%|>=100@90%| SPC,s |  Time   |")
    assert not header.startswith("Eval")
    assert row == "|    last     | PascalVOC |  11.12  |    ?    |    ?    |    ?    |    ?    | 1.000 | 0:00:59 |"


def test_miou_at_clicks():
    all_ious = [np.array([0.5, 0.6, 0.7], dtype=np.float32), np.array([0.7, 0.8], dtype=np.float32)]
    mious = miou_at_clicks(all_ious)
    assert list(mious) == [1, 2] and mious[1] == pytest.approx(0.6) and mious[2] == pytest.approx(0.7)
    assert format_miou(all_ious) == "; mIoU@1=60.00%; mIoU@2=70.00%;"
    assert miou_at_clicks([]) == {}
