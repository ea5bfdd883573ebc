"""scripts/evaluate_model.py on CPU: one process, torch.distributed.launch and torchrun agree."""
import json
import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, script_env

from isegm.build import MODEL_REGISTRY
from isegm.model.checkpoint import save_checkpoint

SCRIPT = str(REPO / "scripts" / "evaluate_model.py")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    grabcut = root / "GrabCut"
    (grabcut / "data_GT").mkdir(parents=True)
    (grabcut / "boundary_GT").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # 3 samples: does not divide between 2 processes
        image = rng.integers(0, 255, (40 + 4 * i, 56, 3), dtype=np.uint8)
        mask = np.zeros(image.shape[:2], np.uint8)
        mask[8:30, 10:36 + 4 * i] = 255
        cv2.imwrite(str(grabcut / "data_GT" / f"im{i}.png"), image)
        cv2.imwrite(str(grabcut / "boundary_GT" / f"im{i}.png"), mask)
    (root / "weights").mkdir()
    torch.manual_seed(0)
    model = MODEL_REGISTRY["hr18s"](init=False)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.1)
    save_checkpoint(model, root / "weights" / "hr18s.pth")
    (root / "config.yml").write_text(f"EXPS_PATH: {root / 'exps'}\nGRABCUT_PATH: {grabcut}\n")
    return root


def _run(root, launcher, logs, extra=()):
    args = ["EMC-Click", f"--model_dir={root / 'weights'}", "--checkpoint=hr18s.pth", "--n-clicks=3", "--cpu",
            "--target-iou=0.9", "--thresh=0.5", "--eval-mode=emc-click", "--datasets=GrabCut",
            f"--config-path={root / 'config.yml'}", f"--logs-path={root / logs}", "--save-ious", *extra]
    if "--iou-analysis" in extra:  # exclusive with --target-iou, as in the original
        args.remove("--target-iou=0.9")
    env = script_env(OMP_NUM_THREADS="1")
    cmd = [sys.executable, *launcher, SCRIPT, *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = root / logs / "others" / "hr18s"
    with open(out / "ious" / "GrabCut_emc-click_EMC-Click_3.pkl", "rb") as f:
        ious = pickle.load(f)
    return proc.stdout, ious, out


def test_single_launch_and_torchrun_agree(setup):
    stdout, single, out = _run(setup, [], "single")
    assert "|  EMC-Click  |  GrabCut  |" in stdout and "NoC@85%" in stdout
    assert len(single) == 3 and all(len(x) >= 1 and x.dtype == np.float32 for x in single)
    log = (out / "emc-click_EMC-Click_3.txt").read_text()
    assert log.startswith("Eval results for model: hr18s") and "GrabCut" in log
    summary = json.loads((out / "emc-click_EMC-Click_3.json").read_text())["hr18s"]["GrabCut"]
    assert summary["samples"] == 3 and set(summary) >= {"NoC@85", "NoC@90", "NoF@85", "NoF@90", "SPC"}

    launch = ["-m", "torch.distributed.launch", "--master_port=29611", "--nproc_per_node=2"]
    _, launched, _ = _run(setup, launch, "launch")
    _, torchrun, _ = _run(setup, ["-m", "torch.distributed.run", "--master_port=29612", "--nproc_per_node=2"],
                          "torchrun")
    for other in (launched, torchrun):
        assert len(other) == 3
        for a, b in zip(single, other):
            assert np.array_equal(a, b)


def test_bad_inputs_are_named(setup):
    env = script_env()
    base = [sys.executable, SCRIPT, "EMC-Click", f"--model_dir={setup / 'weights'}", "--cpu",
            f"--config-path={setup / 'config.yml'}"]
    cases = [(["--checkpoint=nope.pth", "--datasets=GrabCut"], "nope.pth"),
             (["--checkpoint=hr18s.pth", "--datasets=Nowhere"], "unknown dataset 'Nowhere'"),
             (["--checkpoint=hr18s.pth", "--datasets=Berkeley"], "BERKELEY_PATH")]
    for extra, message in cases:
        proc = subprocess.run(base + extra, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr[-1500:]


def test_iou_analysis_and_print_ious(setup, tmp_path):
    stdout, ious, out = _run(setup, [], "analysis", extra=("--iou-analysis", "--print-ious", "--model-name=tiny"))
    assert "mIoU@1=" in stdout and "mIoU@3=" in stdout
    assert all(len(x) == 3 for x in ious)  # the target becomes 1.01: never stops early
    with open(out / "plots" / "GrabCut_emc-click_EMC-Click_3.pickle", "rb") as f:
        plots = pickle.load(f)
    assert plots["dataset_name"] == "GrabCut" and plots["model_name"] == "tiny_EMC-Click"
    assert all(np.array_equal(a, b) for a, b in zip(plots["all_ious"], ious))
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "plot_ious_analysis.py"), "--files",
                           str(out / "plots" / "*.pickle"), "--output-dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert (tmp_path / "GrabCut.png").stat().st_size > 0


def test_onnx_backend_gives_the_same_noc(setup):
    """``--backend onnx`` exports the checkpoint, evaluates it in onnxruntime and says so in the summary."""
    pytest.importorskip("onnxruntime")
    _, torch_ious, out = _run(setup, [], "torch_backend", extra=("--iou-analysis",))
    _, onnx_ious, onnx_out = _run(setup, [], "onnx_backend", extra=("--iou-analysis", "--backend=onnx",
                                                                     "--onnx-threads=1"))
    assert all(len(x) == 3 for x in onnx_ious)
    for a, b in zip(torch_ious, onnx_ious):
        np.testing.assert_allclose(a, b, atol=0.01)
    summaries = [json.loads((o / "emc-click_EMC-Click_3.json").read_text())["hr18s"]["GrabCut"]
                 for o in (out, onnx_out)]
    assert summaries[1]["backend"] == "onnx" and summaries[0]["backend"] == "torch"
    assert [s["NoC@85"] for s in summaries] == [summaries[0]["NoC@85"]] * 2
