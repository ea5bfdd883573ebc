"""Reading and writing ``.pth`` files safely (``weights_only``, atomic), with errors that name the file.

Model checkpoints are read and written by :mod:`isegm.model.checkpoint`, built on these.
"""
from __future__ import annotations

import os
import pickle
from typing import Any, Union

import torch

from isegm.utils.errors import CheckpointError, MissingFileError

__all__ = ["CheckpointError", "PathLike", "read_torch_file", "atomic_save", "load_matching", "PretrainedReport"]

PathLike = Union[str, "os.PathLike[str]"]


def read_torch_file(path: PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with readable errors.

    Args:
        path: file to read.
        what: what the file is meant to be, used in error messages (``'checkpoint'``,
            ``'ImageNet weights'``...).

    Raises:
        FileNotFoundError: the path does not exist.
        CheckpointError: the path is a folder, or the file is truncated, corrupt, not a torch file,
            or holds objects that are not plain tensors and containers (``weights_only=True``
            refuses arbitrary pickles).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise CheckpointError(f"{what} {path!r} is a folder, not a file")
    if not os.path.isfile(path):
        raise MissingFileError(f"{what} file not found: {path!r}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{what} file {path!r} holds objects that cannot be loaded with weights_only=True "
            f"(only tensors and plain containers are allowed): {exc}"
        ) from exc
    except Exception as exc:  # torch reports a text or truncated file as anything from KeyError to OSError
        size = os.path.getsize(path)
        raise CheckpointError(
            f"{what} file {path!r} ({size} bytes) is truncated or corrupt, or not a torch file: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


class PretrainedReport(dict):
    """What a partial (ImageNet) load used: ``loaded`` and ``skipped`` file keys, ``missing`` model keys."""

    @property
    def loaded(self) -> list:
        return self["loaded"]

    @property
    def skipped(self) -> list:
        return self["skipped"]

    @property
    def missing(self) -> list:
        return self["missing"]


def load_matching(module: torch.nn.Module, state: dict, path: PathLike, what: str) -> PretrainedReport:
    """Copy the entries of ``state`` whose names exist in ``module``; report the rest.

    Meant for backbone weights released for another task (ImageNet classification): keys the
    model does not have (a classifier head) are skipped and reported. A key the model has but
    with another shape means the file is for another variant, and a file that matches nothing
    is not the right file: both raise :class:`CheckpointError` naming ``path``.
    """
    if not isinstance(state, dict):
        raise CheckpointError(f"{what} file {os.fspath(path)!r} holds a {type(state).__name__}, not a state dict")
    own = module.state_dict()
    loaded, skipped, mismatched = [], [], []
    for key, value in state.items():
        if key not in own or not torch.is_tensor(value):
            skipped.append(key)
        elif tuple(own[key].shape) != tuple(value.shape):
            mismatched.append(f"{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}")
        else:
            loaded.append(key)
    if mismatched:
        raise CheckpointError(
            f"{what} file {os.fspath(path)!r} does not fit this model; shape mismatches: "
            + "; ".join(mismatched[:10]) + (" ..." if len(mismatched) > 10 else "")
        )
    if not loaded:
        raise CheckpointError(
            f"{what} file {os.fspath(path)!r} matches none of the model's {len(own)} keys "
            f"(first keys in the file: {list(state)[:5]})"
        )
    module.load_state_dict({k: state[k] for k in loaded}, strict=False)
    used = set(loaded)
    missing = [k for k in own if k not in used]
    return PretrainedReport(loaded=loaded, skipped=skipped, missing=missing)


def atomic_save(obj: Any, path: PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: ``path`` is never left half-written."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
