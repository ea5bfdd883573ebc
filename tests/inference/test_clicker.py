"""The simulated user's next-click rule on hand-made masks (coordinates are (y, x) = (row, col))."""
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import pytest
from conftest import opencv_settings, original_next_click

import isegm.inference.clicker as clicker_module
from isegm.inference.clicker import Click, Clicker, exact_distance_transform


def next_click(gt: np.ndarray, pred: np.ndarray, clicker: Clicker = None) -> Click:
    clicker = clicker or Clicker(gt_mask=gt)
    clicker.make_next_click(pred)
    return clicker.get_clicks()[-1]


def box(shape, y0, y1, x0, x1, value=1) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.int32)
    mask[y0:y1, x0:x1] = value
    return mask


def test_centre_of_missed_object():
    gt = box((9, 9), 2, 7, 2, 7)                    # 5x5 square, centre (4, 4) at distance 3
    click = next_click(gt, np.zeros_like(gt, dtype=bool))
    assert click.is_positive and (int(click.coords[0]), int(click.coords[1])) == (4, 4)
    assert click.indx == 0


def test_image_border_is_a_boundary():
    # The object fills the whole image: without the zero padding no pixel would have a finite
    # distance; with it, the 1-px frame is at distance 1 and the centre of a 5x7 image at 3.
    gt = np.ones((5, 7), dtype=np.int32)
    click = next_click(gt, np.zeros_like(gt, dtype=bool))
    assert click.is_positive and tuple(map(int, click.coords)) == (2, 2)   # rows 0..4 -> 2; cols 2..4 tie -> 2

    # An error strip along the top edge: every pixel is at distance 1 (edge), first in row-major order.
    gt = box((6, 6), 0, 1, 0, 6)
    click = next_click(gt, np.zeros_like(gt, dtype=bool))
    assert click.is_positive and tuple(map(int, click.coords)) == (0, 0)


def test_false_negative_versus_false_positive():
    gt = box((12, 12), 0, 12, 0, 4)                  # object: left 4 columns
    pred = np.zeros((12, 12), dtype=bool)
    pred[:, 5:12] = True                             # 7-column false positive, larger than the 4-column FN
    click = next_click(gt, pred)
    assert not click.is_positive
    assert tuple(map(int, click.coords)) == (3, 8)   # cols 5..11 -> 8 at distance 4; rows 3..8 tie -> 3

    pred = np.zeros((12, 12), dtype=bool)
    pred[:, 10:12] = True                            # 2-column FP (distance 1) vs 4-column FN (distance 2)
    click = next_click(gt, pred)
    assert click.is_positive
    assert tuple(map(int, click.coords)) == (1, 1)   # cols 0..3 -> 1 or 2 at distance 2; first is (1, 1)


def test_tie_gives_negative_click():
    gt = box((5, 10), 1, 4, 1, 4)                    # 3x3 FN, max distance 2
    pred = box((5, 10), 1, 4, 6, 9).astype(bool)     # 3x3 FP, same max distance 2
    click = next_click(gt, pred)
    assert not click.is_positive and tuple(map(int, click.coords)) == (2, 7)


def test_no_error_gives_negative_click_at_origin():
    gt = box((6, 6), 1, 4, 1, 4)
    click = next_click(gt, gt == 1)
    assert not click.is_positive and tuple(map(int, click.coords)) == (0, 0)


def test_first_maximum_in_row_major_order():
    gt = np.zeros((7, 11), dtype=np.int32)
    gt[4:7, 0:3] = 1     # 3x3 at bottom-left, centre (5, 1)
    gt[1:4, 7:10] = 1    # 3x3 higher up at the right, centre (2, 8): smaller row wins despite larger column
    click = next_click(gt, np.zeros_like(gt, dtype=bool))
    assert click.is_positive and tuple(map(int, click.coords)) == (2, 8)


def test_exact_euclidean_distance():
    # Two overlapping rectangles whose farthest pixel differs between the exact transform (maskSize 0 =
    # DIST_MASK_PRECISE, used by the original) and the 3x3 / 5x5 approximations.
    gt = np.zeros((12, 12), dtype=np.int32)
    gt[1:9, 3:12] = 1
    gt[3:12, 1:10] = 1

    def first_max(mask_size):
        dist = cv2.distanceTransform(np.pad(gt == 1, 1).astype(np.uint8), cv2.DIST_L2, mask_size)[1:-1, 1:-1]
        ys, xs = np.where(dist == dist.max())
        return int(ys[0]), int(xs[0])

    assert first_max(3) != (5, 6) and first_max(5) != (5, 6)
    click = next_click(gt, np.zeros_like(gt, dtype=bool))
    assert click.is_positive and tuple(map(int, click.coords)) == first_max(0) == (5, 6)


