"""Simulated correction clicks for training (the EMC-Click trainer's ``get_rough_next_points``)."""
from __future__ import annotations

from typing import Optional, Tuple

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
                          neg_counts: np.ndarray, num_points: int, pred_thresh: float = 0.49) -> np.ndarray:
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


def simulate_corrections(model, image: torch.Tensor, gt: torch.Tensor, points: np.ndarray, num_iters: int,
                         num_points: int, autocast, attention: str = "fast"
                         ) -> Tuple[np.ndarray, torch.Tensor, Optional[torch.Tensor]]:
    """The training step's simulated user: ``num_iters`` corrections, each followed by a new click.

    The network runs as at inference (eval mode, no gradient; :meth:`encode` once, then
    :meth:`correct`), the same code path whatever the precision (``autocast`` is the caller's
    context, disabled in float32). The caller's model mode is restored. ``attention`` defaults to
    ``'fast'``, what this project's training has always used here (the original ran the exact
    arithmetic; the two differ by float32 rounding, and simulated clicks are drawn at random anyway).

    Args:
        model: the bare network (not a DDP wrapper: the number of iterations differs between ranks).
        image: ``B x 3 x H x W`` RGB in [0, 1].
        gt: ``B x 1 x H x W`` ground truth.
        points: ``B x 2N x 3`` float32 rows ``(y, x, order)`` (see :func:`get_rough_next_points`),
            updated in place.
        num_iters: corrections to simulate (0: none).
        num_points: N, the click slots per type.

    Returns:
        ``(points, prev_probs, logits_lr)``: the points with the simulated clicks, ``B x 1 x H x W``
        probabilities of the last correction (zeros without one), and the ``B x 1 x h x w`` logits
        the gradient pass starts from (None without a correction: the backbone's own).
    """
    prev_probs = torch.zeros_like(image[:, :1])
    if num_iters == 0:
        return points, prev_probs, None
    pos_counts = np.zeros(len(points), dtype=np.int64)
    neg_counts = np.zeros(len(points), dtype=np.int64)
    net_input = torch.cat([image, prev_probs], dim=1)   # the mask channel reaches no released network
    embedding, correction = None, None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(num_iters):
                point_tensor = torch.from_numpy(points).to(image.device)
                with autocast:
                    if embedding is None:
                        embedding = model.encode(net_input, point_tensor)
                    correction = model.correct(embedding, point_tensor, correction, attention=attention)
                prev_probs = torch.sigmoid(correction.logits.float())
                points = get_rough_next_points(prev_probs, gt, points, pos_counts, neg_counts, num_points=num_points)
    finally:
        model.train(was_training)
    return points, prev_probs, correction.logits_lr
