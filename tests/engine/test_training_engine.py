"""The trainer's building blocks: simulated clicks, optimizer groups, config loading, experiment folders."""
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from isegm.engine.checkpoints import checkpoint_epoch, state_path
from isegm.engine.click_simulation import error_distance_maps, get_rough_next_points
from isegm.engine.optimizer import get_optimizer
from isegm.engine.recipe import NUM_MAX_POINTS
from isegm.engine.trainer import _checkpoint_interval
from isegm.model.modifiers import LRMult
from isegm.utils.exp import experiment_family, find_resume_folder, load_config, update_config

N = 24


def empty_points(batch: int = 1) -> np.ndarray:
    points = -np.ones((batch, 2 * N, 3), dtype=np.float32)
    points[:, 0] = (5, 5, 0)
    return points


def as_tensor(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask.astype(np.float32))[None, None]


def test_no_error_no_click():
    gt = np.zeros((20, 30), dtype=bool)
    gt[5:15, 5:20] = True
    points = empty_points()
    pos, neg = np.zeros(1, int), np.zeros(1, int)
    get_rough_next_points(as_tensor(gt), as_tensor(gt), points, pos, neg, NUM_MAX_POINTS)
    assert (points == empty_points()).all() and pos[0] == 0 and neg[0] == 0


@pytest.mark.parametrize("positive", [True, False])
def test_single_error_type_gives_that_click_in_the_deep_part(positive):
    np.random.seed(0)
    gt = np.zeros((40, 60), dtype=bool)
    gt[5:35, 5:50] = True
    pred = gt.copy()
    if positive:
        pred[10:30, 10:30] = False          # a false-negative hole
    else:
        pred[12:28, 52:60] = True           # a false-positive bar beside the object
    fn_dt, fp_dt = error_distance_maps(pred.astype(np.float32), gt)
    chosen = fn_dt if positive else fp_dt
    for _ in range(5):
        points = empty_points()
        pos, neg = np.zeros(1, int), np.zeros(1, int)
        get_rough_next_points(as_tensor(pred), as_tensor(gt), points, pos, neg, NUM_MAX_POINTS)
        row = N - 1 if positive else 2 * N - 1
        y, x, order = points[0, row]
        assert order == 1 and (pos[0], neg[0]) == ((1, 0) if positive else (0, 1))
        assert chosen[int(y), int(x)] > chosen.max() / 2
        others = np.delete(points[0], [0, row], axis=0)
        assert (others == -1).all()


def test_click_type_probability_follows_error_sizes():
    gt = np.zeros((64, 64), dtype=bool)
    gt[0:64, 0:32] = True
    pred = gt.copy()
    pred[20:44, 8:24] = False     # FN square, max distance ~ 8
    pred[28:36, 44:52] = True     # FP square, max distance ~ 4
    fn_dt, fp_dt = error_distance_maps(pred.astype(np.float32), gt)
    p_pos = fn_dt.max() / (fn_dt.max() + fp_dt.max())
    np.random.seed(1)
    draws = []
    for _ in range(400):
        points = empty_points()
        pos, neg = np.zeros(1, int), np.zeros(1, int)
        get_rough_next_points(as_tensor(pred), as_tensor(gt), points, pos, neg, NUM_MAX_POINTS)
        draws.append(pos[0] == 1)
        # the FP square's depth is below half of the FN maximum: a drawn negative finds no candidate
        assert neg[0] == 0
    assert abs(np.mean(draws) - p_pos) < 0.07


def test_counters_fill_slots_backwards_and_caps_force_the_other_type():
    gt = np.zeros((30, 30), dtype=bool)
    gt[5:25, 5:25] = True
    pred = np.zeros_like(gt, dtype=np.float32)  # only false negatives
    points = empty_points()
    pos, neg = np.array([2]), np.array([0])
    get_rough_next_points(as_tensor(pred), as_tensor(gt), points, pos, neg, NUM_MAX_POINTS)
    assert pos[0] == 3 and points[0, N - 3, 2] == 3
    pos, neg = np.array([N - 1]), np.array([0])   # positives full: forced negative, no FP -> nothing
    before = points.copy()
    get_rough_next_points(as_tensor(pred), as_tensor(gt), points, pos, neg, NUM_MAX_POINTS)
    assert (points == before).all() and pos[0] == N - 1 and neg[0] == 0


