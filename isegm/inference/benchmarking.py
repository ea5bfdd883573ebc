"""Helpers of ``scripts/count_flops.py`` and ``scripts/benchmark.py``: synthetic clicks, FLOP counts, timings.

Conventions: images and clicks are synthetic and seeded (the numbers do not depend on weights or
image content, except the number of clicks a session makes); a *first click* is ``encode`` +
``correct`` (backbone + correction head), a *later click* one ``correct`` on the embedding
(correction head only), with the clicks added one by one as in a session. FLOPs are counted with
``torch.utils.flop_counter`` and follow its convention, 2 FLOPs per multiply-add (MACs = FLOPs / 2);
only matrix products, convolutions and attention are counted, not element-wise operations (BN,
ReLU, resizing...).
"""
from __future__ import annotations

import random
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from isegm.build import list_models
from isegm.inference.evaluation import evaluate_sample
from isegm.model.clicks import encode_clicks
from isegm.model.is_model import ISModel
from isegm.model.refiner import ATTENTION
from isegm.utils.errors import InputError

Click = Tuple[float, float, bool]

__all__ = ["parse_size", "select_models", "synthetic_clicks", "points_tensor", "count_flops", "count_click_flops",
           "num_parameters", "Timer", "time_model_clicks", "synthetic_sample", "time_session", "median",
           "calibrated_model"]


def parse_size(text: str, multiple: int = 1) -> Tuple[int, int]:
    """``'384x512'`` -> ``(384, 512)``; ValueError unless both sides are multiples of ``multiple``."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"size {text!r}: expected HxW, e.g. 384x512") from None
    if height % multiple or width % multiple:
        raise InputError(f"size {text}: height and width must be multiples of {multiple}")
    return height, width


def select_models(names: str, parser) -> List[str]:
    """Comma-separated model names -> list, each one of :func:`isegm.build.list_models` (else ``parser.error``)."""
    models = [m for m in names.split(",") if m]
    unknown = sorted(set(models) - set(list_models()))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list_models()}")
    return models


def synthetic_clicks(num: int, height: int, width: int, seed: int = 0) -> List[Click]:
    """``num`` clicks ``(y, x, is_positive)``: the first positive, then alternating signs, inside the image."""
    rng = random.Random(seed)
    clicks = []
    for i in range(num):
        y = rng.uniform(0.1, 0.9) * (height - 1)
        x = rng.uniform(0.1, 0.9) * (width - 1)
        clicks.append((y, x, i % 2 == 0))
    return clicks


def points_tensor(clicks: Sequence[Click], batch: int = 1, width: Optional[int] = None,
                  device="cpu") -> torch.Tensor:
    """Clicks -> ``batch x 2N x 3`` float64 network points as the predictor builds them.

    With ``batch == 2`` and ``width`` given, the second copy is mirrored (``x' = width - 1 - x``),
    as with the predictor's flip augmentation.
    """
    copies = [list(clicks)] * batch
    if batch > 1 and width is not None:
        copies[1] = [(y, width - 1 - x, p) for y, x, p in clicks]
    return encode_clicks(copies, device=device)


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    # query B x H x L x E, key B x H x S x E, value B x H x S x Ev: Q K^T and the weighted sum of V.
    b, h, length, e = query
    s, ev = key[-2], value[-1]
    return 2 * b * h * length * s * e + 2 * b * h * length * s * ev


def _custom_flop_formulas() -> dict:
    # torch.utils.flop_counter knows the CUDA attention kernels, not the CPU one.
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {} if op is None else {op: _cpu_sdpa_flops}


def count_flops(fn: Callable[..., object], *args) -> Tuple[int, object]:
    """-> ``(FLOPs, fn(*args))``, FLOPs (2 per multiply-add) counted by ``torch.utils.flop_counter``."""
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flop_formulas())
    with counter:
        result = fn(*args)
    return int(counter.get_total_flops()), result


def num_parameters(model: torch.nn.Module) -> int:
    """Unique parameters (the refiner's aliased ``corr_conv`` counts once)."""
    return sum(p.numel() for p in model.parameters())


def count_click_flops(model: ISModel, height: int, width: int, batch: int = 1, seed: int = 0) -> Dict[str, int]:
    """FLOPs of a first click and of a later (second) click on a ``batch x 4 x height x width`` input.

    ``first``: ``encode`` + ``correct``; ``later_exact`` / ``later_fast``: one ``correct`` with
    that attention on the embedding; ``later_plain``: the original's later click, i.e. the
    ``forward`` call on cached outputs, which redoes the head's per-image work every click.
    """
    image = torch.rand(batch, 4, height, width, generator=torch.Generator().manual_seed(seed))
    clicks = synthetic_clicks(2, height, width, seed)
    p1 = points_tensor(clicks[:1], batch, width)
    p2 = points_tensor(clicks, batch, width)
    result = {}
    with torch.inference_mode():
        embedding = model.encode(image, p1)
        first = model.correct(embedding, p1)
        result["first"] = count_flops(lambda: model.correct(model.encode(image, p1), p1))[0]
        for attention in ATTENTION:
            result[f"later_{attention}"] = count_flops(model.correct, embedding, p2, first, attention)[0]
        outputs, _ = model(image, p1)
        result["later_plain"] = count_flops(model, image, p2, outputs)[0]
    return result


def calibrated_model(name: str, seed: int = 0, size: Tuple[int, int] = (192, 256)) -> ISModel:
    """A random-weight network ``name`` whose outputs have the scale of a trained one (eval mode, frozen).

    Plain random weights give near-constant logits (about 0.07 everywhere for hr18s), useless to
    compare two backends. Here the norm layers' affine parameters are drawn (gain U(0.75, 1.25),
    shift N(0, 0.1)) and the batch-norm statistics are those of one batch of four seeded synthetic
    images (:func:`synthetic_sample` at ``size``, seeds ``seed`` to ``seed + 3``) with one click each,
    as the shared fixtures were made. The outputs keep that scale (logits of tens) on such images
    at that size; far from them (noise, another size) random activations can grow to thousands.
    """
    from isegm.build import MODEL_REGISTRY

    torch.manual_seed(seed)
    model = MODEL_REGISTRY[name](init=True)
    gen = torch.Generator().manual_seed(seed + 1)
    norms = (torch.nn.BatchNorm2d, torch.nn.LayerNorm, torch.nn.SyncBatchNorm)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, norms) and module.weight is not None:
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 0.5 + 0.75)
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None   # plain average of the batch statistics
        model.train()   # whole blocks in the head, every batch norm on batch statistics
        height, width = size
        images = torch.from_numpy(np.stack([synthetic_sample(height, width, seed + i)[0] for i in range(4)]))
        images = torch.cat([images.permute(0, 3, 1, 2).float() / 255, torch.zeros(4, 1, height, width)], dim=1)
        clicks = [synthetic_clicks(1, height, width, seed + i) for i in range(4)]
        model(images, encode_clicks(clicks))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.1
    return model.eval().requires_grad_(False)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


