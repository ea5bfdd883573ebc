"""Simulated correction clicks for training (the EMC-Click trainer's ``get_rough_next_points``)."""
from __future__ import annotations

import cv2
import numpy as np
import torch


def error_distance_maps(pred: np.ndarray, gt: np.ndarray, pred_thresh: float = 0.49):
    """-> (fn_dt, fp_dt): L2 distance (5x5 mask) of each false-negative / false-positive pixel to the
    nearest correct pixel, the image border counting as correct. ``pred``: H x W probabilities,
    ``gt``: H x W bool.
    """
    fn = np.pad(gt & (pred < pred_thresh), 1)
    fp = np.pad(~gt & (pred > pred_thresh), 1)
    fn_dt = cv2.distanceTransform(fn.astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    fp_dt = cv2.distanceTransform(fp.astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    return fn_dt, fp_dt


def get_rough_next_points(pred: torch.Tensor, gt: torch.Tensor, points: np.ndarray, pos_counts: np.ndarray,
                          neg_counts: np.ndarray, pred_thresh: float = 0.49, num_points: int = 24) -> np.ndarray:
    """Add at most one simulated click per sample, in place, and return ``points``.

    Args:
        pred: ``B x 1 x H x W`` probabilities of the current prediction.
        gt: ``B x 1 x H x W`` ground truth (> 0.5 is the object).
        points: ``B x 2N x 3`` float ``(y, x, order)`` rows, N = ``num_points``: rows ``[0, N)``
            positive, ``[N, 2N)`` negative, ``(-1, -1, -1)`` empty.
        pos_counts, neg_counts: ``B`` int arrays, the simulated clicks of each type so far
            (updated in place).

    The click type is drawn at random, positive with probability ``fn_max / (fn_max + fp_max)``
    (RITM takes the larger error deterministically). The k-th simulated positive click goes to row
    ``N - k`` as ``(y, x, k)`` and the k-th negative one to row ``2N - k``, so the first click keeps
    row 0 and ``order`` counts clicks per type. The candidate region uses the larger of both error
    maxima as threshold, so a thin error of the drawn type may leave it empty: then no click. Draws
    use numpy's global generator, as the original.
    """
    pred_np = pred.detach().float().cpu().numpy()[:, 0]
    gt_np = gt.detach().cpu().numpy()[:, 0] > 0.5
    for b in range(pred_np.shape[0]):
        fn_dt, fp_dt = error_distance_maps(pred_np[b], gt_np[b], pred_thresh)
        fn_max, fp_max = float(fn_dt.max()), float(fp_dt.max())
        if fn_max + fp_max == 0:
            continue
        is_positive = bool(np.random.choice([0, 1], p=np.array([fp_max, fn_max]) / (fp_max + fn_max)))
        pos_full, neg_full = pos_counts[b] >= num_points - 1, neg_counts[b] >= num_points
        if pos_full and neg_full:
            continue
        if pos_full:
            is_positive = False
        elif neg_full:
            is_positive = True
        region = (fn_dt if is_positive else fp_dt) > max(fn_max, fp_max) / 2
        coords = np.argwhere(region)
        if len(coords) == 0:
            continue
        y, x = coords[np.random.randint(len(coords))]
        if is_positive:
            pos_counts[b] += 1
            points[b, num_points - pos_counts[b]] = (y, x, pos_counts[b])
        else:
            neg_counts[b] += 1
            points[b, 2 * num_points - neg_counts[b]] = (y, x, neg_counts[b])
    return points
