"""HRNetV2 backbone with an OCR head, as used by EMC-Click's HRNet models.

Layout conventions: tensors are ``[B, C, H, W]``; ``H x W`` is the network input size and every
branch ``k`` of the high-resolution stages runs at stride ``4 * 2**k`` with ``width * 2**k`` channels.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from isegm.model.modeling.ocr import SpatialGather_Module, SpatialOCR_Module
from isegm.model.modeling.resnetv1b import BasicBlockV1b, BottleneckV1b
from isegm.utils.torch_files import PathLike, PretrainedReport, load_matching, read_torch_file

logger = logging.getLogger(__name__)

NormLayer = Callable[[int], nn.Module]


def _conv3x3_bn(in_ch: int, out_ch: int, stride: int, norm_layer: NormLayer, relu: bool) -> nn.Sequential:
    """3x3 conv (no bias) + norm (+ ReLU); the building block of transitions and down-fusions."""
    layers = [
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
        norm_layer(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel residual branches followed by an all-to-all multi-resolution fusion.

    ``forward(xs)``: list of ``[B, channels[k], H_k, W_k]`` -> list of the same shapes.
    """

    def __init__(
        self,
        channels: Sequence[int],
        num_blocks: int,
        norm_layer: NormLayer = nn.BatchNorm2d,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        # Branch input and output channels are equal here, so no block needs a downsample.
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlockV1b(c, c, norm_layer=norm_layer) for _ in range(num_blocks)])
            for c in channels
        )
        self.fuse_layers = nn.ModuleList()
        for i, c_out in enumerate(channels):
            fuse_layer = nn.ModuleList()
            for j, c_in in enumerate(channels):
                if j > i:  # lower resolution: 1x1 projection, upsampled in forward
                    fuse_layer.append(
                        nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=1, bias=False), norm_layer(c_out))
                    )
                elif j == i:
                    fuse_layer.append(None)
                else:  # higher resolution: (i - j) stride-2 convs, ReLU after all but the last
                    steps = [_conv3x3_bn(c_in, c_in, 2, norm_layer, relu=True) for _ in range(i - j - 1)]
                    steps.append(_conv3x3_bn(c_in, c_out, 2, norm_layer, relu=False))
                    fuse_layer.append(nn.Sequential(*steps))
            self.fuse_layers.append(fuse_layer)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, fuse_layer in enumerate(self.fuse_layers):
            y = None
            # Sum in input-branch order (0, 1, ...), as the original does.
            for j, x in enumerate(xs):
                if j != i:
                    x = fuse_layer[j](x)
                    if j > i:
                        x = F.interpolate(
                            x, size=xs[i].shape[-2:], mode="bilinear", align_corners=self.align_corners
                        )
                y = x if y is None else y + x
            out.append(self.relu(y))
        return out


