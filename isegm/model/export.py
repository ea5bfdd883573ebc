"""Both stages of an EMC-Click network as ONNX graphs (``scripts/export_onnx.py``).

* the **encoder** (first click, once per image): ``image`` (``B x C x H x W`` in [0, 1], C = 4 with
  the previous-mask channel) and ``first_dist2`` (``B x 2 x H x W`` squared distances of the first
  click, :func:`~isegm.model.ops.squared_click_distance`) -> ``logits_lr`` (``B x 1 x h x w``) and the
  correction head's per-image work ``image_part`` / ``feature_part`` (``B x * x h x w``, ``h = H / 4``);
* the **corrector** (one correction): the encoder's ``image_part`` / ``feature_part``, the logits
  to start from ``prev_logits_lr`` (the encoder's or the previous correction's ``logits_lr``),
  ``dist2`` (``B x 2 x H x W`` squared distances of every click so far:
  :class:`~isegm.model.ops.ClickDistances`, kept outside so a click costs the same whatever the
  number of clicks) and ``cells`` (``B x 2N x 3`` int64 ``(y, x, index)`` of the clicks at the
  head's resolution, :func:`~isegm.model.refiner.click_cells`) -> ``logits`` (``B x 1 x H x W``) and
  ``logits_lr`` (``B x 1 x h x w``, what the next correction starts from).

Every value the graphs depend on is an input tensor: the clicks' validity is the index column
of ``cells`` (``-1``: padding), never a Python decision taken while tracing. B (1, or 2 with the
flip), H, W and N are dynamic. The corrector uses the head's ``'fast'`` attention (queries at the
templates) and correlates by a matrix product (:meth:`~isegm.model.refiner.AttRefineAfterLayer.decode`).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Dict, Tuple, Union

import torch
from torch import nn

from isegm.model.is_model import ISModel, upsample
from isegm.model.ops import squared_click_distance
from isegm.model.refiner import RefinerContext, click_cells, multi_head_attention
from isegm.model.variants import variant_of
from isegm.utils.errors import InputError

OPSET = 18
ENCODER_FILE, CORRECTOR_FILE, RUNTIME_FILE = "encoder.onnx", "corrector.onnx", "runtime.json"
ENCODER_INPUTS, ENCODER_OUTPUTS = ("image", "first_dist2"), ("logits_lr", "image_part", "feature_part")
CORRECTOR_INPUTS = ("image_part", "feature_part", "prev_logits_lr", "dist2", "cells")
CORRECTOR_OUTPUTS = ("logits", "logits_lr")
RUNTIME_FORMAT = 1


class _FusedAttention(torch.autograd.Function):
    """:func:`~isegm.model.refiner.multi_head_attention`, exported as onnxruntime's fused
    ``com.microsoft.MultiHeadAttention`` operator (one kernel for the scores, softmax and weighted
    sum: no ``heads x hw x 2K`` score tensor, no head transposes)."""

    @staticmethod
    def forward(ctx, query, key, value, heads: int):
        return multi_head_attention(query, key, value, heads)

    @staticmethod
    def symbolic(g, query, key, value, heads: int):
        out = g.op("com.microsoft::MultiHeadAttention", query, key, value, num_heads_i=heads)
        out.setType(query.type())   # the output has the query's shape and type
        return out


def fused_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
    return _FusedAttention.apply(query, key, value, heads)


class EncoderGraph(nn.Module):
    """:meth:`ISModel.encode_disks` as a function of tensors: see the module docstring."""

    def __init__(self, model: ISModel):
        super().__init__()
        self.model = model
        self.eval()   # the exporter restores the wrapper's mode afterwards, recursively

    def forward(self, image: torch.Tensor, first_dist2: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        embedding = self.model.encode_disks(image, self.model.dist_maps_base.disks(first_dist2))
        return embedding.logits_lr, embedding.refiner.image_part, embedding.refiner.feature_part


class CorrectorGraph(nn.Module):
    """:meth:`ISModel.correct` as a function of tensors: see the module docstring.

    ``fused``: the attention as onnxruntime's fused operator (:func:`fused_attention`; the graph
    then runs in onnxruntime only), else as standard ONNX operators.
    """

    def __init__(self, model: ISModel, fused: bool = False):
        super().__init__()
        self.model = model
        self.core = fused_attention if fused else None
        self.eval()   # the exporter restores the wrapper's mode afterwards, recursively

    def forward(self, image_part: torch.Tensor, feature_part: torch.Tensor, prev_logits_lr: torch.Tensor,
                dist2: torch.Tensor, cells: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        size = dist2.shape[-2:]
        context = RefinerContext(image=None, feature=None, image_part=image_part, feature_part=feature_part)
        disks = self.model.dist_maps_refine.disks(dist2)
        refined = self.model.refiner.decode(context, disks, upsample(prev_logits_lr, size), cells, dist2,
                                            attention="fast", graph=True, core=self.core)
        return upsample(refined, size), refined


def input_channels(model: ISModel) -> int:
    """Channels of the encoder's ``image``: RGB, plus the previous mask when the model takes one."""
    return 4 if model.with_prev_mask else 3


