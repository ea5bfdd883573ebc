"""Constant-cost corrections: incremental click maps, cached per-image work, the clicker's reused
distance transforms, the scripts.

Every shortcut here must give the numbers of the plain computation: exactly where the top-k
template choice depends on them, to float32 rounding after it; the clicker's clicks exactly.
"""
import importlib.util
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import opencv_settings, original_next_click

from isegm.build import MODEL_REGISTRY
from isegm.inference.clicker import Clicker
from isegm.model.is_model import CACHE_KEY, ClickCache
from isegm.model.ops import IncrementalClickDistance, squared_click_distance
from isegm.model.refiner import AttRefineAfterLayer

REPO = Path(__file__).resolve().parents[2]


def _points(clicks_per_sample, dtype=torch.float64):
    """[[(y, x, is_positive), ...] per sample] -> B x 2N x 3, positives first, padded with -1 rows."""
    num = max([1] + [max(sum(p for *_, p in c), sum(not p for *_, p in c)) for c in clicks_per_sample])
    rows = []
    for clicks in clicks_per_sample:
        pos = [(y, x, i) for i, (y, x, p) in enumerate(clicks) if p]
        neg = [(y, x, i) for i, (y, x, p) in enumerate(clicks) if not p]
        pad = [(-1, -1, -1)]
        rows.append(pos + pad * (num - len(pos)) + neg + pad * (num - len(neg)))
    return torch.tensor(rows, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_incremental_click_distance_equals_full_recomputation(dtype):
    rng = random.Random(0)
    rows, cols, batch = 37, 53, 2
    maps = IncrementalClickDistance()
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
        points = _points(clicks, dtype)
        if step % 7 == 3:   # the same clicks in other slots and with other indices: the same sets
            points = _points([list(reversed(c)) for c in clicks], dtype)
        got = maps(points, rows, cols).clone()
        assert torch.equal(got, squared_click_distance(points, rows, cols)), step


def test_incremental_click_distance_keys():
    maps = IncrementalClickDistance()
    a = maps(_points([[(3, 4, True)]]), 10, 12).clone()
    one = _points([[(3, 4, True)]])
    assert torch.equal(maps(one, 10, 14), squared_click_distance(one, 10, 14))           # another size
    assert torch.equal(maps(_points([[(3, 4, True)]]), 10, 12), a)
    two = _points([[(3, 4, True)], [(1, 1, False)]])
    assert torch.equal(maps(two, 10, 12), squared_click_distance(two, 10, 12))        # another batch size
    with torch.inference_mode():
        inference = IncrementalClickDistance()
        inference(_points([[(3, 4, True)]]), 10, 12)
    more = _points([[(3, 4, True), (7, 7, False)]])
    with torch.no_grad():   # an inference tensor cannot be updated here: rebuilt instead
        assert torch.equal(inference(more, 10, 12), squared_click_distance(more, 10, 12))


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


@pytest.fixture(scope="module", params=["hr18s", "segb0"])
def model(request):
    torch.manual_seed(0)
    net = MODEL_REGISTRY[request.param](init=False).eval().requires_grad_(False)
    with torch.no_grad():   # non-trivial BN statistics, as in trained weights
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net


def _session(h=64, w=96, batch=2, steps=6, seed=0):
    rng = random.Random(seed)
    clicks = [[] for _ in range(batch)]
    points = []
    for step in range(steps):
        for c in clicks:
            if step == 4 and len(c) > 1:
                c.pop()   # undo
            else:
                c.append((rng.uniform(0, h - 1), rng.uniform(0, w - 1), step == 0 or rng.random() < 0.5))
        points.append(_points(clicks))
    return torch.rand(batch, 4, h, w, generator=torch.Generator().manual_seed(seed)), points


def test_inference_path_matches_the_plain_path(model, monkeypatch):
    """Each call of a cached inference chain against the plain path (the original's computation)
    fed the same state: bit-identical up to the template choice, float32 rounding after it."""
    image, points = _session()
    select = AttRefineAfterLayer.select_templates
    seen = []

    def spy(self, fuse, cells, dist):
        out = select(self, fuse, cells, dist)
        seen.append((fuse.clone(), dist.clone()) + tuple(o.clone() for o in out))
        return out

    monkeypatch.setattr(AttRefineAfterLayer, "select_templates", spy)
    outputs = None
    for p in points:
        with torch.enable_grad():   # autograd on: no cache, the plain path
            state = None if outputs is None else {k: v for k, v in outputs.items() if k != CACHE_KEY}
            plain_outputs, plain = model(image, p, state)
            assert CACHE_KEY not in plain_outputs
        with torch.inference_mode():
            outputs, fast = model(image, p, outputs)
            assert isinstance(outputs[CACHE_KEY], ClickCache)
        (plain_sel, fast_sel), seen[:] = seen, []
        for a, b in zip(plain_sel, fast_sel):
            assert torch.equal(a, b)
        torch.testing.assert_close(fast["instances_refined"], plain["instances_refined"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(outputs["instances_lr"], plain_outputs["instances_lr"], rtol=1e-5, atol=1e-5)
        outputs["instances_lr"] = plain_outputs["instances_lr"].clone()   # continue from the plain state


def test_cache_follows_the_image_and_the_feature(model):
    """A new image tensor or feature in the cached outputs is recomputed, not taken from the cache."""
    image, points = _session(seed=2)
    other = torch.rand_like(image)
    with torch.inference_mode():
        outputs, _ = model(image, points[0])
        model(image, points[1], outputs)
        lr = outputs["instances_lr"]
        _, stale = model(other, points[2], outputs)          # same cache, another image
        fresh_outputs, _ = model(image, points[0])
        fresh_outputs["instances_lr"] = lr
        del fresh_outputs[CACHE_KEY]
        _, fresh = model(other, points[2], fresh_outputs)     # no cache at all
        torch.testing.assert_close(stale["instances_refined"], fresh["instances_refined"], rtol=0, atol=0)
        feature = outputs["feature"]
        outputs["feature"] = feature * 2 + 1                   # the caller swaps the backbone feature
        lr = outputs["instances_lr"].clone()
        _, swapped = model(image, points[2], outputs)
        fresh_outputs["feature"], fresh_outputs["instances_lr"] = outputs["feature"], lr
        fresh_outputs.pop(CACHE_KEY, None)
        _, expected = model(image, points[2], fresh_outputs)
        torch.testing.assert_close(swapped["instances_refined"], expected["instances_refined"], rtol=0, atol=0)


def test_no_cache_in_training(model):
    image, points = _session(seed=3, steps=2)
    model.train()
    try:
        with torch.no_grad():
            outputs, _ = model(image, points[0])
        assert CACHE_KEY not in outputs
    finally:
        model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, _ = model(image, points[0])
        assert CACHE_KEY not in outputs
    with torch.no_grad():
        outputs, _ = model(image, points[0])
        assert isinstance(outputs[CACHE_KEY], ClickCache)
        lr = outputs["instances_lr"]
        # The training loop's later calls pass a new input tensor each time: recomputed, same numbers.
        _, same = model(image, points[1], outputs)
        outputs["instances_lr"] = lr
        _, copy = model(image.clone(), points[1], outputs)
    assert torch.equal(same["instances_refined"], copy["instances_refined"])


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_count_flops_script(tmp_path, capsys):
    rows = _script("count_flops").main(["--models", "hr18s", "--sizes", "64x64", "--json", str(tmp_path / "f.json")])
    assert rows[0]["params"] == 4_322_416
    assert rows[0]["first"] > rows[0]["later"] > 0 and rows[0]["later_plain"] > rows[0]["later"]
    assert "| hr18s |" in capsys.readouterr().out and (tmp_path / "f.json").exists()


def test_benchmark_script_quick(tmp_path, capsys):
    report = _script("benchmark").main(["--quick", "--models", "hr18s", "--size", "64x64", "--clicks", "1,2,3",
                                        "--session-size", "60x80", "--infer-size", "64", "--session-clicks", "3",
                                        "--no-retain-memory", "--device", "cpu", "--json", str(tmp_path / "b.json")])
    result = report["devices"]["cpu"]
    assert set(result["models"]["hr18s"]["later"]) == {1, 2, 3}
    assert result["sessions"]["hr18s"]["clicks"] == 3
    out = capsys.readouterr().out
    assert "| hr18s |" in out and "everything else" in out and (tmp_path / "b.json").exists()