class HighResolutionNet(nn.Module):
    """HRNetV2-W``width`` + OCR head with the click features injected after the first stem conv.

    Args:
        width: channels of the highest-resolution branch (18 or 32 in EMC-Click).
        num_classes: output logit channels of ``cls_head`` / ``aux_head`` (1 in EMC-Click).
        ocr_width: OCR key channels; the OCR feature has ``2 * ocr_width`` channels.
        small: HRNetV2-W18-small-v2 layout (2 blocks per unit, 3/2 modules in stages 3/4)
            instead of the full one (4 blocks, 4/3 modules).
        norm_layer: normalization layer factory, called with a channel count.
        align_corners: used by every bilinear resize.
    """

    def __init__(
        self,
        width: int,
        num_classes: int = 1,
        ocr_width: int = 256,
        small: bool = False,
        norm_layer: NormLayer = nn.BatchNorm2d,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        num_blocks = 2 if small else 4

        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = norm_layer(64)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)

        stem_out = 64 * BottleneckV1b.expansion
        downsample = nn.Sequential(nn.Conv2d(64, stem_out, kernel_size=1, bias=False), norm_layer(stem_out))
        self.layer1 = nn.Sequential(
            BottleneckV1b(64, 64, downsample=downsample, norm_layer=norm_layer),
            *[BottleneckV1b(stem_out, 64, norm_layer=norm_layer) for _ in range(num_blocks - 1)],
        )

        channels = [width * 2**k for k in range(4)]
        modules_per_stage = [1, 3, 2] if small else [1, 4, 3]  # HighResolutionModules in stages 2, 3, 4
        stage_args = dict(num_blocks=num_blocks, norm_layer=norm_layer, align_corners=align_corners)
        self.transition1 = self._make_transition([stem_out], channels[:2], norm_layer)
        self.stage2 = nn.Sequential(*[HighResolutionModule(channels[:2], **stage_args)
                                      for _ in range(modules_per_stage[0])])
        self.transition2 = self._make_transition(channels[:2], channels[:3], norm_layer)
        self.stage3 = nn.Sequential(*[HighResolutionModule(channels[:3], **stage_args)
                                      for _ in range(modules_per_stage[1])])
        self.transition3 = self._make_transition(channels[:3], channels, norm_layer)
        self.stage4 = nn.Sequential(*[HighResolutionModule(channels, **stage_args)
                                      for _ in range(modules_per_stage[2])])

        hrnet_channels = sum(channels)  # 15 * width
        ocr_mid = 2 * ocr_width
        self.out_channels = ocr_mid  # channels of the OCR feature the correction head reads
        self.conv3x3_ocr = nn.Sequential(
            nn.Conv2d(hrnet_channels, ocr_mid, kernel_size=3, padding=1),  # with bias, as in the original
            norm_layer(ocr_mid),
            nn.ReLU(inplace=True),
        )
        self.ocr_gather_head = SpatialGather_Module(num_classes)
        self.ocr_distri_head = SpatialOCR_Module(
            in_channels=ocr_mid, key_channels=ocr_width, out_channels=ocr_mid, dropout=0.05,
            norm_layer=norm_layer,
        )
        self.cls_head = nn.Conv2d(ocr_mid, num_classes, kernel_size=1)
        self.aux_head = nn.Sequential(
            nn.Conv2d(hrnet_channels, hrnet_channels, kernel_size=1),
            norm_layer(hrnet_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(hrnet_channels, num_classes, kernel_size=1),
        )

    @staticmethod
    def _make_transition(pre: list[int], cur: list[int], norm_layer: NormLayer) -> nn.ModuleList:
        """Maps the previous stage's branches to the next stage's; ``None`` = pass through unchanged."""
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(None if c == pre[i] else _conv3x3_bn(pre[i], c, 1, norm_layer, relu=True))
            else:
                # Each transition adds exactly one branch, made by one stride-2 conv from the last
                # existing branch; the extra Sequential level keeps the original key names.
                layers.append(nn.Sequential(_conv3x3_bn(pre[-1], c, 2, norm_layer, relu=True)))
        return layers

    @staticmethod
    def _apply_transition(transition: nn.ModuleList, ys: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = []
        for i, layer in enumerate(transition):
            y = ys[i] if i < len(ys) else ys[-1]  # a new branch grows from the lowest resolution one
            xs.append(y if layer is None else layer(y))
        return xs

    def compute_hrnet_feats(
        self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """``[B, 3, H, W]`` normalized image -> concatenated HRNet features ``[B, 15*width, H/4, W/4]``."""
        x = self.relu(self.bn1(self.conv1(x)))
        if additional_features is not None:  # click encoding, [B, 64, H/2, W/2]
            x = x + additional_features
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)

        ys = self.stage2(self._apply_transition(self.transition1, [x]))
        ys = self.stage3(self._apply_transition(self.transition2, ys))
        ys = self.stage4(self._apply_transition(self.transition3, ys))

        size = ys[0].shape[-2:]
        ups = [F.interpolate(y, size=size, mode="bilinear", align_corners=self.align_corners) for y in ys[1:]]
        return torch.cat([ys[0], *ups], 1)

    def forward(
        self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
    ) -> list[torch.Tensor]:
        """Run backbone + OCR head.

        Args:
            x: ``[B, 3, H, W]`` ImageNet-normalized image (H, W multiples of 4 in EMC-Click).
            additional_features: optional ``[B, 64, H/2, W/2]`` added after the first stem conv.

        Returns:
            ``[out, out_aux, feats]``: coarse logits ``[B, K, H/4, W/4]`` (``cls_head``), auxiliary
            soft-region logits ``[B, K, H/4, W/4]`` (``aux_head``) and the OCR feature
            ``[B, 2*ocr_width, H/4, W/4]``.
        """
        feats = self.compute_hrnet_feats(x, additional_features)
        out_aux = self.aux_head(feats)
        feats = self.conv3x3_ocr(feats)
        context = self.ocr_gather_head(feats, out_aux)
        feats = self.ocr_distri_head(feats, context)
        out = self.cls_head(feats)
        return [out, out_aux, feats]

    def load_pretrained_weights(self, path: PathLike) -> PretrainedReport:
        """Load an HRNet-Image-Classification ``.pth`` (raw state dict) into the matching backbone keys.

        ``model.`` prefixes are stripped and ``last_layer`` is renamed ``aux_head`` (as the original);
        classifier-only keys are skipped, the OCR/cls heads keep their current weights.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            CheckpointError: unreadable file, not a state dict, shape mismatch or nothing matches.
        """
        what = "HRNet ImageNet weights"
        state = read_torch_file(path, what=what)
        if not isinstance(state, dict):
            return load_matching(self, state, path, what)  # raises, naming the file
        renamed = {}
        for key, value in state.items():
            key = str(key)
            if key.startswith("model."):
                key = key[len("model."):]
            renamed[key.replace("last_layer", "aux_head")] = value
        report = load_matching(self, renamed, path, what)
        logger.info(
            "%s from %s: loaded %d keys, skipped %d file keys, %d model keys left as initialized",
            what, os.fspath(path), len(report.loaded), len(report.skipped), len(report.missing),
        )
        return report
