"""Small parameter-free or tiny operations shared by the EMC-Click models."""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, Sequence, Tuple

import torch
from torch import nn

NO_CLICK = 1e6
"""Squared distance reported where a click slot is padding (or a sign has no click at all)."""


class DistMaps(nn.Module):
    """Click disks and squared distance maps, vectorised torch (no Cython).

    ``forward(x, points)`` with ``points`` of shape ``B x 2N x 3``, rows ``(y, x, index)``: the first
    N rows are positive clicks, the last N negative, padding rows are ``(-1, -1, -1)``.
    Returns ``disks``, or ``(disks, dist2)`` with ``out_dist_map=True``, both ``B x 2 x H x W``
    float32 (channel 0 positive, 1 negative):
    ``dist2`` is the squared distance to the nearest click of that sign (``NO_CLICK`` where the
    sign has none) and ``disks = dist2 <= (norm_radius * spatial_scale) ** 2``.

    The distance is built per axis (``dy^2 + dx^2``) so no per-click full-resolution coordinate
    grid is made; a running minimum keeps memory at ``B x 2 x H x W`` whatever N is.
    """

    def __init__(self, norm_radius: float, spatial_scale: float = 1.0, use_disks: bool = False):
        super().__init__()
        if not use_disks:
            raise NotImplementedError("EMC-Click uses disk click maps only (use_disks=True)")
        self.norm_radius = norm_radius
        self.spatial_scale = spatial_scale

    def forward(self, x, points: torch.Tensor, out_dist_map: bool = False):
        if isinstance(x, (tuple, list)):
            _, rows, cols = x
        else:
            rows, cols = x.shape[2], x.shape[3]
        dist2 = squared_click_distance(points, rows, cols, self.spatial_scale)
        disks = self.disks(dist2)
        return (disks, dist2) if out_dist_map else disks

    def disks(self, dist2: torch.Tensor) -> torch.Tensor:
        """Squared distances -> binary click disks (``1.0`` within the radius, boundary included)."""
        return (dist2 <= (self.norm_radius * self.spatial_scale) ** 2).float()


