"""Quick start: train EMC-Click (hr18s) on synthetic images on the CPU, then evaluate NoC before and after.

    python scripts/quickstart.py                 # ~10 min training + ~3 min evaluation on 2 cores
    python scripts/quickstart.py --epochs 1      # a shorter run (other train.py flags pass through)

Runs ``train.py models/quickstart/hrnet18s_synthetic.py --cpu`` and then
``scripts/evaluate_model.py`` on the held-out ``Synthetic`` set for the initial weights
(``checkpoints/init.pth``) and the trained ones (``last_checkpoint.pth``), and prints NoC@85/90
and mIoU after 1 and 5 clicks for both. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from isegm.inference.metrics import miou_at_clicks
from isegm.utils.cli import add_debug_flag, run_cli
from isegm.utils.exp import load_config_file
from isegm.utils.pickles import safe_pickle_load

REPO = Path(__file__).resolve().parents[1]

CONFIG = "models/quickstart/hrnet18s_synthetic.py"
FAMILY = ("quickstart", "hrnet18s_synthetic")
INFER_SIZE = 128
N_CLICKS = 20


def run(cmd) -> float:
    """Run ``cmd`` from the repository root, streaming its output; -> wall time in seconds."""
    print("$", " ".join(map(str, cmd)), flush=True)
    start = time.time()
    subprocess.run([str(c) for c in cmd], cwd=REPO, check=True)
    return time.time() - start


def launcher(nproc: int) -> list:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]


def training_command(nproc: int, config_path: str, train_args: list) -> list:
    """The quick start's training: seeded, so two runs on one machine give the same weights bit for bit."""
    return [*launcher(nproc), "train.py", CONFIG, "--cpu", "--workers=0", "--exp-name=quickstart", "--seed=0",
            f"--config-path={config_path}", *train_args]


def evaluate(checkpoint: Path, logs: Path, config_path: str, nproc: int) -> dict:
    """NoC and mIoU of one checkpoint on the ``Synthetic`` evaluation set (20 clicks per object)."""
    run([*launcher(nproc), "scripts/evaluate_model.py", "EMC-Click", "--cpu", f"--checkpoint={checkpoint}",
         "--datasets=Synthetic", f"--infer-size={INFER_SIZE}", f"--n-clicks={N_CLICKS}", "--print-ious",
         "--save-ious", f"--logs-path={logs}", f"--config-path={config_path}"])
    out = logs / "others" / checkpoint.stem
    summary = json.loads((out / f"cvpr_EMC-Click_{N_CLICKS}.json").read_text())[checkpoint.stem]["Synthetic"]
    ious = safe_pickle_load(out / "ious" / f"Synthetic_cvpr_EMC-Click_{N_CLICKS}.pkl")
    miou = miou_at_clicks(ious, (1, 5))
    return {"NoC@85": summary["NoC@85"], "NoC@90": summary["NoC@90"], "mIoU@1": miou[1], "mIoU@5": miou[5],
            "samples": summary["samples"], "SPC": summary["SPC"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_debug_flag(parser)
    parser.add_argument("--config-path", default="config.yml", help="config.yml with EXPS_PATH")
    parser.add_argument("--nproc", type=int, default=2, help="processes (one thread each) for training and evaluation")
    args, train_args = parser.parse_known_args(argv)
    cfg = load_config_file(REPO / args.config_path if not Path(args.config_path).is_absolute() else args.config_path)
    parent = Path(cfg.EXPS_PATH)
    parent = (parent if parent.is_absolute() else REPO / parent).joinpath(*FAMILY)
    before = set(parent.glob("*")) if parent.exists() else set()
    # Two gloo processes of one thread each: faster than one process of two threads on 2 cores,
    # and far less hurt when something else runs on the machine.
    train_time = run(training_command(args.nproc, args.config_path, train_args))
    new = sorted(set(parent.glob("*")) - before)
    if len(new) != 1:
        raise RuntimeError(f"expected one new experiment folder in {parent}, found {[p.name for p in new]}")
    exp = new[0]
    results = {name: evaluate(exp / "checkpoints" / f"{name}.pth", exp / "evaluation", args.config_path, args.nproc)
               for name in ("init", "last_checkpoint")}
    lines = [f"Quick start: {exp}", f"training wall time: {train_time / 60:.1f} min "
             f"(held-out Synthetic set, {results['init']['samples']} objects, short side {INFER_SIZE})",
             f"{'weights':<18}{'NoC@85':>8}{'NoC@90':>8}{'mIoU@1':>9}{'mIoU@5':>9}"]
    for name, label in (("init", "before training"), ("last_checkpoint", "after training")):
        r = results[name]
        lines.append(f"{label:<18}{r['NoC@85']:>8.2f}{r['NoC@90']:>8.2f}{r['mIoU@1']:>9.1%}{r['mIoU@5']:>9.1%}")
    report = "\n".join(lines)
    print("\n" + report)
    (exp / "quickstart_results.txt").write_text(report + "\n")
    (exp / "quickstart_results.json").write_text(json.dumps({"train_time_s": train_time, **results}, indent=2))


if __name__ == "__main__":
    sys.exit(run_cli(main))
