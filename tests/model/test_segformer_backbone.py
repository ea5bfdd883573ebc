"""SegFormer feature extractor: state-dict layout, numerics against the original, MiT ImageNet loading."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from isegm.model.modeling.segformer.mix_transformer import mit_b0
from isegm.model.modeling.segformer.segformer_model import SegFormer
from isegm.utils.errors import CheckpointError

SHARED = Path(__file__).resolve().parents[3] / "shared"
SPEC = SHARED / "spec" / "checkpoints"
FIXTURES = SHARED / "fixtures"
PREFIX = "feature_extractor."

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared reference folder not found: {SHARED}")


@needs_shared
@pytest.mark.parametrize("version", ["b0", "b3"])
def test_state_dict_matches_spec(version: str) -> None:
    spec = json.loads((SPEC / f"seg{version}.json").read_text())["state_dict"]
    expected = [(k[len(PREFIX):], list(shape), dtype) for k, shape, dtype, _ in spec if k.startswith(PREFIX)]
    own = [(k, list(v.shape), str(v.dtype).replace("torch.", ""))
           for k, v in SegFormer(version, side_dims=1).state_dict().items()]
    assert [k for k, *_ in own] == [k for k, *_ in expected]  # same keys, same order
    assert own == expected


def first_click_disk(points: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Radius-5 binary disk ``[1, 1, h, w]`` around the first click row ``(y, x, index)``."""
    y0, x0 = points[0, 0, :2].tolist()
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    return (((yy - y0) ** 2 + (xx - x0) ** 2) <= 25).float()[None, None]


@needs_shared
def test_segb0_matches_original_outputs() -> None:
    ckpt = torch.load(FIXTURES / "segb0_random.pth", weights_only=True)
    io = torch.load(FIXTURES / "segb0_io.pt", weights_only=True)
    model = SegFormer("b0", side_dims=1)
    state = {k[len(PREFIX):]: v for k, v in ckpt["state_dict"].items() if k.startswith(PREFIX)}
    model.load_state_dict(state, strict=True)
    model.eval()

    image = io["a_image"]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    rgb = (image[:, :3] - mean) / std
    side = first_click_disk(io["a_points"], *image.shape[2:])
    with torch.no_grad():
        pred, feature = model(rgb, side)
    instances = F.interpolate(pred, size=image.shape[2:], mode="bilinear", align_corners=True)

    ref = io["a_outputs"]
    assert feature.shape == ref["feature"].shape == (1, 256, 96, 128)
    assert instances.shape == ref["instances"].shape
    feat_diff = (feature - ref["feature"]).abs().max().item()
    inst_diff = (instances - ref["instances"]).abs().max().item()
    assert feat_diff <= 1e-4, f"feature max abs diff {feat_diff:.3g}"
    assert inst_diff <= 1e-4, f"instances max abs diff {inst_diff:.3g}"


def fake_mit_b0_file(path: Path) -> dict:
    """Write a MiT-B0 ImageNet-style release (no side embedding / norm_add, plus a classifier)."""
    torch.manual_seed(123)
    state = {k: v for k, v in mit_b0(side_dims=1).state_dict().items()
             if not k.startswith(("patch_embed_side1.", "norm_add."))}
    state["head.weight"] = torch.randn(1000, 256)
    state["head.bias"] = torch.randn(1000)
    torch.save(state, path)
    return state


def test_load_mit_imagenet_weights(tmp_path: Path) -> None:
    state = fake_mit_b0_file(tmp_path / "mit_b0.pth")
    torch.manual_seed(7)
    model = SegFormer("b0")
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    report = model.load_pretrained_weights(tmp_path / "mit_b0.pth")

    assert report.loaded == [k for k in state if not k.startswith("head.")]
    assert report.skipped == ["head.weight", "head.bias"]
    new_keys = ("patch_embed_side1.", "norm_add.")
    assert sorted(report.missing) == sorted(k for k in before if k.startswith(new_keys))
    after = model.backbone.state_dict()
    for key in report.loaded:
        assert torch.equal(after[key], state[key]), key
    assert not torch.equal(before["block1.0.attn.q.weight"], after["block1.0.attn.q.weight"])
    for key in report.missing:
        assert torch.equal(after[key], before[key]), key


def test_load_mit_weights_with_state_dict_wrapper(tmp_path: Path) -> None:
    state = fake_mit_b0_file(tmp_path / "raw.pth")
    torch.save({"state_dict": state}, tmp_path / "wrapped.pth")
    report = SegFormer("b0").load_pretrained_weights(tmp_path / "wrapped.pth")
    assert len(report.loaded) == len(state) - 2


def test_load_mit_weights_errors(tmp_path: Path) -> None:
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, unrelated)
    with pytest.raises(CheckpointError, match="unrelated.pth"):
        SegFormer("b0").load_pretrained_weights(unrelated)
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(CheckpointError, match="list.pth"):
        SegFormer("b0").load_pretrained_weights(not_a_dict)
    missing = tmp_path / "nope" / "mit_b0.pth"
    with pytest.raises(FileNotFoundError, match="mit_b0.pth"):
        SegFormer("b0").load_pretrained_weights(missing)
