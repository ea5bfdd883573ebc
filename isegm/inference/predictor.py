"""``EMCClickPredictor``: set an image once, then correct it click after click.

Pipeline per click (the original ``ClickAttPredictor``): the RGB image (+ previous prediction) is
resized so its short side is ``infer_size`` (each side rounded, then floored to a multiple of 4;
bilinear, ``align_corners=True``); with flip augmentation the batch is ``[image, mirrored image]``;
the network's corrected logits are averaged over the two copies (on logits), passed through a
sigmoid and resized back. Only the first click runs the backbone; later clicks run the correction
head on the cached outputs, each batch copy carrying its own chain of low-resolution logits.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from isegm.inference.clicker import Click

ClickLike = Union[Click, Tuple[float, float, bool]]


def inference_size(height: int, width: int, infer_size: int) -> Tuple[int, int]:
    """Network input size for an ``height x width`` image: short side to ``infer_size``, multiples of 4."""
    scale = infer_size / min(height, width)
    return int(round(height * scale)) // 4 * 4, int(round(width * scale)) // 4 * 4


class EMCClickPredictor:
    """Interactive segmentation with an EMC-Click network.

    SAM-style use::

        predictor = EMCClickPredictor(model, "cpu")
        predictor.set_image(image)                      # H x W x 3 uint8 RGB
        probs = predictor.predict([(120, 200, True)])   # clicks so far as (y, x, is_positive)
        probs = predictor.predict([(120, 200, True), (40, 60, False)])
        probs = predictor.predict([(120, 200, True)])   # shorter list: undo back to that state

    RITM-style use: ``set_input_image(image)`` then ``get_prediction(clicker)`` after each click.

    Args:
        model: an EMC-Click network (``forward(image, points, cached_outputs)``), in eval mode.
        device: where the network runs.
        with_flip: average the prediction with the horizontally mirrored input.
        infer_size: short side of the network input (384; the evaluation uses 576 for DAVIS).
        net_clicks_limit: give the network only the first clicks of each sign list (None: all).
    """

    def __init__(self, model: torch.nn.Module, device: Union[str, torch.device] = "cpu", with_flip: bool = True,
                 infer_size: int = 384, net_clicks_limit: Optional[int] = None):
        self.net = model
        self.device = torch.device(device)
        self.with_flip = with_flip
        self.infer_size = int(infer_size)
        self.net_clicks_limit = net_clicks_limit
        self._image: Optional[torch.Tensor] = None
        self.reset_image()

    # ----------------------------------------------------------------------------- image state
    def reset_image(self) -> None:
        """Forget the image and every click."""
        self._image = None
        self._net_input = None
        self.original_size: Optional[Tuple[int, int]] = None
        self.input_size: Optional[Tuple[int, int]] = None
        self.reset()

    def reset(self) -> None:
        """Forget the clicks (the image stays set)."""
        self._clicks: List[Click] = []
        self._history: List[Dict[str, torch.Tensor]] = []   # state after click k, k = 1..n
        self._outputs = None                                 # the network's cached outputs
        self.prev_prediction = None if self._image is None else torch.zeros_like(self._image[:, :1])

    def set_image(self, image: np.ndarray) -> None:
        """Set the image to segment: ``H x W x 3`` uint8 RGB (grayscale ``H x W`` is expanded)."""
        image = _check_image(image)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).to(self.device)
        self._image = tensor.permute(2, 0, 1)[None].float().div(255)          # 1 x 3 x H x W in [0, 1]
        self.original_size = tuple(image.shape[:2])
        self.input_size = inference_size(*self.original_size, self.infer_size)
        self.reset()

    set_input_image = set_image

    def set_prev_mask(self, mask: np.ndarray) -> None:
        """Previous prediction to start from (``H x W``, e.g. an initial mask)."""
        self._require_image()
        self.prev_prediction = torch.as_tensor(mask, dtype=torch.float32, device=self.device)[None, None]

    # ----------------------------------------------------------------------------- prediction
    def predict(self, clicks: Sequence[ClickLike]) -> np.ndarray:
        """Probabilities after the given clicks (``H x W`` float32 in [0, 1], original resolution).

        ``clicks`` is the full list so far, as :class:`Click` objects or ``(y, x, is_positive)``
        tuples in original-image pixels (RITM's (row, col) order). Clicks are applied one at a
        time, as in the evaluation protocol: new clicks extend the cached state; a list that is a
        prefix of the previous one restores the state after its last click (undo); an empty list
        gives zeros.
        """
        self._require_image()
        clicks = [_as_click(c, i) for i, c in enumerate(clicks)]
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
        self._step(list(clicker.get_clicks()))
        return self.prev_prediction[0, 0].cpu().numpy()

    @torch.inference_mode()
    def _step(self, clicks: List[Click]) -> None:
        image_nd = self._network_input()
        points = self.points_nd(clicks)
        outputs, refined = self.net(image_nd, points, self._outputs)
        logits = refined["instances_refined"]
        if self.with_flip:   # average on logits: 0.5 * (a + flip(b)), without temporaries
            probs = torch.flip(logits[1:], dims=[3]).add_(logits[:1]).mul_(0.5).sigmoid_()
        else:
            probs = torch.sigmoid(logits)
        probs = F.interpolate(probs, size=self.original_size, mode="bilinear", align_corners=True)
        self._outputs = outputs
        self.prev_prediction = probs
        self._clicks = list(clicks)
        self._history.append({"instances_lr": outputs["instances_lr"], "prev_prediction": probs})

    def _rewind(self, num_clicks: int) -> None:
        if num_clicks == len(self._clicks):
            return
        if num_clicks == 0:
            self.reset()
            return
        del self._history[num_clicks:]
        state = self._history[-1]
        # The network replaces (never edits) outputs['instances_lr'], so the stored tensor is intact.
        self._outputs["instances_lr"] = state["instances_lr"]
        self.prev_prediction = state["prev_prediction"]
        self._clicks = self._clicks[:num_clicks]

    def _network_input(self) -> torch.Tensor:
        """``B x 4 x Hn x Wn``: resized RGB + previous prediction, mirrored copy appended with flip.

        Built once per image: the previous-prediction channel only reaches the network on the
        first click (EMC-Click's later clicks never run the backbone), so later clicks reuse it.
        """
        if self._outputs is None:
            x = torch.cat([self._image, self.prev_prediction], dim=1)   # resized as one 4-channel tensor
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=True)
            if self.with_flip:
                x = torch.cat([x, torch.flip(x, dims=[3])], dim=0)
            self._net_input = x
        return self._net_input

    def points_nd(self, clicks: List[Click]) -> torch.Tensor:
        """Clicks -> ``B x 2N x 3`` float64 network points ``(y, x, index)`` at the network input size.

        Positives first, then negatives, each padded with ``(-1, -1, -1)`` to
        ``N = max(1, #pos, #neg)`` (capped by ``net_clicks_limit``); coordinates are scaled by
        ``Hn / H`` and ``Wn / W``; the mirrored copy gets ``x' = Wn - x - 1``.
        """
        (height, width), (hn, wn) = self.original_size, self.input_size
        ry, rx = hn / height, wn / width
        clicks = clicks[: self.net_clicks_limit] if self.net_clicks_limit is not None else clicks
        scaled = [(c.is_positive, float(c.coords[0]) * ry, float(c.coords[1]) * rx, c.indx) for c in clicks]
        copies = [scaled] + ([[(p, y, wn - x - 1, i) for p, y, x, i in scaled]] if self.with_flip else [])
        num_pos = sum(p for p, *_ in scaled)
        num = max(1, num_pos, len(scaled) - num_pos)
        if self.net_clicks_limit is not None:
            num = max(1, min(num, self.net_clicks_limit))
        rows = []
        for copy in copies:
            pad = [(-1.0, -1.0, -1.0)]
            pos = [(y, x, i) for p, y, x, i in copy if p]
            neg = [(y, x, i) for p, y, x, i in copy if not p]
            rows.append(pos + pad * (num - len(pos)) + neg + pad * (num - len(neg)))
        return torch.tensor(rows, dtype=torch.float64, device=self.device)

    # ----------------------------------------------------------------------------- RITM states
    def get_states(self) -> dict:
        return {"clicks": list(self._clicks), "history": list(self._history), "outputs": self._outputs,
                "prev_prediction": self.prev_prediction}

    def set_states(self, states: dict) -> None:
        self._clicks, self._history = list(states["clicks"]), list(states["history"])
        self._outputs, self.prev_prediction = states["outputs"], states["prev_prediction"]
        if self._history:
            self._outputs["instances_lr"] = self._history[-1]["instances_lr"]

    def _require_image(self) -> None:
        if self._image is None:
            raise RuntimeError("no image set: call set_image(image) (or set_input_image) before predicting")


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be H x W x 3 RGB (or H x W grayscale), got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[..., :3]  # drop alpha
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if min(image.shape[:2]) < 4:
        raise ValueError(f"image is too small: {image.shape[:2]}")
    return image


def _as_click(click: ClickLike, index: int) -> Click:
    if isinstance(click, Click):
        return click.copy(indx=index)
    try:
        y, x, positive = click
    except (TypeError, ValueError) as exc:
        raise ValueError(f"click {index} must be a Click or a (y, x, is_positive) tuple, got {click!r}") from exc
    return Click(is_positive=bool(positive), coords=(y, x), indx=index)


def _same_click(a: Click, b: Click) -> bool:
    return a.is_positive == b.is_positive and tuple(a.coords) == tuple(b.coords)
