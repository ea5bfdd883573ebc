"""The network's click input: the one place that lays clicks out as a ``B x 2N x 3`` points tensor."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch

from isegm.utils.errors import InputError

ClickTuple = Union[Tuple[float, float, bool], Tuple[float, float, bool, int]]
"""``(y, x, is_positive)`` or ``(y, x, is_positive, index)`` in network-input pixels."""

PAD = (-1.0, -1.0, -1.0)
"""A padding row: no click in this slot."""


def encode_clicks(batch: Sequence[Sequence[ClickTuple]], num: Optional[int] = None,
                  dtype: torch.dtype = torch.float64, device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """Clicks per batch item -> ``B x 2N x 3`` points, rows ``(y, x, index)``.

    Per item, the positive clicks in the given order, padded with :data:`PAD` rows to N, then the
    negative clicks likewise. ``index`` is the click's position in the item's list unless the
    tuple gives it (the first click, index 0, is the one the backbone sees). ``N = max(1, #pos,
    #neg)`` over the batch unless ``num`` is given. float64 is what the evaluation pipeline
    passes (its click coordinates are numpy float64).
    """
    rows = []
    for clicks in batch:
        pos, neg = [], []
        for position, click in enumerate(clicks):
            y, x, positive = click[:3]
            index = click[3] if len(click) > 3 else position
            (pos if positive else neg).append((float(y), float(x), float(index)))
        rows.append((pos, neg))
    need = max([1] + [max(len(p), len(n)) for p, n in rows])
    num = need if num is None else num
    if num < need:
        raise InputError(f"encode_clicks: num={num} slots per sign cannot hold {need} clicks")
    return torch.tensor([p + [PAD] * (num - len(p)) + n + [PAD] * (num - len(n)) for p, n in rows],
                        dtype=dtype, device=device)
