"""ISTrainer in one process on tiny synthetic crops: a step, checkpoints, resume checks, loss guards."""
from pathlib import Path

import numpy as np
import pytest
import torch
from easydict import EasyDict

from isegm.build import build_emc_click
from isegm.data.datasets import SyntheticDataset
from isegm.data.transforms import train_augmentator
from isegm.engine.checkpoints import state_path
from isegm.engine.recipe import first_point_sampler, make_trainer
from isegm.utils.errors import CheckpointError

CROP = (64, 96)


def tiny_cfg(tmp_path: Path, **overrides) -> EasyDict:
    cfg = EasyDict(rank=0, device="cpu", distributed=False, batch_size=2, workers=0, start_epoch=0,
                   resume_exp=None, resume_prefix="latest", weights=None, fp16=False,
                   EXP_PATH=tmp_path, CHECKPOINTS_PATH=tmp_path / "checkpoints", VIS_PATH=tmp_path / "vis",
                   LOGS_PATH=tmp_path / "logs")
    cfg.update(overrides)
    for key in ("CHECKPOINTS_PATH", "VIS_PATH", "LOGS_PATH"):
        Path(cfg[key]).mkdir(parents=True, exist_ok=True)
    return cfg


def tiny_trainer(cfg, **kwargs):
    torch.manual_seed(0)
    np.random.seed(0)
    model = build_emc_click("hr18s")
    model_cfg = EasyDict(crop_size=CROP, num_max_points=24)
    trainset = SyntheticDataset(num_samples=8, image_size=(80, 120), seed=0,
                                augmentator=train_augmentator(CROP, seed=0, scale_range=(0.6, 0.8)),
                                points_sampler=first_point_sampler(), min_object_area=50, epoch_len=2,
                                min_mask_area=50, small_region_size=10)
    return make_trainer(model, cfg, model_cfg, trainset, lr=1e-3, aux_loss_weight=0.4, image_dump_interval=1,
                        checkpoint_interval=[(0, 1)], **kwargs)


def test_one_epoch_writes_released_checkpoint_state_and_logs(tmp_path):
    trainer = tiny_trainer(tiny_cfg(tmp_path))
    trainer.sample_probs = np.eye(24)[3]  # always three simulated clicks
    trainer.run(num_epochs=1)
    ckpt = tmp_path / "checkpoints"
    assert {p.name for p in ckpt.iterdir()} == {"last_checkpoint.pth", "last_checkpoint.state", "000.pth"}
    saved = torch.load(ckpt / "last_checkpoint.pth", weights_only=True)
    assert set(saved) == {"state_dict", "config"}
    state = torch.load(state_path(ckpt / "last_checkpoint.pth"), weights_only=True)
    assert state["epoch"] == 0 and state["lr_scheduler"]["last_epoch"] == 1
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert (tmp_path / "vis" / "train" / "000000_iseg_baseline_vis.jpg").is_file()


def test_simulated_clicks_reach_the_gradient_pass(tmp_path):
    trainer = tiny_trainer(tiny_cfg(tmp_path))
    trainer.sample_probs = np.eye(24)[5]
    batch = next(iter(trainer.train_data))
    loss, losses, batch_out, outputs = trainer.batch_forward(batch)
    assert set(losses) == {"instance_loss", "instance_aux_loss", "instance_refine_loss"}
    total = losses["instance_loss"] + 0.4 * losses["instance_aux_loss"] + losses["instance_refine_loss"]
    assert torch.isclose(loss.detach(), total)
    points = batch_out["points"].numpy()
    orders = points[..., 2]
    assert (orders > 0).sum() > 0, "no simulated click was added in 5 iterations"
    assert (orders == 0).sum(axis=1).min() >= 1  # the first click stays
    assert loss.requires_grad


def test_non_finite_loss_names_epoch_and_iteration(tmp_path):
    trainer = tiny_trainer(tiny_cfg(tmp_path))
    trainer.loss_cfg.instance_refine_loss = lambda pred, gt: pred.mean(dim=(1, 2, 3)) * float("nan")
    with pytest.raises(FloatingPointError, match="at epoch 0, iteration 0"):
        trainer.run(num_epochs=1)
    assert not (tmp_path / "checkpoints" / "last_checkpoint.pth").exists()


def test_resume_restores_optimizer_and_epoch_and_rejects_foreign_state(tmp_path):
    tiny_trainer(tiny_cfg(tmp_path)).run(num_epochs=1)
    resumed = tiny_trainer(tiny_cfg(tmp_path, resume_exp="000"))
    assert resumed.start_epoch == 1
    assert {int(s["step"]) for s in resumed.optim.state_dict()["state"].values()} == {1}
    assert resumed.lr_scheduler.last_epoch == 1

    # weights from a different run than the state beside them: refuse rather than mix them
    other = build_emc_click("hr18s")
    torch.save({"state_dict": other.state_dict(), "config": other._config},
               tmp_path / "checkpoints" / "last_checkpoint.pth")
    with pytest.raises(CheckpointError, match=r"no training state beside .*last_checkpoint\.pth' belongs to its "
                                              r"weights \(found last_checkpoint\.state\)"):
        tiny_trainer(tiny_cfg(tmp_path, resume_exp="000"))


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no .*last_checkpoint\.pth to resume from"):
        tiny_trainer(tiny_cfg(tmp_path, resume_exp="000"))


def test_batch_of_one_per_process_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 2"):
        tiny_trainer(tiny_cfg(tmp_path, batch_size=1))


def test_weights_that_are_not_a_checkpoint_are_refused(tmp_path):
    bad = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), bad)
    with pytest.raises(CheckpointError, match=r"--weights .*tensor\.pth.* is not an EMC-Click checkpoint"):
        tiny_trainer(tiny_cfg(tmp_path, weights=str(bad)))
