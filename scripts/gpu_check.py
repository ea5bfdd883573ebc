#!/usr/bin/env python
"""The Python half of ``scripts/gpu_check.sh``: CUDA/CPU parity of the networks, and the JSON report.

    python scripts/gpu_check.py parity --device cuda --json gpu_check/parity.json
    python scripts/gpu_check.py report gpu_check           # after the shell script's steps

``parity`` runs each network's ``encode`` and three chained ``correct`` calls on the CPU (float32,
the reference) and on ``--device``, and compares them relative to the largest CPU value: a kernel
that computes something else on the GPU shows up here, before it shows up as a worse NoC.
``report`` gathers what the shell script's steps left in the output folder (``steps.tsv``, their
logs and outputs) into ``report.json``, and exits 1 when a step failed.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch

from isegm.inference.benchmarking import (
    calibrated_model,
    parse_size,
    points_tensor,
    synthetic_clicks,
    synthetic_sample,
)
from isegm.inference.onnx_parity import TIE, ranking_gap
from isegm.utils.cli import add_debug_flag, run_cli

MODELS = ["hr18s", "hr18", "hr32", "segb0", "segb3"]
STEPS = ["parity", "train", "evaluate", "benchmark"]
TOLERANCE = 1e-3
"""Largest relative difference that passes. float32 sums taken in another order differ by about
1e-6 per operation; through a deep network and three chained corrections that stays well below
this, whereas a wrong kernel (or TF32 left on) lands far above it."""


def parity(name: str, device: str, size: Tuple[int, int] = (192, 256), seed: int = 0,
           corrections: int = 3) -> Dict[str, object]:
    """Max |device - CPU| / max |CPU| of ``encode``'s ``logits_lr`` and of each correction's ``logits``.

    The model is calibrated at ``size`` (:func:`calibrated_model`) so that its logits have a trained
    network's scale: with plain random weights every backend agrees on near-constant outputs. Each
    correction gets the same inputs on both devices (the CPU embedding and the CPU chain's previous
    logits), so its difference is that call's own; a click where two of the templates' scores tie
    (:func:`~isegm.inference.onnx_parity.ranking_gap`) may legitimately pick them in another
    order, and is reported and left out of ``max_rel``.
    """
    torch.backends.cuda.matmul.allow_tf32 = False   # TF32 differs from the CPU by design, not by a bug
    torch.backends.cudnn.allow_tf32 = False
    height, width = size
    rgb = torch.from_numpy(synthetic_sample(height, width, seed)[0]).permute(2, 0, 1).float() / 255
    image = torch.cat([rgb, torch.zeros(1, height, width)]).unsqueeze(0)
    image = torch.cat([image, image.flip(-1)])   # the predictor's flip augmentation: batch 2
    clicks = synthetic_clicks(corrections, height, width, seed)
    points = [points_tensor(clicks[:n], 2, width) for n in range(1, corrections + 1)]
    model = calibrated_model(name, seed, size)
    other = copy.deepcopy(model).to(device)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a.double().cpu() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-12)).item()

    with torch.inference_mode():
        embedding = model.encode(image, points[0])
        result = {"logits_lr": rel(other.encode(image.to(device), points[0].to(device)).logits_lr,
                                   embedding.logits_lr), "corrections": [], "ties": []}
        moved, prev = _moved(embedding, device), None
        for p in points:
            start = embedding.logits_lr if prev is None else prev.logits_lr
            prev = model.correct(embedding, p, prev)
            result["corrections"].append(rel(other.correct(moved, p.to(device), logits_lr=start.to(device)).logits,
                                             prev.logits))
            result["ties"].append(ranking_gap(model, embedding, p, start, prev.clicks.dist2) < TIE)
        result["max_abs_cpu"] = [float(embedding.logits_lr.abs().max())] + [
            float(model.correct(embedding, p).logits.abs().max()) for p in points]
    kept = [result["logits_lr"]] + [r for r, tie in zip(result["corrections"], result["ties"]) if not tie]
    return {**result, "max_rel": max(kept)}


def _moved(obj, device: str):
    """A copy of a (nested) frozen dataclass of tensors on ``device``."""
    values = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        values[field.name] = (_moved(value, device) if dataclasses.is_dataclass(value)
                              else value.to(device) if torch.is_tensor(value) else value)
    return dataclasses.replace(obj, **values)


def cmd_parity(args: argparse.Namespace) -> dict:
    size = parse_size(args.size, 4)
    result = {"device": args.device, "size": list(size), "tol": args.tol, "models": {}}
    for name in args.models.split(","):
        result["models"][name] = r = parity(name, args.device, size, args.seed)
        print(f"{name}: logits_lr {r['logits_lr']:.2e}, corrections "
              + ", ".join(f"{v:.2e}{' (tie)' if tie else ''}" for v, tie in zip(r["corrections"], r["ties"])),
              flush=True)
    result["max_rel"] = max(r["max_rel"] for r in result["models"].values())
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if result["max_rel"] > args.tol:
        raise SystemExit(f"parity: {args.device} differs from the CPU by {result['max_rel']:.2e} relative "
                         f"(tolerance {args.tol:.0e})")
    return result


def training_info(out: Path, dry_run: bool) -> dict:
    """Checkpoint, processes, backend and batch norms of the ``*_gpucheck`` experiment, from its log.

    ``isegm/engine/trainer.py`` converts BatchNorm to SyncBatchNorm in every launched GPU run (one
    process included) and logs it; on the CPU (gloo) none is expected.
    """
    exps = sorted(out.glob("exps/**/*_gpucheck"))
    logs = sorted((exps[-1] / "logs").glob("train_*.log")) if exps else []
    if not logs:
        return {"error": "no training log under exps/**/*_gpucheck/logs"}
    text = logs[-1].read_text(errors="replace")
    procs = re.search(r"Number of processes: (\d+) \((.*?)\)", text)
    backend = re.search(r"distributed training, backend (\w+)", text)
    losses = re.findall(r"training loss ([-+.\deE]+|nan|inf)", text)
    checkpoint = exps[-1] / "checkpoints" / "last_checkpoint.pth"
    world = int(procs.group(1)) if procs else 0
    info = {"experiment": str(exps[-1]), "train_log": str(logs[-1]), "checkpoint": str(checkpoint),
            "processes": world, "devices": procs.group(2) if procs else None,
            "backend": backend.group(1) if backend else None,
            "fp16": "'fp16': True" in text and "--fp16 needs CUDA" not in text,
            "last_logged_loss": float(losses[-1]) if losses else None,
            "sync_batchnorm": {"expected": not dry_run,
                               "converted": "converted to SyncBatchNorm" in text}}
    if not checkpoint.is_file():
        info["error"] = f"no checkpoint {checkpoint}"
    elif not dry_run and (info["backend"] != "nccl" or not info["fp16"] or not info["sync_batchnorm"]["converted"]):
        info["error"] = (f"expected nccl, fp16 and SyncBatchNorm on CUDA, got backend {info['backend']} on "
                         f"{info['devices']}, fp16 {info['fp16']}, SyncBatchNorm {info['sync_batchnorm']['converted']}")
    return info


def evaluation_info(out: Path) -> dict:
    """NoC@85/90 on ``Synthetic`` from the summary JSON that ``evaluate_model.py`` writes beside its log."""
    for path in sorted((out / "eval").glob("**/*.json")):
        for results in json.loads(path.read_text()).values():
            if "Synthetic" in results:
                r = results["Synthetic"]
                return {"summary": str(path), **{k: r.get(k) for k in ("NoC@85", "NoC@90", "samples", "SPC")}}
    return {"error": "no Synthetic summary JSON under eval/"}


def output_file(path: Path, read: bool) -> dict:
    """A step's output file: its JSON content (``read``) or its path; an error when it is missing."""
    if not path.is_file():
        return {"error": f"no {path.name}"}
    return json.loads(path.read_text()) if read else {"json": str(path)}


