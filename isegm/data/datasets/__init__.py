"""Evaluation datasets (RITM / EMC-Click class names)."""
from .berkeley import BerkeleyDataset
from .coco_mval import COCOMValDataset
from .davis import DavisDataset
from .grabcut import GrabCutDataset
from .pascalvoc import PascalVocDataset
from .sbd import SBDEvaluationDataset

__all__ = [
    "BerkeleyDataset",
    "COCOMValDataset",
    "DavisDataset",
    "GrabCutDataset",
    "PascalVocDataset",
    "SBDEvaluationDataset",
]
