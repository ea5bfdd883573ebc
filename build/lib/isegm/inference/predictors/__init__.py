"""Compatibility: RITM's predictor factory, for scripts written against RITM / the original EMC-Click.

New code builds :class:`isegm.inference.predictor.EMCClickPredictor` directly.
"""
from __future__ import annotations

from typing import Optional

import torch

from isegm.inference.predictor import EMCClickPredictor
from isegm.utils.errors import InputError

__all__ = ["get_predictor", "EMCClickPredictor"]

MODES = ("EMC-Click",)


def get_predictor(net: torch.nn.Module, brs_mode: str, device, prob_thresh: float = 0.49, with_flip: bool = True,
                  focus_crop_r: float = 1.4, zoom_in_params: Optional[dict] = None,
                  predictor_params: Optional[dict] = None, **kwargs) -> EMCClickPredictor:
    """Build the predictor for ``brs_mode`` (only ``'EMC-Click'``).

    As in the original, only ``zoom_in_params['target_size']`` is used (as the inference short
    side, default 384) and ``predictor_params['net_clicks_limit']`` if given (plus this project's
    ``predictor_params['attention']``); ``prob_thresh`` and ``focus_crop_r`` are accepted for
    compatibility and unused (the caller thresholds).
    """
    if brs_mode not in MODES:
        raise InputError(f"unknown predictor mode {brs_mode!r}; this codebase implements {list(MODES)}")
    infer_size = (zoom_in_params or {}).get("target_size", 384)
    if isinstance(infer_size, (tuple, list)):
        raise InputError(f"EMC-Click resizes by the short side; target_size must be an int, got {infer_size!r}")
    params = dict(predictor_params or {})
    return EMCClickPredictor(net, device, with_flip=with_flip, infer_size=infer_size,
                             net_clicks_limit=params.get("net_clicks_limit"),
                             attention=params.get("attention", "exact"))