def _command_output(cmd: Sequence[str]) -> Optional[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    smi = _command_output(["nvidia-smi", "-L"])
    return {"nvidia_smi_L": smi.splitlines() if smi else None, "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cuda_available": torch.cuda.is_available(), "git_commit": _command_output(["git", "rev-parse", "HEAD"]),
            "git_dirty": bool(_command_output(["git", "status", "--porcelain", "--untracked-files=no"]))}


def read_steps(out: Path) -> Dict[str, dict]:
    """``steps.tsv`` rows (name, exit status, start, end, log) -> ``{name: {...}}``."""
    steps = {}
    if (out / "steps.tsv").is_file():
        for line in (out / "steps.tsv").read_text().splitlines():
            name, rc, start, end, log = line.split("\t")
            steps[name] = {"rc": int(rc), "wall_s": round(float(end) - float(start), 2), "log": log}
    return steps


def cmd_report(args: argparse.Namespace) -> dict:
    out = Path(args.out_dir)
    extract = {"parity": lambda: output_file(out / "parity.json", read=True),
               "train": lambda: training_info(out, args.dry_run), "evaluate": lambda: evaluation_info(out),
               "benchmark": lambda: output_file(out / "benchmark.json", read=False)}
    recorded, steps = read_steps(out), {}
    for name in STEPS:
        step = recorded.get(name, {"rc": None, "wall_s": 0.0, "log": None})
        step = {**step, **(extract[name]() if step["rc"] is not None else {})}
        if step["rc"] != 0:   # the exit status says more than a missing output
            timed_out = " (timed out)" if step["rc"] in (124, 137) else ""
            step["error"] = "never ran" if step["rc"] is None else f"exit status {step['rc']}{timed_out}"
        step = {"status": "failed" if "error" in step else "ok", **step}
        if step["status"] == "failed" and step["log"] and Path(step["log"]).is_file():
            step["log_tail"] = Path(step["log"]).read_text(errors="replace").splitlines()[-8:]
        steps[name] = step
    report = {"dry_run": args.dry_run, "ok": all(s["status"] == "ok" for s in steps.values()),
              "out_dir": str(out.resolve()), "environment": environment(), "steps": steps}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    for name, step in steps.items():
        print(f"  {name:<10} {step['status']:<7} {step['wall_s']:7.1f} s  {step.get('error', '')}")
    print(f"wrote {out / 'report.json'}")
    if not report["ok"]:
        raise SystemExit("gpu_check: failed: " + ", ".join(n for n, s in steps.items() if s["status"] != "ok"))
    return report


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity", help="CPU vs --device parity of the networks")
    p.add_argument("--device", default="cuda")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--size", default="192x256", help="HxW input (the calibration size by default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tol", type=float, default=TOLERANCE, help="largest relative difference that passes")
    p.add_argument("--json", required=True)
    r = sub.add_parser("report", help="gather the steps' results into OUT_DIR/report.json")
    r.add_argument("out_dir")
    r.add_argument("--dry-run", action="store_true", help="the steps ran on the CPU: expect gloo, not nccl")
    args = parser.parse_args(argv)
    return cmd_parity(args) if args.command == "parity" else cmd_report(args)


if __name__ == "__main__":
    sys.exit(run_cli(main))
