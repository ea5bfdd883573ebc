"""Reading ``.pth`` files safely, with errors that name the file."""
from __future__ import annotations

import os
import pickle
import zipfile
from typing import Any, Union

import torch

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(RuntimeError):
    """A checkpoint file or dict that cannot be used; the message names the file and the key or class."""


def read_torch_file(path: PathLike, what: str = "checkpoint") -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with readable errors.

    Args:
        path: file to read.
        what: what the file is meant to be, used in error messages (``'checkpoint'``,
            ``'ImageNet weights'``...).

    Raises:
        FileNotFoundError: the path does not exist (or is a folder).
        CheckpointError: the file is truncated, corrupt, or holds objects that are not plain
            tensors and containers (``weights_only=True`` refuses arbitrary pickles).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {path!r}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{what} file {path!r} holds objects that cannot be loaded with weights_only=True "
            f"(only tensors and plain containers are allowed): {exc}"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        size = os.path.getsize(path)
        raise CheckpointError(
            f"{what} file {path!r} ({size} bytes) is truncated or corrupt and cannot be read: {exc}"
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


# The refiner registers one block under three names; files may carry all three or only one.
_ALIASES = {"refiner.corr_conv_pos.": "refiner.corr_conv.", "refiner.corr_conv_neg.": "refiner.corr_conv."}


def clean_state_dict(state: dict, source: str) -> dict:
    """Normalise a model state dict from a file: drop a DDP ``module.`` prefix, fill or check aliases.

    Aliased entries (``refiner.corr_conv_pos.*`` / ``corr_conv_neg.*``) are the same tensor as
    ``refiner.corr_conv.*`` in a released file; when absent they are filled from it, and when
    present with other values the file is inconsistent and rejected (loading would otherwise
    keep whichever came last).
    """
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    state = dict(state)
    for key in [k for k in state if k.startswith("refiner.corr_conv.")]:
        for alias, canon in _ALIASES.items():
            other = alias + key[len(canon):]
            if other not in state:
                state[other] = state[key]
            elif torch.is_tensor(state[other]) and not torch.equal(state[other], state[key]):
                raise CheckpointError(f"{source}: {other!r} differs from {key!r}, but the two are one "
                                      "shared block in this model")
    return state


def load_state_dict_checked(model: torch.nn.Module, state: dict, source: str, strict: bool = True) -> None:
    """``model.load_state_dict`` that reports every missing key, unexpected key and shape mismatch.

    With ``strict=True`` (default) any of them raises :class:`CheckpointError` naming ``source``;
    with ``strict=False`` they are logged as a warning and the matching entries are loaded.
    """
    import logging

    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and torch.is_tensor(state[k])
              and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:20]) + (f", ... ({len(items)} in all)" if len(items) > 20 else "")
            problems.append(f"{title}: {shown}")
    if problems:
        message = f"{source} does not match the model built from its config; " + "; ".join(problems)
        if strict:
            raise CheckpointError(message)
        logging.getLogger("isegm").warning("%s (strict=False: loading the matching entries)", message)
    bad = {s.split(":")[0] for s in shapes}
    model.load_state_dict({k: v for k, v in state.items() if k in own and k not in bad}, strict=False)


def save_checkpoint(model: torch.nn.Module, path: PathLike) -> None:
    """Write ``{'state_dict', 'config'}`` exactly as the released files, atomically.

    A DDP wrapper is unwrapped so keys carry no ``module.`` prefix. The file appears under its
    final name only once completely written, so a crash never leaves a truncated checkpoint.
    """
    net = model.module if hasattr(model, "module") else model
    if not hasattr(net, "_config"):
        raise TypeError(f"{type(net).__name__} has no _config: decorate its __init__ with @serialize")
    atomic_save({"state_dict": net.state_dict(), "config": net._config}, path)


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


def load_checkpoint_weights(model: torch.nn.Module, path: PathLike, what: str = "checkpoint") -> dict:
    """Load the ``state_dict`` of a released-format file into ``model`` strictly; -> the file's dict."""
    data = read_torch_file(path, what)
    source = f"{what} {os.fspath(path)!r}"
    if not isinstance(data, dict) or "state_dict" not in data:
        raise CheckpointError(f"{source} is not a checkpoint with a 'state_dict'")
    load_state_dict_checked(model, clean_state_dict(data["state_dict"], source), source)
    return data
