"""Training losses of EMC-Click (RITM / ClickSEG names and formulas).

Notation used in the docstrings: ``x`` are logits of layout ``B x 1 x H x W``, ``y`` the label of the same
layout with values 0/1 and ``ignore_label`` (default -1) for pixels that do not count, ``p = sigmoid(x)`` and
``v = [y != ignore_label]``. Per-sample reductions run over every dim except ``batch_axis``.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def _dims_except(ndim: int, axis: int) -> Tuple[int, ...]:
    """All dims of an ``ndim`` tensor except ``axis`` (the per-sample reduction dims)."""
    axis = axis % ndim
    return tuple(d for d in range(ndim) if d != axis)


class _NormalizedFocalBase(nn.Module):
    """Shared per-pixel part of the normalized focal loss and its TensorBoard side statistics.

    ``_k_sum`` is an EMA (0.9) of the normaliser ``mult`` over the samples without ignored pixels,
    ``_m_max`` an EMA (0.8) of the batch mean of the per-sample maximum of the normalised focal factor.
    """

    def __init__(self, axis: int = -1, alpha: float = 0.25, gamma: float = 2, max_mult: float = -1,
                 eps: float = 1e-12, from_sigmoid: bool = False, detach_delimeter: bool = True,
                 batch_axis: int = 0, weight: Optional[Any] = None, size_average: bool = True,
                 ignore_label: int = -1):
        super().__init__()
        self._axis = axis  # accepted for RITM compatibility; the reductions do not use it
        self._alpha = alpha
        self._gamma = gamma
        self._max_mult = max_mult
        self._eps = eps
        self._from_sigmoid = from_sigmoid
        self._detach_delimeter = detach_delimeter
        self._batch_axis = batch_axis
        self._weight = weight if weight is not None else 1.0
        self._size_average = size_average
        self._ignore_label = ignore_label

        self._k_sum = 0.0
        self._m_max = 0.0

    def _pixel_loss(self, pred: torch.Tensor, label: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel loss ``-a * beta * mult * log(min(pt + eps, 1)) * weight * v`` and the valid mask ``v``."""
        one_hot = label > 0.5
        sample_weight = label != self._ignore_label

        if not self._from_sigmoid:
            pred = torch.sigmoid(pred)

        alpha = torch.where(one_hot, self._alpha * sample_weight, (1 - self._alpha) * sample_weight)
        # Literal on purpose (training.md 9.4): in float32, 1 - |1 - p| is exactly 0 for a y=1 pixel whose
        # logit is around [-27.6, -16.6], so the loss becomes log(eps) with a ~1e12 * p(1-p) gradient. A
        # "stable" pt (p for y=1, sigmoid(-x) for y=0) would change the training signal of the original.
        pt = torch.where(sample_weight, 1.0 - torch.abs(label - pred), torch.ones_like(pred))

        beta = (1 - pt) ** self._gamma

        sw_sum = torch.sum(sample_weight, dim=(-2, -1), keepdim=True)
        beta_sum = torch.sum(beta, dim=(-2, -1), keepdim=True)
        mult = sw_sum / (beta_sum + self._eps)
        if self._detach_delimeter:
            mult = mult.detach()
        beta = beta * mult
        if self._max_mult > 0:
            beta = torch.clamp_max(beta, self._max_mult)

        self._update_states(label, mult, beta)

        ones = torch.ones(1, dtype=torch.float, device=pt.device)
        loss = -alpha * beta * torch.log(torch.min(pt + self._eps, ones))
        loss = self._weight * (loss * sample_weight)
        return loss, sample_weight

    @torch.no_grad()
    def _update_states(self, label: torch.Tensor, mult: torch.Tensor, beta: torch.Tensor) -> None:
        ignore_area = torch.sum(label == self._ignore_label, dim=tuple(range(1, label.dim())))
        no_ignore = ignore_area == 0
        if bool(no_ignore.any()):
            sample_mult = torch.mean(mult, dim=tuple(range(1, mult.dim())))
            self._k_sum = 0.9 * self._k_sum + 0.1 * sample_mult[no_ignore].mean().item()

            beta_pmax = torch.flatten(beta, start_dim=1).max(dim=1)[0].mean().item()
            self._m_max = 0.8 * self._m_max + 0.2 * beta_pmax

    def _per_sample(self, loss: torch.Tensor, sample_weight: torch.Tensor, average: bool) -> torch.Tensor:
        dims = _dims_except(loss.dim(), self._batch_axis)
        if average:
            bsum = torch.sum(sample_weight, dim=_dims_except(sample_weight.dim(), self._batch_axis))
            return torch.sum(loss, dim=dims) / (bsum + self._eps)
        return torch.sum(loss, dim=dims)

    def log_states(self, sw: Any, name: str, global_step: int) -> None:
        """Write ``<name>_k`` (EMA of the normaliser) and ``<name>_m`` (EMA of the max focal factor).

        ``sw`` is anything with ``add_scalar(tag, value, global_step)`` (torch's ``SummaryWriter`` or a wrapper).
        """
        sw.add_scalar(name + '_k', self._k_sum, global_step)
        sw.add_scalar(name + '_m', self._m_max, global_step)


