"""HRNet-OCR backbone: state-dict layout, numerics against the original code, ImageNet loading."""
from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from isegm.model.modeling.hrnet_ocr import HighResolutionNet
from isegm.utils.errors import CheckpointError

SHARED = Path(__file__).resolve().parents[3] / "shared"
SPEC_DIR = SHARED / "spec" / "checkpoints"
FIXTURES = SHARED / "fixtures"
PREFIX = "feature_extractor."
# Keys of the OCR / segmentation heads: not part of an ImageNet classification checkpoint.
HEAD_PREFIXES = ("conv3x3_ocr.", "ocr_gather_head.", "ocr_distri_head.", "cls_head.", "aux_head.")

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared reference data not found at {SHARED}")


def _build(width: int, ocr_width: int, small: bool, seed: int = 0) -> HighResolutionNet:
    torch.manual_seed(seed)
    return HighResolutionNet(width=width, num_classes=1, ocr_width=ocr_width, small=small)


@needs_shared
@pytest.mark.parametrize("name", ["hr18s", "hr18", "hr32"])
def test_state_dict_matches_spec(name: str) -> None:
    spec = json.loads((SPEC_DIR / f"{name}.json").read_text())
    params = {k: v["value"] for k, v in spec["config"]["params"].items()}
    expected = [
        (key[len(PREFIX):], list(shape), dtype)
        for key, shape, dtype, _kind in spec["state_dict"]
        if key.startswith(PREFIX)
    ]
    net = _build(params["width"], params["ocr_width"], params["small"])
    got = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()]
    assert [k for k, _, _ in got] == [k for k, _, _ in expected]  # names and registration order
    assert got == expected  # shapes and dtypes


def _click_encoder(state: dict[str, torch.Tensor]) -> nn.Module:
    """The model's ``maps_transform`` (conv, LeakyReLU, conv, ScaleLayer), built inline from its weights."""
    encoder = nn.Sequential(nn.Conv2d(1, 16, 1), nn.LeakyReLU(0.2), nn.Conv2d(16, 64, 3, stride=2, padding=1))
    encoder.load_state_dict(
        {f"{i}.{p}": state[f"maps_transform.{i}.{p}"] for i in (0, 2) for p in ("weight", "bias")}
    )
    encoder.append(_Scale(state["maps_transform.3.scale"].abs()))
    return encoder.eval()


class _Scale(nn.Module):
    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


