"""Keep freed memory in the process (glibc): page faults are a large share of a click on CPU.

glibc's ``malloc`` serves blocks above ``M_MMAP_THRESHOLD`` (128 KiB to 32 MiB, adaptive) with a
fresh ``mmap`` and gives them back to the system on ``free``, and trims the heap top above
``M_TRIM_THRESHOLD``. A correction step allocates dozens of 1-10 MB tensors (and oneDNN its
blocked copies of them), so every click touches brand-new pages and pays a page fault per 4 KiB:
on the 2-core VM this project was measured on, about a third of a later click (a depthwise 3x3
conv on a 1 x 128 x 96 x 96 map: 1.3 ms with the memory kept, 3 to 15 ms without).

:func:`retain_freed_memory` raises both thresholds with ``mallopt`` so that freed blocks stay in
the heap and are reused; the process keeps its peak memory instead of returning it. It changes
no numbers. Same effect without code: ``MALLOC_MMAP_THRESHOLD_=1073741824
MALLOC_TRIM_THRESHOLD_=1073741824 python ...``, or run with jemalloc / tcmalloc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def retain_freed_memory(threshold_bytes: int = 1 << 30) -> bool:
    """Ask glibc to keep freed blocks below ``threshold_bytes`` for reuse (process-wide).

    Returns True when both settings were accepted, False elsewhere (not Linux / not glibc), where
    it does nothing.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    threshold = int(min(threshold_bytes, 2 ** 31 - 1))
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
