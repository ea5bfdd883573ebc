"""Checkpoint format: round trips, the original format, and a clear error for each bad input."""
import logging

import pytest
import torch
from conftest import shared_path

from isegm.build import MODEL_REGISTRY, build_emc_click, load_imagenet_weights
from isegm.inference.utils import load_is_model
from isegm.model.checkpoint import CheckpointError, save_checkpoint


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODEL_REGISTRY["hr18s"]()


@pytest.fixture(scope="module")
def ckpt(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "hr18s.pth"
    save_checkpoint(model, path)
    return path


def _data(ckpt):
    return torch.load(ckpt, weights_only=True)


def _assert_same_weights(model, state):
    own = model.state_dict()
    assert list(own) == list(state)
    for key, value in state.items():
        assert torch.equal(own[key], value), key


def test_saved_file_has_the_released_layout(ckpt, model):
    data = _data(ckpt)
    assert list(data) == ["state_dict", "config"]
    assert data["config"]["class"] == "isegm.model.is_refine_model.HRNetRefineModel"
    assert list(data["state_dict"]) == list(model.state_dict())
    assert not list(ckpt.parent.glob("*.tmp*"))  # atomic write leaves nothing behind


def test_round_trip(ckpt, model):
    loaded = load_is_model(ckpt, "cpu")
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    _assert_same_weights(loaded, model.state_dict())


def test_original_release_file_loads():
    path = shared_path("fixtures", "segb0_random.pth")
    loaded = load_is_model(path, "cpu")
    _assert_same_weights(loaded, torch.load(path, weights_only=True)["state_dict"])


def test_builder_loads_checkpoint_strictly(ckpt, model):
    rebuilt = build_emc_click("hr18s", checkpoint=ckpt)
    key = "refiner.refine_pred.weight"
    assert torch.equal(rebuilt.state_dict()[key], model.state_dict()[key])
    with pytest.raises(CheckpointError, match=r"HRNetRefineModel.*not 'segb0'"):
        build_emc_click("segb0", checkpoint=ckpt)


def test_module_prefix_is_accepted(ckpt, model, tmp_path):
    data = _data(ckpt)
    data["state_dict"] = {f"module.{k}": v for k, v in data["state_dict"].items()}
    torch.save(data, tmp_path / "ddp.pth")
    _assert_same_weights(load_is_model(tmp_path / "ddp.pth", "cpu"), model.state_dict())
    data["state_dict"]["refiner.extra"] = torch.zeros(1)   # a prefix on some keys only is not a DDP save
    torch.save(data, tmp_path / "partly.pth")
    with pytest.raises(CheckpointError, match=r"unexpected keys: module\.maps_transform"):
        load_is_model(tmp_path / "partly.pth", "cpu")


def test_alias_keys_may_be_absent_but_not_different(ckpt, tmp_path):
    data = _data(ckpt)
    data["state_dict"] = {k: v for k, v in data["state_dict"].items() if "corr_conv_pos" not in k}
    torch.save(data, tmp_path / "no_alias.pth")
    load_is_model(tmp_path / "no_alias.pth", "cpu")
    data = _data(ckpt)
    key = "refiner.corr_conv_neg.conv1x1.bias"
    data["state_dict"][key] = data["state_dict"][key] + 1  # not in place: aliases share storage
    torch.save(data, tmp_path / "bad_alias.pth")
    with pytest.raises(CheckpointError, match=r"bad_alias\.pth.*corr_conv_neg\.conv1x1\.bias.*differs"):
        load_is_model(tmp_path / "bad_alias.pth", "cpu")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_is_model(tmp_path / "nope.pth", "cpu")


def test_truncated_file(ckpt, tmp_path):
    blob = ckpt.read_bytes()
    (tmp_path / "cut.pth").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth.*truncated or corrupt"):
        load_is_model(tmp_path / "cut.pth", "cpu")


def test_not_a_checkpoint_dict(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match=r"tensor\.pth.*not an EMC-Click checkpoint"):
        load_is_model(tmp_path / "tensor.pth", "cpu")
    torch.save({"model": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"other\.pth.*'state_dict' and 'config'.*\['model'\]"):
        load_is_model(tmp_path / "other.pth", "cpu")


class Evil:
    pass


def test_arbitrary_pickle_is_refused(tmp_path):
    torch.save({"state_dict": {}, "config": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"evil\.pth.*weights_only=True"):
        load_is_model(tmp_path / "evil.pth", "cpu")


@pytest.mark.parametrize("field,value,message", [
    ("class", "os.system", r"model class 'os\.system', which is not allowed"),
    ("class", "isegm.model.is_model.ISModel", r"model class 'isegm\.model\.is_model\.ISModel'"),
    ("norm_layer", "subprocess.Popen", r"class of param 'norm_layer' 'subprocess\.Popen'"),
    ("bogus", 1, r"param 'bogus' is not an argument of"),
])
def test_bad_config(ckpt, tmp_path, field, value, message):
    data = _data(ckpt)
    if field == "class":
        data["config"]["class"] = value
    elif field == "norm_layer":
        data["config"]["params"]["norm_layer"]["value"] = value
    else:
        data["config"]["params"][field] = {"type": "builtin", "value": value, "specified": True}
    torch.save(data, tmp_path / "cfg.pth")
    with pytest.raises(CheckpointError, match=r"cfg\.pth.*" + message):
        load_is_model(tmp_path / "cfg.pth", "cpu")


def test_unknown_unspecified_param_is_skipped(ckpt, model, tmp_path):
    data = _data(ckpt)
    data["config"]["params"]["old_option"] = {"type": "builtin", "value": 3, "specified": False}
    torch.save(data, tmp_path / "old.pth")
    loaded = load_is_model(tmp_path / "old.pth", "cpu")
    assert "old_option" not in loaded._config["params"]   # not passed to the constructor
    assert loaded._config["params"]["width"]["value"] == 18
    _assert_same_weights(loaded, model.state_dict())
    data["config"]["params"]["old_option"]["specified"] = True   # a specified one is an error
    torch.save(data, tmp_path / "old.pth")
    with pytest.raises(CheckpointError, match=r"old\.pth.*'old_option' is not an argument"):
        load_is_model(tmp_path / "old.pth", "cpu")


def test_key_mismatches_are_listed(ckpt, tmp_path, caplog):
    data = _data(ckpt)
    sd = data["state_dict"]
    del sd["refiner.refine_pred.bias"]
    sd["refiner.extra.weight"] = torch.zeros(1)
    sd["refiner.feature_convq.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(data, tmp_path / "mismatch.pth")
    with pytest.raises(CheckpointError) as info:
        load_is_model(tmp_path / "mismatch.pth", "cpu")
    text = str(info.value)
    assert "mismatch.pth" in text
    assert "missing keys: refiner.refine_pred.bias" in text
    assert "unexpected keys: refiner.extra.weight" in text
    assert "refiner.feature_convq.weight: checkpoint (3, 3, 1, 1) vs model (64, 64, 1, 1)" in text
    with caplog.at_level(logging.WARNING, logger="isegm"):
        loaded = load_is_model(tmp_path / "mismatch.pth", "cpu", strict=False)
    assert "missing keys: refiner.refine_pred.bias" in caplog.text
    key = "refiner.refine_fusion.conv.weight"
    assert torch.equal(loaded.state_dict()[key], sd[key])


def test_imagenet_path_rules(caplog):
    model = MODEL_REGISTRY["hr18s"](init=False)
    with caplog.at_level(logging.WARNING, logger="isegm"):
        load_imagenet_weights(model, "", "HRNETV2_W18_SMALL")
    assert "IMAGENET_PRETRAINED_MODELS.HRNETV2_W18_SMALL is empty" in caplog.text
    with pytest.raises(FileNotFoundError, match=r"HRNETV2_W18_SMALL.*missing\.pth"):
        load_imagenet_weights(model, "missing.pth", "HRNETV2_W18_SMALL")
