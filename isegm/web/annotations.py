"""Saving an image's annotation: an instance-id PNG and a JSON of the clicks, written atomically.

``<stem>.png``: 8-bit, 0 = background, ``k`` = the k-th object. A pixel belongs to the first
object that covers it: finishing an object never takes pixels from an earlier one.
``<stem>.json``: the image, the model, and per object its id, threshold, pixel count and clicks
``{"x", "y", "positive"}`` in image pixels (x = column, y = row), in click order.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, List

import numpy as np

from isegm.web.errors import ApiError
from isegm.web.masks import instances_png
from isegm.web.sessions import Session

__all__ = ["save_annotation"]


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_annotation(session: Session, folder: Path, model_name: str, threshold: float) -> List[Path]:
    """Write the session's finished objects, and the current one when it has clicks, into ``folder``.

    The current object is included as it would be finished with ``threshold``, without finishing
    it. Returns the written paths (PNG, JSON).
    """
    instances = session.instances.copy()
    objects: List[Dict[str, object]] = [dict(o) for o in session.objects]
    if session.clicks:
        mask = session.probabilities() > threshold
        instances[mask & (instances == 0)] = len(objects) + 1
        objects.append({"clicks": list(session.clicks), "threshold": float(threshold)})
    if not objects:
        raise ApiError(409, "nothing_to_save", f"image {session.name!r} has no object yet: click on one first")
    counts = np.bincount(instances.ravel(), minlength=len(objects) + 1)
    record = {
        "image": session.name, "width": session.width, "height": session.height, "model": model_name,
        "instances": f"{session.output_stem}.png",
        "objects": [{"id": k, "threshold": o["threshold"], "pixels": int(counts[k]),
                     "clicks": [{"x": x, "y": y, "positive": p} for y, x, p in o["clicks"]]}
                    for k, o in enumerate(objects, start=1)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    png, js = folder / f"{session.output_stem}.png", folder / f"{session.output_stem}.json"
    _write_atomic(png, instances_png(instances))
    _write_atomic(js, (json.dumps(record, indent=1) + "\n").encode())
    return [png, js]