def test_ignore_label_is_never_clicked_nor_counted():
    gt = np.zeros((9, 9), dtype=np.int32)
    gt[1:8, 1:8] = -1          # large ignored block
    gt[0, :] = 1               # thin object strip on top (FN at distance 1)
    pred = np.zeros((9, 9), dtype=bool)
    pred[1:8, 1:8] = True      # predicted inside the ignored block: not a false positive
    click = next_click(gt, pred)
    assert click.is_positive and tuple(map(int, click.coords)) == (0, 0)

    # Ignore pixels cut the error region: the FN distance is measured to them as to a boundary.
    gt = np.ones((5, 9), dtype=np.int32)
    gt[:, 4] = -1
    click = next_click(gt, np.zeros_like(gt, dtype=bool))
    assert tuple(map(int, click.coords)) == (1, 1)   # without the ignored column: (2, 4) at distance 3


def test_clicked_pixel_is_never_chosen_again():
    gt = box((9, 9), 2, 7, 2, 7)
    clicker = Clicker(gt_mask=gt)
    pred = np.zeros_like(gt, dtype=bool)
    clicker.make_next_click(pred)
    clicker.make_next_click(pred)      # same prediction: the centre is taken, next best is used
    first, second = clicker.get_clicks()
    assert tuple(map(int, first.coords)) == (4, 4)
    assert tuple(map(int, second.coords)) != (4, 4) and second.is_positive
    assert tuple(map(int, second.coords)) == (3, 3)   # distance 2 ring, first in row-major order
    assert not clicker.not_clicked_map[4, 4] and not clicker.not_clicked_map[3, 3]


def test_click_indices_with_offset_and_state():
    gt = box((9, 9), 2, 7, 2, 7)
    init = [Click(True, (4, 4)), Click(False, (0, 0))]
    clicker = Clicker(gt_mask=gt, init_clicks=init, click_indx_offset=5)
    assert [c.indx for c in clicker.get_clicks()] == [5, 6]
    assert (clicker.num_pos_clicks, clicker.num_neg_clicks) == (1, 1)
    clicker.make_next_click(np.zeros_like(gt, dtype=bool))
    assert clicker.get_clicks()[-1].indx == 7 and len(clicker) == 3
    assert [c.coords_and_indx[2] for c in clicker.get_clicks(2)] == [5, 6]

    state = clicker.get_state()
    clicker.reset_clicks()
    assert len(clicker) == 0 and clicker.not_clicked_map.all()
    clicker.set_state(state)
    assert [tuple(map(int, c.coords)) for c in clicker.get_clicks()] == [(4, 4), (0, 0), (3, 3)]
    assert not clicker.not_clicked_map[0, 0]


def test_click_copy():
    click = Click(True, (3, 4), indx=2)
    other = click.copy(indx=7, is_positive=False)
    assert (click.is_positive, click.indx) == (True, 2)
    assert (other.is_positive, other.coords, other.indx) == (False, (3, 4), 7)
    assert other.coords_and_indx == (3, 4, 7)


def test_empty_gt_places_negative_clicks():
    gt = np.zeros((6, 8), dtype=np.int32)
    clicker = Clicker(gt_mask=gt)
    clicker.make_next_click(np.zeros_like(gt))          # no error at all: negative at (0, 0)
    pred = np.zeros((6, 8), dtype=bool)
    pred[1:5, 2:7] = True
    clicker.make_next_click(pred)                       # false positive: negative at its centre
    clicks = clicker.get_clicks()
    assert [bool(c.is_positive) for c in clicks] == [False, False]
    assert [tuple(map(int, c.coords)) for c in clicks] == [(0, 0), (2, 3)]   # 4x5 FP: distance 2, first


def test_clicker_without_gt_only_records():
    clicker = Clicker()
    clicker.add_click(Click(True, (1, 2)))
    assert len(clicker) == 1 and clicker.get_clicks()[0].indx == 0
    with pytest.raises(RuntimeError):
        clicker.make_next_click(np.zeros((3, 3), dtype=bool))


