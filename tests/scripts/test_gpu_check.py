"""scripts/gpu_check.sh and its Python half: the check runs without a GPU, so a real GPU run finds it working.

The GPU run itself (CUDA numbers, nccl, --fp16) cannot run here; ``--dry-run`` drives every step
and the report on the CPU at tiny sizes.
"""
import json
import subprocess
import sys

import pytest
from conftest import REPO, load_script, script_env

gpu_check = load_script("gpu_check")
SCRIPT = str(REPO / "scripts" / "gpu_check.sh")


def test_shell_script_parses():
    proc = subprocess.run(["bash", "-n", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_parity_of_cpu_against_itself_is_exact():
    # Same weights, same input, same device and one thread: any difference is in the comparison.
    result = gpu_check.parity("hr18s", "cpu", size=(64, 96))
    assert result["logits_lr"] == 0.0 and result["corrections"] == [0.0, 0.0, 0.0] and result["max_rel"] == 0.0
    assert len(result["ties"]) == 3
    assert len(result["max_abs_cpu"]) == 4 and min(result["max_abs_cpu"]) > 0   # the outputs are not all zero


@pytest.mark.slow
def test_dry_run_writes_a_full_report(tmp_path):
    out = tmp_path / "check"
    proc = subprocess.run(["bash", SCRIPT, "--dry-run", str(out)], cwd=REPO, capture_output=True, text=True,
                          env=script_env(PYTHON=sys.executable), timeout=300)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + json.dumps(report)[-3000:]
    assert report["dry_run"] is True and report["ok"] is True
    steps = report["steps"]
    assert list(steps) == ["parity", "train", "evaluate", "benchmark"]
    assert all(step["status"] == "ok" and step["wall_s"] > 0 for step in steps.values()), steps
    assert steps["parity"]["max_rel"] == 0.0 and set(steps["parity"]["models"]) == {"hr18s"}
    assert steps["train"]["processes"] == 1 and steps["train"]["backend"] == "gloo"
    assert 1 <= steps["evaluate"]["NoC@85"] <= steps["evaluate"]["NoC@90"]
    assert (out / "benchmark.json").is_file() and report["environment"]["torch"]
