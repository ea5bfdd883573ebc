"""``EMCClickPredictor``: set an image once, then correct it click after click.

Pipeline (the original ``ClickAttPredictor``): the RGB image (+ previous prediction) is resized so
its short side is ``infer_size`` (each side rounded, then floored to a multiple of 4; bilinear,
``align_corners=True``); with flip augmentation the batch is ``[image, mirrored image]``. The first
click runs :meth:`~isegm.model.is_model.ISModel.encode` (backbone, per image) and every click
:meth:`~isegm.model.is_model.ISModel.correct` (correction head only), each batch copy carrying its
own chain of low-resolution logits. The corrected logits are averaged over the two copies (on
logits), passed through a sigmoid and resized back.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from isegm.inference.clicker import Click
from isegm.model.clicks import encode_clicks
from isegm.model.is_model import Correction, ImageEmbedding
from isegm.model.refiner import ATTENTION
from isegm.utils.errors import InputError

__all__ = ["EMCClickPredictor", "inference_size"]

logger = logging.getLogger(__name__)

ClickLike = Union[Click, Tuple[float, float, bool]]

MAX_NETWORK_PIXELS = 4096 * 4096
"""The largest network input (after resizing the short side to ``infer_size``) a predictor accepts:
an image of extreme aspect ratio would otherwise ask for gigabytes (10000 x 10 at 384: 384 x 384000)."""

MIN_INFER_SIZE = 32
"""The smallest short side of the network input (the backbones downsample by 32)."""


def inference_size(height: int, width: int, infer_size: int) -> Tuple[int, int]:
    """Network input size for an ``height x width`` image: short side to ``infer_size``, multiples of 4."""
    scale = infer_size / min(height, width)
    return int(round(height * scale)) // 4 * 4, int(round(width * scale)) // 4 * 4


@dataclass(frozen=True)
class _Step:
    """The state after one click: the network's correction and the probabilities shown."""

    correction: Correction
    probs: torch.Tensor      # 1 x 1 x H x W at the original resolution


