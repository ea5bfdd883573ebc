"""Simulated user clicks for the evaluation protocol (RITM's ``Clicker``, same rule bit for bit).

Coordinates are always ``(y, x)`` = ``(row, col)`` in original-image pixels. Masks are ``H x W``
arrays: the ground truth holds 1 = object, 0 = background and ``ignore_label`` (default -1) =
ignored; a prediction is any boolean or 0/1 array.

Next-click rule (the original's, deterministic): the click goes to the pixel farthest from the
boundary of the larger error region, false negatives against false positives, measured by OpenCV's
exact Euclidean distance transform (``DIST_L2``, ``DIST_MASK_PRECISE``) of the whole error mask
framed by one row / column of zeros, so that the image border counts as a boundary. Clicked pixels
get distance 0, so they are not chosen again while some unclicked error pixel is left. Equal
maxima give a negative click and, among equally far pixels, the first one in row-major order
wins; with no error left the click is a negative one at (0, 0), as in the original.

The transform always covers the whole framed image, never a crop: a crop (or a small image) goes
through another implementation inside OpenCV (below), whose distances differ in the last bits and
so move the click wherever several pixels tie at the maximum. The shortcuts give the same click
by construction: the distances of an error mask equal, pixel for pixel, to the one they were
computed from are reused; and the second transform is skipped when a bound of its largest
distance (half the side of the mask's bounding box) cannot reach the first's maximum.

Determinism (measured with OpenCV 5.1 / IPP 2026.1 on discs and smooth blobs, 22x32 to 482x642
pixels with the frame, 300 identical calls per mask and setting, 40 at 242x322 and up, with
``cv2.setNumThreads`` 0, 1, 2, 4 and 8): ``cv2.distanceTransform(..., DIST_L2, 0)`` runs Intel IPP's
transform when IPP is on (OpenCV's default) and either OpenCV has one thread (0 counts as 1) or the
image has fewer than 2**14 pixels, and OpenCV's own (Felzenszwalb-Huttenlocher) transform
otherwise. OpenCV's own gave one result per mask, the same with every thread count: it transforms
columns, then rows, each line on its own. IPP's differed from it by up to 2e-5 (482x642) on 13
of the 16 masks, and gave two different results over the identical calls on 7 of them (42x52 to
129x129; also 242x322 in another run), on every thread count below 2**14 pixels, on one thread
above. The original transforms the whole framed evaluation image with OpenCV's default threads
(one per core), i.e. with OpenCV's own transform; pinning OpenCV to one thread would switch it to
IPP's. So
:func:`exact_distance_transform` switches IPP off for its call (an OpenCV setting per calling
thread, restored afterwards; about 1 us) and gives OpenCV's own numbers whatever the caller's thread
count, IPP setting and image size.
"""
from __future__ import annotations

from copy import deepcopy
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["Click", "Clicker", "exact_distance_transform"]

_BOUND_MARGIN = 1e-3
"""Far above float32 rounding of a distance of a few thousand pixels: a skipped transform can never
have been the one that decides."""