# --- Constructed ties: the clicker against the original's whole-image rule -------------------------
#
# Every case below has several pixels at the largest distance (or equal false-negative and false-
# positive maxima), where distances that differ in the last bits move the click. The reference is
# conftest.original_next_click, a transcription of RITM's rule, run on OpenCV's own exact transform
# (IPP off: see isegm/inference/clicker.py for why IPP's is neither the original's nor deterministic).
# The clicker runs under the caller's settings: 1, 2 and 4 OpenCV threads, IPP on (OpenCV's
# default) and off, several times each.

CLICKS_PER_CASE = 4          # later clicks of an unchanged prediction must take the next tied pixels
CALLER_SETTINGS = [(1, True), (2, True), (4, True), (1, False), (4, False)]   # (threads, IPP)
REPEATS = 3


def disc(shape: Tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    """``H x W`` bool disc of radius ``r`` around ``(cy, cx)`` (row, col); half-integer centres give
    even diameters."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def rect(shape: Tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``H x W`` bool mask, True on rows ``y0:y1`` and columns ``x0:x1``."""
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _missed(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(gt, pred): ``mask`` is the object, nothing is predicted (all errors are false negatives)."""
    return mask.astype(np.int32), np.zeros(mask.shape, dtype=bool)


def _fn_and_fp(fn: np.ndarray, fp: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(gt, pred) whose false negatives are ``fn`` and false positives ``fp`` (disjoint masks)."""
    return fn.astype(np.int32), fp.copy()


def _disc_pair(r: int, off: float) -> Tuple[np.ndarray, np.ndarray]:
    """Two equal discs of radius ``r`` side by side, the right one a row lower; ``off`` = 0.5 gives
    even diameters."""
    size = 2 * r + 4
    shape = (size + 3, 2 * size + 5)
    centre = size // 2 - off
    return disc(shape, centre + 1, centre + 1, r), disc(shape, centre + 2, size + 4 + centre, r)


def _tie_cases() -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    cases = {}
    for r in (3, 6, 12):                                     # odd diameter, centre on a pixel
        cases[f"disc_odd_r{r}"] = _missed(disc((2 * r + 5, 2 * r + 8), r + 2, r + 3, r))
    cases["disc_odd_r8_tall"] = _missed(disc((36, 25), 16, 10, 8))
    for r in (4, 8, 14):                                     # even diameter: 2x2 centre pixels tie
        cases[f"disc_even_r{r}"] = _missed(disc((2 * r + 6, 2 * r + 7), r + 1.5, r + 2.5, r))
    for h, w in ((6, 6), (7, 7), (4, 10), (5, 9), (6, 9)):   # squares and rectangles, even and odd
        cases[f"rect_{h}x{w}"] = _missed(rect((h + 5, w + 4), 2, 2 + h, 1, 1 + w))
    # Regions touching the image border (the zero frame is their boundary there).
    cases["whole_image_7x10"] = _missed(np.ones((7, 10), dtype=bool))
    cases["whole_image_8x8"] = _missed(np.ones((8, 8), dtype=bool))
    cases["left_half"] = _missed(rect((9, 12), 0, 9, 0, 6))
    cases["corner_square"] = _missed(rect((10, 11), 0, 6, 0, 6))
    cases["bottom_right_square"] = _missed(rect((10, 11), 4, 10, 5, 11))
    cases["disc_cut_by_top_edge"] = _missed(disc((16, 21), 1, 10, 7))
    cases["bottom_strip"] = _missed(rect((8, 13), 6, 8, 0, 13))
    # Several separate regions at the same depth: the first in row-major order wins.
    two_squares = rect((14, 20), 1, 6, 12, 17) | rect((14, 20), 7, 12, 2, 7)
    cases["two_squares"] = _missed(two_squares)
    three_discs = disc((30, 40), 7, 30, 5) | disc((30, 40), 7, 8, 5) | disc((30, 40), 21, 19, 5)
    cases["three_discs"] = _missed(three_discs)
    for r, off in ((13, 0.0), (14, 0.5)):                    # radii where IPP's transform breaks the tie
        left, right = _disc_pair(r, off)
        cases[f"two_discs_r{r}"] = _missed(left | right)
    # One-pixel-wide regions and single pixels: every pixel at distance 1.
    cases["row_line"] = _missed(rect((7, 12), 3, 4, 2, 10))
    cases["column_line"] = _missed(rect((11, 6), 1, 10, 4, 5))
    cases["diagonal_line"] = _missed(np.eye(9, 11, k=1, dtype=bool))
    cases["cross"] = _missed(rect((9, 9), 4, 5, 1, 8) | rect((9, 9), 1, 8, 4, 5))
    cases["single_pixels"] = _missed(np.isin(np.arange(60).reshape(6, 10), [13, 27, 41, 58]))
    cases["checkerboard"] = _missed((np.indices((6, 7)).sum(axis=0) % 2).astype(bool))
    # False negatives and false positives at the same depth: a negative click.
    cases["fn_fp_squares"] = _fn_and_fp(rect((9, 16), 2, 7, 1, 6), rect((9, 16), 1, 6, 9, 14))
    cases["fn_fp_lines"] = _fn_and_fp(rect((6, 9), 1, 2, 0, 9), rect((6, 9), 4, 5, 0, 9))
    cases["fn_fp_pixels"] = _fn_and_fp(rect((4, 5), 3, 4, 4, 5), rect((4, 5), 0, 1, 0, 1))
    for r, off in ((8, 0.5), (12, 0.0), (14, 0.5)):          # radii where IPP's transform flips the sign
        cases[f"fn_fp_discs_r{r}"] = _fn_and_fp(*_disc_pair(r, off))
    # Ignored pixels cut a square into two equal halves.
    gt = rect((9, 13), 1, 8, 1, 12).astype(np.int32)
    gt[:, 6] = -1
    cases["square_halved_by_ignore"] = (gt, np.zeros(gt.shape, dtype=bool))
    return cases


TIE_CASES = _tie_cases()


def _clicks(clicker: Clicker) -> List[Tuple[bool, Tuple[int, int]]]:
    return [(bool(c.is_positive), (int(c.coords[0]), int(c.coords[1]))) for c in clicker.get_clicks()]


def _reference_session(gt: np.ndarray, preds: Sequence[np.ndarray]) -> List[Tuple[bool, Tuple[int, int]]]:
    """The original rule's clicks for the predictions ``preds`` in turn, with its own clicked map."""
    not_clicked_map = np.ones(gt.shape, dtype=bool)
    clicks = []
    with opencv_settings(2, ipp=False):
        for pred in preds:
            is_positive, (y, x) = original_next_click(gt, pred, not_clicked_map)
            not_clicked_map[y, x] = False
            clicks.append((is_positive, (y, x)))
    return clicks


def _clicker_session(gt: np.ndarray, preds: Sequence[np.ndarray]) -> List[Tuple[bool, Tuple[int, int]]]:
    clicker = Clicker(gt_mask=gt)
    for pred in preds:
        clicker.make_next_click(pred)
    return _clicks(clicker)


def test_tie_cases_tie():
    """The constructed masks tie: at some click of the session, several unclicked pixels are at the
    largest distance, or false negatives and false positives are at the same largest distance."""
    for name, (gt, pred) in TIE_CASES.items():
        fn = (gt == 1) & ~pred & (gt != -1)
        fp = (gt != 1) & pred & (gt != -1)
        with opencv_settings(1, ipp=False):
            fn_dt, fp_dt = (cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 0)[1:-1, 1:-1]
                            for m in (fn, fp))
        not_clicked_map = np.ones(gt.shape, dtype=bool)
        tied = []
        for _, (y, x) in _reference_session(gt, [pred] * CLICKS_PER_CASE):
            top = max((fn_dt * not_clicked_map).max(), (fp_dt * not_clicked_map).max())
            if top == 0:   # every error pixel clicked: the original clicks (0, 0) again and again
                break
            tied.append(np.count_nonzero((fn_dt == top) & not_clicked_map)
                        + np.count_nonzero((fp_dt == top) & not_clicked_map))
            not_clicked_map[y, x] = False
        assert tied and max(tied) >= 2, (name, tied)


@pytest.mark.parametrize("name", sorted(TIE_CASES))
def test_tie_cases_match_the_original(name):
    gt, pred = TIE_CASES[name]
    preds = [pred] * CLICKS_PER_CASE
    expected = _reference_session(gt, preds)
    if name.startswith("fn_fp_"):
        assert expected[0][0] is False   # equal depth: the original's strict comparison says negative
    for threads, ipp in CALLER_SETTINGS:
        for repeat in range(REPEATS):
            with opencv_settings(threads, ipp):
                caller = (cv2.getNumThreads(), cv2.ipp.useIPP())
                got = _clicker_session(gt, preds)
                assert (cv2.getNumThreads(), cv2.ipp.useIPP()) == caller   # left as the caller set them
            assert got == expected, (name, threads, ipp, repeat)


def test_changing_predictions_match_the_original():
    """Predictions that change, stay, change by one pixel and come back: a reused transform must
    be the one of an equal mask, a changed mask is transformed again."""
    gt = (disc((24, 30), 11.5, 9.5, 8) | disc((24, 30), 11.5, 21.5, 6)).astype(np.int32)
    empty = np.zeros(gt.shape, dtype=bool)
    shifted = np.roll(gt == 1, 3, axis=1)                     # fn on the left, fp on the right
    one_off = shifted.copy()
    one_off[11, 13] = ~one_off[11, 13]
    preds = [empty, shifted, shifted, one_off, one_off, shifted, empty, gt == 1, empty]
    expected = _reference_session(gt, preds)
    assert len({p for p, _ in expected}) == 2                 # both signs occur
    for threads, ipp in CALLER_SETTINGS:
        with opencv_settings(threads, ipp):
            assert _clicker_session(gt, preds) == expected, (threads, ipp)


def test_transform_reused_only_for_an_equal_mask(monkeypatch):
    calls = []

    def counting(mask: np.ndarray) -> np.ndarray:
        calls.append(mask.copy())
        return exact_distance_transform(mask)

    monkeypatch.setattr(clicker_module, "exact_distance_transform", counting)
    gt = box((12, 14), 2, 9, 2, 8)
    clicker = Clicker(gt_mask=gt)
    pred = box((12, 14), 4, 11, 5, 12).astype(bool)           # both a false negative and a false positive
    clicker.make_next_click(pred)
    assert len(calls) == 2
    clicker.make_next_click(pred.copy())                       # equal masks: no new transform
    assert len(calls) == 2
    pred[10, 11] = False                                       # one false-positive pixel less
    clicker.make_next_click(pred)
    assert len(calls) == 3 and not calls[-1][11, 12]           # the framed fp mask, without that pixel
    clicker.make_next_click(np.zeros_like(pred))               # no false positive: nothing to transform
    assert len(calls) == 4
    ncm = np.ones(gt.shape, dtype=bool)
    expected = []
    with opencv_settings(2, ipp=False):
        for p in (box((12, 14), 4, 11, 5, 12).astype(bool),) * 2 + (pred, np.zeros_like(pred)):
            expected.append(original_next_click(gt, p, ncm))
            ncm[expected[-1][1]] = False
    assert _clicks(clicker) == expected


@pytest.mark.parametrize("fn_deeper", [True, False])
def test_second_transform_skipped_only_when_it_cannot_decide(monkeypatch, fn_deeper):
    """A thin error cannot beat a deep one: its transform is skipped, and the click is the original's."""
    calls = []

    def counting(mask: np.ndarray) -> np.ndarray:
        calls.append(mask.copy())
        return exact_distance_transform(mask)

    monkeypatch.setattr(clicker_module, "exact_distance_transform", counting)
    gt = box((40, 50), 5, 35, 5, 45)                            # a deep object
    if fn_deeper:   # missed object (deep false negative), a 3-pixel-high false-positive strip
        pred = box((40, 50), 36, 39, 0, 50).astype(bool)
    else:           # a 2-pixel-wide false-negative ring; the deep false positive is below the object
        gt = box((40, 50), 0, 6, 0, 50)
        pred = box((40, 50), 2, 40, 0, 50).astype(bool)
    clicker = Clicker(gt_mask=gt)
    clicker.make_next_click(pred)
    assert len(calls) == 1, "the thin error's transform should have been skipped"
    with opencv_settings(2, ipp=False):
        assert _clicks(clicker) == [original_next_click(gt, pred, np.ones(gt.shape, bool))]
    # Where the bound cannot rule the second mask out, both are transformed.
    calls.clear()
    Clicker(gt_mask=box((40, 50), 5, 35, 5, 45)).make_next_click(box((40, 50), 20, 40, 20, 50).astype(bool))
    assert len(calls) == 2


@pytest.mark.parametrize("shape", [(40, 50), (60, 80), (90, 100), (126, 126)])
def test_exact_distance_transform_is_deterministic(shape):
    """The same numbers on every call, for every OpenCV thread count and IPP setting of the caller:
    OpenCV's own transform (for these discs and sizes IPP's differs, and varies between calls)."""
    mask = np.pad(disc(shape, (shape[0] - 1) / 2, (shape[1] - 1) / 2, min(shape) / 3), 1)
    with opencv_settings(1, ipp=False):
        expected = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    for threads, ipp in CALLER_SETTINGS:
        with opencv_settings(threads, ipp):
            for _ in range(50):
                got = exact_distance_transform(mask)
                assert got.dtype == np.float32 and np.array_equal(got, expected), (threads, ipp)


def test_the_original_on_an_evaluation_sized_image():
    """With at least 2**14 framed pixels and several OpenCV threads the original's own call, IPP
    left on, runs OpenCV's own transform: the clicker gives its clicks, on any thread count."""
    shape = (130, 140)
    gt = (disc(shape, 40.5, 30.5, 14) | disc(shape, 40.5, 100.5, 14) | rect(shape, 90, 110, 20, 48)
          | rect(shape, 125, 126, 0, 140)).astype(np.int32)
    pred = disc(shape, 95.5, 100.5, 14) | rect(shape, 0, 2, 0, 140)    # a false positive as deep as the discs
    preds = [pred] * 6
    not_clicked_map = np.ones(shape, dtype=bool)
    expected = []
    with opencv_settings(2, ipp=True):
        for p in preds:
            expected.append(original_next_click(gt, p, not_clicked_map))
            not_clicked_map[expected[-1][1]] = False
    assert expected[0][0] is False
    for threads, ipp in CALLER_SETTINGS:
        for _ in range(REPEATS):
            with opencv_settings(threads, ipp):
                assert _clicker_session(gt, preds) == expected, (threads, ipp)


@pytest.mark.parametrize("name", ["disc_even_r8", "whole_image_7x10", "fn_fp_squares", "two_discs_r13"])
def test_without_padding_matches_the_original(name):
    """``padding=False`` (RITM's option): the image border is not a boundary."""
    gt, pred = TIE_CASES[name]
    with opencv_settings(2, ipp=False):
        expected = original_next_click(gt, pred, np.ones(gt.shape, dtype=bool), padding=False)
    for threads, ipp in CALLER_SETTINGS:
        with opencv_settings(threads, ipp):
            click = Clicker(gt_mask=gt)._get_next_click(pred, padding=False)
        assert (bool(click.is_positive), (int(click.coords[0]), int(click.coords[1]))) == expected


@pytest.mark.parametrize("seed", range(4))
def test_clicker_picks_the_clicks_of_the_original_rule(seed):
    """Random masks, predictions that stay or change, random clicked pixels: the clicker (whole
    transforms, reused while a mask is unchanged) against the original's whole-image rule."""
    rng = np.random.default_rng(seed)
    for case in range(300):
        h, w = rng.integers(1, 48, size=2)
        if case % 3 == 0:
            gt = (rng.random((h, w)) < rng.random()).astype(np.int32)
        else:   # blobs, so that distances above 1 occur
            smooth = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1 + case % 4)
            gt = (smooth > np.median(smooth)).astype(np.int32)
        if case % 5 == 0:
            gt[rng.random((h, w)) < 0.1] = -1
        clicker = Clicker(gt_mask=gt)
        pred = rng.random((h, w)) < rng.random()
        for step in range(3):   # the same or a changed prediction: a reused transform must not leak
            if step == 2:
                pred = rng.random((h, w)) < rng.random()
            if rng.random() < 0.5:
                clicker.not_clicked_map[rng.integers(0, h), rng.integers(0, w)] = False
            with opencv_settings(2, ipp=False):   # OpenCV's own exact transform, see conftest
                expected = original_next_click(gt, pred, clicker.not_clicked_map.copy())
            click = clicker._get_next_click(pred)
            assert (bool(click.is_positive), tuple(map(int, click.coords))) == expected, (case, step)
            assert isinstance(click.coords[0], np.integer)


def test_clicker_with_nothing_left_to_correct():
    gt = np.zeros((5, 6), np.int32)
    gt[1:3, 1:3] = 1
    click = Clicker(gt_mask=gt)._get_next_click(gt == 1)
    assert not click.is_positive and tuple(map(int, click.coords)) == (0, 0)