def _backbone_inputs(rgb: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``rgb`` 1x3xHxW in [0, 1] -> (ImageNet-normalized image, radius-5 disk 1x1xHxW of the first click)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h, w = rgb.shape[-2:]
    y0, x0 = points[0, 0, :2].tolist()
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    disk = (((yy - y0) ** 2 + (xx - x0) ** 2) <= 25).float()[None, None]
    return (rgb - mean) / std, disk


def _upsample(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(t, size=size, mode="bilinear", align_corners=True)


@needs_shared
def test_hr18s_matches_original_outputs() -> None:
    ckpt = torch.load(FIXTURES / "hr18s_random.pth", weights_only=True)
    io = torch.load(FIXTURES / "hr18s_io.pt", weights_only=True)
    sd = ckpt["state_dict"]
    net = _build(18, 48, True)
    net.load_state_dict({k[len(PREFIX):]: v for k, v in sd.items() if k.startswith(PREFIX)}, strict=True)
    net.eval()
    image = io["a_image"]  # 1 x 4 x 384 x 512: RGB in [0, 1] + prev mask (unused by the backbone)
    x, disk = _backbone_inputs(image[:, :3], io["a_points"])
    with torch.no_grad():
        out, out_aux, feats = net(x, _click_encoder(sd)(disk))

    h, w = image.shape[-2:]
    ref = io["a_outputs"]
    assert out.shape == (1, 1, h // 4, w // 4) and out_aux.shape == out.shape
    assert feats.shape == (1, 96, h // 4, w // 4)
    # Max abs tolerance 5e-4, not 1e-4: this random checkpoint amplifies float32 rounding, and 1e-4 is
    # below its noise floor on another CPU. Measured here: this implementation in float32 vs float64
    # differs by up to 1.9e-4 (features up to 9 in magnitude), oneDNN on vs off by 2.0e-4, float64 vs
    # the stored reference by 1.1e-4; observed vs the reference: 2.0e-4 (feature), 1.7e-4 (instances),
    # 1.2e-4 (aux). The better-conditioned seeded hr18 test below holds 1e-4. Structural mistakes
    # (ReLU placement, fuse order, biases) show up at 1e-2 or more; the mean check stays tight.
    for got, want in ((feats, ref["feature"]), (_upsample(out, (h, w)), ref["instances"]),
                      (_upsample(out_aux, (h, w)), ref["instances_aux"]), (out, io["a_backbone_logits_lr"])):
        diff = (got - want).abs()
        assert diff.max().item() < 5e-4, diff.max().item()
        assert diff.mean().item() < 1e-4, diff.mean().item()


def _seeded_weights_module():
    spec = importlib.util.spec_from_file_location("seeded_weights", FIXTURES / "seeded" / "seeded_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_shared
def test_hr18_matches_original_seeded_outputs() -> None:
    """The non-small path (4 blocks, 4/3 modules) against the original with name-seeded weights."""
    io = torch.load(FIXTURES / "seeded" / "hr18.pt", weights_only=True)
    seed, stride = io["meta"]["seed"], io["meta"]["maps_stride"]
    entry_values = _seeded_weights_module().entry_values
    net = _build(18, 64, False)
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if value.is_floating_point():
                value.copy_(entry_values(PREFIX + key, value.shape, seed))
                assert abs(value.double().sum().item() - io["checksum_all_sums"][PREFIX + key]) < 1e-3, key
    net.eval()
    encoder_keys = [f"maps_transform.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")]
    shapes = {encoder_keys[0]: (16, 1, 1, 1), encoder_keys[1]: (16,), encoder_keys[2]: (64, 16, 3, 3),
              encoder_keys[3]: (64,), "maps_transform.3.scale": (1,)}
    encoder = _click_encoder({k: entry_values(k, shape, seed) for k, shape in shapes.items()})

    rgb = io["image_uint8_hwc"].permute(2, 0, 1).float().div(255.0)[None]
    x, disk = _backbone_inputs(rgb, io["a_points"])
    with torch.no_grad():
        out, out_aux, _ = net(x, encoder(disk))
    size = tuple(rgb.shape[-2:])
    for got, want in ((out, io["a_instances"]), (out_aux, io["a_instances_aux"])):
        diff = (_upsample(got, size)[..., ::stride, ::stride] - want).abs().max().item()
        assert diff < 1e-4, diff


def _backbone_state(net: HighResolutionNet) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items() if not k.startswith(HEAD_PREFIXES)}


@pytest.mark.parametrize("prefix", ["", "model."])
def test_load_imagenet_weights(tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    source = _build(18, 48, True, seed=1)
    backbone = _backbone_state(source)
    fake_classifier = {
        "classifier.weight": torch.randn(1000, 2048),
        "classifier.bias": torch.randn(1000),
        "incre_modules.0.0.conv1.weight": torch.randn(32, 18, 1, 1),
        "final_layer.0.weight": torch.randn(2048, 1024, 1, 1),
    }
    # HRNet segmentation checkpoints call the aux head ``last_layer``; the loader renames it.
    last_layer = {"last_layer.0.weight": torch.randn(270, 270, 1, 1)}
    state = {prefix + k: v for k, v in {**backbone, **fake_classifier, **last_layer}.items()}
    path = tmp_path / "hrnet_w18_small_model_v2.pth"
    torch.save(state, path)

    net = _build(18, 48, True, seed=2)
    heads_before = {k: v.clone() for k, v in net.state_dict().items() if k.startswith(HEAD_PREFIXES)}
    with caplog.at_level(logging.INFO, logger="isegm"):
        report = net.load_pretrained_weights(path)

    assert sorted(report.loaded) == sorted([*backbone, "aux_head.0.weight"])
    assert sorted(report.skipped) == sorted(fake_classifier)
    assert set(report.missing) == set(heads_before) - {"aux_head.0.weight"}
    after = net.state_dict()
    for key, value in backbone.items():
        assert torch.equal(after[key], value), key
    assert torch.equal(after["aux_head.0.weight"], last_layer["last_layer.0.weight"])
    assert torch.equal(after["cls_head.weight"], heads_before["cls_head.weight"])
    assert not torch.equal(after["conv1.weight"], _build(18, 48, True, seed=2).state_dict()["conv1.weight"])
    assert f"loaded {len(report.loaded)} keys, skipped {len(fake_classifier)}" in caplog.text


def test_load_imagenet_weights_errors(tmp_path: Path) -> None:
    net = _build(18, 48, True)
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"encoder.weight": torch.zeros(3), "fc.bias": torch.zeros(2)}, unrelated)
    with pytest.raises(CheckpointError, match="unrelated.pth"):
        net.load_pretrained_weights(unrelated)

    not_a_dict = tmp_path / "a_list.pth"
    torch.save([torch.zeros(3)], not_a_dict)
    with pytest.raises(CheckpointError, match="a_list.pth"):
        net.load_pretrained_weights(not_a_dict)

    missing = tmp_path / "does_not_exist.pth"
    with pytest.raises(FileNotFoundError, match="does_not_exist.pth"):
        net.load_pretrained_weights(missing)
