"""Restricted unpickling for the pickles the project reads but did not write in this process.

Users: the COCO+LVIS annotations and masks (``hannotation.pickle``, ``masks/<id>.pickle``), the
sample scores of ``ISDataset(samples_scores_path=...)`` and the IoU pickles of
``scripts/plot_ious_analysis.py``. A pickle may only rebuild builtin containers (dict, list, tuple,
set, frozenset), numbers, strings, bytes, None and numpy arrays, dtypes and scalars; naming any
other class or function raises :class:`UnsafePickleError` before anything runs.
"""
from __future__ import annotations

import builtins
import os
import pickle
from functools import lru_cache
from typing import IO, Any, Dict, Tuple

import numpy as np

from isegm.utils.errors import EMCClickError, MissingFileError

__all__ = ["PickleFileError", "UnsafePickleError", "safe_pickle_load"]

_BUILTIN_TYPES = ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes",
                  "bytearray")
# Pickles of protocols 0-2 name the builtins module by its Python 2 name.
_RENAMED_MODULES = {"__builtin__": "builtins"}


class PickleFileError(EMCClickError, pickle.UnpicklingError):
    """A pickle file that is not a valid pickle (the message names the file)."""


class UnsafePickleError(PickleFileError):
    """A pickle names a class or function outside the allowed builtins and numpy names (the message names the file)."""


@lru_cache(maxsize=1)
def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    """``(module, name) -> object`` for every global a safe pickle may name.

    numpy's rebuild helpers are taken from numpy's own ``__reduce__`` output rather than imported
    from its private modules, and are accepted under the numpy 1.x (``numpy.core``) and 2.x
    (``numpy._core``) module paths: a pickle carries the path of the numpy that wrote it.
    """
    import _codecs  # protocols 0-2 store bytes (e.g. numpy array data) as _codecs.encode(str, 'latin1')

    allowed: Dict[Tuple[str, str], Any] = {("builtins", name): getattr(builtins, name) for name in _BUILTIN_TYPES}
    allowed[("_codecs", "encode")] = _codecs.encode
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = np.zeros(1).__reduce__()[0]
        allowed[(f"{core}.multiarray", "scalar")] = np.float32(0).__reduce__()[0]
        allowed[(f"{core}.numeric", "_frombuffer")] = np.zeros(1).__reduce_ex__(5)[0]  # protocol 5
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals of :func:`_allowed_globals`; ``source`` (what and which file) prefixes errors."""

    def __init__(self, file: IO[bytes], source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed_globals().get((_RENAMED_MODULES.get(module, module), name))
        if found is None:
            raise UnsafePickleError(f"{self._source}: refusing to unpickle {module}.{name}: only builtin containers, "
                                    "numbers, strings and numpy arrays, dtypes and scalars are allowed (refusing to "
                                    "load anything else, since unpickling it could run code)")
        return found


def safe_pickle_load(path: str | os.PathLike, what: str = "pickle") -> Any:
    """Unpickle ``path`` allowing only builtin containers, numbers, strings, None and numpy arrays.

    ``what`` says what the file is (e.g. ``'CocoLvis annotation'``); every message starts with
    ``'<what> <path>'``.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the pickle names another class or function.
        pickle.UnpicklingError: the file is not a valid pickle (truncated, corrupt, not a pickle).
    """
    path = os.fspath(path)
    source = f"{what} {path}"
    if not os.path.isfile(path):
        raise MissingFileError(f"{what} not found: {path}")
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, source).load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # EOFError, ValueError, ...: whatever a corrupt stream makes pickle raise
            raise PickleFileError(f"{source} is not a valid pickle: {type(exc).__name__}: {exc}") from exc
