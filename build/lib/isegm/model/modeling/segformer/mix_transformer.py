"""Mix Vision Transformer (MiT, the SegFormer encoder) with EMC-Click's click side input.

Token layout inside a stage: ``[B, N, C]`` with ``N = H' * W'`` (row-major over the stage grid).
Stage outputs are ``[B, C_i, H / s_i, W / s_i]`` with strides ``s = (4, 8, 16, 32)``.
"""
from __future__ import annotations

import math
from functools import partial
from typing import List, Sequence, Tuple

import torch
from timm.layers import DropPath
from torch import nn

# Block norm1/norm2 and the stage norms use eps 1e-6; the patch embeddings and the attention's
# spatial-reduction norm keep nn.LayerNorm's default 1e-5 (as in the release code).
BlockNorm = partial(nn.LayerNorm, eps=1e-6)


def tokens_to_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``[B, N, C]`` tokens -> ``[B, C, h, w]`` map."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


class OverlapPatchEmbed(nn.Module):
    """Strided conv with overlapping windows, then LayerNorm: ``[B, Cin, H, W]`` -> tokens ``[B, N, C]``."""

    def __init__(self, patch_size: int, stride: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=stride, padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim)  # default eps 1e-5, as in the SegFormer release

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class Attention(nn.Module):
    """Multi-head self-attention whose keys/values come from a grid shrunk by ``sr_ratio``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, sr_ratio: int) -> None:
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} not divisible by num_heads {num_heads}"
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)  # eps 1e-5, see BlockNorm

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        d = c // self.num_heads
        q = self.q(x).reshape(b, n, self.num_heads, d).permute(0, 2, 1, 3)  # [B, heads, N, d]
        if self.sr_ratio > 1:
            x = self.norm(self.sr(tokens_to_map(x, h, w)).flatten(2).transpose(1, 2))
        kv = self.kv(x).reshape(b, -1, 2, self.num_heads, d).permute(2, 0, 3, 1, 4)  # [2, B, heads, N', d]
        k, v = kv[0], kv[1]
        # Explicit softmax(q k^T * scale) v (not SDPA) to follow the release's arithmetic order.
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class DWConv(nn.Module):
    """Depthwise 3x3 conv applied to tokens on their ``h x w`` grid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.dwconv(tokens_to_map(x, h, w)).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """Mix-FFN: fc1 -> depthwise conv -> GELU (exact) -> fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), h, w)))


class Block(nn.Module):
    """Pre-norm transformer block with stochastic depth."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, sr_ratio: int,
                 drop_path: float) -> None:
        super().__init__()
        self.norm1 = BlockNorm(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, sr_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = BlockNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x), h, w))


class MixVisionTransformer(nn.Module):
    """Four-stage MiT encoder; a click map enters through ``patch_embed_side1``.

    Attribute names (``patch_embedK``, ``blockK``, ``normK``...) and their creation order are those of
    the original state dict.
    """

    def __init__(self, embed_dims: Sequence[int], depths: Sequence[int],
                 num_heads: Sequence[int] = (1, 2, 5, 8), mlp_ratio: float = 4.0,
                 sr_ratios: Sequence[int] = (8, 4, 2, 1), qkv_bias: bool = True,
                 drop_path_rate: float = 0.1, in_chans: int = 3, side_dims: int = 1) -> None:
        super().__init__()
        self.embed_dims = list(embed_dims)
        chans = [in_chans] + self.embed_dims[:-1]
        for i in range(4):
            first = i == 0
            setattr(self, f"patch_embed{i + 1}", OverlapPatchEmbed(
                7 if first else 3, 4 if first else 2, chans[i], embed_dims[i]))
        self.patch_embed_side1 = OverlapPatchEmbed(7, 4, side_dims, embed_dims[0])
        # Unused: the original builds it for its disabled "early fusion" variant (side embedding added
        # before stage 1). Kept only so that EMC-Click checkpoints load strictly with identical keys.
        self.norm_add = BlockNorm(embed_dims[0])

        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()  # stochastic depth, rising per block
        cur = 0
        for i in range(4):
            setattr(self, f"block{i + 1}", nn.ModuleList(
                Block(embed_dims[i], num_heads[i], mlp_ratio, qkv_bias, sr_ratios[i], dpr[cur + j])
                for j in range(depths[i])))
            setattr(self, f"norm{i + 1}", BlockNorm(embed_dims[i]))
            cur += depths[i]
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """SegFormer release init (training only): trunc-normal Linear, N(0, sqrt(2/fan_out)) conv."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, side: torch.Tensor) -> List[torch.Tensor]:
        """``x``: normalized image ``[B, 3, H, W]``; ``side``: click map ``[B, side_dims, H, W]``.

        Returns ``[c1, c2, c3, c4]``, ``c_i``: ``[B, embed_dims[i], H / s_i, W / s_i]``.
        """
        outs = []
        for i in range(4):
            x, h, w = getattr(self, f"patch_embed{i + 1}")(x)
            for blk in getattr(self, f"block{i + 1}"):
                x = blk(x, h, w)
            x = tokens_to_map(getattr(self, f"norm{i + 1}")(x), h, w).contiguous()
            outs.append(x)
            if i == 0:
                # Quirk of the original: the click embedding is added after c1 was recorded, so the
                # decoder's c1 never sees the clicks; only stages 2-4 do.
                s, sh, sw = self.patch_embed_side1(side)
                x = x + tokens_to_map(s, sh, sw)
        return outs


def mit_b0(side_dims: int = 1) -> MixVisionTransformer:
    """MiT-B0 encoder with a ``side_dims``-channel click input."""
    return MixVisionTransformer(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2), side_dims=side_dims)


def mit_b3(side_dims: int = 1) -> MixVisionTransformer:
    """MiT-B3 encoder with a ``side_dims``-channel click input."""
    return MixVisionTransformer(embed_dims=(64, 128, 320, 512), depths=(3, 4, 18, 3), side_dims=side_dims)
