"""One builder for the five released EMC-Click networks.

``MODEL_REGISTRY`` maps the release file stems (``hr18s``, ``hr18``, ``hr32``, ``segb0``,
``segb3``) to builders; ``build_emc_click(name)`` builds one, optionally loads its weights.
"""
from __future__ import annotations

import logging
import os
from functools import partial
from typing import Callable, Dict, Optional, Union

from torch import nn

from isegm.model import initializer
from isegm.model.is_refine_model import HRNetRefineModel
from isegm.model.is_refine_segformer_model import SegFormerModel
from isegm.utils.checkpoint import CheckpointError, clean_state_dict, load_state_dict_checked, read_torch_file

logger = logging.getLogger("isegm")

# Keyword order matters: the checkpoint config records specified arguments in call order,
# and these orders are those of the released files.
_HRNET = dict(with_aux_output=True, use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5,
              with_prev_mask=True)
_SEGFORMER = dict(use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5,
                  binary_prev_mask=False, with_prev_mask=True, with_aux_output=True)

# name -> (backbone arguments, refiner width M = K, config.yml key of the ImageNet weights)
VARIANTS: Dict[str, tuple] = {
    "hr18s": (dict(width=18, ocr_width=48, small=True), 64, "HRNETV2_W18_SMALL"),
    "hr18": (dict(width=18, ocr_width=64, small=False), 96, "HRNETV2_W18"),
    "hr32": (dict(width=32, ocr_width=128, small=False), 96, "HRNETV2_W32"),
    "segb0": (dict(model_version="b0"), 64, "SEGFORMER_B0"),
    "segb3": (dict(model_version="b3"), 96, "SEGFORMER_B3"),
}


def _build(name: str, init: bool = True) -> nn.Module:
    backbone, mid, _ = VARIANTS[name]
    refiner_conf = dict(conv_layer="xconv2", mid_dims=mid, corr_channel=mid)
    if "model_version" in backbone:
        return SegFormerModel(**backbone, **_SEGFORMER, refiner_conf=refiner_conf, only_first_click=True)
    model = HRNetRefineModel(**backbone, **_HRNET, refiner_conf=refiner_conf, only_first_click=True)
    if init:
        # The HRNet configs initialise the whole model so (training only; SegFormer keeps torch's defaults).
        model.apply(initializer.XavierGluon(rnd_type="gaussian", magnitude=2.0))
    return model


MODEL_REGISTRY: Dict[str, Callable[..., nn.Module]] = {name: partial(_build, name) for name in VARIANTS}


def build_emc_click(name: str, checkpoint: Optional[Union[str, "os.PathLike[str]"]] = None,
                    imagenet_weights: Optional[str] = None, device="cpu", init: bool = True) -> nn.Module:
    """Build the EMC-Click network ``name`` (a key of ``MODEL_REGISTRY``).

    Args:
        name: ``'hr18s'``, ``'hr18'``, ``'hr32'``, ``'segb0'`` or ``'segb3'``.
        checkpoint: a released-format ``.pth`` whose weights are loaded strictly; the model is
            then returned in eval mode, like ``isegm.inference.utils.load_is_model``.
        imagenet_weights: path of the backbone's ImageNet weights (HRNet classification or MiT
            release file), for training from scratch. ``''`` means random init with a warning.
        device: where to put the model.
        init: apply the configs' weight initialiser (XavierGluon for HRNet).
    """
    if name not in MODEL_REGISTRY:
        raise KeyError(f"unknown EMC-Click model {name!r}; choose one of {sorted(MODEL_REGISTRY)}")
    model = MODEL_REGISTRY[name](init=init)
    if imagenet_weights is not None:
        load_imagenet_weights(model, imagenet_weights, VARIANTS[name][2])
    if checkpoint is not None:
        source = f"checkpoint {os.fspath(checkpoint)!r}"
        data = read_torch_file(checkpoint)
        stored = data.get("config", {}).get("class") if isinstance(data, dict) else None
        if stored != model._config["class"] or "state_dict" not in data:
            raise CheckpointError(f"{source} holds a {stored!r} model, not {name!r} ({model._config['class']})")
        load_state_dict_checked(model, clean_state_dict(data["state_dict"], source), source)
        model.eval()
    return model.to(device)


def load_imagenet_weights(model: nn.Module, path: Optional[str], key: str = "") -> None:
    """Load backbone ImageNet weights into ``model.feature_extractor`` (never downloads).

    An empty path leaves the backbone randomly initialised, with a warning; a path that does not
    exist is an error (``FileNotFoundError`` naming it and the ``config.yml`` key).
    """
    where = f"IMAGENET_PRETRAINED_MODELS.{key}" if key else "imagenet weights"
    if not path:
        logger.warning("%s is empty: the backbone keeps its random initialisation", where)
        return
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where} points to {path!r}, which does not exist")
    report = model.feature_extractor.load_pretrained_weights(path)
    logger.info("%s: loaded %d tensors from %s, skipped %d", where, len(report.loaded), path,
                len(report.skipped))


def init_model(name: str, cfg) -> tuple:
    """What a model-config file's ``init_model(cfg)`` does: build ``name``, load ImageNet weights.

    ``cfg`` is the experiment config (an EasyDict from ``config.yml`` + command line); the
    backbone weights come from ``cfg.IMAGENET_PRETRAINED_MODELS.<KEY>`` (empty: random init).
    Returns ``(model, model_cfg)`` with the training crop size and click budget.
    """
    from easydict import EasyDict

    key = VARIANTS[name][2]
    paths = cfg.get("IMAGENET_PRETRAINED_MODELS") or {}
    model = build_emc_click(name, imagenet_weights=paths.get(key, ""), device=cfg.get("device", "cpu"))
    return model, EasyDict(crop_size=(320, 480), num_max_points=24)
