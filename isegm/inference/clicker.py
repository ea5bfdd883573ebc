"""Simulated user clicks for the evaluation protocol (RITM's ``Clicker``, same rule bit for bit).

Coordinates are always ``(y, x)`` = ``(row, col)`` in original-image pixels. Masks are ``H x W``
arrays: the ground truth holds 1 = object, 0 = background and ``ignore_label`` (default -1) =
ignored; a prediction is any boolean or 0/1 array.

Next-click rule (deterministic): the click goes to the pixel farthest (exact Euclidean distance)
from the boundary of the larger error region, false negatives against false positives, with the
image border counting as a boundary; ties go to a negative click and, among equally far pixels, to
the first one in row-major order. Clicked pixels get distance 0, so they are not chosen again
while some unclicked error pixel is left; with no error left the click is a negative one at the
row-major first pixel, (0, 0), as in the original.
"""
from __future__ import annotations

from copy import deepcopy
from typing import Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["Click", "Clicker"]


class Click:
    """One click.

    Attributes:
        is_positive: True for a foreground (positive) click, False for a background one.
        coords: ``(y, x)`` = ``(row, col)`` pixel position in the original image.
        indx: 0-based order of the click within its clicker (set by :meth:`Clicker.add_click`), or None.
    """

    def __init__(self, is_positive: bool, coords: Tuple[int, int], indx: Optional[int] = None):
        self.is_positive = is_positive
        self.coords = coords
        self.indx = indx

    @property
    def coords_and_indx(self) -> Tuple[Any, Any, Optional[int]]:
        """``(y, x, indx)``."""
        return (*self.coords, self.indx)

    def copy(self, **kwargs: Any) -> "Click":
        """A deep copy with the given attributes replaced (e.g. ``click.copy(indx=3)``)."""
        clone = deepcopy(self)
        for name, value in kwargs.items():
            setattr(clone, name, value)
        return clone

    def __repr__(self) -> str:
        return f"Click(is_positive={bool(self.is_positive)}, coords={tuple(self.coords)}, indx={self.indx})"