class Timer:
    """Wall-clock timer that waits for the device (``torch.cuda.synchronize``) on CUDA."""

    def __init__(self, device: torch.device):
        self.cuda = torch.device(device).type == "cuda"

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def __call__(self, fn: Callable[..., object], *args) -> Tuple[float, object]:
        """-> ``(seconds, fn(*args))``."""
        start = self.now()
        result = fn(*args)
        return self.now() - start, result


def time_model_clicks(model: ISModel, height: int, width: int, batch: int, click_counts: Sequence[int],
                      repeats: int, device, baseline_counts: Sequence[int] = (), seed: int = 0,
                      warmup: int = 1, baseline_repeats: Optional[int] = None,
                      attention: str = "exact") -> Dict[str, object]:
    """Median latencies (seconds) of the model calls of a click session, under ``torch.inference_mode``.

    Each repeat is one session: the first click (``encode`` + ``correct``, timed), a later click
    with that single click again (``n = 1``), then clicks 2 .. max(click_counts), each a
    ``correct`` whose points hold every click so far, extending the previous correction (the
    predictor's use). ``later[n]`` is the median over repeats of the call made with ``n`` clicks.
    ``full[n]`` (for ``n`` in ``baseline_counts``) times the "full network on every click"
    baseline: a first click with all ``n`` clicks, what RITM-style methods pay on every click.
    """
    timer = Timer(device)
    image = torch.rand(batch, 4, height, width, generator=torch.Generator().manual_seed(seed)).to(device)
    top = max(list(click_counts) + list(baseline_counts) + [1])
    clicks = synthetic_clicks(top, height, width, seed)
    points = [points_tensor(clicks[:n], batch, width, device) for n in range(1, top + 1)]
    first, later = [], {n: [] for n in click_counts}
    full = {n: [] for n in baseline_counts}

    def first_click(p):
        embedding = model.encode(image, p)
        return embedding, model.correct(embedding, p, attention=attention)

    with torch.inference_mode():
        for _ in range(warmup):  # first calls pay one-off costs (allocator, oneDNN primitive caches)
            embedding, correction = first_click(points[0])
            model.correct(embedding, points[min(1, top - 1)], correction, attention)
        for _ in range(repeats):
            t, (embedding, correction) = timer(first_click, points[0])
            first.append(t)
            times = {1: timer(model.correct, embedding, points[0], correction, attention)[0]}
            for n in range(2, top + 1):
                times[n], correction = timer(model.correct, embedding, points[n - 1], correction, attention)
            for n in click_counts:
                later[n].append(times[n])
        for _ in range(baseline_repeats if baseline_repeats is not None else repeats):
            for n in baseline_counts:
                full[n].append(timer(first_click, points[n - 1])[0])
    return {"first": median(first), "later": {n: median(v) for n, v in later.items()},
            "full": {n: median(v) for n, v in full.items()},
            "runs": {"first": first, "later": later, "full": full}}


