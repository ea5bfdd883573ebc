"""SegFormer all-MLP decoder: per-stage linear projection, upsample to stride 4, fuse, predict."""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """Per-pixel linear projection: ``[B, Cin, h, w]`` -> ``[B, E, h, w]``."""

    def __init__(self, input_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(input_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x = self.proj(x.flatten(2).transpose(1, 2))  # [B, h*w, E]
        return x.transpose(1, 2).reshape(b, -1, h, w)


class ConvBNReLU(nn.Module):
    """Conv (no bias) + BatchNorm + ReLU, with the submodule names of mmcv's ``ConvModule``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU(inplace=True)
        # ConvModule's own init: Kaiming normal (fan_out, relu) for the conv, BN weight 1 / bias 0.
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))


class SegFormerHead(nn.Module):
    """Decoder over the four MiT stage maps ``[B, C_i, H / s_i, W / s_i]`` (``s = 4, 8, 16, 32``)."""

    def __init__(self, in_channels: Sequence[int], embed_dim: int, num_classes: int = 1,
                 dropout_ratio: float = 0.1) -> None:
        super().__init__()
        c1, c2, c3, c4 = in_channels
        # Created c4 -> c1, the order of the original state dict.
        self.linear_c4 = MLP(c4, embed_dim)
        self.linear_c3 = MLP(c3, embed_dim)
        self.linear_c2 = MLP(c2, embed_dim)
        self.linear_c1 = MLP(c1, embed_dim)
        self.linear_fuse = ConvBNReLU(4 * embed_dim, embed_dim)
        self.dropout = nn.Dropout2d(dropout_ratio)
        self.linear_pred = nn.Conv2d(embed_dim, num_classes, kernel_size=1)

    def forward(self, features: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(pred [B, num_classes, H/4, W/4], feature [B, E, H/4, W/4])``."""
        c1, c2, c3, c4 = features
        size = c1.shape[2:]
        # align_corners=False here (as in mmseg's decoder), unlike the rest of the model.
        up = [F.interpolate(lin(c), size=size, mode="bilinear", align_corners=False)
              for lin, c in ((self.linear_c4, c4), (self.linear_c3, c3), (self.linear_c2, c2))]
        feature = self.dropout(self.linear_fuse(torch.cat(up + [self.linear_c1(c1)], dim=1)))
        return self.linear_pred(feature), feature
