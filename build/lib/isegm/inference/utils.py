"""Models, datasets and metrics for inference and evaluation (RITM's public names live here)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Union

import torch

from isegm.data.base import ISDataset
from isegm.data.datasets import (
    BerkeleyDataset,
    COCOMValDataset,
    DavisDataset,
    GrabCutDataset,
    PascalVocDataset,
    SBDEvaluationDataset,
    SyntheticEvaluationDataset,
)
from isegm.inference.metrics import compute_noc_metric, get_iou, get_results_table
from isegm.model.checkpoint import model_from_checkpoint, read_checkpoint
from isegm.utils.errors import ConfigKeyError, InputError
from isegm.utils.torch_files import read_torch_file

# RITM's public names live in this module.
__all__ = ["load_is_model", "get_dataset", "compute_noc_metric", "get_iou", "get_results_table", "DATASETS"]


def load_is_model(checkpoint: Union[str, "os.PathLike[str]", dict, list], device: Union[str, torch.device],
                  strict: bool = True, **kwargs: Any):
    """Build a model from a released-format checkpoint and return it in eval mode on ``device``.

    Args:
        checkpoint: path of a ``.pth`` file (``{'state_dict': ..., 'config': ...}``), or that dict
            already loaded. Files are read with ``weights_only=True``; the model class comes from
            the config and must be allow-listed (``isegm.utils.serialization``).
        device: where to put the model.
        strict: by default any missing key, unexpected key or shape mismatch raises
            :class:`CheckpointError`; ``strict=False`` loads the matching entries with a warning.
        **kwargs: constructor arguments that override the stored config.

    Returns:
        the model, parameters frozen (``requires_grad=False``), ``eval()`` mode. A list of
        checkpoints (a multi-stage bundle) gives ``(first_model, [all models])`` as in RITM.
    """
    source = "checkpoint"
    if isinstance(checkpoint, (str, os.PathLike)):
        source = f"checkpoint {os.fspath(checkpoint)!r}"
        checkpoint = read_torch_file(checkpoint, "checkpoint")
    if isinstance(checkpoint, list):
        models = [model_from_checkpoint(read_checkpoint(c, f"{source}[{i}]"), device, strict, **kwargs)
                  for i, c in enumerate(checkpoint)]
        return models[0], models
    return model_from_checkpoint(read_checkpoint(checkpoint, source), device, strict, **kwargs)


# Registry of dataset names accepted by ``get_dataset`` (and the evaluation CLI's --datasets):
# name -> (dataset class, config.yml key holding its root folder, extra constructor kwargs).
# A key of None means the dataset needs no files: the class is built from the kwargs alone.
# Other code may add entries.
DATASETS: dict = {
    "GrabCut": (GrabCutDataset, "GRABCUT_PATH", {}),
    "Berkeley": (BerkeleyDataset, "BERKELEY_PATH", {}),
    "DAVIS": (DavisDataset, "DAVIS_PATH", {}),
    "SBD": (SBDEvaluationDataset, "SBD_PATH", {}),
    "SBD_Train": (SBDEvaluationDataset, "SBD_PATH", {"split": "train"}),
    "PascalVOC": (PascalVocDataset, "PASCALVOC_PATH", {"split": "val"}),
    "COCO_MVal": (COCOMValDataset, "COCO_MVAL_PATH", {}),
    # procedural images, seed 1000 (disjoint from the synthetic training seeds), one object per sample
    "Synthetic": (SyntheticEvaluationDataset, None, {}),
}


def get_dataset(dataset_name: str, cfg) -> ISDataset:
    """Build the evaluation dataset ``dataset_name`` from the root folder configured in ``cfg``.

    Args:
        dataset_name: a key of :data:`DATASETS` (``GrabCut``, ``Berkeley``, ``DAVIS``, ``SBD``,
            ``SBD_Train``, ``PascalVOC``, ``COCO_MVal``, ``Synthetic``).
        cfg: the loaded config.yml (dict or EasyDict; an object with attributes also works); not
            read for datasets registered without a config key (``Synthetic``), except for an
            optional ``SYNTHETIC_NUM_IMAGES`` (default 20 images).

    Raises:
        InputError: unknown dataset name, or a ``<NAME>_NUM_IMAGES`` that is not a positive integer.
        ConfigKeyError: the config has no (or an empty) entry for the dataset's root folder.
    """
    if dataset_name not in DATASETS:
        raise InputError(f"unknown dataset {dataset_name!r}; known datasets: {', '.join(DATASETS)}")
    dataset_class, cfg_key, kwargs = DATASETS[dataset_name]
    get = cfg.get if isinstance(cfg, Mapping) else (lambda key: getattr(cfg, key, None))
    if cfg_key is None:
        # A generated dataset: optionally sized by ``<NAME>_NUM_IMAGES`` (e.g. SYNTHETIC_NUM_IMAGES).
        key = f"{dataset_name.upper()}_NUM_IMAGES"
        num_images = get(key)
        if num_images is None:
            return dataset_class(**kwargs)
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
            raise InputError(f"config.yml key {key} must be a positive number of images, got {num_images!r}")
        return dataset_class(**kwargs, num_images=num_images)
    path = get(cfg_key)
    if path is None or str(path) == "":
        raise ConfigKeyError(f"dataset {dataset_name!r} needs the key {cfg_key} (its root folder) in config.yml, "
                             "which is missing or empty")
    return dataset_class(path, **kwargs)