def example_inputs(model: ISModel, height: int = 96, width: int = 128, batch: int = 2, clicks: int = 3,
                   seed: int = 0) -> Dict[str, Tuple[torch.Tensor, ...]]:
    """Seeded inputs of both graphs (tracing examples and parity checks): ``{'encoder': ..., 'corrector': ...}``.

    ``clicks`` clicks per sign at random places (no padding); the corrector's feature inputs come
    from the model's own encoder on the image.
    """
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, input_channels(model), height, width, generator=gen)
    yx = torch.rand(batch, 2 * clicks, 2, generator=gen, dtype=torch.float64) * torch.tensor(
        [height - 1, width - 1], dtype=torch.float64)
    index = torch.arange(2 * clicks, dtype=torch.float64).expand(batch, -1)[..., None]
    points = torch.cat([yx, index], dim=-1)
    scale = model.dist_maps_refine.spatial_scale
    first = squared_click_distance(model.first_click(points), height, width, scale)
    with torch.inference_mode():
        logits_lr, image_part, feature_part = EncoderGraph(model)(image, first)
    cells = click_cells(points, height // 4, width // 4, model.refiner.spatial_scale)
    dist2 = squared_click_distance(points, height, width, scale)
    return {"encoder": (image, first), "corrector": (image_part, feature_part, logits_lr, dist2, cells)}


def export_onnx(model: ISModel, output: Union[str, os.PathLike], height: int = 96, width: int = 128,
                name: str = "", fused: bool = True) -> Dict[str, object]:
    """Write ``encoder.onnx``, ``corrector.onnx`` and ``runtime.json`` of ``model`` into ``output``.

    Traced on a ``2 x C x height x width`` example (any size with multiples of 4 runs afterwards).
    ``fused``: the corrector's attention as onnxruntime's fused operator (see :class:`CorrectorGraph`);
    False keeps standard ONNX operators only. Returns the description written to ``runtime.json``.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder (the export writes three files into a folder)")
    output.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    inputs = example_inputs(model, height, width)
    image_axes = {0: "batch", 2: "height", 3: "width"}
    low_axes = {0: "batch", 2: "height_4", 3: "width_4"}
    graphs = [
        (EncoderGraph(model), inputs["encoder"], ENCODER_FILE, ENCODER_INPUTS, ENCODER_OUTPUTS,
         {"image": image_axes, "first_dist2": image_axes, **{k: low_axes for k in ENCODER_OUTPUTS}}, False),
        (CorrectorGraph(model, fused), inputs["corrector"], CORRECTOR_FILE, CORRECTOR_INPUTS, CORRECTOR_OUTPUTS,
         {"image_part": low_axes, "feature_part": low_axes, "prev_logits_lr": low_axes, "dist2": image_axes,
          "cells": {0: "batch", 1: "clicks"}, "logits": image_axes}, fused),
    ]
    for module, args, filename, input_names, output_names, axes, contrib in graphs:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns on every shape read; the graphs are checked against eager PyTorch instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(output / filename), input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=axes, opset_version=OPSET,
                              dynamo=False, do_constant_folding=True,
                              custom_opsets={"com.microsoft": 1} if contrib else None)
    variant = variant_of(getattr(model, "_config", {}) or {})
    runtime = {
        "format": RUNTIME_FORMAT,
        "model": name or (variant.name if variant else type(model).__name__),
        "class": f"{type(model).__module__}.{type(model).__name__}",
        "encoder": ENCODER_FILE, "corrector": CORRECTOR_FILE,
        "encoder_inputs": list(ENCODER_INPUTS), "encoder_outputs": list(ENCODER_OUTPUTS),
        "corrector_inputs": list(CORRECTOR_INPUTS), "corrector_outputs": list(CORRECTOR_OUTPUTS),
        "input_channels": input_channels(model),
        "input_layout": "B x C x H x W float32 RGB in [0, 1] (+ previous mask), B = 1 or 2 (flip), "
                        "H and W multiples of 4",
        "normalization": {"mean": model.normalization.mean.flatten().tolist(),
                          "std": model.normalization.std.flatten().tolist(), "applied_in_graph": True},
        "spatial_scale": model.dist_maps_refine.spatial_scale,
        "head_scale": model.refiner.spatial_scale,
        "templates": model.refiner.corr_channel,
        "norm_radius": model.dist_maps_refine.norm_radius,
        "opset": OPSET,
        "fused_attention": fused,
        "torch": torch.__version__,
    }
    (output / RUNTIME_FILE).write_text(json.dumps(runtime, indent=1) + "\n")
    return runtime
