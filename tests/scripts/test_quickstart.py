"""The README's main job (scripts/quickstart.py), shortened: train, then evaluate before and after."""
import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, load_script, script_env

quickstart = load_script("quickstart")


@pytest.mark.slow
def test_quickstart_trains_and_reports_noc_before_and_after(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(f"EXPS_PATH: {tmp_path / 'exps'}\nSYNTHETIC_NUM_IMAGES: 1\n"
                      "IMAGENET_PRETRAINED_MODELS:\n  HRNETV2_W18_SMALL: ''\n")
    env = script_env()
    proc = subprocess.run([sys.executable, "scripts/quickstart.py", f"--config-path={config}", "--epochs=1",
                           "--epoch-len=8"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    exp = tmp_path / "exps" / "quickstart" / "hrnet18s_synthetic" / "000_quickstart"
    assert (exp / "checkpoints" / "init.pth").is_file() and (exp / "checkpoints" / "last_checkpoint.pth").is_file()
    results = json.loads((exp / "quickstart_results.json").read_text())
    for name in ("init", "last_checkpoint"):
        r = results[name]
        assert 1 <= r["NoC@85"] <= r["NoC@90"] <= 20
        assert 0 <= r["mIoU@1"] <= 1 and 0 <= r["mIoU@5"] <= 1 and r["samples"] >= 1
    assert "before training" in proc.stdout and "after training" in proc.stdout

    # Seeded end to end: the same training again (the quick start's own command) gives the same weights
    # bit for bit, so the same table (the evaluation is deterministic: see test_evaluate_cli.py).
    again = tmp_path / "again.yml"
    again.write_text(config.read_text().replace(str(tmp_path / "exps"), str(tmp_path / "again")))
    command = quickstart.training_command(2, str(again), ["--epochs=1", "--epoch-len=8"])
    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    first = torch.load(exp / "checkpoints" / "last_checkpoint.pth", weights_only=True)["state_dict"]
    second = torch.load(tmp_path / "again" / exp.relative_to(tmp_path / "exps") / "checkpoints" / "last_checkpoint.pth",
                        weights_only=True)["state_dict"]
    assert all(torch.equal(first[key], second[key]) for key in first)
