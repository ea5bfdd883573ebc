"""``ISModel``: what both EMC-Click networks share, as two explicit stages.

* :meth:`ISModel.encode` (first click, once per image): input normalisation, the backbone on the
  first click, and the correction head's per-image work -> :class:`ImageEmbedding`.
* :meth:`ISModel.correct` (every click): the correction head alone on an embedding ->
  :class:`Correction`, which the next correction extends.

``forward`` keeps the original's call (training, RITM-style callers) and is written on the two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from isegm.model.ops import BatchImageNormalize, ClickDistances, DistMaps, ScaleLayer, squared_click_distance
from isegm.model.refiner import RefinerContext
from isegm.utils.errors import InputError

Outputs = Dict[str, torch.Tensor]


@dataclass(frozen=True)
class ImageEmbedding:
    """Everything per image that corrections reuse (``h = H / 4``, ``w = W / 4``).

    Attributes:
        image: ``B x 3 x H x W`` normalised RGB (the network input, mean/std applied).
        feature: ``B x Cf x h x w`` backbone feature.
        logits_lr: ``B x 1 x h x w`` backbone logits: what the first correction starts from.
        instances: ``B x 1 x H x W`` backbone logits, upsampled.
        instances_aux: ``B x 1 x H x W`` auxiliary-head logits, upsampled (HRNet; SegFormer repeats
            ``instances``).
        click_map: ``B x 2 x H x W`` disks of the first click (positive, negative channel).
        refiner: the correction head's per-image work (:class:`~isegm.model.refiner.RefinerContext`).
    """

    image: torch.Tensor
    feature: torch.Tensor
    logits_lr: torch.Tensor
    instances: torch.Tensor
    instances_aux: torch.Tensor
    click_map: torch.Tensor
    refiner: RefinerContext


@dataclass(frozen=True)
class Correction:
    """One correction, and the click state the next correction extends.

    Attributes:
        logits: ``B x 1 x H x W`` corrected logits.
        logits_lr: ``B x 1 x h x w`` corrected logits at the head's resolution (detached): the
            next correction starts from them.
        clicks: squared distance maps of the clicks so far (:class:`~isegm.model.ops.ClickDistances`).
    """

    logits: torch.Tensor
    logits_lr: torch.Tensor
    clicks: ClickDistances


def upsample(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` (the convention of the whole EMC-Click pipeline)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


MIN_SIDE = 32
"""The backbones downsample by 32: a smaller side leaves their last stage no pixel."""


def check_network_input(height: int, width: int, templates: int) -> None:
    """Raise :class:`InputError` unless a network whose head picks ``templates`` templates per sign can
    take a ``height x width`` input: both sides multiples of 4 (the head works at 1/4) and at least
    :data:`MIN_SIDE`, and the 1/4-resolution map holding the templates."""
    if height % 4 or width % 4 or min(height, width) < MIN_SIDE:
        raise InputError(f"network input {height}x{width}: both sides must be multiples of 4 and at least {MIN_SIDE}")
    if (height // 4) * (width // 4) < templates:
        raise InputError(f"network input {height}x{width} is too small for this model: its correction head picks "
                         f"{templates} templates among the (H/4) x (W/4) = {(height // 4) * (width // 4)} pixels")


class ISModel(nn.Module):
    """Base of the click-based models: a backbone run on the first click, a refiner on every click.

    Subclasses set ``feature_extractor`` and ``refiner`` and implement :meth:`backbone_forward`.
    ``use_rgb_conv``, ``feature_stride``, ``use_disks``, ``cpu_dist_maps``, ``conv_extend`` are
    accepted (the released configs store them) but change nothing in EMC-Click.
    """

    def __init__(self, use_rgb_conv: bool = True, feature_stride: int = 4, with_aux_output: bool = False,
                 norm_radius: int = 260, use_disks: bool = False, cpu_dist_maps: bool = False,
                 clicks_groups=None, with_prev_mask: bool = False, use_leaky_relu: bool = False,
                 binary_prev_mask: bool = False, conv_extend: bool = False, norm_layer=nn.BatchNorm2d,
                 norm_mean_std=([.485, .456, .406], [.229, .224, .225]), only_first_click: bool = False):
        super().__init__()
        if clicks_groups is not None:
            raise NotImplementedError("clicks_groups is not supported by the EMC-Click models")
        self.with_aux_output = with_aux_output
        self.with_prev_mask = with_prev_mask
        self.binary_prev_mask = binary_prev_mask
        self.only_first_click = only_first_click
        self.normalization = BatchImageNormalize(norm_mean_std[0], norm_mean_std[1])
        # What the backbone sees of the clicks: the first click's positive disk alone
        # (only_first_click, every released model), else (prev mask,) pos disk, neg disk.
        self.coord_feature_ch = 1 if only_first_click else 2 + int(with_prev_mask)
        self.maps_transform: Optional[nn.Module] = nn.Sequential(
            nn.Conv2d(self.coord_feature_ch, 16, kernel_size=1),
            nn.LeakyReLU(negative_slope=0.2) if use_leaky_relu else nn.ReLU(inplace=True),
            nn.Conv2d(16, 64, kernel_size=3, stride=2, padding=1),
            ScaleLayer(init_value=0.05, lr_mult=1),
        )
        # The original hard-codes radius 5 here; every released config stores norm_radius=5.
        self.dist_maps_base = DistMaps(norm_radius=norm_radius, spatial_scale=1.0, use_disks=True)
        self.dist_maps_refine = DistMaps(norm_radius=norm_radius, spatial_scale=1.0, use_disks=True)

    def check_input_size(self, height: int, width: int) -> None:
        """Raise :class:`InputError` unless the network can take a ``height x width`` input
        (see :func:`check_network_input`)."""
        check_network_input(height, width, self.refiner.corr_channel)

    # -- the two stages ------------------------------------------------------------------------

    def encode(self, image: torch.Tensor, points: torch.Tensor) -> ImageEmbedding:
        """The first click: normalise the input, run the backbone on the first click, prepare the head.

        Args:
            image: ``B x 4 x H x W`` (RGB in [0, 1] + previous mask; ``B x 3`` without
                ``with_prev_mask``), H and W multiples of 4. The released networks take only the
                first click's disk: the previous-mask channel does not change their output.
            points: ``B x 2N x 3`` clicks ``(y, x, index)`` in input pixels; first N positive,
                last N negative, padding rows ``(-1, -1, -1)``. Only the click with index 0
                reaches the backbone.
        """
        height, width = image.shape[-2:]
        click_map = self.dist_maps_base.disks(
            squared_click_distance(self.first_click(points), height, width, self.dist_maps_base.spatial_scale))
        return self.encode_disks(image, click_map)

    def encode_disks(self, image: torch.Tensor, click_map: torch.Tensor) -> ImageEmbedding:
        """:meth:`encode` given the first click's disks ``click_map`` (``B x 2 x H x W``) instead of the
        clicks: the part of the first click with no Python decision on click values (the exported encoder)."""
        image, prev_mask = self.prepare_input(image)
        coord_features = self.coord_features(click_map, prev_mask)
        if self.maps_transform is not None:
            coord_features = self.maps_transform(coord_features)
        out = self.backbone_forward(image, coord_features)
        size = image.shape[-2:]
        instances = upsample(out["instances"], size)
        aux = upsample(out["instances_aux"], size) if self.with_aux_output else out["instances_aux"]
        return ImageEmbedding(image=image, feature=out["feature"], logits_lr=out["instances"].detach(),
                              instances=instances, instances_aux=aux, click_map=click_map,
                              refiner=self.refiner.prepare(image, out["feature"]))

    def correct(self, embedding: ImageEmbedding, points: torch.Tensor, prev: Optional[Correction] = None,
                attention: str = "exact", logits_lr: Optional[torch.Tensor] = None) -> Correction:
        """One correction: the head alone, on every click so far.

        Args:
            embedding: from :meth:`encode` on the same image.
            points: ``B x 2N x 3`` all clicks so far (layout as in :meth:`encode`).
            prev: the previous correction: this one starts from its ``logits_lr`` and extends its
                click maps with the added clicks. None: start from the backbone's logits.
            attention: ``'exact'`` (the original's arithmetic, default) or ``'fast'``
                (see :data:`isegm.model.refiner.ATTENTION`).
            logits_lr: ``B x 1 x h x w`` logits to start from instead (training's simulated clicks).

        Nothing passed in is modified: undo is keeping an older :class:`Correction`.
        """
        height, width = embedding.image.shape[-2:]
        scale = self.dist_maps_refine.spatial_scale
        clicks = (ClickDistances.build(points, height, width, scale) if prev is None
                  else prev.clicks.update(points, height, width, scale))
        if logits_lr is None:
            logits_lr = embedding.logits_lr if prev is None else prev.logits_lr
        prev_logits = upsample(logits_lr.detach(), (height, width))
        refined = self.refiner(embedding.refiner, self.dist_maps_refine.disks(clicks.dist2), prev_logits, points,
                               clicks.dist2, attention=attention)
        return Correction(logits=upsample(refined, (height, width)), logits_lr=refined.detach(), clicks=clicks)

    # -- the original's call ---------------------------------------------------------------------

    def forward(self, image: torch.Tensor, points: torch.Tensor, cached_outputs: Optional[Outputs] = None,
                cached_instances_lr: Optional[torch.Tensor] = None) -> Tuple[Outputs, Outputs]:
        """The original call: the first click (backbone + head) or a later one (head on cached outputs).

        Args:
            image, points: as in :meth:`encode`.
            cached_outputs: the ``outputs`` of an earlier call on the same image: the backbone is
                not run again, and the head starts from its ``instances_lr``. It is not modified.
            cached_instances_lr: ``B x 1 x h x w`` logits to start from instead.

        Returns:
            ``(outputs, refine_output)``: ``outputs`` holds ``instances`` / ``instances_aux``
            (backbone logits at H x W), ``feature`` (``B x Cf x h x w``), ``click_map``
            (first-click disks) and ``instances_lr`` (this call's corrected logits at h x w, what
            the next call starts from); ``refine_output`` holds ``instances_refined``, the
            corrected logits at H x W. Pass ``outputs`` to the next call. Everything is recomputed
            from these tensors on each call; interactive use wants :meth:`encode` / :meth:`correct`.
        """
        start = cached_instances_lr
        if cached_outputs is None:
            embedding = self.encode(image, points)
        else:
            if start is None:
                start = cached_outputs["instances_lr"]
            normalised, _ = self.prepare_input(image)
            feature = cached_outputs["feature"]
            embedding = ImageEmbedding(image=normalised, feature=feature, logits_lr=start,
                                       instances=cached_outputs["instances"],
                                       instances_aux=cached_outputs["instances_aux"],
                                       click_map=cached_outputs["click_map"],
                                       refiner=self.refiner.prepare(normalised, feature))
        correction = self.correct(embedding, points, logits_lr=start)
        outputs = {"instances": embedding.instances, "instances_aux": embedding.instances_aux,
                   "feature": embedding.feature, "click_map": embedding.click_map,
                   "instances_lr": correction.logits_lr}
        return outputs, {"instances_refined": correction.logits}

    # -- parts -----------------------------------------------------------------------------------

    def prepare_input(self, image: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``B x (3|4) x H x W`` RGB in [0, 1] (+ previous mask) -> (normalised RGB, prev mask or None)."""
        prev_mask = None
        if self.with_prev_mask:
            image, prev_mask = image[:, :3], image[:, 3:]
            if self.binary_prev_mask:
                prev_mask = (prev_mask > 0.5).float()
        return self.normalization(image), prev_mask

    @staticmethod
    def first_click(points: torch.Tensor) -> torch.Tensor:
        """``B x 2N x 3`` clicks -> the same with every click but the first (index 0) made padding.

        Only the first click reaches the backbone; later clicks go to the correction head only.
        """
        return points.masked_fill((points[..., 2] > 0).unsqueeze(-1), -1)

    def coord_features(self, click_map: torch.Tensor, prev_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """The backbone's click input: the first click's positive disk alone (``only_first_click``,
        every released model), else (prev mask,) positive disk, negative disk."""
        if self.only_first_click:
            return click_map[:, :1]
        return click_map if prev_mask is None else torch.cat([prev_mask, click_map], dim=1)

    def backbone_forward(self, image: torch.Tensor, coord_features: torch.Tensor) -> Outputs:
        """-> ``{'instances', 'instances_aux': B x 1 x h x w logits, 'feature': B x Cf x h x w}``."""
        raise NotImplementedError

    def checkpoint_filter_fn(self, state: Dict[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
        """Translate a checkpoint's state dict to this model's names (the refiner's aliased keys)."""
        return self.refiner.checkpoint_filter_fn(state, "refiner.", source)
