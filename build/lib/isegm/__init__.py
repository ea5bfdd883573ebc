"""EMC-Click: efficient mask correction for click-based interactive image segmentation.

The public API (imported on first use, so ``import isegm`` stays light)::

    import isegm
    model = isegm.build_emc_click("hr18s", checkpoint="weights/hr18s.pth")   # or isegm.load_is_model(path, "cpu")
    embedding = model.encode(image, points)             # first click: backbone, once per image
    correction = model.correct(embedding, points)       # every click: correction head only
    predictor = isegm.EMCClickPredictor(model)          # numpy images and (y, x, is_positive) clicks
"""
import os
from importlib import import_module
from typing import Any

# albumentations phones home on import unless told not to; nothing here should touch the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

_EXPORTS = {
    "build_emc_click": "isegm.build",
    "list_models": "isegm.build",
    "load_is_model": "isegm.inference.utils",
    "EMCClickPredictor": "isegm.inference.predictor",
    "ImageEmbedding": "isegm.model.is_model",
    "Correction": "isegm.model.is_model",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'isegm' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