class Clicker:
    """Places clicks on the largest error of a prediction with respect to ``gt_mask``.

    Args:
        gt_mask: ``H x W`` integer ground truth (1 = object, 0 = background, ``ignore_label`` =
            ignored), or None for a clicker that only records clicks (no :meth:`make_next_click`).
        init_clicks: clicks added at construction (their ``indx`` is reassigned).
        ignore_label: ground-truth value of pixels that are never clicked and never count as errors.
        click_indx_offset: added to every click index (``indx = offset + number of earlier clicks``).
    """

    def __init__(self, gt_mask: Optional[np.ndarray] = None, init_clicks: Optional[Sequence[Click]] = None,
                 ignore_label: int = -1, click_indx_offset: int = 0):
        self.click_indx_offset = click_indx_offset
        if gt_mask is not None:
            self.gt_mask = gt_mask == 1
            self.not_ignore_mask = gt_mask != ignore_label
            # Where a miss (object not predicted) / a false alarm (background predicted) can be.
            self._object = self.gt_mask & self.not_ignore_mask
            self._background = ~self.gt_mask & self.not_ignore_mask
        else:
            self.gt_mask = None
        self._distance_cache: dict = {}   # kind -> (box, error region, its distances)
        self.reset_clicks()
        if init_clicks is not None:
            for click in init_clicks:
                self.add_click(click)

    def make_next_click(self, pred_mask: np.ndarray) -> None:
        """Add the click that corrects the largest error of ``pred_mask`` (``H x W``, bool or 0/1)."""
        if self.gt_mask is None:
            raise RuntimeError("make_next_click needs a Clicker built with a gt_mask")
        self.add_click(self._get_next_click(pred_mask))

    def get_clicks(self, clicks_limit: Optional[int] = None) -> List[Click]:
        """The first ``clicks_limit`` clicks (all when None), in click order."""
        return self.clicks_list[:clicks_limit]

    def _get_next_click(self, pred_mask: np.ndarray, padding: bool = True) -> Click:
        pred_mask = np.asarray(pred_mask)
        if pred_mask.dtype != bool:
            pred_mask = pred_mask.astype(bool)
        if not padding:
            return self._get_next_click_full(pred_mask, padding)
        fn_mask = self._object > pred_mask          # gt & ~pred & not_ignore
        fp_mask = self._background & pred_mask      # ~gt & pred & not_ignore
        fn_max, fn_at = self._farthest_pixel(fn_mask, "fn")
        fp_max, fp_at = self._farthest_pixel(fp_mask, "fp")
        # Strict: equal distances (including no error at all) give a negative click.
        is_positive = fn_max > fp_max
        coords = fn_at if is_positive else fp_at
        return Click(is_positive=is_positive, coords=coords)

    def _farthest_pixel(self, mask: np.ndarray, kind: str) -> Tuple[float, Tuple[Any, Any]]:
        """-> ``(max distance, (y, x) of its first pixel in row-major order)`` over the unclicked
        pixels of ``mask``, distances to the nearest pixel outside ``mask`` or outside the image.

        Same numbers as the distance transform of the whole zero-framed mask, on the smallest
        region that holds them: the mask's bounding box with a 1-pixel frame. Outside the box the
        distances are 0; inside, every pixel outside the mask that is beyond the frame is farther
        from it than the frame pixel in between, which is outside the mask too (or the image
        border, which the original's zero frame makes a boundary). With no error left, the
        distance is 0 at ``(0, 0)``, the original's answer. The distances of the last mask of each
        ``kind`` are kept: an error region that did not change is not transformed again.
        """
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return 0.0, (np.intp(0), np.intp(0))
        cols = np.flatnonzero(mask.any(axis=0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        region = mask[y0:y1, x0:x1]
        box = (y0, y1, x0, x1)
        cached = self._distance_cache.get(kind)
        if cached is not None and cached[0] == box and np.array_equal(cached[1], region):
            dt = cached[2]
        else:
            crop = np.pad(region, ((1, 1), (1, 1)), "constant").astype(np.uint8)
            # maskSize 0 = DIST_MASK_PRECISE (exact distances); the 3x3/5x5 approximations pick other pixels.
            dt = cv2.distanceTransform(crop, cv2.DIST_L2, 0)[1:-1, 1:-1]
            self._distance_cache[kind] = (box, region.copy(), dt)
        dt = dt * self.not_clicked_map[y0:y1, x0:x1]
        dt_max = dt.max()
        if dt_max <= 0:
            return 0.0, (np.intp(0), np.intp(0))
        y, x = np.unravel_index(np.argmax(dt), dt.shape)   # first maximum in row-major order
        return float(dt_max), (np.intp(y0 + y), np.intp(x0 + x))

    def _get_next_click_full(self, pred_mask: np.ndarray, padding: bool) -> Click:
        """The original rule on the whole image (used for ``padding=False``)."""
        fn_mask = self.gt_mask & ~pred_mask & self.not_ignore_mask
        fp_mask = ~self.gt_mask & pred_mask & self.not_ignore_mask

        if padding:
            fn_mask = np.pad(fn_mask, ((1, 1), (1, 1)), "constant")
            fp_mask = np.pad(fp_mask, ((1, 1), (1, 1)), "constant")

        fn_dt = cv2.distanceTransform(fn_mask.astype(np.uint8), cv2.DIST_L2, 0)
        fp_dt = cv2.distanceTransform(fp_mask.astype(np.uint8), cv2.DIST_L2, 0)

        if padding:
            fn_dt = fn_dt[1:-1, 1:-1]
            fp_dt = fp_dt[1:-1, 1:-1]

        fn_dt = fn_dt * self.not_clicked_map
        fp_dt = fp_dt * self.not_clicked_map

        fn_max = np.max(fn_dt)
        fp_max = np.max(fp_dt)

        is_positive = fn_max > fp_max
        dt, dt_max = (fn_dt, fn_max) if is_positive else (fp_dt, fp_max)
        coords_y, coords_x = np.where(dt == dt_max)   # row-major order: first = smallest row, then column
        return Click(is_positive=is_positive, coords=(coords_y[0], coords_x[0]))

    def add_click(self, click: Click) -> None:
        """Append ``click``, setting its ``indx`` and marking its pixel as clicked."""
        coords = click.coords
        click.indx = self.click_indx_offset + self.num_pos_clicks + self.num_neg_clicks
        if click.is_positive:
            self.num_pos_clicks += 1
        else:
            self.num_neg_clicks += 1
        self.clicks_list.append(click)
        if self.gt_mask is not None:
            self.not_clicked_map[coords[0], coords[1]] = False

    def _remove_last_click(self) -> None:
        click = self.clicks_list.pop()
        coords = click.coords
        if click.is_positive:
            self.num_pos_clicks -= 1
        else:
            self.num_neg_clicks -= 1
        if self.gt_mask is not None:
            self.not_clicked_map[coords[0], coords[1]] = True

    def reset_clicks(self) -> None:
        """Forget every click."""
        if self.gt_mask is not None:
            self.not_clicked_map = np.ones_like(self.gt_mask, dtype=bool)
        self.num_pos_clicks = 0
        self.num_neg_clicks = 0
        self.clicks_list: List[Click] = []

    def get_state(self) -> List[Click]:
        """A deep copy of the click list (for :meth:`set_state`)."""
        return deepcopy(self.clicks_list)

    def set_state(self, state: Sequence[Click]) -> None:
        """Replace the clicks by ``state`` (as returned by :meth:`get_state`)."""
        self.reset_clicks()
        for click in state:
            self.add_click(click)

    def __len__(self) -> int:
        return len(self.clicks_list)
