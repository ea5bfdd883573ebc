"""Object-Contextual Representations (OCR) head pieces used on top of HRNet.

Only the ``scale=1`` case exists in EMC-Click, so the original's max-pool / upsample around the
attention block (identity at scale 1) is not built.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

NormLayer = Callable[[int], nn.Module]


def _conv1x1_bn_relu(in_channels: int, out_channels: int, norm_layer: NormLayer) -> list[nn.Module]:
    # (norm, ReLU) nested in their own Sequential: gives the original state-dict names ``k.0``.
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.Sequential(norm_layer(out_channels), nn.ReLU(inplace=True)),
    ]


class SpatialGather_Module(nn.Module):
    """Class-weighted average of pixel features (soft object regions); no parameters.

    ``forward(feats [B, C, h, w], probs [B, K, h, w]) -> context [B, C, K, 1]``.
    """

    def __init__(self, cls_num: int = 1) -> None:
        super().__init__()
        self.cls_num = cls_num  # K; informative only, the shape of ``probs`` decides

    def forward(self, feats: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        b, k = probs.shape[:2]
        probs = F.softmax(probs.view(b, k, -1), dim=2)  # over all h*w positions
        feats = feats.view(b, feats.shape[1], -1).permute(0, 2, 1)  # [B, hw, C]
        return torch.matmul(probs, feats).permute(0, 2, 1).unsqueeze(3)  # [B, C, K, 1]


class ObjectAttentionBlock2D(nn.Module):
    """Pixel-to-object attention; ``forward(x [B, C, h, w], proxy [B, C, K, 1]) -> [B, C, h, w]``."""

    def __init__(self, in_channels: int, key_channels: int, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.f_pixel = nn.Sequential(
            *_conv1x1_bn_relu(in_channels, key_channels, norm_layer),
            *_conv1x1_bn_relu(key_channels, key_channels, norm_layer),
        )
        self.f_object = nn.Sequential(
            *_conv1x1_bn_relu(in_channels, key_channels, norm_layer),
            *_conv1x1_bn_relu(key_channels, key_channels, norm_layer),
        )
        self.f_down = nn.Sequential(*_conv1x1_bn_relu(in_channels, key_channels, norm_layer))
        self.f_up = nn.Sequential(*_conv1x1_bn_relu(key_channels, in_channels, norm_layer))

    def forward(self, x: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        query = self.f_pixel(x).view(b, self.key_channels, -1).permute(0, 2, 1)  # [B, hw, key]
        key = self.f_object(proxy).view(b, self.key_channels, -1)  # [B, key, K]
        value = self.f_down(proxy).view(b, self.key_channels, -1).permute(0, 2, 1)  # [B, K, key]
        sim_map = (self.key_channels**-0.5) * torch.matmul(query, key)
        # Softmax over the K objects. EMC-Click has K = num_classes = 1, so this is a softmax over one
        # element (exactly 1.0) and f_pixel/f_object do not affect the output; kept to match the original.
        sim_map = F.softmax(sim_map, dim=-1)
        context = torch.matmul(sim_map, value).permute(0, 2, 1).contiguous()
        return self.f_up(context.view(b, self.key_channels, h, w))


class SpatialOCR_Module(nn.Module):
    """OCR refinement: ``forward(feats [B, C, h, w], proxy [B, C, K, 1]) -> [B, out_channels, h, w]``.

    Output is conv-norm-ReLU(-dropout) of ``cat([object context, feats])``.
    """

    def __init__(
        self,
        in_channels: int,
        key_channels: int,
        out_channels: int,
        dropout: float = 0.1,
        norm_layer: NormLayer = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.object_context_block = ObjectAttentionBlock2D(in_channels, key_channels, norm_layer)
        self.conv_bn_dropout = nn.Sequential(
            *_conv1x1_bn_relu(2 * in_channels, out_channels, norm_layer),
            nn.Dropout2d(dropout),
        )

    def forward(self, feats: torch.Tensor, proxy_feats: torch.Tensor) -> torch.Tensor:
        context = self.object_context_block(feats, proxy_feats)
        return self.conv_bn_dropout(torch.cat([context, feats], 1))
