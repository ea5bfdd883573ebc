"""Datasets: the evaluation benchmarks (RITM / EMC-Click class names), training data and synthetic data."""
from .berkeley import BerkeleyDataset
from .coco_lvis import CocoLvisDataset
from .coco_mval import COCOMValDataset
from .davis import DavisDataset
from .grabcut import GrabCutDataset
from .pascalvoc import PascalVocDataset
from .sbd import SBDDataset, SBDEvaluationDataset
from .synthetic import (
    SYNTHETIC_SEEDS,
    SyntheticDataset,
    SyntheticEvaluationDataset,
    export_coco_lvis,
    generate_scene,
)

__all__ = [
    "BerkeleyDataset",
    "COCOMValDataset",
    "CocoLvisDataset",
    "DavisDataset",
    "GrabCutDataset",
    "PascalVocDataset",
    "SBDDataset",
    "SBDEvaluationDataset",
    "SYNTHETIC_SEEDS",
    "SyntheticDataset",
    "SyntheticEvaluationDataset",
    "export_coco_lvis",
    "generate_scene",
]
