"""The EMC-Click correction head: click-guided template selection, correlation and attention.

All maps inside the head live at 1/4 of the network input (``h = H/4``, ``w = W/4``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from isegm.utils.errors import CheckpointError


class XConvBnRelu2(nn.Module):
    """Depthwise 3x3 -> BN -> depthwise 3x3 -> 1x1 -> BN -> ReLU (no activation after the first BN)."""

    def __init__(self, input_dims: int, out_dims: int):
        super().__init__()
        self.conv3x3_1 = nn.Conv2d(input_dims, input_dims, 3, 1, 1, groups=input_dims)
        self.norm1 = nn.BatchNorm2d(input_dims)
        self.conv3x3_2 = nn.Conv2d(input_dims, input_dims, 3, 1, 1, groups=input_dims)
        self.conv1x1 = nn.Conv2d(input_dims, out_dims, 1)
        self.norm2 = nn.BatchNorm2d(out_dims)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3x3_2(self.norm1(self.conv3x3_1(x)))
        return self.activation(self.norm2(self.conv1x1(x)))

    def depthwise_part(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """The per-channel layers (3x3, BN, 3x3) for input channels ``start:stop`` only, eval mode.

        Every output channel depends on its own input channel alone, so the channels can be
        computed in parts and concatenated before :meth:`pointwise_part` (same numbers).
        """
        conv1, conv2, norm = self.conv3x3_1, self.conv3x3_2, self.norm1
        sl, groups = slice(start, stop), stop - start
        x = F.conv2d(x, conv1.weight[sl], conv1.bias[sl], 1, 1, 1, groups)
        x = F.batch_norm(x, norm.running_mean[sl], norm.running_var[sl], norm.weight[sl], norm.bias[sl],
                         False, 0.0, norm.eps)
        return F.conv2d(x, conv2.weight[sl], conv2.bias[sl], 1, 1, 1, groups)

    def pointwise_part(self, x: torch.Tensor) -> torch.Tensor:
        """1x1 -> BN -> ReLU on the output of the per-channel layers."""
        return self.activation(self.norm2(self.conv1x1(x)))


class ConvModule(nn.Module):
    """Conv (with bias) -> BN -> ReLU, with the state-dict names ``conv``, ``norm``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self.norm = nn.BatchNorm2d(out_channels)
        self.activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


def click_cells(points: torch.Tensor, h: int, w: int, spatial_scale: float) -> torch.Tensor:
    """``B x 2N x 3`` clicks (input pixels) -> ``B x 2N x 3`` long ``(y, x, index)`` cells of an h x w map.

    ``torch.round`` rounds half to even and only the upper edge is clamped, as in the original;
    padding rows ``(-1, -1, -1)`` become ``(0, 0, -1)`` (``round(-0.25) == -0``).
    """
    cells = points.clone()
    cells[..., :2] = torch.round(cells[..., :2] * spatial_scale)
    cells[..., 0] = cells[..., 0].clamp(max=h - 1)
    cells[..., 1] = cells[..., 1].clamp(max=w - 1)
    return cells.long()


