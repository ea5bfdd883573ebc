"""Build the five released EMC-Click networks by name (the release file stems).

    model = build_emc_click("hr18s")                                 # random weights, train mode
    model = build_emc_click("hr18s", checkpoint="weights/hr18s.pth")  # released weights, eval mode

The networks are described once, in :data:`isegm.model.variants.VARIANTS`.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Dict, List, Optional, Union

import torch

from isegm.model.checkpoint import load_weights, prepare_for_inference, read_checkpoint
from isegm.model.is_model import ISModel
from isegm.model.variants import VARIANTS, get_variant, variant_of
from isegm.utils.errors import CheckpointError, MissingFileError

__all__ = ["build_emc_click", "list_models", "load_imagenet_weights", "MODEL_REGISTRY"]

logger = logging.getLogger(__name__)

MODEL_REGISTRY: Dict[str, Callable[..., ISModel]] = {v.name: v.build for v in VARIANTS}
"""name -> ``build(init=True)``: a new network with random weights (SAM's ``sam_model_registry``)."""


def list_models() -> List[str]:
    """The names :func:`build_emc_click` accepts: ``['hr18s', 'hr18', 'hr32', 'segb0', 'segb3']``."""
    return [v.name for v in VARIANTS]


def build_emc_click(name: str, checkpoint: Optional[Union[str, "os.PathLike[str]"]] = None,
                    imagenet_weights: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                    init: bool = True) -> ISModel:
    """Build the EMC-Click network ``name`` (see :func:`list_models`).

    Args:
        name: ``'hr18s'``, ``'hr18'``, ``'hr32'``, ``'segb0'`` or ``'segb3'``.
        checkpoint: a released-format ``.pth`` of this network, loaded strictly; the model is then
            frozen and in eval mode, as :func:`isegm.inference.utils.load_is_model` returns it.
        imagenet_weights: path of the backbone's ImageNet weights (HRNet classification or MiT
            release file), for training from scratch. ``''`` means random init with a warning.
        device: where to put the model.
        init: apply the training config's weight initialiser (XavierGluon for HRNet).

    Raises:
        ConfigKeyError: unknown ``name``.
        CheckpointError: the checkpoint is unreadable, holds another network, or does not match.
    """
    variant = get_variant(name)
    model = variant.build(init=init)
    if imagenet_weights is not None:
        load_imagenet_weights(model, imagenet_weights, variant.imagenet_key)
    if checkpoint is None:
        return model.to(device)
    data = read_checkpoint(checkpoint)
    if not variant.matches(data.config):
        found = variant_of(data.config)
        what = repr(found.name) if found is not None else "another"
        raise CheckpointError(f"{data.source} holds {what} model ({data.config.get('class')}), not {name!r}")
    load_weights(model, data)
    return prepare_for_inference(model, device)


def load_imagenet_weights(model: ISModel, path: Optional[str], key: str = "") -> None:
    """Load backbone ImageNet weights into ``model.feature_extractor`` (never downloads).

    An empty path leaves the backbone randomly initialised, with a warning; a path that does not
    exist is an error (``FileNotFoundError`` naming it and the ``config.yml`` key).
    """
    where = f"IMAGENET_PRETRAINED_MODELS.{key}" if key else "imagenet weights"
    if not path:
        logger.warning("%s is empty: the backbone keeps its random initialisation", where)
        return
    if not os.path.isfile(path):
        raise MissingFileError(f"{where} points to {path!r}, which does not exist")
    report = model.feature_extractor.load_pretrained_weights(path)
    logger.info("%s: loaded %d tensors from %s, skipped %d", where, len(report.loaded), path,
                len(report.skipped))