def test_batch_samples_are_independent():
    gt = np.zeros((2, 1, 20, 20), dtype=np.float32)
    gt[:, :, 4:16, 4:16] = 1
    pred = gt.copy()
    pred[1] = 0
    points = empty_points(2)
    pos, neg = np.zeros(2, int), np.zeros(2, int)
    get_rough_next_points(torch.from_numpy(pred), torch.from_numpy(gt), points, pos, neg, NUM_MAX_POINTS)
    assert list(pos) == [0, 1] and points[0, N - 1, 0] == -1 and points[1, N - 1, 2] == 1


def test_optimizer_has_one_group_per_parameter_with_lr_mult():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 1))
    model[0].apply(LRMult(0.1))
    opt = get_optimizer(model, "adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8})
    assert len(opt.param_groups) == len(list(model.parameters()))
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[:2] == pytest.approx([1e-4, 1e-4]) and lrs[2:] == pytest.approx([1e-3] * 4)
    with pytest.raises(ValueError, match="unknown optimizer 'lamb'"):
        get_optimizer(model, "lamb", {"lr": 1.0})


@pytest.mark.parametrize("epoch,expected", [(0, 5), (199, 5), (200, 1), (229, 1)])
def test_checkpoint_interval_rule(epoch, expected):
    assert _checkpoint_interval([(0, 5), (200, 1)], epoch) == expected
    assert _checkpoint_interval(7, epoch) == 7


def test_training_state_sits_beside_its_checkpoint():
    assert state_path(Path("a/b/last_checkpoint.pth")) == Path("a/b/last_checkpoint.state")
    assert checkpoint_epoch(Path("a/005.pth")) == 5 and checkpoint_epoch(Path("last_checkpoint.pth")) is None


def test_config_lookup_closer_files_win(tmp_path, monkeypatch):
    (tmp_path / "models" / "fam").mkdir(parents=True)
    script = tmp_path / "models" / "fam" / "net.py"
    script.write_text("")
    (tmp_path / "config.yml").write_text("EXPS_PATH: ./exps\nA: root\nSUBCONFIGS:\n  net:\n    B: sub\n")
    (tmp_path / "models" / "config.yml").write_text("A: models\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("models/fam/net.py"))
    assert cfg.A == "models" and cfg.B == "sub" and cfg.EXPS_PATH == "./exps" and "SUBCONFIGS" not in cfg
    other = tmp_path / "other.yml"
    other.write_text("EXPS_PATH: /x\n")
    assert load_config(Path("models/fam/net.py"), other) == {"EXPS_PATH": "/x"}
    update_config(cfg, Namespace(exps_path="cli", batch_size=8))
    assert cfg.EXPS_PATH == "./exps" and cfg.batch_size == 8  # YAML keys win over arguments of the same name


def test_experiment_family_and_resume_folder(tmp_path):
    assert experiment_family(Path("models/emcclick/x.py"), "x_att") == ["emcclick", "x_att"]
    with pytest.raises(ValueError, match="under a folder named 'models'"):
        experiment_family(tmp_path / "x.py", "x")
    for name in ("000_a", "001_b"):
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "checkpoints" / "000.pth").write_bytes(b"weights")
    (tmp_path / "002_failed_start" / "checkpoints").mkdir(parents=True)   # no checkpoint: ignored
    (tmp_path / "002_failed_start" / "checkpoints" / "last_checkpoint.state").write_bytes(b"not weights")
    assert find_resume_folder(tmp_path, "001").name == "001_b"
    with pytest.raises(FileNotFoundError, match="found 000_a, 001_b"):
        find_resume_folder(tmp_path, "00")
    with pytest.raises(FileNotFoundError, match="found none"):
        find_resume_folder(tmp_path, "002")