def squared_click_distance(points: torch.Tensor, rows: int, cols: int,
                           spatial_scale: float = 1.0) -> torch.Tensor:
    """``B x 2N x 3`` clicks -> ``B x 2 x rows x cols`` float32 min squared distance per sign.

    Numerics follow the original: the coordinate difference is taken in the points' dtype
    (float64 in the predictor) and rounded to float32, then squared and summed in float32.
    """
    batch, two_n, _ = points.shape
    num = two_n // 2
    dy2, dx2 = _axis_distances(points, rows, cols, spatial_scale)
    invalid = points[..., :2].amax(dim=-1) < 0                       # B x 2N
    out = torch.full((batch, 2, rows, cols), NO_CLICK, dtype=torch.float32, device=points.device)
    for k in range(two_n):
        # Padding slots are masked, not skipped: no host-device sync per click slot.
        d2 = dy2[:, k, :, None] + dx2[:, k, None, :]
        d2 = torch.where(invalid[:, k].view(batch, 1, 1), NO_CLICK, d2)
        torch.minimum(out[:, k // num], d2, out=out[:, k // num])
    return out


def _axis_distances(points: torch.Tensor, rows: int, cols: int, spatial_scale: float):
    """``B x K x 3`` clicks -> squared row / column offsets ``B x K x rows``, ``B x K x cols`` (float32)."""
    yx = points[..., :2] * spatial_scale
    work = torch.promote_types(points.dtype, torch.float32)
    grid_y = torch.arange(rows, device=points.device, dtype=work)
    grid_x = torch.arange(cols, device=points.device, dtype=work)
    dy2 = (grid_y.view(1, 1, rows) - yx[..., 0:1].to(work)).float().square()
    dx2 = (grid_x.view(1, 1, cols) - yx[..., 1:2].to(work)).float().square()
    return dy2, dx2


@dataclass(frozen=True)
class ClickDistances:
    """:func:`squared_click_distance` of a set of clicks, extended click by click, bit for bit.

    The map of a sign is the minimum over that sign's set of valid clicks, so it depends only on
    the set. :meth:`update` folds in the clicks added since an earlier state (in any slot order,
    with any padding) at ``O(H * W)`` per added click, whatever the number of earlier clicks, and
    rebuilds the maps when a click was removed or moved, or the size, batch, dtype or device
    changed. It returns a new state and never modifies the one it extends, so undo is keeping an
    older state.

    Attributes:
        dist2: ``B x 2 x rows x cols`` float32 squared distances (channel 0 positive, 1 negative;
            ``NO_CLICK`` where a sign has no click).
        clicks: per sample, per sign, the frozen set of ``(y, x)`` the maps hold.
        key: ``(rows, cols, spatial_scale, batch, dtype, device)`` of the maps.
    """

    dist2: torch.Tensor
    clicks: Tuple[Tuple[FrozenSet[Tuple[float, float]], ...], ...]
    key: tuple

    @classmethod
    def build(cls, points: torch.Tensor, rows: int, cols: int, spatial_scale: float = 1.0) -> "ClickDistances":
        """The maps of ``points`` (``B x 2N x 3`` rows ``(y, x, index)``) from scratch."""
        return cls(squared_click_distance(points, rows, cols, spatial_scale), _click_sets(points),
                   _maps_key(points, rows, cols, spatial_scale))

    def update(self, points: torch.Tensor, rows: int, cols: int, spatial_scale: float = 1.0) -> "ClickDistances":
        """The maps of ``points``, reusing this state's when ``points`` only adds clicks to it.

        The click coordinates are compared on the host (one small copy per call for points on an
        accelerator).
        """
        clicks, key = _click_sets(points), _maps_key(points, rows, cols, spatial_scale)
        if key != self.key or not all(old <= new for old_b, new_b in zip(self.clicks, clicks)
                                      for old, new in zip(old_b, new_b)):
            return ClickDistances.build(points, rows, cols, spatial_scale)
        added = [(b, s, yx) for b, new_b in enumerate(clicks) for s in range(2)
                 for yx in sorted(new_b[s] - self.clicks[b][s])]
        if not added:
            return ClickDistances(self.dist2, clicks, key)
        # Same arithmetic (and dtype) as squared_click_distance, one click at a time, on a copy:
        # the earlier state keeps its maps.
        rows_ = torch.tensor([[y, x, 0.0] for _, _, (y, x) in added], dtype=points.dtype)
        dy2, dx2 = _axis_distances(rows_.to(points.device)[None], rows, cols, spatial_scale)
        dist2 = self.dist2.clone()
        for i, (b, s, _) in enumerate(added):
            torch.minimum(dist2[b, s], dy2[0, i, :, None] + dx2[0, i, None, :], out=dist2[b, s])
        return ClickDistances(dist2, clicks, key)


def _maps_key(points: torch.Tensor, rows: int, cols: int, spatial_scale: float) -> tuple:
    return rows, cols, spatial_scale, points.shape[0], points.dtype, points.device


def _click_sets(points: torch.Tensor) -> Tuple[Tuple[FrozenSet[Tuple[float, float]], ...], ...]:
    """``B x 2N x 3`` points -> per sample, per sign, the frozen set of valid ``(y, x)`` (``max(y, x) >= 0``)."""
    host = points.detach().to("cpu", torch.float64)
    num = host.shape[1] // 2
    return tuple(tuple(frozenset((y, x) for y, x, _ in host[b, s * num:(s + 1) * num].tolist() if max(y, x) >= 0)
                       for s in range(2)) for b in range(host.shape[0]))


class ScaleLayer(nn.Module):
    """Multiplies by ``|scale * lr_mult|`` (a learnable, sign-free gain)."""

    def __init__(self, init_value: float = 1.0, lr_mult: float = 1):
        super().__init__()
        self.lr_mult = lr_mult
        self.scale = nn.Parameter(torch.full((1,), init_value / lr_mult, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.abs(self.scale * self.lr_mult)


class BatchImageNormalize:
    """``(x - mean) / std`` per channel on a ``B x 3 x H x W`` tensor (not a module: no state-dict entries)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32):
        self.mean = torch.as_tensor(mean, dtype=dtype)[None, :, None, None]
        self.std = torch.as_tensor(std, dtype=dtype)[None, :, None, None]

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        return (tensor - self.mean.to(tensor.device)) / self.std.to(tensor.device)
