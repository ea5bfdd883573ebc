"""The NoC evaluation loop (RITM's / EMC-Click's ``evaluate_sample`` and ``evaluate_dataset``).

Per sample: a :class:`~isegm.inference.clicker.Clicker` places a click on the largest error of the
previous thresholded prediction, the predictor predicts again with all clicks so far, and the IoU is
recorded, until the IoU reaches ``max_iou_thr`` (after at least ``min_clicks`` clicks) or
``max_clicks`` clicks were made. Masks are ``H x W``; click coordinates are ``(y, x)`` = (row, col).
"""
from __future__ import annotations

import logging
from time import time
from typing import Any, Callable, Iterable, List, Optional, Tuple

import cv2
import numpy as np
import torch

from isegm.inference.clicker import Click, Clicker
from isegm.inference.metrics import get_iou

__all__ = ["evaluate_dataset", "evaluate_sample", "progressive_merge"]

logger = logging.getLogger(__name__)


def evaluate_dataset(dataset: Any, predictor: Any, indices: Optional[Iterable[int]] = None, progress: bool = False,
                     **kwargs: Any) -> Tuple[List[np.ndarray], float]:
    """Evaluate ``predictor`` on the samples of ``dataset``.

    Args:
        dataset: has ``get_sample(i)`` returning an object with ``.image`` (``H x W x 3`` uint8 RGB),
            ``.gt_mask`` (``H x W`` int, 1 / 0 / -1 = ignore) and ``.init_mask`` (``H x W`` or None),
            and ``len()`` when ``indices`` is None.
        predictor: see :func:`evaluate_sample`.
        indices: the sample indices to evaluate, in this order (default: all); a distributed caller
            passes its shard, e.g. ``range(rank, len(dataset), world_size)``.
        progress: show a tqdm progress bar.
        **kwargs: forwarded to :func:`evaluate_sample` (``max_iou_thr`` is required).

    Returns:
        ``(all_ious, elapsed)``: one float32 IoU array per evaluated sample, in ``indices`` order, and
        the wall time in seconds of the whole loop (sample loading and decoding included, as the original).
    """
    indices = list(range(len(dataset)) if indices is None else indices)
    from tqdm import tqdm  # imported lazily: only needed for the bar

    all_ious = []
    start = time()
    # closed on an error too, so that the error's message starts a clean line
    with tqdm(indices, leave=False, disable=not progress) as bar:
        for index in bar:
            sample = dataset.get_sample(index)
            _, ious, _ = evaluate_sample(sample.image, sample.gt_mask, predictor, init_mask=sample.init_mask,
                                         sample_id=index, **kwargs)
            all_ious.append(ious)
    return all_ious, time() - start


def evaluate_sample(image: np.ndarray, gt_mask: np.ndarray, predictor: Any, max_iou_thr: float,
                    pred_thr: float = 0.49, min_clicks: int = 1, max_clicks: int = 20,
                    init_mask: Optional[np.ndarray] = None, sample_id: Any = None,
                    callback: Optional[Callable[..., None]] = None) -> Tuple[List[Click], np.ndarray, np.ndarray]:
    """Click until the IoU reaches ``max_iou_thr`` or ``max_clicks`` clicks were made.

    Args:
        image: ``H x W x 3`` uint8 RGB.
        gt_mask: ``H x W`` int ground truth, 1 = object, 0 = background, -1 = ignored.
        predictor: ``set_input_image(image)``, ``get_prediction(clicker) -> H x W`` float probabilities
            and, for an ``init_mask``, ``set_prev_mask(mask)``.
        max_iou_thr: stop once ``iou >= max_iou_thr`` and ``click_indx + 1 >= min_clicks``.
        pred_thr: a pixel is predicted as object where ``probs > pred_thr`` (strict).
        min_clicks: clicks to make before stopping early is allowed.
        max_clicks: the most clicks per sample.
        init_mask: ``H x W`` bool / 0-1 initial mask: it is the first "previous prediction", and
            each new prediction is merged into the previous mask by :func:`progressive_merge`.
        sample_id: names the sample in log messages and is passed to ``callback``.
        callback: called after each click as ``callback(image, gt_mask, probs, sample_id, click_indx,
            clicks_list)``; ``probs`` is the predictor's raw output (before any merge).

    Returns:
        ``(clicks_list, ious, probs)``: the clicks made, the IoU after each click (float32, length =
        clicks made) and the probabilities of the last prediction.
    """
    if not np.any(gt_mask == 1):
        # Still evaluated, as the original: every click is negative and every IoU is 0 (see get_iou),
        # so the sample counts as never reaching the target (NoC = max_clicks).
        logger.warning("sample %s: the ground-truth mask has no object pixel; it counts as never reaching "
                       "the target IoU", sample_id)
    clicker = Clicker(gt_mask=gt_mask)
    pred_mask = np.zeros_like(gt_mask)
    prev_mask = pred_mask
    ious = []
    probs = None

    with torch.inference_mode():
        predictor.set_input_image(image)
        merge = init_mask is not None
        if merge:
            predictor.set_prev_mask(init_mask)
            pred_mask = prev_mask = init_mask

        for click_indx in range(max_clicks):
            clicker.make_next_click(pred_mask)
            probs = predictor.get_prediction(clicker)
            pred_mask = probs > pred_thr

            if merge:   # from the first click on, as the original (``len(clicks) >= 0``)
                y, x = clicker.get_clicks()[-1].coords
                pred_mask = progressive_merge(pred_mask, prev_mask, y, x)

            if callback is not None:
                callback(image, gt_mask, probs, sample_id, click_indx, clicker.clicks_list)

            iou = get_iou(gt_mask, pred_mask)
            ious.append(iou)
            prev_mask = pred_mask
            # The stop test uses the float64 IoU; the stored array is float32 (as the original).
            if iou >= max_iou_thr and click_indx + 1 >= min_clicks:
                break

    return clicker.clicks_list, np.array(ious, dtype=np.float32), probs


def progressive_merge(pred_mask: np.ndarray, prev_mask: np.ndarray, y: int, x: int) -> np.ndarray:
    """Apply only the change of ``pred_mask`` that the click at ``(y, x)`` touches (ClickSEG / EMC-Click).

    The changed pixels ``pred_mask XOR prev_mask`` are split into 8-connected components; the
    component containing the click is removed from ``prev_mask`` if ``prev_mask[y, x] == 1``, else
    added to it. Both masks are ``H x W`` bool or 0/1.

    Note (kept from the original): if the click pixel did not change, its label is 0, the label of
    every *unchanged* pixel, so that whole region is the one removed from / added to ``prev_mask``.

    Returns:
        the merged ``H x W`` bool mask.
    """
    prev = np.asarray(prev_mask)
    changed = np.logical_xor(prev, pred_mask)
    _, labels = cv2.connectedComponents(changed.astype(np.uint8))   # connectivity 8 by default
    component = labels == labels[y, x]
    if prev[y, x] == 1:
        return np.logical_and(prev, ~component)
    return np.logical_or(prev, component)