class NormalizedFocalLossSigmoid(_NormalizedFocalBase):
    """Normalized focal loss on sigmoid outputs (RITM), used on the backbone output with alpha=0.5, gamma=2.

    ``forward(pred, label)``: ``pred`` are ``B x 1 x H x W`` logits (probabilities with ``from_sigmoid=True``),
    cast to float32 first; ``label`` is ``B x 1 x H x W`` with 0/1 and ``ignore_label``.
    The focal factor ``(1 - pt)^gamma`` is rescaled per ``(b, c)`` by ``mult = sum(v) / (sum(beta) + eps)``
    (detached unless ``detach_delimeter=False``; clamped to ``max_mult`` when that is > 0).

    Returns a ``B`` vector: per sample ``sum(loss) / (sum(v) + eps)`` (``size_average=True``) or ``sum(loss)``.
    A sample whose pixels are all ignored gets exactly 0.
    """

    def forward(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        pred = pred.float()
        loss, sample_weight = self._pixel_loss(pred, label)
        return self._per_sample(loss, sample_weight, self._size_average)


class WFNL(_NormalizedFocalBase):
    """Weighted normalized focal loss (ClickSEG), used on the refiner output with alpha=0.5, gamma=2.

    ``forward(pred, label, weight=None)``: ``pred`` are ``B x 1 x H x W`` logits (not cast: the computation
    keeps their dtype), ``label`` as for :class:`NormalizedFocalLossSigmoid`.

    * ``weight=None``: returns a ``B`` vector, per sample ``sum(loss) / (sum(v) + eps)``, i.e. exactly
      :class:`NormalizedFocalLossSigmoid` (``size_average`` is ignored).
    * ``weight`` a map broadcastable to the loss (e.g. a ``B x 1 x H x W`` trimap): ``W' = weight * w + (1 - w)``
      and the result is the scalar ``sum(loss * W') / (sum(W') + eps)`` over the whole batch; ignored pixels
      add 0 to the numerator but their ``W'`` counts in the denominator.
    """

    def __init__(self, axis: int = -1, alpha: float = 0.25, gamma: float = 2, w: float = 0.5,
                 max_mult: float = -1, eps: float = 1e-12, from_sigmoid: bool = False,
                 detach_delimeter: bool = True, batch_axis: int = 0, weight: Optional[Any] = None,
                 size_average: bool = True, ignore_label: int = -1):
        super().__init__(axis=axis, alpha=alpha, gamma=gamma, max_mult=max_mult, eps=eps,
                         from_sigmoid=from_sigmoid, detach_delimeter=detach_delimeter, batch_axis=batch_axis,
                         weight=weight, size_average=size_average, ignore_label=ignore_label)
        self.w = w

    def forward(self, pred: torch.Tensor, label: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        loss, sample_weight = self._pixel_loss(pred, label)
        if weight is not None:
            weight = weight * self.w + (1 - self.w)
            return (loss * weight).sum() / (weight.sum() + self._eps)
        return self._per_sample(loss, sample_weight, True)


class SigmoidBinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy (RITM), used with weight 0.4 on the HRNet auxiliary output.

    ``forward(pred, label)``: ``pred`` are logits (probabilities with ``from_sigmoid=True``) of layout
    ``B x 1 x H x W``; ``label`` has the same number of elements (it is viewed as ``pred``'s shape), values 0/1
    and ``ignore_label``. Per pixel ``relu(x) - x * y0 + softplus(-|x|)`` with ``y0 = y`` where valid else 0,
    zeroed on ignored pixels.

    Returns a ``B`` vector: the per-sample mean over all ``C * H * W`` pixels, ignored ones included in the
    denominator.
    """

    def __init__(self, from_sigmoid: bool = False, weight: Optional[Any] = None, batch_axis: int = 0,
                 ignore_label: int = -1):
        super().__init__()
        self._from_sigmoid = from_sigmoid
        self._ignore_label = ignore_label
        self._weight = weight if weight is not None else 1.0
        self._batch_axis = batch_axis

    def forward(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        label = label.view(pred.size())
        sample_weight = label != self._ignore_label
        label = torch.where(sample_weight, label, torch.zeros_like(label))

        if not self._from_sigmoid:
            loss = torch.relu(pred) - pred * label + F.softplus(-torch.abs(pred))
        else:
            eps = 1e-12
            loss = -(torch.log(pred + eps) * label + torch.log(1.0 - pred + eps) * (1.0 - label))

        loss = self._weight * (loss * sample_weight)
        return torch.mean(loss, dim=_dims_except(loss.dim(), self._batch_axis))
