"""The simulated user's next-click rule on hand-made masks (coordinates are (y, x) = (row, col))."""
import numpy as np
import pytest

from isegm.inference.clicker import Click, Clicker


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
    cv2 = pytest.importorskip("cv2")
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
