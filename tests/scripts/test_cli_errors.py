"""Expected errors of the CLIs: one line naming the culprit and exit status 1, never a traceback.

The scripts' ``main`` runs in-process through ``run_cli`` (what ``__main__`` calls); one case runs
the real entry point in a subprocess. ``--debug`` (or ``EMCCLICK_DEBUG=1``) shows the traceback.
"""
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO, load_script, script_env

from isegm.build import build_emc_click
from isegm.model.checkpoint import save_checkpoint
from isegm.utils.cli import run_cli
from isegm.utils.errors import EMCClickError


@pytest.fixture(scope="module")
def evaluate():
    return load_script("evaluate_model")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "weights").mkdir()
    save_checkpoint(build_emc_click("hr18s", init=False), root / "weights" / "hr18s.pth")
    (root / "weights" / "notes.pth").write_text("this is a text file, not a checkpoint\n")
    (root / "weights" / "folder.pth").mkdir()
    grabcut = root / "GrabCut"
    (grabcut / "data_GT").mkdir(parents=True)
    (grabcut / "boundary_GT").mkdir()
    image = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(grabcut / "data_GT" / "cut.jpg"), image)
    blob = (grabcut / "data_GT" / "cut.jpg").read_bytes()
    (grabcut / "data_GT" / "cut.jpg").write_bytes(blob[: len(blob) // 2])
    cv2.imwrite(str(grabcut / "boundary_GT" / "cut.png"), np.full((60, 80), 255, np.uint8))
    configs = {"ok": f"EXPS_PATH: {root / 'exps'}\nGRABCUT_PATH: {grabcut}\nSYNTHETIC_NUM_IMAGES: 1\n",
               "no_exps": f"GRABCUT_PATH: {grabcut}\n", "null_exps": "EXPS_PATH: null\n",
               "zero_images": f"EXPS_PATH: {root / 'exps'}\nSYNTHETIC_NUM_IMAGES: 0\n"}
    for name, text in configs.items():
        (root / f"{name}.yml").write_text(text)
    return root


def one_line_error(capsys, main, argv, alone=False):
    """Run a CLI's main, check it ended with one error line (the only line on stderr with ``alone``)."""
    status = run_cli(main, argv)
    err = capsys.readouterr().err
    # what a terminal shows: a carriage return (a progress bar clearing itself) rewrites the line
    lines = [line.split("\r")[-1] for line in err.split("\n")]
    lines = [line for line in lines if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert status == 1, err
    assert "Traceback" not in err and len(errors) == 1 and errors[0] == lines[-1], err[-3000:]
    assert len(lines) == 1 or not alone, err
    return errors[0]


EVALUATE_CASES = [
    (["--checkpoint=nope.pth"], "ok", "checkpoint 'nope.pth' not found"),
    (["--checkpoint=notes.pth"], "ok", "notes.pth' (38 bytes) is truncated or corrupt, or not a torch file"),
    (["--checkpoint=folder.pth"], "ok", "folder.pth' is a folder, not a file"),
    (["--datasets=Nowhere"], "ok", "unknown dataset 'Nowhere'"),
    (["--datasets=Berkeley"], "ok", "needs the key BERKELEY_PATH"),
    (["--n-clicks=0"], "ok", "--n-clicks must be at least 1, got 0"),
    (["--n-clicks=-3"], "ok", "--n-clicks must be at least 1, got -3"),
    (["--thresh=2"], "ok", "--thresh is a probability threshold: 0 < thresh < 1, got 2.0"),
    (["--clicks-limit=0"], "ok", "--clicks-limit must be at least 1"),
    (["--infer-size=0"], "ok", "--infer-size (the network input's short side) must be at least 32, got 0"),
    (["--infer-size=3"], "ok", "must be at least 32, got 3"),
    (["--eval-mode=fast"], "ok", "--eval-mode 'fast' is not supported"),
    (["--min-n-clicks=5", "--n-clicks=3"], "ok", "--min-n-clicks must be between 1 and --n-clicks (3)"),
    ([], "no_exps", "config.yml has no EXPS_PATH (missing or empty)"),
    ([], "null_exps", "config.yml has no EXPS_PATH (missing or empty)"),
    (["--datasets=Synthetic"], "zero_images", "SYNTHETIC_NUM_IMAGES must be a positive number of images, got 0"),
    (["--infer-size=64"], "ok", "cut.jpg is truncated or corrupt: the decoder reported 'Premature end of JPEG file'"),
]


@pytest.mark.parametrize("extra,config,message", EVALUATE_CASES, ids=[c[2][:40] for c in EVALUATE_CASES])
def test_evaluate_model_answers_bad_input_in_one_line(evaluate, files, capsys, extra, config, message):
    argv = ["EMC-Click", f"--model_dir={files / 'weights'}", "--checkpoint=hr18s.pth", "--cpu",
            "--datasets=GrabCut", "--n-clicks=2", f"--config-path={files / f'{config}.yml'}", *extra]
    line = one_line_error(capsys, evaluate.main, argv, alone=True)
    assert line.startswith(f"{sys.argv[0].rsplit('/', 1)[-1]}: error: ") and message in line, line


def test_exp_path_without_checkpoints(evaluate, files, capsys):
    (files / "exps" / "emcclick" / "m" / "000_empty" / "checkpoints").mkdir(parents=True)
    line = one_line_error(capsys, evaluate.main, ["EMC-Click", "--exp-path=emcclick/m/000_empty", "--cpu",
                                                  f"--config-path={files / 'ok.yml'}"])
    assert "no checkpoints matching *.pth in" in line


def test_debug_shows_the_traceback(evaluate, files, monkeypatch):
    argv = ["EMC-Click", "--checkpoint=nope.pth", "--cpu", f"--config-path={files / 'ok.yml'}"]
    with pytest.raises(EMCClickError, match="nope.pth"):
        run_cli(evaluate.main, [*argv, "--debug"])
    monkeypatch.setenv("EMCCLICK_DEBUG", "1")
    with pytest.raises(EMCClickError, match="nope.pth"):
        run_cli(evaluate.main, argv)


def test_train_answers_bad_input_in_one_line(files, capsys, tmp_path):
    train = load_script("train")
    quick = str(REPO / "models" / "quickstart" / "hrnet18s_synthetic.py")
    line = one_line_error(capsys, train.main, ["models/nowhere.py", "--cpu"])
    assert "model script not found: 'models/nowhere.py'" in line
    line = one_line_error(capsys, train.main, [quick, "--cpu", f"--config-path={files / 'null_exps.yml'}"])
    assert "config.yml has no EXPS_PATH" in line
    config = tmp_path / "config.yml"
    config.write_text(f"EXPS_PATH: {tmp_path / 'exps'}\n")
    line = one_line_error(capsys, train.main, [quick, "--cpu", "--workers=0", "--exp-name=bad",
                                               f"--weights={files / 'weights' / 'notes.pth'}",
                                               f"--config-path={config}"])
    assert "--weights" in line and "notes.pth" in line and "not a torch file" in line
    # That start failed before its first checkpoint: resuming ignores its folder.
    line = one_line_error(capsys, train.main, [quick, "--cpu", "--resume-exp=000", f"--config-path={config}"])
    assert "--resume-exp '000': expected exactly one experiment folder" in line and "found none" in line


def test_the_entry_point_prints_one_line(files):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate_model.py"), "EMC-Click", "--cpu",
                           "--checkpoint=hr18s.pth", f"--model_dir={files / 'weights'}", "--thresh=1.5",
                           f"--config-path={files / 'ok.yml'}"], cwd=REPO, env=script_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        "evaluate_model.py: error: --thresh is a probability threshold: 0 < thresh < 1, got 1.5"]

