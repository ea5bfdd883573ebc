"""SegFormer (MiT encoder + all-MLP decoder) as EMC-Click's ``feature_extractor``."""
from __future__ import annotations

import logging
from typing import Tuple

import torch
from torch import nn

from isegm.utils.torch_files import PathLike, PretrainedReport, load_matching, read_torch_file

from .mix_transformer import mit_b0, mit_b3
from .segformer_head import SegFormerHead

logger = logging.getLogger(__name__)

# version -> (encoder constructor, stage channels, decoder embed dim)
_VERSIONS = {
    "b0": (mit_b0, (32, 64, 160, 256), 256),
    "b3": (mit_b3, (64, 128, 320, 512), 512),
}


class SegFormer(nn.Module):
    """MiT-``model_version`` backbone with a click side input, followed by ``SegFormerHead``."""

    VERSIONS = tuple(_VERSIONS)

    def __init__(self, model_version: str = "b0", side_dims: int = 1) -> None:
        super().__init__()
        if model_version not in _VERSIONS:
            raise ValueError(f"unknown SegFormer version {model_version!r}; "
                             f"expected one of {sorted(_VERSIONS)}")
        build, in_channels, embed_dim = _VERSIONS[model_version]
        self.out_channels = embed_dim  # channels of the decoder feature the correction head reads
        self.backbone = build(side_dims)
        self.decode_head = SegFormerHead(in_channels, embed_dim, num_classes=1, dropout_ratio=0.1)

    def forward(self, x: torch.Tensor, side: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``x``: normalized image ``[B, 3, H, W]``; ``side``: click disk(s) ``[B, side_dims, H, W]``.

        Returns ``(pred [B, 1, H/4, W/4] logits, feature [B, E, H/4, W/4])``, E = 256 (b0) / 512 (b3).
        """
        return self.decode_head(self.backbone(x, side))

    def load_pretrained_weights(self, path: PathLike) -> PretrainedReport:
        """Load a MiT ImageNet release (``mit_b0.pth`` / ``mit_b3.pth``) into ``self.backbone``.

        The classifier (``head.*``) is skipped; ``patch_embed_side1`` and ``norm_add`` stay as
        initialised (they are not in the release).
        """
        what = "MiT ImageNet weights"
        state = read_torch_file(path, what=what)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        report = load_matching(self.backbone, state, path, what)
        logger.info("%s %s: loaded %d tensors, skipped %d (%s), %d backbone keys left as initialised",
                    what, path, len(report.loaded), len(report.skipped), ", ".join(report.skipped[:5]),
                    len(report.missing))
        return report