def _depth_bound(mask: np.ndarray, padding: bool) -> float:
    """An upper bound of the largest distance in ``mask``'s transform: ``inf`` without the zero frame.

    With the frame, the row just above and the row just below the mask's bounding box are zero in
    every column, and so are the columns left and right of it, so no pixel of a box of ``h x w``
    lies farther than ``ceil(h / 2)`` (or ``ceil(w / 2)``) from a zero pixel. 0 for an empty mask.
    """
    if not padding:
        return float("inf")
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0.0
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    return float(min((height + 1) // 2, (width + 1) // 2))


def exact_distance_transform(mask: np.ndarray) -> np.ndarray:
    """``H x W`` float32 Euclidean distance of each nonzero pixel of ``mask`` (``H x W``, bool or
    uint8) to the nearest zero pixel, 0 at zero pixels; no frame is added here.

    ``cv2.distanceTransform(mask, DIST_L2, DIST_MASK_PRECISE)`` with Intel IPP switched off for
    the call: OpenCV's own exact transform, which is deterministic and independent of OpenCV's
    thread count, instead of IPP's, which OpenCV picks for one thread or small images and which
    is neither (see the module docstring). The caller's IPP setting is restored.
    """
    use_ipp = cv2.ipp.useIPP()
    cv2.ipp.setUseIPP(False)   # per-thread in OpenCV: other threads keep theirs
    try:
        return cv2.distanceTransform(mask.astype(np.uint8, copy=False), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    finally:
        cv2.ipp.setUseIPP(use_ipp)


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
        # kind ('fn' / 'fp') -> (padding, the whole error mask, its distances): see _distances.
        self._distance_cache: Dict[str, Tuple[bool, np.ndarray, Optional[np.ndarray]]] = {}
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
        """The click that corrects the largest error of ``pred_mask`` (``H x W``, bool or 0/1).

        The original's rule: distances of the whole false-negative and false-positive masks
        (zero-framed when ``padding``, so that the image border is a boundary), clicked pixels set
        to 0, the larger maximum wins (a tie gives a negative click) and the click goes to its
        first pixel in row-major order, i.e. the smallest row, then the smallest column.
        """
        pred_mask = np.asarray(pred_mask)
        if pred_mask.dtype != bool:
            pred_mask = pred_mask.astype(bool)
        fn_mask = self._object > pred_mask          # gt & ~pred & not_ignore
        fp_mask = self._background & pred_mask      # ~gt & pred & not_ignore
        clicked = ~self.not_clicked_map
        # Transform first the mask that may hold the deeper pixel; the other's transform is skipped
        # when its depth bound says it cannot change the outcome (the same click by construction).
        fn_bound, fp_bound = _depth_bound(fn_mask, padding), _depth_bound(fp_mask, padding)
        fn_dt = fp_dt = None
        fn_max = fp_max = np.float32(0)
        if fn_bound >= fp_bound:
            fn_dt = self._unclicked_distances(fn_mask, "fn", padding, clicked)
            fn_max = fn_dt.max() if fn_dt is not None else np.float32(0)
            if not fn_max > fp_bound + _BOUND_MARGIN:
                fp_dt = self._unclicked_distances(fp_mask, "fp", padding, clicked)
                fp_max = fp_dt.max() if fp_dt is not None else np.float32(0)
        else:
            fp_dt = self._unclicked_distances(fp_mask, "fp", padding, clicked)
            fp_max = fp_dt.max() if fp_dt is not None else np.float32(0)
            if not fp_max >= fn_bound + _BOUND_MARGIN:
                fn_dt = self._unclicked_distances(fn_mask, "fn", padding, clicked)
                fn_max = fn_dt.max() if fn_dt is not None else np.float32(0)
        # Strict: equal distances (including no error at all) give a negative click.
        is_positive = fn_max > fp_max
        dt = fn_dt if is_positive else fp_dt
        if dt is None:   # no false positive and no unclicked false negative: all distances are 0
            return Click(is_positive=is_positive, coords=(np.intp(0), np.intp(0)))
        # argmax returns the first maximum in row-major order: the first pixel of the original's
        # np.where(dt == dt.max()) (distances are never NaN); (0, 0) when all are 0.
        y, x = np.unravel_index(np.argmax(dt), dt.shape)
        return Click(is_positive=is_positive, coords=(np.intp(y), np.intp(x)))

    def _unclicked_distances(self, mask: np.ndarray, kind: str, padding: bool,
                             clicked: np.ndarray) -> Optional[np.ndarray]:
        """``H x W`` float32 distances of ``mask`` (:meth:`_distances`) with the ``clicked`` pixels
        (``H x W`` bool) set to 0, or None when ``mask`` is empty (every distance is 0)."""
        dt = self._distances(mask, kind, padding)
        if dt is None:
            return None
        # The original's dt * not_clicked_map, bit for bit (x * 1 = x, and x * 0 = +0 as x >= 0),
        # in half the time: a copy, then zeros written where clicked.
        unclicked = dt.copy()
        np.copyto(unclicked, 0, where=clicked)
        return unclicked

    def _distances(self, mask: np.ndarray, kind: str, padding: bool) -> Optional[np.ndarray]:
        """``H x W`` float32 distance of each pixel of ``mask`` (``H x W`` bool) to the nearest pixel
        outside it (and, when ``padding``, outside the image), 0 outside ``mask``; None for an
        empty mask, whose distances are all 0 (each pixel is its own nearest zero).

        Always the transform of the whole (zero-framed) mask, never of a part of it. The last
        result of each ``kind`` is kept and returned again only while the whole mask is equal,
        pixel for pixel, to the one it was computed from. Read-only: the cached array itself.
        """
        cached = self._distance_cache.get(kind)
        if cached is not None and cached[0] == padding and np.array_equal(cached[1], mask):
            return cached[2]
        if not mask.any():
            dt = None
        elif padding:
            framed = exact_distance_transform(np.pad(mask, ((1, 1), (1, 1)), "constant"))
            # Contiguous: the copy, max and argmax of every later click run faster on it.
            dt = np.ascontiguousarray(framed[1:-1, 1:-1])
        else:
            dt = exact_distance_transform(mask)
        self._distance_cache[kind] = (padding, mask.copy(), dt)
        return dt

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
