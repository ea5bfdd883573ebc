"""Evaluation metrics and the results table (RITM's / EMC-Click's ``get_iou``, NoC, NoF, table row).

Per-sample results are 1-D arrays of IoUs, one per click (index k = IoU after click k + 1), float32
as stored by :func:`isegm.inference.evaluation.evaluate_sample`; arrays are shorter than
``max_clicks`` when the sample stopped early.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["get_iou", "compute_noc_metric", "get_results_table", "miou_at_clicks", "format_miou"]

MIOU_CLICKS = (1, 2, 3, 5, 10, 20)


def get_iou(gt_mask: np.ndarray, pred_mask: np.ndarray, ignore_label: int = -1) -> float:
    """Intersection over union of the object (``gt_mask == 1``) and ``pred_mask``.

    Args:
        gt_mask: ``H x W`` integer ground truth (1 = object, 0 = background, ``ignore_label`` = ignored).
        pred_mask: ``H x W`` prediction, bool or 0/1.
        ignore_label: pixels with this gt value are excluded from both intersection and union.

    Returns:
        the IoU as a Python float (float64). An empty union (no object and nothing predicted outside
        the ignored pixels) gives 0.0; the original divided 0/0 into nan with a numpy warning. Both
        never reach a threshold, so NoC is unchanged (``max_clicks``); 0.0 keeps means finite.
    """
    not_ignored = gt_mask != ignore_label
    obj = gt_mask == 1
    pred = np.asarray(pred_mask).astype(bool)
    intersection = int(np.count_nonzero(pred & obj & not_ignored))
    union = int(np.count_nonzero((pred | obj) & not_ignored))
    if union == 0:
        return 0.0
    return intersection / union


def compute_noc_metric(all_ious: Sequence[np.ndarray], iou_thrs: Sequence[float],
                       max_clicks: int = 20) -> Tuple[List[float], List[int]]:
    """Mean number of clicks (NoC) to reach each threshold, and how many samples needed ``max_clicks``.

    For one sample, NoC = 1 + index of the first IoU ``>= thr``, or ``max_clicks`` if none reaches it.
    ``over_max`` counts samples with NoC == ``max_clicks``, which (as in the original) includes samples
    that reach the threshold exactly at the last click.

    Args:
        all_ious: per-sample 1-D IoU arrays (click order).
        iou_thrs: thresholds, e.g. ``np.arange(0.8, min(0.95, target) + 0.001, 0.05).tolist()``.
        max_clicks: NoC of a sample that never reaches a threshold.

    Returns:
        ``(noc_list, over_max_list)``, one entry per threshold (float mean, int count).
    """
    noc_list: List[float] = []
    over_max_list: List[int] = []
    for thr in iou_thrs:
        nocs = np.array([_noc(np.asarray(ious), float(thr), max_clicks) for ious in all_ious], dtype=np.int64)
        noc_list.append(float(nocs.mean()))
        over_max_list.append(int((nocs == max_clicks).sum()))
    return noc_list, over_max_list


def _noc(ious: np.ndarray, thr: float, max_clicks: int) -> int:
    # ``thr`` is a Python float, so numpy compares in the array's own precision (float32 for stored
    # IoUs), as the original did: float32(0.9) counts as reaching 0.9000000000000001.
    reached = ious >= thr
    return int(np.argmax(reached)) + 1 if np.any(reached) else max_clicks


def get_results_table(noc_list: Sequence[float], over_max_list: Sequence[int], row_name: str, dataset_name: str,
                      mean_spc: float, elapsed_time: float, n_clicks: int = 20,
                      model_name: Optional[str] = None) -> Tuple[str, str]:
    """The original's text table: ``(header, row)``, neither ending in a newline.

    ``header`` is ``Eval results for model: <model_name>`` (only if given), a dashed line, the column
    titles and a dashed line. The row has NoC@80/85/90 (``.2f``), the ``>=n_clicks`` counts at 85 and
    90 % and SPC (``.3f``) and the elapsed time as ``H:MM:SS``; columns missing from shorter lists show ``?``.
    """
    titles = (f'|{"Pipeline":^13}|{"Dataset":^11}|'
              f'{"NoC@80%":^9}|{"NoC@85%":^9}|{"NoC@90%":^9}|'
              f'{f">={n_clicks}@85%":^9}|{f">={n_clicks}@90%":^9}|'
              f'{"SPC,s":^7}|{"Time":^9}|')
    line = "-" * len(titles)
    header = f"Eval results for model: {model_name}\n" if model_name is not None else ""
    header += f"{line}\n{titles}\n{line}"

    missing = f'{"?":^9}|'
    row = f"|{row_name:^13}|{dataset_name:^11}|"
    row += f"{noc_list[0]:^9.2f}|"
    row += f"{noc_list[1]:^9.2f}|" if len(noc_list) > 1 else missing
    row += f"{noc_list[2]:^9.2f}|" if len(noc_list) > 2 else missing
    row += f"{over_max_list[1]:^9}|" if len(noc_list) > 1 else missing
    row += f"{over_max_list[2]:^9}|" if len(noc_list) > 2 else missing
    row += f"{mean_spc:^7.3f}|{str(timedelta(seconds=int(elapsed_time))):^9}|"
    return header, row


def miou_at_clicks(all_ious: Sequence[np.ndarray], clicks: Sequence[int] = MIOU_CLICKS) -> Dict[int, float]:
    """Mean IoU over samples after k clicks, for each k in ``clicks`` not above the shortest array.

    As the original ``--print-ious``: arrays are cut to the shortest length and averaged in float32.
    Meaningful with a target IoU that is never reached (1.01), so that no sample stops early.
    """
    if len(all_ious) == 0:
        return {}
    shortest = min(len(ious) for ious in all_ious)
    means = np.array([np.asarray(ious)[:shortest] for ious in all_ious]).mean(axis=0)
    return {k: float(means[k - 1]) for k in clicks if 1 <= k <= shortest}


def format_miou(all_ious: Sequence[np.ndarray], clicks: Sequence[int] = MIOU_CLICKS) -> str:
    """The suffix the original appends to the table row for ``--print-ious``: ``'; mIoU@1=85.00%; ...'``."""
    return "; " + " ".join(f"mIoU@{k}={v:.2%};" for k, v in miou_at_clicks(all_ious, clicks).items())
