"""Training image dumps: image with clicks, ground truth, prediction and auxiliary prediction side by side."""
from __future__ import annotations

import cv2
import numpy as np

POSITIVE = (0, 255, 0)
NEGATIVE = (255, 0, 0)


def draw_points(image: np.ndarray, points: np.ndarray, color) -> np.ndarray:
    """Circles at ``points`` rows ``(y, x, order)`` (radius 8, 6, 4 for orders 0, 1, 2, then 2); -1 rows skipped."""
    for y, x, order in points:
        if y < 0:
            continue
        radius = {0: 8, 1: 6, 2: 4}.get(int(order), 2)
        cv2.circle(image, (int(x), int(y)), radius, color, -1)
    return image


def _caption(panel: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((40, panel.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (5, 25), cv2.FONT_HERSHEY_COMPLEX, 0.5, (0, 0, 0), 1)
    return np.concatenate([panel, strip], axis=0)


def training_panels(image: np.ndarray, points: np.ndarray, gt: np.ndarray, prob: np.ndarray,
                    aux_prob: np.ndarray) -> np.ndarray:
    """One RGB uint8 strip of four captioned panels.

    Args:
        image: ``H x W x 3`` RGB float in [0, 1].
        points: ``2N x 3`` clicks ``(y, x, order)``, first N positive.
        gt, prob, aux_prob: ``H x W`` ground truth, backbone and auxiliary probabilities.
    """
    rgb = np.clip(image * 255, 0, 255).astype(np.float32)
    red = np.zeros_like(rgb)
    red[..., 0] = 255
    n = len(points) // 2
    with_points = draw_points(draw_points(rgb.astype(np.uint8).copy(), points[:n], POSITIVE), points[n:], NEGATIVE)
    gt_panel = np.where((gt > 0.5)[..., None], 0.5 * rgb + 0.5 * red, rgb)
    pred_panel = np.where((prob > 0.5)[..., None], 0.5 * rgb + 0.5 * red, rgb)
    aux_panel = np.zeros_like(rgb)
    aux_panel[..., 0] = aux_prob * 255
    panels = [(with_points, "Image with Points"), (gt_panel, "Ground Truth Mask"), (pred_panel, "Prediction"),
              (aux_panel, "Aux Prediction")]
    return np.concatenate([_caption(p.astype(np.uint8), text) for p, text in panels], axis=1)


def save_training_panels(path, *args) -> None:
    """Write :func:`training_panels` as JPEG (quality 85)."""
    cv2.imwrite(str(path), cv2.cvtColor(training_panels(*args), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