class EMCClickPredictor:
    """Interactive segmentation with an EMC-Click network.

    SAM-style use::

        predictor = EMCClickPredictor(model, "cpu")
        predictor.set_image(image)                      # H x W x 3 uint8 RGB
        probs = predictor.predict([(120, 200, True)])   # clicks so far as (y, x, is_positive)
        probs = predictor.predict([(120, 200, True), (40, 60, False)])   # correction head only
        probs = predictor.predict([(120, 200, True)])   # shorter list: undo back to that state

    RITM-style use: ``set_input_image(image)`` then ``get_prediction(clicker)`` after each click.

    Args:
        model: an EMC-Click network (:class:`~isegm.model.is_model.ISModel`). It is used in eval
            mode: a model in train mode is switched to eval mode, with a warning.
        device: where the network runs.
        with_flip: average the prediction with the horizontally mirrored input.
        infer_size: short side of the network input (384; the evaluation uses 576 for DAVIS).
        net_clicks_limit: give the network only the first clicks (None: all).
        attention: the correction head's attention, ``'exact'`` (the original's arithmetic,
            default) or ``'fast'`` (see :data:`isegm.model.refiner.ATTENTION`).
    """

    def __init__(self, model: torch.nn.Module, device: Union[str, torch.device] = "cpu", with_flip: bool = True,
                 infer_size: int = 384, net_clicks_limit: Optional[int] = None, attention: str = "exact"):
        if attention not in ATTENTION:
            raise InputError(f"attention must be one of {ATTENTION}, got {attention!r}")
        if int(infer_size) != infer_size or infer_size < MIN_INFER_SIZE:
            raise InputError(f"infer_size (the network input's short side) must be an integer of at least "
                             f"{MIN_INFER_SIZE}, got {infer_size!r}")
        if model.training:
            logger.warning("EMCClickPredictor: the model was in train mode; switching it to eval mode "
                           "(train-mode batch norm would use and update batch statistics on every click)")
            model.eval()
        self.net = model
        self.device = torch.device(device)
        self.with_flip = with_flip
        self.infer_size = int(infer_size)
        self.net_clicks_limit = net_clicks_limit
        self.attention = attention
        self._image: Optional[torch.Tensor] = None
        self.reset_image()

    # ----------------------------------------------------------------------------- image state
    def reset_image(self) -> None:
        """Forget the image and every click."""
        self._image = None
        self.original_size: Optional[Tuple[int, int]] = None
        self.input_size: Optional[Tuple[int, int]] = None
        self._initial_mask: Optional[torch.Tensor] = None
        self.reset()

    def reset(self) -> None:
        """Forget the clicks (the image stays set)."""
        self._clicks: List[Click] = []
        self._steps: List[_Step] = []
        self._embedding: Optional[ImageEmbedding] = None

    def set_image(self, image: np.ndarray) -> None:
        """Set the image to segment: ``H x W x 3`` uint8 RGB (grayscale ``H x W`` and RGBA are accepted).

        Raises :class:`InputError` for another layout or dtype, or when the network input this image
        needs would be larger than :data:`MAX_NETWORK_PIXELS` or too small for the network.
        """
        image = _check_image(image)
        input_size = inference_size(*image.shape[:2], self.infer_size)
        if input_size[0] * input_size[1] > MAX_NETWORK_PIXELS:
            raise InputError(f"a {image.shape[0]}x{image.shape[1]} image needs a {input_size[0]}x{input_size[1]} "
                             f"network input at short side {self.infer_size}, more than the limit of "
                             f"{MAX_NETWORK_PIXELS / 1e6:.1f} Mpx: crop the image to a less extreme aspect ratio")
        check = getattr(self.net, "check_input_size", None)
        if check is not None:
            check(*input_size)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        self._image = tensor.permute(2, 0, 1)[None].float().div(255)          # 1 x 3 x H x W in [0, 1]
        self.original_size = tuple(image.shape[:2])
        self.input_size = input_size
        self._initial_mask = None
        self.reset()

    set_input_image = set_image

    def set_prev_mask(self, mask: np.ndarray) -> None:
        """An initial mask (``H x W``): the previous-prediction channel of the first click's input.

        The released networks take only the first click's disk (``only_first_click``), so this
        channel does not change their output; it is kept for the original's calls.
        """
        self._require_image()
        mask = np.asarray(mask)
        if mask.shape != self.original_size:
            raise InputError(f"previous mask of shape {mask.shape} does not fit the {self.original_size[0]}x"
                             f"{self.original_size[1]} image")
        self._initial_mask = torch.as_tensor(mask, dtype=torch.float32, device=self.device)[None, None]

    @property
    def prev_prediction(self) -> Optional[torch.Tensor]:
        """``1 x 1 x H x W`` probabilities after the last click (the initial mask or zeros before)."""
        if self._steps:
            return self._steps[-1].probs
        if self._image is None:
            return None
        return self._initial_mask if self._initial_mask is not None else torch.zeros_like(self._image[:, :1])

    @property
    def embedding(self) -> Optional[ImageEmbedding]:
        """The image's :class:`~isegm.model.is_model.ImageEmbedding` (after the first click), else None."""
        return self._embedding

    # ----------------------------------------------------------------------------- prediction
    def predict(self, clicks: Sequence[ClickLike]) -> np.ndarray:
        """Probabilities after the given clicks (``H x W`` float32 in [0, 1], original resolution).

        ``clicks`` is the full list so far, as :class:`Click` objects or ``(y, x, is_positive)``
        tuples in original-image pixels (RITM's (row, col) order). Clicks are applied one at a
        time, as in the evaluation protocol: new clicks extend the last state; a list that is a
        prefix of the previous one returns to the state after its last click (undo); an empty
        list gives zeros.
        """
        self._require_image()
        clicks = [_as_click(c, i, self.original_size) for i, c in enumerate(clicks)]
        keep = 0
        while keep < min(len(clicks), len(self._clicks)) and _same_click(clicks[keep], self._clicks[keep]):
            keep += 1
        self._rewind(keep)
        for k in range(keep, len(clicks)):
            self._step(clicks[: k + 1])
        return self.prev_prediction[0, 0].cpu().numpy()

    def get_prediction(self, clicker, prev_mask: Optional[np.ndarray] = None) -> np.ndarray:
        """RITM's call: one network step with all clicks of ``clicker``; returns ``H x W`` probabilities."""
        self._require_image()
        if prev_mask is not None:
            self.set_prev_mask(prev_mask)
        clicks = list(clicker.get_clicks())
        for i, click in enumerate(clicks):
            _check_click(click, i, self.original_size)
        if self._clicks and clicks and not _same_click(clicks[0], self._clicks[0]):
            self.reset()   # another first click: the embedding depends on it
        self._step(clicks)
        return self.prev_prediction[0, 0].cpu().numpy()

    @torch.inference_mode()
    def _step(self, clicks: List[Click]) -> None:
        points = self.points_nd(clicks)
        if self._embedding is None:
            self._embedding = self.net.encode(self._network_input(), points)
        prev = self._steps[-1].correction if self._steps else None
        correction = self.net.correct(self._embedding, points, prev, attention=self.attention)
        logits = correction.logits
        if self.with_flip:   # average on logits: 0.5 * (a + flip(b)), without temporaries
            probs = torch.flip(logits[1:], dims=[3]).add_(logits[:1]).mul_(0.5).sigmoid_()
        else:
            probs = torch.sigmoid(logits)
        probs = F.interpolate(probs, size=self.original_size, mode="bilinear", align_corners=True)
        self._steps.append(_Step(correction, probs))
        self._clicks = list(clicks)

    def _rewind(self, num_clicks: int) -> None:
        if num_clicks == 0:
            self.reset()
            return
        del self._steps[num_clicks:]
        self._clicks = self._clicks[:num_clicks]

    def _network_input(self) -> torch.Tensor:
        """``B x 4 x Hn x Wn``: resized RGB + previous prediction, mirrored copy appended with flip.

        Resized as one 4-channel tensor, as the original (resizing RGB alone rounds differently).
        """
        x = torch.cat([self._image, self.prev_prediction], dim=1)
        x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=True)
        if self.with_flip:
            x = torch.cat([x, torch.flip(x, dims=[3])], dim=0)
        return x

    def points_nd(self, clicks: List[Click]) -> torch.Tensor:
        """Clicks -> ``B x 2N x 3`` float64 network points ``(y, x, index)`` at the network input size.

        Coordinates are scaled by ``Hn / H`` and ``Wn / W`` (not ``(Hn - 1) / (H - 1)``, as the
        original); the mirrored copy gets ``x' = Wn - x - 1``; only the first ``net_clicks_limit``
        clicks are given. Layout: :func:`isegm.model.clicks.encode_clicks`.
        """
        (height, width), (hn, wn) = self.original_size, self.input_size
        ry, rx = hn / height, wn / width
        clicks = clicks[: self.net_clicks_limit] if self.net_clicks_limit is not None else clicks
        scaled = [(float(c.coords[0]) * ry, float(c.coords[1]) * rx, c.is_positive, c.indx) for c in clicks]
        copies = [scaled] + ([[(y, wn - x - 1, p, i) for y, x, p, i in scaled]] if self.with_flip else [])
        return encode_clicks(copies, device=self.device)

    # ----------------------------------------------------------------------------- RITM states
    def get_states(self) -> dict:
        """The click state, for :meth:`set_states` (RITM's undo)."""
        return {"clicks": list(self._clicks), "steps": list(self._steps), "embedding": self._embedding}

    def set_states(self, states: dict) -> None:
        self._clicks, self._steps = list(states["clicks"]), list(states["steps"])
        self._embedding = states["embedding"]

    def _require_image(self) -> None:
        if self._image is None:
            raise RuntimeError("no image set: call set_image(image) (or set_input_image) before predicting")


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"image must be H x W x 3 RGB (or H x W grayscale, H x W x 4 RGBA), got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[..., :3]  # drop alpha
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if min(image.shape[:2]) < 4:
        raise InputError(f"image is too small: {image.shape[0]}x{image.shape[1]}")
    return image


