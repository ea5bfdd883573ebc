"""Training clicks: which object a sample trains on, and its first click(s) (EMC-Click's FirstPointSampler)."""
from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import List, Optional

import cv2
import numpy as np

from isegm.utils.errors import InputError

from .sample import DSample

EMPTY_POINT = (-1, -1, -1)


@lru_cache(maxsize=None)
def generate_probs(max_num_points: int, gamma: float) -> np.ndarray:
    """``p_i = gamma**i / sum_j gamma**j`` for ``i = 0 .. max_num_points-1`` (float64, read-only: it is cached)."""
    probs = np.array([gamma ** i for i in range(max_num_points)], dtype=np.float64)
    probs /= probs.sum()
    probs.flags.writeable = False
    return probs


def get_point_candidates(obj_mask: np.ndarray, k: float = 1.7, full_prob: float = 0.0) -> np.ndarray:
    """``(N, 2)`` ``(y, x)`` pixels deep inside a mask: exact L2 distance to the outside ``> max / k``.

    The mask is padded by one background pixel so that the image border counts as outside. With
    probability ``full_prob`` every mask pixel is a candidate; ``k <= 0`` draws one pixel with
    probability proportional to its distance.
    """
    if full_prob > 0 and random.random() < full_prob:
        return np.argwhere(obj_mask > 0)
    padded = np.pad((obj_mask > 0).astype(np.uint8), ((1, 1), (1, 1)), mode="constant")
    dt = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    if k > 0:
        return np.argwhere(dt > dt.max() / k)
    probs = dt.ravel().astype(np.float64)
    total = probs.sum()
    if total <= 0:
        return np.zeros((0, 2), np.int64)
    index = np.random.choice(probs.size, p=probs / total)
    return np.array([np.unravel_index(index, dt.shape)])


class BasePointSampler:
    """Picks the training target of a sample (``sample_object``) and its clicks (``sample_points``)."""

    def __init__(self):
        self._selected_mask: Optional[np.ndarray] = None
        self._selected_masks: Optional[list] = None

    def sample_object(self, sample: DSample) -> None:
        raise NotImplementedError

    def sample_points(self) -> list:
        raise NotImplementedError

    @property
    def selected_mask(self) -> np.ndarray:
        """``(1, H, W)`` float32 target mask of the last ``sample_object`` call."""
        if self._selected_mask is None:
            raise RuntimeError(f"{type(self).__name__}: call sample_object(sample) before reading selected_mask")
        return self._selected_mask

    @selected_mask.setter
    def selected_mask(self, mask: np.ndarray) -> None:
        self._selected_mask = mask[np.newaxis, :].astype(np.float32)


