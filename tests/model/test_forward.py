"""The original forward call on a 480x640 input: the first click runs the backbone, later clicks do not."""
import pytest
import torch

from isegm.build import MODEL_REGISTRY
from isegm.inference.utils import load_is_model
from isegm.model.checkpoint import save_checkpoint
from isegm.model.clicks import encode_clicks


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fwd") / "hr18s.pth"
    save_checkpoint(MODEL_REGISTRY["hr18s"](), path)
    return load_is_model(path, "cpu")


def test_first_and_later_click_480x640(model):
    h, w = 480, 640
    image = torch.cat([torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1)), torch.zeros(1, 1, h, w)], 1)
    calls = []
    hook = model.feature_extractor.register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            out, ref = model(image, encode_clicks([[(240, 320, True)]]))
            feature, lr_first = out["feature"], out["instances_lr"].clone()
            assert len(calls) == 1
            assert out["feature"].shape == (1, 96, h // 4, w // 4)
            for key in ("instances", "instances_aux"):
                assert out[key].shape == (1, 1, h, w)
            assert out["click_map"].shape == (1, 2, h, w)
            assert ref["instances_refined"].shape == (1, 1, h, w)
            assert out["instances_lr"].shape == (1, 1, h // 4, w // 4)
            clicks = [(240, 320, True), (100, 500, False), (400, 100, True)]
            out2, ref2 = model(image, encode_clicks([clicks]), out)
    finally:
        hook.remove()
    assert len(calls) == 1  # no backbone on the later click
    assert out2 is not out and out2["feature"] is feature
    assert torch.equal(out["instances_lr"], lr_first)        # the caller's outputs are not modified
    assert not torch.equal(out2["instances_lr"], lr_first)   # the new ones hold the corrected logits
    for t in (out["instances"], ref["instances_refined"], ref2["instances_refined"]):
        assert torch.isfinite(t).all()
    assert not torch.allclose(ref2["instances_refined"], ref["instances_refined"])


def test_later_clicks_beyond_the_first_do_not_reach_the_backbone(model):
    """Only click index 0 (if positive) enters the backbone: more clicks, same backbone output."""
    image = torch.cat([torch.rand(1, 3, 96, 128), torch.zeros(1, 1, 96, 128)], 1)
    with torch.no_grad():
        one, _ = model(image, encode_clicks([[(40, 60, True)]]))
        many, _ = model(image, encode_clicks([[(40, 60, True), (10, 10, False), (80, 100, True)]]))
    assert torch.equal(one["feature"], many["feature"])
    assert torch.equal(one["instances"], many["instances"])
