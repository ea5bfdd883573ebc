"""Click distance maps: the incremental state equals a rebuild, bit for bit, and never changes an older state."""
import random

import pytest
import torch

from isegm.model.clicks import encode_clicks
from isegm.model.ops import ClickDistances, squared_click_distance


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_incremental_maps_equal_a_rebuild(dtype):
    rng = random.Random(0)
    rows, cols, batch = 37, 53, 2
    state = None
    clicks = [[] for _ in range(batch)]
    for step in range(40):
        for b in range(batch):
            action = rng.random()
            if action < 0.15 and clicks[b]:
                clicks[b].pop()                                              # undo
            elif action < 0.2 and clicks[b]:
                clicks[b].append(clicks[b][rng.randrange(len(clicks[b]))])   # the same pixel again
            else:                                                             # off-grid, on the border, outside
                clicks[b].append((rng.uniform(-3, rows + 2), rng.uniform(-3, cols + 2), rng.random() < 0.5))
        points = encode_clicks(clicks, dtype=dtype)
        if step % 7 == 3:   # the same clicks in other slots and with other indices: the same sets
            points = encode_clicks([list(reversed(c)) for c in clicks], dtype=dtype)
        before = None if state is None else state.dist2.clone()
        new = ClickDistances.build(points, rows, cols) if state is None else state.update(points, rows, cols)
        assert torch.equal(new.dist2, squared_click_distance(points, rows, cols)), step
        if state is not None:
            assert torch.equal(state.dist2, before), "an older state was modified"
        state = new


def test_a_new_size_or_batch_rebuilds():
    one = encode_clicks([[(3, 4, True)]])
    state = ClickDistances.build(one, 10, 12)
    assert torch.equal(state.update(one, 10, 14).dist2, squared_click_distance(one, 10, 14))
    two = encode_clicks([[(3, 4, True)], [(1, 1, False)]])
    assert torch.equal(state.update(two, 10, 12).dist2, squared_click_distance(two, 10, 12))
    with torch.inference_mode():
        inference = ClickDistances.build(one, 10, 12)
    more = encode_clicks([[(3, 4, True), (7, 7, False)]])
    # An inference tensor from an earlier state extends outside inference mode too (it is copied).
    assert torch.equal(inference.update(more, 10, 12).dist2, squared_click_distance(more, 10, 12))


def test_encode_clicks_layout():
    points = encode_clicks([[(1, 2, True), (3, 4, False), (5, 6, True)], [(7, 8, False, 5)]])
    assert points.dtype == torch.float64 and points.shape == (2, 4, 3)
    pad = [-1.0, -1.0, -1.0]
    assert points[0].tolist() == [[1, 2, 0], [5, 6, 2], [3, 4, 1], pad]
    assert points[1].tolist() == [pad, pad, [7, 8, 5], pad]
    assert encode_clicks([[]]).tolist() == [[pad, pad]]
    with pytest.raises(ValueError, match="num=1"):
        encode_clicks([[(1, 2, True), (3, 4, True)]], num=1)
