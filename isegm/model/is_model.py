"""``ISModel``: the part shared by both EMC-Click networks (input preparation, clicks, forward)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from isegm.model.ops import BatchImageNormalize, DistMaps, IncrementalClickDistance, ScaleLayer

Outputs = Dict[str, torch.Tensor]

CACHE_KEY = "_click_cache"
"""Key of the :class:`ClickCache` that inference calls keep in the ``outputs`` dict."""


class ClickCache:
    """What a later click may reuse from earlier clicks on the same image (inference only).

    Lives in the ``outputs`` dict under :data:`CACHE_KEY`, so it follows the cached outputs that
    the caller passes back (and dies with them). Every entry is keyed by the tensors it was
    computed from, compared by identity and, where the tensor tracks one, by version counter: a
    new image, feature or an in-place edit recomputes the entry. The model only uses it without
    autograd, in eval mode and outside autocast (see :meth:`ISModel.click_cache`); training
    never sees it.
    """

    def __init__(self):
        self._entries: Dict[str, Tuple[Tuple[Any, ...], Any]] = {}
        self.click_distance = IncrementalClickDistance()

    def get(self, name: str, sources: Tuple[torch.Tensor, ...], compute: Callable[[], Any]) -> Any:
        """The value stored under ``name`` for ``sources``, else ``compute()`` (stored)."""
        key = tuple((t, _version(t)) for t in sources)
        entry = self._entries.get(name)
        if entry is not None and len(entry[0]) == len(key) and all(
                a is b and va == vb for (a, va), (b, vb) in zip(entry[0], key)):
            return entry[1]
        value = compute()
        self._entries[name] = (key, value)
        return value


def _version(tensor: torch.Tensor) -> Optional[int]:
    try:
        return tensor._version
    except RuntimeError:  # inference tensors keep no version counter
        return None


def _autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


def upsample(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize with ``align_corners=True`` (the convention of the whole EMC-Click pipeline)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


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

    def prepare_input(self, image: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``B x (3|4) x H x W`` RGB in [0, 1] (+ previous mask) -> (normalised RGB, prev mask or None)."""
        prev_mask = None
        if self.with_prev_mask:
            image, prev_mask = image[:, :3], image[:, 3:]
            if self.binary_prev_mask:
                prev_mask = (prev_mask > 0.5).float()
        return self.normalization(image), prev_mask

    def get_coord_features(self, image: torch.Tensor, prev_mask: Optional[torch.Tensor],
                           points: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Backbone click input of the first click -> (coord features, ``B x 2 x H x W`` disks).

        Only the click with index 0 reaches the backbone; later clicks go to the refiner only.
        """
        first = points.masked_fill((points[..., 2] > 0).unsqueeze(-1), -1)
        disks = self.dist_maps_base(image, first)
        if self.only_first_click:
            return disks[:, :1], disks
        coord = disks if prev_mask is None else torch.cat([prev_mask, disks], dim=1)
        return coord, disks

    def backbone_forward(self, image: torch.Tensor, coord_features: torch.Tensor) -> Outputs:
        """-> ``{'instances', 'instances_aux': B x 1 x h x w logits, 'feature': B x Cf x h x w}``."""
        raise NotImplementedError

    def refine(self, image: torch.Tensor, points: torch.Tensor, feature: torch.Tensor,
               logits_lr: torch.Tensor, cache: Optional[ClickCache] = None) -> Outputs:
        """Correction head on all clicks -> ``{'instances_refined': B x 1 x h x w}`` logits.

        With a ``cache`` the click distances are updated with the new clicks only and the
        refiner reuses what does not depend on the clicks (same numbers as without).
        """
        if cache is None:
            click_map, dist2 = self.dist_maps_refine(image, points, out_dist_map=True)
        else:
            maps = self.dist_maps_refine
            dist2 = cache.click_distance(points, image.shape[-2], image.shape[-1], maps.spatial_scale)
            click_map = maps.disks(dist2)
        prev_logits = upsample(logits_lr, image.shape[-2:])
        return {"instances_refined": self.refiner(image, click_map, feature, prev_logits, points, dist2,
                                                  cache=cache)}

    def click_cache(self, cached_outputs: Optional[Outputs]) -> Optional[ClickCache]:
        """The :class:`ClickCache` of ``cached_outputs`` (a new one on a first click), or None.

        None (nothing cached, nothing reused) in train mode, with autograd enabled or under
        autocast: training builds new images and graphs on every call.
        """
        if self.training or torch.is_grad_enabled() or _autocast_enabled():
            return None
        cache = None if cached_outputs is None else cached_outputs.get(CACHE_KEY)
        return cache if isinstance(cache, ClickCache) else ClickCache()

    def forward(self, image: torch.Tensor, points: torch.Tensor, cached_outputs: Optional[Outputs] = None,
                cached_instances_lr: Optional[torch.Tensor] = None) -> Tuple[Outputs, Outputs]:
        """Run the first click (backbone + refiner) or a later click (refiner on cached outputs).

        Args:
            image: ``B x 4 x H x W`` (RGB in [0, 1] + previous mask; ``B x 3`` without
                ``with_prev_mask``), H and W multiples of 4.
            points: ``B x 2N x 3`` clicks ``(y, x, index)`` in input pixels; first N positive,
                last N negative, padding rows ``(-1, -1, -1)``; index 0 is the first click.
            cached_outputs: the ``outputs`` dict of an earlier call for the same image. It is
                reused and updated in place (``instances_lr`` becomes this call's low-res result).
            cached_instances_lr: ``B x 1 x h x w`` logits to correct instead of the cached ones.

        Returns:
            ``(outputs, refine_output)``: ``outputs`` holds ``instances`` / ``instances_aux``
            (backbone logits at H x W), ``feature`` (``B x Cf x h x w``), ``instances_lr``
            (``B x 1 x h x w``) and ``click_map`` (first-click disks); ``refine_output`` holds
            ``instances_refined``, the corrected logits at H x W.
            In inference (no autograd, eval mode, no autocast) ``outputs`` also keeps a
            :class:`ClickCache` under :data:`CACHE_KEY` that later clicks reuse.
        """
        cache = self.click_cache(cached_outputs)
        if cache is None:
            image, prev_mask = self.prepare_input(image)
        else:  # the predictor passes the same input tensor on every click of an image
            raw = image
            image, prev_mask = cache.get("input", (raw,), lambda: self.prepare_input(raw))
        size = image.shape[-2:]
        if cached_outputs is None:
            coord_features, click_map = self.get_coord_features(image, prev_mask, points)
            if self.maps_transform is not None:
                coord_features = self.maps_transform(coord_features)
            outputs = self.backbone_forward(image, coord_features)
            outputs["instances_lr"] = outputs["instances"].detach()
            outputs["click_map"] = click_map
            outputs["instances"] = upsample(outputs["instances"], size)
            if self.with_aux_output:
                outputs["instances_aux"] = upsample(outputs["instances_aux"], size)
        else:
            outputs = cached_outputs
        if cache is not None:
            outputs[CACHE_KEY] = cache
        logits_lr = outputs["instances_lr"] if cached_instances_lr is None else cached_instances_lr
        refine_output = self.refine(image, points, outputs["feature"], logits_lr.detach(), cache=cache)
        outputs["instances_lr"] = refine_output["instances_refined"].detach()
        refine_output["instances_refined"] = upsample(refine_output["instances_refined"], size)
        return outputs, refine_output