def gather_pixels(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``B x (h*w) x C`` features, ``B x K`` flat indices -> ``B x K x C``."""
    return torch.gather(features, 1, index.unsqueeze(-1).expand(-1, -1, features.shape[-1]))


ATTENTION = ("exact", "fast")
"""How the correction head attends to its templates: ``'exact'`` computes what the original computes,
in its order; ``'fast'`` evaluates the queries at the templates only and runs the attention through
``F.scaled_dot_product_attention`` (float32 rounding differences only)."""


@dataclass(frozen=True)
class RefinerContext:
    """The correction head's per-image work, done once by :meth:`AttRefineAfterLayer.prepare`.

    Attributes:
        image: ``B x 3 x H x W`` normalised image.
        feature: ``B x M x h x w`` ``refine_fusion`` of the backbone feature (``h = H / 4``).
        image_part: ``B x 16*3 x h x w`` per-channel layers of ``image_conv1`` on the image's
            channels, or None (train mode: the block runs whole, see :meth:`AttRefineAfterLayer.prepare`).
        feature_part: ``B x M x h x w`` per-channel layers of ``fusion1[0]`` on ``feature``, or None.
    """

    image: torch.Tensor
    feature: torch.Tensor
    image_part: Optional[torch.Tensor] = None
    feature_part: Optional[torch.Tensor] = None


class AttRefineAfterLayer(nn.Module):
    """Lightweight correction head run on every click over cached backbone features.

    Args:
        input_dims: channels of the full-resolution input (3 image + 2 click disks + 1 mask).
        mid_dims: working width M of the head.
        feature_dims: channels Cf of the backbone feature.
        num_classes: output channels (1).
        spatial_scale: backbone-feature scale relative to the input (0.25).
        corr_channel: K, the number of templates selected per click sign.
        conv_layer: only ``'xconv2'`` (the block all released models use).
        cross_attention_head: heads of the click-guided attention.
    """

    # The released checkpoints store ``corr_conv`` under these two names as well.
    ALIASES = ("corr_conv_pos", "corr_conv_neg")

    def __init__(self, input_dims: int = 6, mid_dims: int = 96, feature_dims: int = 96,
                 num_classes: int = 1, spatial_scale: float = 0.25, corr_channel: int = 96,
                 conv_layer: str = "xconv2", cross_attention_head: int = 4):
        super().__init__()
        if conv_layer != "xconv2":
            raise ValueError(f"refiner_conf conv_layer={conv_layer!r} is not supported (only 'xconv2')")
        self.spatial_scale = spatial_scale
        self.corr_channel = corr_channel
        # Channel counts as constants, not read off tensors: an exported graph then slices the
        # per-channel weights with constant bounds, which onnxruntime folds into initializers.
        self.click_channels = 3   # positive disks, negative disks, previous probabilities
        self.image_channels = (input_dims - self.click_channels) * 16   # the RGB channels after PixelUnshuffle(4)
        self.mid_dims = mid_dims
        self.feature_convq = nn.Conv2d(mid_dims, mid_dims, 1)
        self.feature_convk = nn.Conv2d(mid_dims, mid_dims, 1)
        self.corr_conv = XConvBnRelu2(corr_channel, corr_channel)
        # Registering the same object again keeps the released keys (and the shared weights) exactly.
        for alias in self.ALIASES:
            setattr(self, alias, self.corr_conv)
        self.corr_fusion = XConvBnRelu2(corr_channel * 2, mid_dims)
        self.image_conv1 = nn.Sequential(nn.PixelUnshuffle(4), XConvBnRelu2(input_dims * 16, mid_dims))
        self.image_conv2 = XConvBnRelu2(mid_dims, mid_dims)
        self.refine_fusion = ConvModule(feature_dims, mid_dims, kernel_size=1, stride=1, padding=0)
        self.cross_attention = nn.MultiheadAttention(mid_dims, cross_attention_head)
        self.fusion1 = nn.Sequential(XConvBnRelu2(mid_dims * 2, mid_dims), XConvBnRelu2(mid_dims, mid_dims))
        self.all_fusion = XConvBnRelu2(mid_dims * 2, mid_dims)
        self.refine_fusion1 = XConvBnRelu2(mid_dims, mid_dims)
        self.refine_fusion2 = XConvBnRelu2(mid_dims, mid_dims)
        self.refine_pred = nn.Conv2d(mid_dims, num_classes, 3, 1, 1)

    def checkpoint_filter_fn(self, state: Dict[str, torch.Tensor], prefix: str, source: str
                             ) -> Dict[str, torch.Tensor]:
        """Fill or check the aliased ``corr_conv_pos.*`` / ``corr_conv_neg.*`` entries of a state dict.

        In a released file they hold the same tensors as ``corr_conv.*``. Absent, they are filled
        in from it; present with other values, the file is inconsistent (loading would keep
        whichever came last) and :class:`CheckpointError` names ``source``.
        """
        state = dict(state)
        canon = f"{prefix}corr_conv."
        for key in [k for k in state if k.startswith(canon)]:
            for alias in self.ALIASES:
                other = f"{prefix}{alias}.{key[len(canon):]}"
                if other not in state:
                    state[other] = state[key]
                elif torch.is_tensor(state[other]) and not torch.equal(state[other], state[key]):
                    raise CheckpointError(f"{source}: {other!r} differs from {key!r}, but the two are one "
                                          "shared block in this model")
        return state

    def prepare(self, image: torch.Tensor, feature: torch.Tensor) -> RefinerContext:
        """The head's per-image work: ``refine_fusion`` of the backbone feature and, in eval mode, the
        per-channel layers of ``image_conv1`` (image channels) and ``fusion1[0]`` (feature channels).

        Every output channel of those per-channel layers depends on its own input channel alone,
        so computing them by parts and concatenating before the 1x1 conv gives the numbers of the
        whole block bit for bit (tested). In train mode the batch-norm statistics are taken over
        the whole block, as in the original, so the parts are left to :meth:`forward`.

        Args:
            image: ``B x 3 x H x W`` normalised image.
            feature: ``B x Cf x h x w`` backbone feature.
        """
        size = (image.shape[-2] // 4, image.shape[-1] // 4)
        feature = self._fit_feature(self.refine_fusion(feature), size)
        if self.training:
            return RefinerContext(image, feature)
        unshuffle, block = self.image_conv1
        image_part = block.depthwise_part(unshuffle(image.contiguous()), 0, self.image_channels)
        # The whole-block path concatenates first, which gives a contiguous (NCHW) tensor whatever
        # the backbone's layout (SegFormer's is channels-last); the depthwise convs' rounding
        # depends on the layout, so the part is made contiguous too.
        feature_part = self.fusion1[0].depthwise_part(feature.contiguous(), 0, self.mid_dims)
        return RefinerContext(image, feature, image_part, feature_part)

    def forward(self, context: RefinerContext, click_map: torch.Tensor, prev_logits: torch.Tensor,
                points: torch.Tensor, dist2: torch.Tensor, attention: str = "exact") -> torch.Tensor:
        """One correction.

        Args:
            context: the per-image work of :meth:`prepare`.
            click_map: ``B x 2 x H x W`` positive / negative click disks of all clicks.
            prev_logits: ``B x 1 x H x W`` previous logits (upsampled).
            points: ``B x 2N x 3`` clicks ``(y, x, index)``, first N positive, padding ``-1``.
            dist2: ``B x 2 x H x W`` squared distance to the nearest pos / neg click
                (``1e6`` where a sign has none).
            attention: ``'exact'`` (default) or ``'fast'``, see :data:`ATTENTION`.

        Returns:
            ``B x 1 x h x w`` corrected logits.
        """
        if attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
        h, w = prev_logits.shape[-2] // 4, prev_logits.shape[-1] // 4
        return self.decode(context, click_map, prev_logits, click_cells(points, h, w, self.spatial_scale), dist2,
                           attention)

    def decode(self, context: RefinerContext, click_map: torch.Tensor, prev_logits: torch.Tensor,
               cells: torch.Tensor, dist2: torch.Tensor, attention: str = "exact", graph: bool = False,
               core: Optional[AttentionCore] = None) -> torch.Tensor:
        """:meth:`forward` given the clicks' cells (:func:`click_cells`) instead of their coordinates.

        ``graph=True`` (the exported corrector, with ``attention='fast'``) switches on the rewrites
        an exported graph needs or runs faster, each the same values up to float32 rounding: the
        correlation by a batched matrix product (a grouped convolution would keep ``groups=B`` as a
        constant), the cosine similarities as one product over the norms, the pixel unshuffle
        (:func:`unshuffle_by_conv`) and the output convolution (:func:`conv_by_taps`) as
        convolutions. ``core``: see :meth:`attend`.
        """
        fuse = self._fuse(context, torch.cat([click_map, torch.sigmoid(prev_logits)], 1), graph)   # B x M x h x w
        _, _, h, w = fuse.shape
        pos_idx, neg_idx = self.select_templates(fuse, cells, click_distance(dist2, h, w), graph)
        corr = self.correlate(fuse, pos_idx, neg_idx, attention, graph)
        fuse = fuse + self.attend(fuse, torch.cat([pos_idx, neg_idx], dim=-1), attention, core)
        fuse = self.all_fusion(torch.cat([fuse, corr], dim=1))
        fuse = self.refine_fusion2(self.refine_fusion1(fuse))
        return conv_by_taps(self.refine_pred, fuse) if graph else self.refine_pred(fuse)

    def _fuse(self, context: RefinerContext, clicks: torch.Tensor, graph: bool = False) -> torch.Tensor:
        """``fusion1`` of the backbone feature and the image + clicks branch -> ``B x M x h x w`` (>= 0).

        ``clicks``: ``B x 3 x H x W`` click disks and previous probabilities. ``graph``: the pixel
        unshuffle as a convolution (:func:`unshuffle_by_conv`, an exact copy).
        """
        if context.image_part is None:   # train mode: each block whole, as the original
            x = torch.cat([context.image, clicks], 1)
            image_feature = self.image_conv2(self.image_conv1(x))
            return self.fusion1(torch.cat([context.feature, image_feature], dim=1))
        unshuffle, block = self.image_conv1
        factor = unshuffle.downscale_factor
        clicks = (unshuffle_by_conv(clicks, factor, self.click_channels) if graph
                  else unshuffle(clicks.contiguous()))
        clicks = block.depthwise_part(clicks, self.image_channels, block.conv3x3_1.in_channels)
        image_feature = self.image_conv2(block.pointwise_part(torch.cat([context.image_part, clicks], 1)))
        first, second = self.fusion1
        mid = self.mid_dims
        image_part = first.depthwise_part(image_feature.contiguous(), mid, 2 * mid)
        return second(first.pointwise_part(torch.cat([context.feature_part, image_part], 1)))

    @staticmethod
    def _fit_feature(feature: torch.Tensor, size) -> torch.Tensor:
        if feature.shape[-2:] != size:
            feature = F.interpolate(feature, size=size, mode="bilinear", align_corners=True)
        return feature

    @torch.no_grad()
    def select_templates(self, fuse: torch.Tensor, cells: torch.Tensor, dist: torch.Tensor, graph: bool = False):
        """Pick K template pixels per sign: similar to that sign's clicks, unlike the other's, near.

        Args:
            fuse: ``B x M x h x w`` fused feature (non-negative).
            cells: ``B x 2N x 3`` long click cells ``(y, x, index)``.
            dist: ``B x 2 x (h*w)`` normalised distance to the nearest pos / neg click.

        Returns:
            two ``B x K`` long tensors of flat pixel indices (positive, negative).
        """
        score_pos, score_neg = self.template_scores(fuse, cells, dist, graph)
        pos_idx = torch.topk(score_pos, self.corr_channel, dim=-1).indices
        neg_idx = torch.topk(score_neg, self.corr_channel, dim=-1).indices
        return pos_idx, neg_idx

    @torch.no_grad()
    def template_scores(self, fuse: torch.Tensor, cells: torch.Tensor, dist: torch.Tensor, graph: bool = False):
        """The scores :meth:`select_templates` ranks: two ``B x (h*w)`` tensors (positive, negative).

        ``graph``: the cosine similarities as one matrix product divided by the pixels' norms,
        rather than normalising every pixel's feature first (the same values up to rounding).
        """
        batch, channels, h, w = fuse.shape
        num = cells.shape[1] // 2
        tokens = fuse.permute(0, 2, 3, 1).reshape(batch, h * w, channels)
        flat = (cells[..., 0] * w + cells[..., 1]).clamp(min=0)
        clicks = F.normalize(gather_pixels(tokens, flat), p=2.0, dim=-1)
        if graph:
            pixels = fuse.flatten(2)                                                      # B x M x hw
            ones = torch.ones(1, channels, dtype=fuse.dtype, device=fuse.device)
            norms = torch.sqrt(torch.matmul(ones, pixels * pixels)).clamp_min(1e-12)       # B x 1 x hw
            sim = torch.matmul(clicks, pixels) / norms
        else:
            sim = torch.einsum("bnc,bmc->bnm", clicks, F.normalize(tokens, p=2.0, dim=-1))
        # Padding slots score 0; harmless for the max since features are post-ReLU (cosine >= 0).
        sim = sim.masked_fill((cells[..., 2] < 0).unsqueeze(-1), 0)
        s_pos = sim[:, :num].max(dim=1)[0]
        s_neg = sim[:, num:].max(dim=1)[0]
        # Keep this arithmetic order: top-k near-ties are a few float32 steps apart.
        score_pos = (s_pos + (1 - s_neg)) * (1 - dist[:, 0])
        score_neg = (s_neg + (1 - s_pos)) * (1 - dist[:, 1])
        return score_pos, score_neg

    def correlate(self, fuse: torch.Tensor, pos_idx: torch.Tensor, neg_idx: torch.Tensor,
                  attention: str = "exact", graph: bool = False) -> torch.Tensor:
        """Correlate every pixel's key with the K positive and K negative template queries -> ``B x M x h x w``.

        ``'exact'`` computes the query conv on the whole map and gathers the templates, as the
        original; ``'fast'`` computes it at the 2K templates only (a 1x1 conv at one pixel is that
        pixel's ``F.linear``). ``graph``: see :meth:`decode`.
        """
        batch, channels, h, w = fuse.shape
        if attention == "exact":
            query = self.feature_convq(fuse).permute(0, 2, 3, 1).reshape(batch, h * w, channels)
            queries = [gather_pixels(query, idx) for idx in (pos_idx, neg_idx)]
        else:
            tokens = fuse.flatten(2).transpose(1, 2)                                 # B x hw x M
            weight, bias = self.feature_convq.weight.flatten(1), self.feature_convq.bias
            queries = [F.linear(gather_pixels(tokens, idx), weight, bias) for idx in (pos_idx, neg_idx)]
        key = self.feature_convk(fuse)
        corrs = []
        for query in queries:                                                        # B x K x M
            if graph:
                corr = torch.matmul(query, key.flatten(2)).reshape(batch, -1, h, w)
            else:   # K templates per sample as 1x1 kernels; groups=B keeps samples apart.
                corr = F.conv2d(key.reshape(1, batch * channels, h, w), query.reshape(-1, channels, 1, 1),
                                groups=batch).reshape(batch, -1, h, w)
            corrs.append(self.corr_conv(corr))
        return self.corr_fusion(torch.cat(corrs, dim=1))

    def attend(self, fuse: torch.Tensor, idx: torch.Tensor, attention: str = "exact",
               core: Optional[AttentionCore] = None) -> torch.Tensor:
        """Click-guided attention: every pixel attends to the 2K templates ``idx`` (``B x 2K``).

        ``'exact'`` calls ``nn.MultiheadAttention`` as the original (default ``need_weights=True``
        keeps its explicit-softmax path and rounding); ``'fast'`` uses
        ``F.scaled_dot_product_attention`` with the same weights and keeps no ``hw x 2K`` weight
        map per head; ``core`` replaces :func:`multi_head_attention` there (the exporter's fused
        operator). Returns ``B x M x h x w``, to be added to ``fuse``.
        """
        mha = self.cross_attention
        batch, embed, h, w = fuse.shape
        tokens = fuse.permute(0, 2, 3, 1).reshape(batch, h * w, embed)               # B x hw x M
        templates = gather_pixels(tokens, idx)                                       # B x 2K x M
        if attention == "exact":
            kv = templates.permute(1, 0, 2)
            out = mha(tokens.permute(1, 0, 2), kv, kv)[0].permute(1, 0, 2)           # B x hw x M
        else:
            w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
            b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
            out = (core or multi_head_attention)(F.linear(tokens, w_q, b_q), F.linear(templates, w_k, b_k),
                                                 F.linear(templates, w_v, b_v), mha.num_heads)
            out = F.linear(out, mha.out_proj.weight, mha.out_proj.bias)
        return out.transpose(1, 2).reshape(batch, embed, h, w)


def unshuffle_by_conv(x: torch.Tensor, factor: int, channels: int) -> torch.Tensor:
    """``nn.PixelUnshuffle(factor)`` of a ``B x channels x H x W`` tensor as a strided convolution with
    one-hot kernels (each output is ``1 * x`` plus zeros: the same values). onnxruntime runs the
    exported 6-D transpose of a pixel unshuffle far slower than this convolution."""
    eye = torch.eye(factor * factor, dtype=x.dtype, device=x.device).reshape(factor * factor, 1, factor, factor)
    return F.conv2d(x, eye.repeat(channels, 1, 1, 1), stride=factor, groups=channels)


def conv_by_taps(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 3x3, stride-1, padding-1 convolution with one output channel, as a 1x1 convolution to its 9
    taps and a 3x3 convolution that adds each tap's map at its offset (mathematically the same
    sum). onnxruntime's blocked convolutions pad the output channels to a block of 8 or 16: one
    output channel over all input channels costs as much as 16, where the taps' 1x1 costs 9."""
    out_channels, in_channels, kh, kw = conv.weight.shape
    if out_channels != 1:
        return conv(x)
    taps = conv.weight[0].permute(1, 2, 0).reshape(kh * kw, in_channels, 1, 1)    # tap t = (ky, kx)
    place = torch.eye(kh * kw, dtype=x.dtype, device=x.device).reshape(1, kh * kw, kh, kw)
    return F.conv2d(F.conv2d(x, taps), place, conv.bias, padding=conv.padding)


AttentionCore = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def multi_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
    """Scaled dot-product attention of projected ``B x L x M`` queries on ``B x S x M`` keys / values,
    ``heads`` heads of ``M / heads`` channels -> ``B x L x M`` (heads concatenated)."""
    batch, _, embed = query.shape

    def split(x: torch.Tensor) -> torch.Tensor:   # B x L x M -> B x heads x L x M/heads
        return x.view(batch, x.shape[1], heads, embed // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(query), split(key), split(value))
    return out.transpose(1, 2).reshape(batch, query.shape[1], embed)


def click_distance(dist2: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``B x 2 x H x W`` squared distances -> ``B x 2 x (h*w)`` distances over the input diagonal.

    "No click of this sign" (``1e6``) counts as squared distance 1, as in the original.
    """
    batch = dist2.shape[0]
    dist2 = dist2.masked_fill(dist2 == 1e6, 1)
    # rows^2 + cols^2 exact in float64, rounded once to float32 (as the original's torch.tensor(int)),
    # taken from the shape as a tensor so that an exported graph keeps it dynamic.
    size = torch._shape_as_tensor(dist2)[2:].to(device=dist2.device, dtype=torch.float64)
    dist = torch.sqrt(dist2) / torch.sqrt(size.square().sum().float())
    if dist2.shape[-2:] != (h, w):
        dist = F.interpolate(dist, (h, w), mode="bilinear", align_corners=True)
    return dist.reshape(batch, 2, h * w)
