"""The checkpoint ``config`` format of RITM / EMC-Click: class path plus constructor arguments.

``@serialize`` on a model's ``__init__`` records ``self._config``::

    {'class': '<module>.<qualname>',
     'params': {name: {'type': 'builtin' | 'class', 'value': ..., 'specified': bool}}}

first the arguments given to the constructor (call order, ``specified: True``), then every
other defaulted keyword of the class and its bases (``specified: False``). ``load_model``
rebuilds the model from such a dict; only allow-listed classes are ever imported.
"""
from __future__ import annotations

import importlib
import inspect
from copy import deepcopy
from functools import wraps
from typing import Any, Dict

from torch import nn

from isegm.utils.errors import CheckpointError

# Class paths a checkpoint config may name. Checkpoints are data: nothing else gets imported.
ALLOWED_MODEL_CLASSES = {
    "isegm.model.is_refine_model.HRNetRefineModel",
    "isegm.model.is_refine_segformer_model.SegFormerModel",
}
ALLOWED_PARAM_CLASSES = {
    "torch.nn.modules.batchnorm.BatchNorm2d",
    "torch.nn.modules.batchnorm.SyncBatchNorm",
}


def serialize(init):
    """Decorator for a model ``__init__`` that stores its arguments in ``self._config``."""
    names = list(inspect.signature(init).parameters)[1:]

    @wraps(init)
    def new_init(self, *args, **kwargs):
        given = dict(zip(names, args))
        given.update(kwargs)
        params = {name: _encode(value, True) for name, value in given.items()}
        for name, value in get_default_params(type(self)).items():
            if name not in params:
                params[name] = _encode(value, False)
        self._config = {"class": get_classname(type(self)), "params": params}
        init(self, *args, **kwargs)

    return new_init


def _encode(value: Any, specified: bool) -> Dict[str, Any]:
    if inspect.isclass(value):
        return {"type": "class", "value": get_classname(value), "specified": specified}
    return {"type": "builtin", "value": deepcopy(value), "specified": specified}


def load_model(config: Dict[str, Any], **kwargs) -> nn.Module:
    """Build the model a checkpoint ``config`` describes; ``kwargs`` override stored values.

    Stored parameters the class does not know are skipped when they were not specified (an old
    default) and are an error when they were. Unspecified values equal to today's default are
    left to the default; others are passed, so changed defaults do not change old checkpoints.
    """
    if not isinstance(config, dict) or "class" not in config or "params" not in config:
        keys = list(config)[:5] if isinstance(config, dict) else "-"
        raise CheckpointError("checkpoint config must be a dict with 'class' and 'params' keys, "
                              f"got {type(config).__name__} with keys {keys}")
    model_class = get_class_from_str(config["class"], ALLOWED_MODEL_CLASSES, "model class")
    defaults = get_default_params(model_class)
    args = {}
    for name, param in config["params"].items():
        try:
            kind, value, specified = param["type"], param["value"], bool(param["specified"])
        except (TypeError, KeyError) as exc:
            raise CheckpointError(f"checkpoint config param {name!r} is malformed: {param!r}") from exc
        if kind == "class":
            value = get_class_from_str(value, ALLOWED_PARAM_CLASSES, f"class of param {name!r}")
        elif kind != "builtin":
            raise CheckpointError(f"checkpoint config param {name!r} has unknown type {kind!r}")
        if name not in defaults:
            if specified:
                raise CheckpointError(f"checkpoint config param {name!r} is not an argument of "
                                      f"{config['class']}")
            continue
        if not specified and _same(defaults[name], value):
            continue
        args[name] = value
    args.update(kwargs)
    return model_class(**args)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. tensors; then pass the stored value explicitly
        return False


def get_classname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def get_class_from_str(path: str, allowed: set, what: str) -> type:
    """Import ``path`` if it is allow-listed, else raise naming it."""
    if not isinstance(path, str) or path not in allowed:
        raise CheckpointError(f"checkpoint names {what} {path!r}, which is not allowed "
                              f"(allowed: {sorted(allowed)})")
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def get_default_params(cls: type) -> Dict[str, Any]:
    """Defaulted keyword arguments of ``cls.__init__`` and its bases (the first definer wins)."""
    params: Dict[str, Any] = {}
    for klass in cls.mro():
        if klass in (nn.Module, object):
            continue
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, p in inspect.signature(init).parameters.items():
            if p.default is not inspect.Parameter.empty and name not in params:
                params[name] = p.default
    return params
