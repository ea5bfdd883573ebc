"""train.py end to end: two gloo processes on a tiny COCO+LVIS-layout dataset, then an exact resume."""
import json
import socket
import subprocess
import sys

import pytest
import torch
from conftest import REPO, load_script, script_env

from isegm.data.datasets import export_coco_lvis
from isegm.inference.utils import load_is_model
from isegm.utils.cli import run_cli

SCRIPT = "models/emcclick/hrnet18s_att_cclvis.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, cwd=REPO, timeout=300):
    env = script_env(OMP_NUM_THREADS="1")
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    data = root / "cclvis"
    export_coco_lvis(data, num_images=4, split="train", seed=0, image_size=(340, 500))
    config = root / "config.yml"
    config.write_text(f"EXPS_PATH: {root / 'exps'}\nLVIS_v1_PATH: {data}\nSYNTHETIC_NUM_IMAGES: 1\n"
                      "IMAGENET_PRETRAINED_MODELS:\n  HRNETV2_W18_SMALL: ''\n")
    return root, config


def common_args(config, epochs):
    return [SCRIPT, "--cpu", "--workers=0", "--batch-size=4", f"--epochs={epochs}", "--epoch-len=4",
            f"--config-path={config}", "--exp-name=tiny", "--seed=0"]


@pytest.mark.slow
def test_torchrun_trains_then_launch_resumes(tiny_setup):
    root, config = tiny_setup
    out = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "train.py",
               *common_args(config, epochs=1)])
    exp = root / "exps" / "emcclick" / "hrnet18s_att_cclvis" / "000_tiny"
    assert "Multi-process distributed training, backend gloo" in out
    ckpt = exp / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir()) == ["000.pth", "last_checkpoint.pth", "last_checkpoint.state"]
    released = torch.load(ckpt / "last_checkpoint.pth", weights_only=True)
    assert set(released) == {"state_dict", "config"}
    model = load_is_model(ckpt / "last_checkpoint.pth", "cpu")
    assert type(model).__name__ == "HRNetRefineModel"
    assert list((exp / "logs").glob("events.out.tfevents.*")), "no TensorBoard events written"
    log = next((exp / "logs").glob("train_*.log")).read_text()
    # the library's lines reach the training log (one logger namespace), e.g. the ImageNet-weights report
    assert "IMAGENET_PRETRAINED_MODELS.HRNETV2_W18_SMALL is empty" in log and "Save checkpoint" in log
    assert list((exp / "vis" / "train").glob("000000_iseg_baseline_vis.jpg"))
    state = torch.load(ckpt / "last_checkpoint.state", weights_only=True)
    assert state["epoch"] == 0
    steps = {int(s["step"]) for s in state["optimizer"]["state"].values()}
    assert steps == {1}  # one optimizer step: 4 samples per epoch over 2 processes of batch 2

    # Resume with the other launcher (the seed README's): continues at epoch 1 with Adam's moments.
    out = run([sys.executable, "-m", "torch.distributed.launch", "--nproc_per_node=2", f"--master_port={free_port()}",
               "train.py", *common_args(config, epochs=2), "--ngpus=2", "--resume-exp=000"])
    assert "continuing at epoch 1" in out
    state = torch.load(ckpt / "last_checkpoint.state", weights_only=True)
    assert state["epoch"] == 1
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {2}
    assert state["lr_scheduler"]["last_epoch"] == 2
    assert not (root / "exps" / "emcclick" / "hrnet18s_att_cclvis" / "001_tiny").exists()

    # RITM's way to evaluate one's own training: every checkpoint of the experiment, or one of them.
    evaluate = load_script("evaluate_model")
    rel = "emcclick/hrnet18s_att_cclvis/000_tiny"
    common = ["EMC-Click", "--cpu", "--datasets=Synthetic", "--n-clicks=2", "--infer-size=64",
              f"--config-path={config}"]
    for exp_path, names in ((rel, {"000", "last_checkpoint"}), (f"{rel}:last_checkpoint", {"last_checkpoint"})):
        assert run_cli(evaluate.main, [*common, f"--exp-path={exp_path}"]) == 0
        logs = root / "exps" / "evaluation_logs" / rel
        summaries = [json.loads(p.read_text()) for p in logs.glob("*.json")]
        assert any(set(summary) == names for summary in summaries), (exp_path, summaries)


@pytest.mark.slow
def test_single_process_run_reports_missing_dataset(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(f"EXPS_PATH: {tmp_path / 'exps'}\nLVIS_v1_PATH: {tmp_path / 'nowhere'}\n"
                      "IMAGENET_PRETRAINED_MODELS:\n  HRNETV2_W18_SMALL: ''\n")
    env = script_env()
    proc = subprocess.run([sys.executable, "train.py", *common_args(config, 1)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert str(tmp_path / "nowhere") in proc.stderr.strip().splitlines()[-1]
