"""Training-time metrics (RITM's ``TrainMetric`` interface), logged to TensorBoard by the trainer."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch


class TrainMetric:
    """Base of the metrics the trainer updates every batch and reads once per epoch.

    ``pred_outputs`` / ``gt_outputs`` name the entries of the model output / batch dicts that the trainer
    passes to :meth:`update` (in that order: predictions first, then ground truths).
    """

    def __init__(self, pred_outputs: Sequence[str], gt_outputs: Sequence[str]):
        self.pred_outputs = tuple(pred_outputs)
        self.gt_outputs = tuple(gt_outputs)

    def update(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def get_epoch_value(self) -> float:
        raise NotImplementedError

    def reset_epoch_stats(self) -> None:
        raise NotImplementedError

    def log_states(self, sw: Any, tag_prefix: str, global_step: int) -> None:
        """Write per-iteration states with ``sw.add_scalar(tag, value, global_step)``; nothing by default."""

    @property
    def name(self) -> str:
        return type(self).__name__


class AdaptiveIoU(TrainMetric):
    """Batch IoU at a slowly adapting binarisation threshold (RITM).

    ``update(pred, gt)``: ``pred`` are ``B x 1 x H x W`` logits (probabilities with ``from_logits=False``),
    ``gt`` the ``B x 1 x H x W`` label with 0/1 and ``ignore_label``. Batches whose gt masks are all empty
    are skipped. Otherwise the batch IoU (:func:`_compute_iou`, mean over samples with a non-empty union)
    is evaluated at ``t``, ``t - thresh_step`` and ``t + thresh_step``; the best (first one on ties) gives
    ``t <- thresh_beta * t + (1 - thresh_beta) * t_best`` and ``ema <- iou_beta * ema + (1 - iou_beta) * iou``.
    The epoch value is the mean of the per-batch best IoU.
    """

    def __init__(self, init_thresh: float = 0.4, thresh_step: float = 0.025, thresh_beta: float = 0.99,
                 iou_beta: float = 0.9, ignore_label: int = -1, from_logits: bool = True,
                 pred_output: str = 'instances', gt_output: str = 'instances'):
        super().__init__(pred_outputs=(pred_output,), gt_outputs=(gt_output,))
        self._ignore_label = ignore_label
        self._from_logits = from_logits
        self._iou_thresh = init_thresh
        self._thresh_step = thresh_step
        self._thresh_beta = thresh_beta
        self._iou_beta = iou_beta
        self._ema_iou = 0.0
        self._epoch_iou_sum = 0.0
        self._epoch_batch_count = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        gt_mask = gt > 0.5
        if self._from_logits:
            pred = torch.sigmoid(pred)

        # The original sums over dims (1, 2) (C and H of B x 1 x H x W); only "all zero" matters here.
        if not bool(gt_mask.any()):
            return

        ignore_mask = gt == self._ignore_label
        best_thresh = self._iou_thresh
        max_iou = _batch_iou(pred > best_thresh, gt_mask, ignore_mask)
        for t in (best_thresh - self._thresh_step, best_thresh + self._thresh_step):
            temp_iou = _batch_iou(pred > t, gt_mask, ignore_mask)
            if temp_iou > max_iou:
                max_iou = temp_iou
                best_thresh = t

        self._iou_thresh = self._thresh_beta * self._iou_thresh + (1 - self._thresh_beta) * best_thresh
        self._ema_iou = self._iou_beta * self._ema_iou + (1 - self._iou_beta) * max_iou
        self._epoch_iou_sum += max_iou
        self._epoch_batch_count += 1

    def get_epoch_value(self) -> float:
        if self._epoch_batch_count > 0:
            return self._epoch_iou_sum / self._epoch_batch_count
        return 0.0

    def reset_epoch_stats(self) -> None:
        self._epoch_iou_sum = 0.0
        self._epoch_batch_count = 0

    def log_states(self, sw: Any, tag_prefix: str, global_step: int) -> None:
        """Write ``<tag_prefix>/AdaptiveIoU_ema_iou`` and ``<tag_prefix>/AdaptiveIoU_iou_thresh``.

        ``tag_prefix`` is the group (``'TrainMetrics'``). RITM's trainer passed the group with the metric name
        already appended (``'TrainMetrics/AdaptiveIoU'``); that form gives the same tags.
        """
        base = tag_prefix if tag_prefix.rsplit('/', 1)[-1] == self.name else f'{tag_prefix}/{self.name}'
        sw.add_scalar(base + '_ema_iou', self._ema_iou, global_step)
        sw.add_scalar(base + '_iou_thresh', self._iou_thresh, global_step)

    @property
    def iou_thresh(self) -> float:
        return self._iou_thresh

    @property
    def ema_iou(self) -> float:
        return self._ema_iou


def _compute_iou(pred_mask: torch.Tensor, gt_mask: torch.Tensor,
                 ignore_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-sample IoU of boolean ``B x C x H x W`` masks; ignored pixels count as not predicted.

    ``IoU = mean(pred & gt) / mean(pred | gt)`` over ``C, H, W`` in float32. Returns a 1-D tensor with one
    value per sample whose union is non-empty (the others are dropped).
    """
    if ignore_mask is not None:
        pred_mask = pred_mask & ~ignore_mask
    dims = tuple(range(1, gt_mask.dim()))
    union = torch.mean((pred_mask | gt_mask).float(), dim=dims)
    intersection = torch.mean((pred_mask & gt_mask).float(), dim=dims)
    nonzero = union > 0
    return intersection[nonzero] / union[nonzero]


def _batch_iou(pred_mask: torch.Tensor, gt_mask: torch.Tensor, ignore_mask: torch.Tensor) -> float:
    """Mean of :func:`_compute_iou` over the samples with a non-empty union (NaN if there is none)."""
    return _compute_iou(pred_mask, gt_mask, ignore_mask).mean().item()