def _as_click(click: ClickLike, index: int, size: Tuple[int, int]) -> Click:
    if isinstance(click, Click):
        click = click.copy(indx=index)
    else:
        try:
            y, x, positive = click
        except (TypeError, ValueError):
            raise InputError(f"click {index} must be a Click or a (y, x, is_positive) tuple, got {click!r}") from None
        click = Click(is_positive=positive, coords=(y, x), indx=index)
    _check_click(click, index, size)
    click.is_positive = bool(click.is_positive)
    return click


def _check_click(click: Click, index: int, size: Tuple[int, int]) -> None:
    """A click must lie on the image (finite ``0 <= y <= H - 1``, ``0 <= x <= W - 1``) and say its sign
    with a bool or 0 / 1 (a string such as ``'False'`` or a NaN would silently read as positive)."""
    positive = click.is_positive
    if not (isinstance(positive, (bool, np.bool_)) or (isinstance(positive, (int, np.integer)) and positive in (0, 1))):
        raise InputError(f"click {index}: is_positive must be a bool (or 0 / 1), got {positive!r}")
    try:
        y, x = (float(v) for v in click.coords)
    except (TypeError, ValueError):
        raise InputError(f"click {index}: coordinates must be two numbers (y, x), got {click.coords!r}") from None
    height, width = size
    if not (math.isfinite(y) and math.isfinite(x) and 0 <= y <= height - 1 and 0 <= x <= width - 1):
        raise InputError(f"click {index} at (y={y:g}, x={x:g}) is outside the {height}x{width} image "
                         f"(0 <= y <= {height - 1}, 0 <= x <= {width - 1})")


def _same_click(a: Click, b: Click) -> bool:
    return a.is_positive == b.is_positive and tuple(a.coords) == tuple(b.coords)
