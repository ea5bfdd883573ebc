"""The two stages of every registered network: ``encode`` once, ``correct`` per click.

* contract (no ``../shared`` needed): build, forward and backward, checkpoint round trip,
  ``encode`` + ``correct`` equal to ``forward``;
* exactness: the per-image work (split per-channel layers) and the incremental click maps give
  the numbers of the whole-block, rebuilt-every-click computation bit for bit over a 20-click
  session with ``attention='exact'``;
* no hidden state: nothing passed to ``correct`` or ``forward`` is modified, so undo is keeping
  an older :class:`Correction`.
"""
import random

import pytest
import torch

from isegm.build import MODEL_REGISTRY, list_models
from isegm.inference.utils import load_is_model
from isegm.model.checkpoint import save_checkpoint
from isegm.model.clicks import encode_clicks
from isegm.model.is_model import Correction, ImageEmbedding
from isegm.model.ops import ClickDistances
from isegm.model.refiner import AttRefineAfterLayer, RefinerContext
from isegm.model.variants import variant_of

H, W = 64, 96


def _calibrated(name: str) -> torch.nn.Module:
    """Random weights with non-trivial BN statistics, as in trained weights, in eval mode."""
    torch.manual_seed(0)
    net = MODEL_REGISTRY[name](init=False).eval().requires_grad_(False)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net


def _session(steps: int = 20, batch: int = 2, seed: int = 0):
    """An input and ``steps`` cumulative click sets (one undo at step 4): B x 2N x 3 points per step."""
    rng = random.Random(seed)
    clicks = [[] for _ in range(batch)]
    points = []
    for step in range(steps):
        for c in clicks:
            if step == 4 and len(c) > 1:
                c.pop()
            else:
                c.append((rng.uniform(0, H - 1), rng.uniform(0, W - 1), step == 0 or rng.random() < 0.5))
        points.append(encode_clicks(clicks))
    image = torch.rand(batch, 4, H, W, generator=torch.Generator().manual_seed(seed))
    return image, points


@pytest.mark.parametrize("name", list_models())
def test_contract(name, tmp_path):
    torch.manual_seed(0)
    model = MODEL_REGISTRY[name]()
    image, points = _session(steps=2)
    outputs, refined = model(image, points[0])                      # train mode, autograd on
    assert refined["instances_refined"].shape == (2, 1, H, W)
    assert outputs["feature"].shape[-2:] == (H // 4, W // 4)
    loss = refined["instances_refined"].mean() + outputs["instances"].mean()
    loss.backward()
    for part in ("feature_extractor", "refiner"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part) and p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), part

    save_checkpoint(model, tmp_path / f"{name}.pth")
    loaded = load_is_model(tmp_path / f"{name}.pth", "cpu")
    assert variant_of(torch.load(tmp_path / f"{name}.pth", weights_only=True)["config"]).name == name
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    state = loaded.state_dict()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())

    with torch.no_grad():
        out_a, ref_a = loaded(image, points[0])
        out_b, ref_b = loaded(image, points[1], out_a)
        embedding = loaded.encode(image, points[0])
        first = loaded.correct(embedding, points[0])
        second = loaded.correct(embedding, points[1], first)
    assert torch.equal(ref_a["instances_refined"], first.logits)
    assert torch.equal(ref_b["instances_refined"], second.logits)
    assert torch.equal(out_b["instances_lr"], second.logits_lr)


@pytest.mark.parametrize("name", list_models())
def test_encode_correct_are_the_whole_computation_bit_for_bit(name):
    """``exact`` with the per-image parts and incremental maps == whole blocks, maps rebuilt each click."""
    model = _calibrated(name)
    image, points = _session()
    with torch.no_grad():
        embedding = model.encode(image, points[0])
        plain_context = RefinerContext(embedding.refiner.image, embedding.refiner.feature)  # whole blocks
        correction, plain_lr = None, embedding.logits_lr
        for k, p in enumerate(points):
            correction = model.correct(embedding, p, correction)
            dist2 = ClickDistances.build(p, H, W).dist2
            prev = torch.nn.functional.interpolate(plain_lr, (H, W), mode="bilinear", align_corners=True)
            plain_lr = model.refiner(plain_context, model.dist_maps_refine.disks(dist2), prev, p, dist2)
            assert torch.equal(correction.logits_lr, plain_lr), f"{name}: click {k + 1} differs"


@pytest.mark.parametrize("name", ["hr18s", "segb0"])
def test_fast_attention_picks_the_same_templates_and_rounds_only(name, monkeypatch):
    model = _calibrated(name)
    image, points = _session(steps=6)
    select = AttRefineAfterLayer.select_templates
    seen = []

    def spy(self, fuse, cells, dist, graph=False):
        out = select(self, fuse, cells, dist)
        seen.append(torch.cat(out, dim=-1))
        return out

    monkeypatch.setattr(AttRefineAfterLayer, "select_templates", spy)
    with torch.no_grad():
        embedding = model.encode(image, points[0])
        exact = None
        for p in points:   # each step of both attentions starts from the same (exact) state
            fast = model.correct(embedding, p, exact, attention="fast")
            exact = model.correct(embedding, p, exact, attention="exact")
            assert torch.equal(seen[-2], seen[-1])
            torch.testing.assert_close(fast.logits, exact.logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="attention must be one of"):
        model.correct(embedding, points[0], attention="approximate")


def test_nothing_passed_in_is_modified_and_undo_is_an_older_correction():
    model = _calibrated("hr18s")
    image, points = _session(steps=4)
    with torch.no_grad():
        embedding = model.encode(image, points[0])
        frozen = {k: v.clone() for k, v in vars(embedding).items() if torch.is_tensor(v)}
        first = model.correct(embedding, points[0])
        second = model.correct(embedding, points[1], first)
        kept = (first.logits.clone(), first.logits_lr.clone(), first.clicks.dist2.clone())
        third = model.correct(embedding, points[2], second)
        again = model.correct(embedding, points[2], second)            # undo the third, redo it
        assert torch.equal(third.logits, again.logits)
        for before, after in zip(kept, (first.logits, first.logits_lr, first.clicks.dist2)):
            assert torch.equal(before, after)
        for key, value in frozen.items():
            assert torch.equal(getattr(embedding, key), value), key

        outputs, _ = model(image, points[0])
        cached = dict(outputs)
        later, _ = model(image, points[1], outputs)
        assert outputs == cached and later is not outputs
        assert later["instances_lr"] is not outputs["instances_lr"]
    assert isinstance(embedding, ImageEmbedding) and isinstance(third, Correction)
