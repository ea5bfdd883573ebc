"""Small parameter-free or tiny operations shared by the EMC-Click models."""
from __future__ import annotations

from typing import Sequence

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

    def __init__(self, norm_radius: float, spatial_scale: float = 1.0, cpu_mode: bool = False,
                 use_disks: bool = False):
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


class IncrementalClickDistance:
    """:func:`squared_click_distance` kept up to date click by click, bit for bit.

    The map of a sign is the minimum over that sign's set of valid clicks, so it only depends on
    the set: when the new clicks of every sample and sign include the previous ones (clicks were
    added, in any slot order and with any padding), only the added clicks are folded in with
    ``torch.minimum``, at ``O(H * W)`` per added click whatever the number of earlier clicks.
    Anything else (a click removed or moved, another size, batch, dtype or device) rebuilds the
    map from scratch. The click coordinates are compared on the host (one small copy per call
    for points on an accelerator).
    """

    def __init__(self):
        self.clicks = None      # per sample and sign: set of valid (y, x) in the map
        self.key = None         # (rows, cols, spatial_scale, batch, dtype, device)
        self.dist2 = None       # B x 2 x rows x cols

    def __call__(self, points: torch.Tensor, rows: int, cols: int, spatial_scale: float = 1.0) -> torch.Tensor:
        host = points.detach().to("cpu", torch.float64)
        num = host.shape[1] // 2
        clicks = [[_valid_clicks(host[b, s * num:(s + 1) * num]) for s in range(2)] for b in range(host.shape[0])]
        key = (rows, cols, spatial_scale, host.shape[0], points.dtype, points.device)
        # An inference tensor cannot be updated in place outside inference mode: rebuild it then.
        stale = self.dist2 is None or (self.dist2.is_inference() and not torch.is_inference_mode_enabled())
        if stale or key != self.key or not all(
                old <= new for old_b, new_b in zip(self.clicks, clicks) for old, new in zip(old_b, new_b)):
            self.dist2 = squared_click_distance(points, rows, cols, spatial_scale)
        else:
            added = [(b, s, yx) for b, new_b in enumerate(clicks) for s in range(2)
                     for yx in sorted(new_b[s] - self.clicks[b][s])]
            if added:
                # Same arithmetic (and dtype) as squared_click_distance, one click at a time.
                rows_ = torch.tensor([[yx[0], yx[1], 0.0] for _, _, yx in added], dtype=points.dtype)
                dy2, dx2 = _axis_distances(rows_.to(points.device)[None], rows, cols, spatial_scale)
                for i, (b, s, _) in enumerate(added):
                    torch.minimum(self.dist2[b, s], dy2[0, i, :, None] + dx2[0, i, None, :], out=self.dist2[b, s])
        self.key, self.clicks = key, clicks
        return self.dist2


def _valid_clicks(rows: torch.Tensor) -> set:
    """``K x 3`` host rows -> the set of ``(y, x)`` of the valid ones (``max(y, x) >= 0``)."""
    return {(y, x) for y, x, _ in rows.tolist() if max(y, x) >= 0}


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
