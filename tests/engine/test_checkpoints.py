"""A training run's checkpoints survive a crash at any point, and recovery never overwrites one."""
import copy
import hashlib
import os
import shutil

import numpy as np
import pytest
import torch
from easydict import EasyDict

import isegm.engine.checkpoints as checkpoints_module
import isegm.engine.trainer as trainer_module
from isegm.build import build_emc_click
from isegm.data.datasets import SyntheticDataset
from isegm.data.transforms import train_augmentator
from isegm.engine.checkpoints import load_state, save_pair, state_path
from isegm.engine.click_simulation import simulate_corrections
from isegm.engine.recipe import first_point_sampler, make_trainer
from isegm.engine.trainer import TrainerConfig
from isegm.model.checkpoint import list_checkpoints, save_checkpoint
from isegm.utils.errors import CheckpointError

CROP = (32, 48)   # the smallest crop hr18s takes: 8 x 12 cells hold its 64 templates


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the trainer."""


def tiny_cfg(root, **overrides) -> EasyDict:
    cfg = EasyDict(rank=0, device="cpu", distributed=False, batch_size=2, workers=0, start_epoch=0,
                   resume_exp=None, resume_prefix="latest", weights=None, fp16=False,
                   CHECKPOINTS_PATH=root / "checkpoints", VIS_PATH=root / "vis", LOGS_PATH=root / "logs")
    cfg.update(overrides)
    for key in ("CHECKPOINTS_PATH", "VIS_PATH", "LOGS_PATH"):
        cfg[key].mkdir(parents=True, exist_ok=True)
    return cfg


def tiny_trainer(cfg):
    torch.manual_seed(0)
    np.random.seed(0)
    trainset = SyntheticDataset(num_samples=4, image_size=(48, 64), seed=0,
                                augmentator=train_augmentator(CROP, seed=0, scale_range=(0.6, 0.8)),
                                points_sampler=first_point_sampler(), min_object_area=20, epoch_len=2,
                                min_mask_area=20, small_region_size=5)
    trainer = make_trainer(build_emc_click("hr18s"), cfg, EasyDict(crop_size=CROP, num_max_points=24), trainset,
                           lr=1e-3, aux_loss_weight=0.4, image_dump_interval=0, checkpoint_interval=[(0, 1)])
    trainer.sample_probs = np.eye(24)[1]
    return trainer


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """The checkpoints folder of a two-epoch run (copied by each test that continues it)."""
    root = tmp_path_factory.mktemp("two_epochs")
    tiny_trainer(tiny_cfg(root)).run(num_epochs=2)
    return root / "checkpoints"


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in list_checkpoints(folder)}


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["writing the state", "before the weights", "after the weights",
                                   "writing an interval checkpoint"])
def test_a_crash_at_any_point_leaves_a_pair_that_resumes(tmp_path, monkeypatch, crash, two_epochs):
    ckpt = tmp_path / "checkpoints"
    shutil.copytree(two_epochs, ckpt)                                   # 000.pth, 001.pth, last = epoch 1
    before = digests(ckpt)
    trainer = tiny_trainer(tiny_cfg(tmp_path, resume_exp="000"))
    assert trainer.start_epoch == 2
    if crash == "writing the state":       # a kill leaves the temporary file of the write in progress
        def killed(obj, path):
            open(f"{path}.tmp4242", "wb").write(b"partial")
            raise Killed
        monkeypatch.setattr(checkpoints_module, "atomic_save", killed)
    elif crash == "before the weights":
        monkeypatch.setattr(checkpoints_module, "save_checkpoint", lambda *a: (_ for _ in ()).throw(Killed))
    elif crash == "after the weights":   # the weights are in place, the state's rename is not done
        rename = os.replace

        def killed(src, dst):
            if str(src).endswith(".state.new"):
                raise Killed
            rename(src, dst)
        monkeypatch.setattr(os, "replace", killed)
    else:
        monkeypatch.setattr(trainer_module, "save_checkpoint", lambda *a: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        trainer.run(num_epochs=4)
    monkeypatch.undo()

    expected_start = 2 if crash in ("writing the state", "before the weights") else 3
    recovered = tiny_trainer(tiny_cfg(tmp_path, resume_exp="000"))
    assert recovered.start_epoch == expected_start
    assert {int(s["step"]) for s in recovered.optim.state_dict()["state"].values()} == {expected_start}
    recovered.run(num_epochs=4)
    after = digests(ckpt)
    for name, digest in before.items():
        if name != "last_checkpoint.pth":
            assert after[name] == digest, f"{name} was overwritten"
    assert {"000.pth", "001.pth", "003.pth", "last_checkpoint.pth"} <= set(after)
    assert not [p for p in ckpt.iterdir() if ".tmp" in p.name], "a stale temporary file was left"
    assert sorted(p.name for p in ckpt.iterdir() if not p.name.endswith(".pth")) == ["last_checkpoint.state"]
    assert torch.load(state_path(ckpt / "last_checkpoint.pth"), weights_only=True)["epoch"] == 3


def test_only_checkpoints_match_checkpoint_patterns(tmp_path):
    model = build_emc_click("hr18s", init=False)
    save_pair(model, {"epoch": 0}, tmp_path / "last_checkpoint.pth")
    save_checkpoint(model, tmp_path / "000.pth")
    (tmp_path / "last_checkpoint.state.pth").write_bytes(b"legacy training state")
    (tmp_path / "000.pth.tmp77").write_bytes(b"partial")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["000.pth", "last_checkpoint.pth"]
    assert [p.name for p in list_checkpoints(tmp_path, "last_checkpoint")] == ["last_checkpoint.pth"]
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == ["000.pth", "last_checkpoint.pth",
                                                            "last_checkpoint.state.pth"]   # only the legacy name
    assert load_state(model, tmp_path / "last_checkpoint.pth")["epoch"] == 0
    assert load_state(model, tmp_path / "000.pth") is None


@pytest.mark.slow
def test_recovery_never_overwrites_a_checkpoint(tmp_path, two_epochs):
    ckpt = tmp_path / "checkpoints"
    shutil.copytree(two_epochs, ckpt)
    tiny_trainer(tiny_cfg(tmp_path, resume_exp="000")).run(num_epochs=3)   # 000, 001, 002, last = epoch 2
    # An interval checkpoint has no training state: resume after it, but not over last_checkpoint.pth.
    with pytest.raises(CheckpointError, match=r"resuming from 001\.pth would overwrite .*last_checkpoint\.pth"):
        tiny_trainer(tiny_cfg(tmp_path, resume_exp="000", resume_prefix="001"))
    os.rename(ckpt / "last_checkpoint.pth", tmp_path / "moved.pth")
    trainer = tiny_trainer(tiny_cfg(tmp_path, resume_exp="000", resume_prefix="001"))
    assert trainer.start_epoch == 2                                        # the epoch after 001
    with pytest.raises(CheckpointError, match=r"epochs 2\.\.3 .* would overwrite 002\.pth"):
        trainer.run(num_epochs=4)
    trainer = tiny_trainer(tiny_cfg(tmp_path, resume_exp="000", resume_prefix="001", start_epoch=3))
    before = digests(ckpt)
    trainer.run(num_epochs=4)
    assert all(digests(ckpt)[name] == digest for name, digest in before.items())


def test_trainer_config_is_read_not_modified(tmp_path):
    cfg = tiny_cfg(tmp_path, batch_size=-1, distributed=True)
    snapshot = copy.deepcopy(dict(cfg))
    config = TrainerConfig.from_experiment(cfg, default_batch_size=8)
    assert config.batch_size == 8 and config.batch_per_process(2) == 4 and config.batch_per_process(2) == 4
    assert dict(cfg) == snapshot
    with pytest.raises(ValueError, match="at least the number of processes"):
        TrainerConfig.from_experiment(tiny_cfg(tmp_path, batch_size=3, distributed=True)).batch_per_process(4)
    tiny_trainer(tiny_cfg(tmp_path))
    tiny_trainer(cfg_again := tiny_cfg(tmp_path))
    assert cfg_again.batch_size == 2


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_simulated_clicks_take_one_path_whatever_the_precision(precision, monkeypatch):
    model = build_emc_click("hr18s", init=False)
    calls = []
    encode, correct = model.encode, model.correct
    monkeypatch.setattr(model, "encode", lambda *a, **k: calls.append("encode") or encode(*a, **k))
    monkeypatch.setattr(model, "correct", lambda *a, **k: calls.append(k["attention"]) or correct(*a, **k))
    image = torch.rand(2, 3, 64, 96)
    gt = torch.zeros(2, 1, 64, 96)
    gt[:, :, 16:48, 24:72] = 1
    points = np.full((2, 48, 3), -1, np.float32)
    points[:, 0] = (32, 48, 0)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16")
    points, probs, logits_lr = simulate_corrections(model, image, gt, points, 3, 24, autocast)
    assert calls == ["encode", "fast", "fast", "fast"]
    assert model.training and probs.dtype == torch.float32 and logits_lr.shape == (2, 1, 16, 24)
