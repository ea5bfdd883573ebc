"""Parity of the exported graphs with PyTorch, stage by stage, with template ties reported.

The corrector picks K templates per sign by ``topk`` over scores (:meth:`~isegm.model.refiner.
AttRefineAfterLayer.template_scores`), in score order, and the order matters: template k feeds
channel k of ``corr_conv``, whose per-channel weights differ. Where two of the K + 1 best scores
are closer than float32 rounding can separate, onnxruntime and PyTorch may pick or order the
templates differently and the logits then differ by far more than rounding. Such clicks are
counted as ties and reported, not hidden.
"""
from __future__ import annotations

import copy
import os
from typing import Dict, List, Union

import torch

from isegm.inference.benchmarking import points_tensor, synthetic_clicks, synthetic_sample
from isegm.inference.onnx_backend import OnnxEmbedding, OnnxModel
from isegm.model.export import CorrectorGraph
from isegm.model.is_model import ISModel, upsample
from isegm.model.ops import squared_click_distance
from isegm.model.refiner import click_cells, click_distance

TIE = 1e-6
"""Two of the K + 1 best template scores closer than this count as a tie."""


def ranking_gap(model: ISModel, embedding, points: torch.Tensor, prev_logits_lr: torch.Tensor,
                 dist2: torch.Tensor) -> float:
    """The smallest gap between consecutive scores among the K + 1 best templates, over signs and batch
    items (a swap anywhere in there changes the corrector's input)."""
    refiner = model.refiner
    size = embedding.image.shape[-2:]
    clicks = torch.cat([model.dist_maps_refine.disks(dist2), torch.sigmoid(upsample(prev_logits_lr, size))], 1)
    fuse = refiner._fuse(embedding.refiner, clicks)
    _, _, h, w = fuse.shape
    cells = click_cells(points, h, w, refiner.spatial_scale)
    scores = refiner.template_scores(fuse, cells, click_distance(dist2, h, w))
    top = [torch.topk(s, refiner.corr_channel + 1, dim=-1).values for s in scores]
    return min(float((t[:, :-1] - t[:, 1:]).min()) for t in top)


def _float64_embedding(double: ISModel, image: torch.Tensor, points: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The encoder's outputs computed in float64: the reference both float32 backends round away from."""
    height, width = image.shape[-2:]
    disks = double.dist_maps_base.disks(squared_click_distance(double.first_click(points), height, width))
    embedding = double.encode_disks(image.double(), disks.double())
    return {"logits_lr": embedding.logits_lr, "image_part": embedding.refiner.image_part,
            "feature_part": embedding.refiner.feature_part}


def _max_diff(a, b) -> Dict[str, float]:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    scale = float(b.abs().max())
    diff = float((a - b).abs().max())
    return {"max_abs": diff, "ref_max_abs": scale, "relative": diff / max(scale, 1.0)}


@torch.inference_mode()
def compare_stages(model: ISModel, directory: Union[str, os.PathLike], height: int = 192, width: int = 256,
                   clicks: int = 6, seed: int = 0, threads: int = 1) -> Dict[str, object]:
    """Run both stages in PyTorch and onnxruntime on a seeded synthetic image (batch 2, flip).

    The encoder is compared on the same image; each correction (1 .. ``clicks`` clicks) is given
    the same inputs in both (PyTorch's embedding and PyTorch's previous correction), so the
    differences are the graph's own, not accumulated ones. Returns ``{'encoder': {output: diffs},
    'corrector': [{'clicks', 'logits', 'logits_lr', 'gap', 'tie'}]}``.
    """
    onnx = OnnxModel(directory, threads=threads)
    image_u8, _ = synthetic_sample(height, width, seed)
    image = torch.from_numpy(image_u8).permute(2, 0, 1)[None].float() / 255
    image = torch.cat([image, torch.zeros(1, 1, height, width)], dim=1)
    image = torch.cat([image, image.flip(3)])
    all_clicks = synthetic_clicks(clicks, height, width, seed)
    points = [points_tensor(all_clicks[:n], 2, width) for n in range(1, clicks + 1)]
    embedding = model.encode(image, points[0])
    ort_embedding = onnx.encode(image, points[0])
    double = copy.deepcopy(model).double()
    exact = _float64_embedding(double, image, points[0])
    report = {"encoder": {}, "corrector": []}
    for name, ref in (("logits_lr", embedding.logits_lr), ("image_part", embedding.refiner.image_part),
                      ("feature_part", embedding.refiner.feature_part)):
        report["encoder"][name] = {**_max_diff(getattr(ort_embedding, name), ref),
                                   "onnx_vs_float64": _max_diff(getattr(ort_embedding, name), exact[name])["max_abs"],
                                   "torch_vs_float64": _max_diff(ref, exact[name])["max_abs"]}
    # The corrector on PyTorch's embedding: its own differences only.
    same_input = OnnxEmbedding(embedding.logits_lr.numpy(), embedding.refiner.image_part.numpy(),
                               embedding.refiner.feature_part.numpy(), (height, width))
    prev = None
    for n, p in enumerate(points, start=1):
        ours = onnx.correct(same_input, p, prev)
        ref = model.correct(embedding, p, prev, attention="fast")
        start = embedding.logits_lr if prev is None else prev.logits_lr
        gap = ranking_gap(model, embedding, p, start, ref.clicks.dist2)
        cells = click_cells(p, height // 4, width // 4, model.refiner.spatial_scale)
        logits64, _ = CorrectorGraph(double)(embedding.refiner.image_part.double(),
                                             embedding.refiner.feature_part.double(), start.double(),
                                             ref.clicks.dist2.double(), cells)
        report["corrector"].append({
            "clicks": n, "logits": {**_max_diff(ours.logits, ref.logits),
                                    "onnx_vs_float64": _max_diff(ours.logits, logits64)["max_abs"],
                                    "torch_vs_float64": _max_diff(ref.logits, logits64)["max_abs"]},
            "logits_lr": _max_diff(ours.logits_lr, ref.logits_lr), "gap": gap, "tie": gap < TIE})
        prev = model.correct(embedding, p, prev)   # the exact chain drives the next click
    return report


def summarize(report: Dict[str, object]) -> Dict[str, float]:
    """Worst encoder relative difference (and each backend's float32 error, relative to the float64
    outputs); worst corrector logit difference away from ties, and the number of tied clicks."""
    corrector: List[dict] = report["corrector"]
    clean = [c["logits"]["max_abs"] for c in corrector if not c["tie"]]
    encoder = report["encoder"].values()
    return {"encoder_relative": max(d["relative"] for d in encoder),
            "encoder_float32_error": {b: max(d[f"{b}_vs_float64"] / max(d["ref_max_abs"], 1.0) for d in encoder)
                                      for b in ("torch", "onnx")},
            "corrector_max_abs": max(clean) if clean else float("nan"),
            "ties": sum(c["tie"] for c in corrector), "clicks": len(corrector)}