def synthetic_sample(height: int, width: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A seeded ``H x W x 3`` uint8 image with an object (ellipse + disk) and its ``H x W`` int32 mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    cy, cx, ry, rx = 0.5 * height, 0.45 * width, 0.3 * height, 0.25 * width
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    mask |= (yy - 0.3 * height) ** 2 + (xx - 0.65 * width) ** 2 <= (0.12 * min(height, width)) ** 2
    base = np.stack([0.5 + 0.3 * np.sin(xx / 37.0), 0.4 + 0.3 * np.cos(yy / 23.0),
                     0.5 + 0.2 * np.sin((xx + yy) / 51.0)], axis=-1)
    base[mask] = base[mask] * 0.4 + np.array([0.55, 0.1, 0.1], dtype=np.float32)
    image = np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1)
    return (image * 255).astype(np.uint8), mask.astype(np.int32)


def time_session(predictor, image: np.ndarray, gt_mask: np.ndarray, max_clicks: int = 20,
                 pred_thr: float = 0.49) -> Dict[str, object]:
    """Run one NoC session (``evaluate_sample``, no early stop) and split each click's time.

    Returns per-click lists (seconds): ``total`` (from the click's ``get_prediction`` call to the
    next one: predictor, network, thresholding, IoU, next click of the clicker), ``network`` (the
    model's ``encode`` / ``correct`` calls) and ``other`` = total - network, plus ``clicks`` made.
    """
    net = predictor.net
    timer = Timer(getattr(predictor, "device", "cpu"))
    calls, marks = [], []

    def timed(stage):
        def call(*args, **kwargs):
            start = timer.now()
            result = stage(*args, **kwargs)
            calls.append((len(marks), timer.now() - start))
            return result
        return call

    get_prediction = predictor.get_prediction

    def marked_get_prediction(*args, **kwargs):
        marks.append(timer.now())
        return get_prediction(*args, **kwargs)

    net.encode, net.correct = timed(net.encode), timed(net.correct)
    predictor.get_prediction = marked_get_prediction
    try:
        clicks, ious, _ = evaluate_sample(image, gt_mask, predictor, max_iou_thr=1.01, max_clicks=max_clicks,
                                          pred_thr=pred_thr)
        marks.append(timer.now())
    finally:
        del net.encode, net.correct
        del predictor.get_prediction
    network = [sum(t for click, t in calls if click == k) for k in range(1, len(marks))]
    total = [b - a for a, b in zip(marks, marks[1:])]
    return {"clicks": len(clicks), "total": total, "network": network,
            "other": [t - n for t, n in zip(total, network)], "ious": [float(v) for v in ious]}