class FirstPointSampler(BasePointSampler):
    """EMC-Click's sampler: the target is one root object (or, with ``merge_objects_prob``, the union of
    several), and the only clicks are one first click per selected object, deep inside its (eroded) mask.

    ``sample_points()`` returns ``2 * max_num_points`` rows ``[y, x, order]``: the first
    ``max_num_points`` are positive slots (one click per selected object, order 0, then
    ``(-1, -1, -1)`` padding), the rest are negative slots, all ``(-1, -1, -1)``.

    The arguments match the original signature; ``prob_gamma``, ``expand_ratio`` and the ``negative_*``
    probabilities only fed RITM's multi-click sampling and do not change the output here (they are
    kept, and checked, for config compatibility). EMC-Click's configs use
    ``FirstPointSampler(24, prob_gamma=0.80, merge_objects_prob=0.15, max_num_merged_objects=2,
    use_hierarchy=False, first_click_center=True)``.

    Args:
        max_num_points: positive (and negative) slots; at most this many objects are clicked.
        merge_objects_prob: probability of merging several root objects into one target (when the
            sample has more than one root).
        max_num_merged_objects: upper bound of the merged objects (-1: ``max_num_points``).
        positive_erode_prob, positive_erode_iters: with this probability the mask a click is drawn
            from is eroded ``positive_erode_iters`` times by a 3x3 kernel (kept only if more than 10
            pixels remain).
        use_hierarchy: descend into the object tree (random child nodes, children cut out of the target).
        first_click_center: draw the click among the pixels farthest from the object border
            (``dt > dt.max() / sfc_inner_k``, see :func:`get_point_candidates`); otherwise uniformly
            over the (eroded) mask.
        sfc_inner_k, sfc_full_inner_prob: parameters of :func:`get_point_candidates`.
        only_one_first_click: click only the first of the merged objects.
        soft_targets: not supported (needs ReplayCompose soft masks, unused by EMC-Click).
    """

    def __init__(self, max_num_points: int, prob_gamma: float = 0.7, expand_ratio: float = 0.1,
                 positive_erode_prob: float = 0.9, positive_erode_iters: int = 3,
                 negative_bg_prob: float = 0.1, negative_other_prob: float = 0.4, negative_border_prob: float = 0.5,
                 merge_objects_prob: float = 0.0, max_num_merged_objects: int = 2,
                 use_hierarchy: bool = False, soft_targets: bool = False,
                 first_click_center: bool = False, only_one_first_click: bool = False,
                 sfc_inner_k: float = 1.7, sfc_full_inner_prob: float = 0.0):
        super().__init__()
        if soft_targets:
            raise NotImplementedError("FirstPointSampler: soft_targets=True is not supported (EMC-Click does not "
                                      "use soft masks)")
        neg_probs = [negative_bg_prob, negative_other_prob, negative_border_prob]
        if not math.isclose(sum(neg_probs), 1.0):
            raise InputError(f"FirstPointSampler: negative_bg/other/border_prob must sum to 1, got {neg_probs}")
        self.max_num_points = max_num_points
        self.prob_gamma = prob_gamma
        self.expand_ratio = expand_ratio
        self.positive_erode_prob = positive_erode_prob
        self.positive_erode_iters = positive_erode_iters
        self.neg_strategies_prob = neg_probs
        self.merge_objects_prob = merge_objects_prob
        self.max_num_merged_objects = max_num_points if max_num_merged_objects == -1 else max_num_merged_objects
        self.use_hierarchy = use_hierarchy
        self.soft_targets = soft_targets
        self.first_click_center = first_click_center
        self.only_one_first_click = only_one_first_click
        self.sfc_inner_k = sfc_inner_k
        self.sfc_full_inner_prob = sfc_full_inner_prob
        # Unused by the first-click-only sampling; kept as in the original (cached, cheap).
        self._pos_probs = generate_probs(max_num_points, prob_gamma)
        self._neg_probs = generate_probs(max_num_points + 1, prob_gamma)

    # -- object selection ----------------------------------------------------------------------

    def sample_object(self, sample: DSample) -> None:
        """Choose the target of ``sample``; sets ``selected_mask`` and the masks the clicks come from."""
        if len(sample) == 0:
            self.selected_mask = np.zeros(sample.get_background_mask().shape, np.float32)
            self._selected_masks = []
            return
        root_ids = sample.root_objects
        if len(root_ids) > 1 and random.random() < self.merge_objects_prob:
            max_selected = min(len(root_ids), self.max_num_merged_objects)
            num_selected = np.random.randint(2, max_selected + 1)
            chosen = random.sample(root_ids, num_selected)
        else:
            chosen = [random.choice(root_ids)]

        gt_mask = None
        positive = []
        for obj_id in chosen:
            obj_gt, obj_positive = self._sample_from_tree(obj_id, sample)
            gt_mask = obj_gt if gt_mask is None else np.maximum(gt_mask, obj_gt)
            positive.append(obj_positive)
        self.selected_mask = gt_mask
        self._selected_masks = [self._positive_erode(mask) for mask in positive]

    def _sample_from_tree(self, obj_id, sample: DSample):
        """(target mask, mask the click is drawn from) for one chosen root object."""
        if not self.use_hierarchy:
            mask = sample.get_object_mask(obj_id)
            return mask, mask > 0
        tree = sample.objects
        node_id = obj_id
        # Walk down: at each node stop with probability 1/2 (or at a leaf).
        while tree[node_id]["children"] and random.random() >= 0.5:
            node_id = random.choice(tree[node_id]["children"])
        node = tree[node_id]
        gt_mask = sample.get_object_mask(node_id)
        positive = gt_mask > 0
        children = node["children"]
        node_area = max(node.get("area", 0), 1)
        for child_id in children:  # tiny children are never clicked on
            if tree[child_id].get("area", 0) / node_area < 0.10:
                positive &= sample.get_object_mask(child_id) <= 0
        if children:
            num_disabled = np.random.randint(0, min(len(children), 3) + 1)
            for child_id in random.sample(children, num_disabled):
                child = sample.get_object_mask(child_id) > 0
                positive &= ~child
                gt_mask = np.where(child, 0, gt_mask).astype(np.int32)
        return gt_mask, positive

    def _positive_erode(self, mask: np.ndarray) -> np.ndarray:
        if random.random() > self.positive_erode_prob:
            return mask
        kernel = np.ones((3, 3), np.uint8)
        eroded = cv2.erode(mask.astype(np.uint8), kernel, iterations=self.positive_erode_iters).astype(bool)
        return eroded if eroded.sum() > 10 else mask

    # -- clicks --------------------------------------------------------------------------------

    def sample_points(self) -> List[list]:
        """``2 * max_num_points`` rows ``[y, x, order]`` (see the class docstring)."""
        if self._selected_masks is None:
            raise RuntimeError("FirstPointSampler: call sample_object(sample) before sample_points()")
        masks = self._selected_masks[:self.max_num_points]
        if self.only_one_first_click:
            masks = masks[:1]
        points: List[list] = []
        for mask in masks:
            if self.first_click_center:
                candidates = get_point_candidates(mask, k=self.sfc_inner_k, full_prob=self.sfc_full_inner_prob)
            else:
                candidates = np.argwhere(mask > 0)
            if len(candidates) > 0:
                y, x = candidates[np.random.randint(0, len(candidates))].tolist()
                points.append([y, x, 0])
        points.extend([list(EMPTY_POINT)] * (self.max_num_points - len(points)))
        points.extend([list(EMPTY_POINT)] * self.max_num_points)
        return points
