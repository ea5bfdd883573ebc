"""An onnxruntime backend: the two exported graphs behind the model's ``encode`` / ``correct`` calls.

:class:`OnnxModel` takes the place of the PyTorch network wherever the two stages are called
(:class:`~isegm.inference.predictor.EMCClickPredictor`, the evaluation, the benchmark, the
annotation server)::

    model = OnnxModel("exported/hr18s")          # written by scripts/export_onnx.py
    predictor = EMCClickPredictor(model)
    predictor.set_image(image)
    probs = predictor.predict([(120, 200, True)])

The click state stays outside the graphs, computed by the same code as the PyTorch path: the
squared distance maps (:class:`~isegm.model.ops.ClickDistances`, extended click by click) and the
clicks' cells at the head's resolution. The corrector runs the head's ``'fast'`` formulation;
it is judged by its masks and NoC (``tests/inference/test_onnx_backend.py``), not by bits.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch

from isegm.model.export import RUNTIME_FILE, RUNTIME_FORMAT
from isegm.model.is_model import Correction, ISModel, check_network_input
from isegm.model.ops import ClickDistances, squared_click_distance
from isegm.model.refiner import ATTENTION, click_cells
from isegm.utils.errors import InputError, MissingFileError


@dataclass(frozen=True)
class OnnxEmbedding:
    """The encoder's outputs for one image (``h = H / 4``), as :class:`~isegm.model.is_model.ImageEmbedding`
    for the PyTorch network.

    Attributes:
        logits_lr: ``B x 1 x h x w`` backbone logits (what the first correction starts from).
        image_part, feature_part: ``B x * x h x w`` the correction head's per-image work.
        size: ``(H, W)`` of the network input.
    """

    logits_lr: np.ndarray
    image_part: np.ndarray
    feature_part: np.ndarray
    size: tuple


class OnnxModel:
    """The exported encoder and corrector of ``directory`` (``runtime.json`` + two ``.onnx`` files).

    Args:
        directory: what ``scripts/export_onnx.py`` wrote.
        threads: onnxruntime's intra-op threads (0: its default, one per core).
        providers: onnxruntime execution providers (default: CPU; ``['CUDAExecutionProvider',
            'CPUExecutionProvider']`` on a GPU machine with onnxruntime-gpu).
    """

    training = False   # read by the predictor, like a PyTorch module's flag

    def __init__(self, directory: Union[str, os.PathLike], threads: int = 0,
                 providers: Optional[Sequence[str]] = None):
        import onnxruntime as ort

        directory = Path(directory)
        runtime_path = directory / RUNTIME_FILE
        if not runtime_path.is_file():
            raise MissingFileError(f"{directory}: no {RUNTIME_FILE} here; write an exported model with "
                                   "scripts/export_onnx.py --checkpoint X --output DIR")
        try:
            runtime = json.loads(runtime_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{runtime_path}: not a readable runtime description ({exc})") from None
        if runtime.get("format") != RUNTIME_FORMAT:
            raise InputError(f"{runtime_path}: format {runtime.get('format')!r}, this version reads "
                             f"format {RUNTIME_FORMAT}; export the model again")
        self.runtime: Dict[str, object] = runtime
        self.name = runtime["model"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        # Idle pool threads sleep rather than spin: between two graph runs the click state is
        # computed in torch, whose threads the spinning ones would fight (2 threads: 53 -> 23 ms
        # per later hr18s click here).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = list(providers or ["CPUExecutionProvider"])
        self.sessions = {}
        for stage in ("encoder", "corrector"):
            path = directory / runtime[stage]
            if not path.is_file():
                raise MissingFileError(f"{path}: the exported {stage} graph is missing")
            try:
                self.sessions[stage] = ort.InferenceSession(str(path), options, providers=providers)
            except Exception as exc:   # onnxruntime raises its own untyped errors on a corrupt file
                raise InputError(f"{path}: onnxruntime cannot load the {stage} graph ({exc})") from None
        self.channels = int(runtime["input_channels"])
        self.templates = int(runtime["templates"])
        self.spatial_scale = float(runtime["spatial_scale"])
        self.head_scale = float(runtime["head_scale"])

    def eval(self) -> "OnnxModel":
        return self

    def check_input_size(self, height: int, width: int) -> None:
        """Raise :class:`InputError` unless the network can take a ``height x width`` input."""
        check_network_input(height, width, self.templates)

    def encode(self, image: torch.Tensor, points: torch.Tensor) -> OnnxEmbedding:
        """The first click, as :meth:`ISModel.encode <isegm.model.is_model.ISModel.encode>`
        (``image`` ``B x C x H x W`` in [0, 1], ``points`` ``B x 2N x 3``)."""
        height, width = image.shape[-2:]
        self.check_input_size(height, width)
        dist2 = squared_click_distance(ISModel.first_click(points), height, width, self.spatial_scale)
        logits_lr, image_part, feature_part = self.sessions["encoder"].run(None, {
            "image": _numpy(image[:, :self.channels]), "first_dist2": _numpy(dist2)})
        return OnnxEmbedding(logits_lr, image_part, feature_part, (int(height), int(width)))

    def correct(self, embedding: OnnxEmbedding, points: torch.Tensor, prev: Optional[Correction] = None,
                attention: str = "exact", logits_lr: Optional[torch.Tensor] = None) -> Correction:
        """One correction, as :meth:`ISModel.correct <isegm.model.is_model.ISModel.correct>`.

        ``attention`` is accepted for the same call; the graph has one formulation (``'fast'``).
        """
        if attention not in ATTENTION:
            raise InputError(f"attention must be one of {ATTENTION}, got {attention!r}")
        height, width = embedding.size
        clicks = (ClickDistances.build(points, height, width, self.spatial_scale) if prev is None
                  else prev.clicks.update(points, height, width, self.spatial_scale))
        if logits_lr is None:
            logits_lr = embedding.logits_lr if prev is None else prev.logits_lr
        cells = click_cells(points.cpu(), height // 4, width // 4, self.head_scale)
        logits, refined = self.sessions["corrector"].run(None, {
            "image_part": embedding.image_part, "feature_part": embedding.feature_part,
            "prev_logits_lr": _numpy(logits_lr), "dist2": _numpy(clicks.dist2), "cells": cells.numpy()})
        return Correction(logits=torch.from_numpy(logits), logits_lr=torch.from_numpy(refined), clicks=clicks)


def load_onnx_model(path: Union[str, os.PathLike], threads: int = 0, device: Union[str, torch.device] = "cpu",
                    export_dir: Optional[Union[str, os.PathLike]] = None) -> OnnxModel:
    """An :class:`OnnxModel` from an exported folder, or from a ``.pth`` checkpoint exported first.

    A checkpoint is exported into ``export_dir`` if given (kept), else into a temporary folder that
    is removed once onnxruntime has read the graphs (a few seconds). ``device`` 'cuda' selects
    onnxruntime's CUDA provider when the installed onnxruntime has it.
    """
    import tempfile

    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    path = Path(path)
    if not path.is_file():
        return OnnxModel(path, threads=threads, providers=providers)
    from isegm.inference.utils import load_is_model
    from isegm.model.export import export_onnx

    with tempfile.TemporaryDirectory(prefix=f"{path.stem}_onnx_") as temporary:
        folder = Path(export_dir or temporary)
        export_onnx(load_is_model(path, "cpu"), folder)
        return OnnxModel(folder, threads=threads, providers=providers)


def _numpy(x: Union[torch.Tensor, np.ndarray]) -> np.ndarray:
    """float32 C-contiguous host array (no copy when it already is one)."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x, dtype=np.float32)
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
