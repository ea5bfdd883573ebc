#!/usr/bin/env python
"""Per-click latency of the five EMC-Click models: first click, later clicks, a full-network baseline, sessions.

    python scripts/benchmark.py --quick                 # about 2-3 minutes on one CPU thread
    python scripts/benchmark.py --json bench.json       # 5 repeats, every click count, all baselines
    python scripts/benchmark.py --models hr18s --size 384x512 --batch 2
    python scripts/benchmark.py --backend torch,onnx --threads 1,2    # the README's table

For each ``--threads`` count, each model (random weights: latency does not depend on them) and
each backend: PyTorch with each ``--attention`` of the correction head (``exact``, the default
everywhere, and ``fast``) and onnxruntime (``onnx``: the model exported by
:func:`isegm.model.export.export_onnx` into a temporary folder, the head in its ``fast``
formulation), on CPU and on CUDA when present (timed with ``torch.cuda.synchronize``; onnxruntime
on CUDA only when its CUDA provider is installed):

* model calls at ``--size`` / ``--batch`` (default 384x384, batch 1): the median latency of the
  first click (``encode`` + ``correct``: backbone + correction head) and of a later click with 1,
  2, 5, 10 and 20 clicks (one ``correct`` on the embedding, the clicks added one by one as in a
  session); the first / later ratio (later = 2 clicks) next to the FLOP ratio of the same calls;
  and a "full network on every click" baseline (a first click with all clicks, what RITM-style
  methods pay on every click);
* a 20-click NoC session on a synthetic ``--session-size`` image (default 480x640, short side
  resized to 384 with flip augmentation, i.e. batch 2 at 384x512, as the evaluation runs): per
  click (median of clicks 2..20) the total time, the network (the model's ``encode`` / ``correct``
  calls) and everything else (predictor, thresholding, IoU, the simulated user's next click).

Prints Markdown tables and writes everything (every run, machine load, versions) to ``--json``.
Timings on a shared machine are noisy: run it on an idle one, and compare numbers of one run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import cv2
import torch

from isegm.build import MODEL_REGISTRY, list_models
from isegm.inference.benchmarking import (
    count_click_flops,
    median,
    parse_size,
    select_models,
    synthetic_sample,
    time_model_clicks,
    time_session,
)
from isegm.inference.onnx_backend import load_onnx_model
from isegm.inference.predictor import EMCClickPredictor
from isegm.model.export import export_onnx
from isegm.model.refiner import ATTENTION
from isegm.utils.cli import add_debug_flag, run_cli
from isegm.utils.malloc import retain_freed_memory

MODELS = list_models()
BACKENDS = ("torch", "onnx")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_debug_flag(parser)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--attention", default=",".join(ATTENTION),
                        help="comma-separated attentions of the correction head: " + ",".join(ATTENTION))
    parser.add_argument("--size", default="384x384", help="HxW network input of the model calls (multiples of 4)")
    parser.add_argument("--batch", type=int, default=1, help="batch of the model calls (2 = flip augmentation)")
    parser.add_argument("--clicks", default="1,2,5,10,20", help="click counts at which a later click is timed")
    parser.add_argument("--repeats", type=int, default=5, help="sessions of model calls per model (median)")
    parser.add_argument("--baseline-clicks", default="", help="click counts of the full-network baseline "
                        "(default: --clicks)")
    parser.add_argument("--baseline-repeats", type=int, default=3)
    parser.add_argument("--session-size", default="480x640", help="HxW of the synthetic session image")
    parser.add_argument("--session-clicks", type=int, default=20)
    parser.add_argument("--infer-size", type=int, default=384, help="the predictor's short side")
    parser.add_argument("--no-flip", action="store_true", help="session without flip augmentation")
    parser.add_argument("--no-session", action="store_true")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count of the model calls")
    parser.add_argument("--device", default="auto", help="'cpu', 'cuda' or 'auto' (CPU, and CUDA when present)")
    parser.add_argument("--backend", default="torch", help="comma-separated backends: " + ",".join(BACKENDS))
    parser.add_argument("--threads", default="1", help="comma-separated CPU thread counts of torch, OpenCV and "
                        "onnxruntime, each a full run (0: their defaults)")
    parser.add_argument("--no-retain-memory", action="store_true",
                        help="leave glibc's malloc thresholds alone (see isegm/utils/malloc.py)")
    parser.add_argument("--quick", action="store_true",
                        help="2 repeats, baseline at 1 and 20 clicks once: a few minutes on one CPU thread")
    parser.add_argument("--json", default="", help="write all results to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
        args.baseline_repeats = 1
        args.baseline_clicks = args.baseline_clicks or "1,20"
    args.models = select_models(args.models, parser)
    args.attention = [a for a in args.attention.split(",") if a]
    if not args.attention or set(args.attention) - set(ATTENTION):
        parser.error(f"--attention: choose from {', '.join(ATTENTION)}, got {args.attention}")
    args.backend = [b for b in args.backend.split(",") if b]
    if not args.backend or set(args.backend) - set(BACKENDS):
        parser.error(f"--backend: choose from {', '.join(BACKENDS)}, got {args.backend}")
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        parser.error(f"--threads: comma-separated integers, got {args.threads!r}")
    if not args.threads or min(args.threads) < 0:
        parser.error(f"--threads: comma-separated counts of at least 0, got {args.threads}")
    args.clicks = [int(c) for c in args.clicks.split(",") if c]
    args.baseline_clicks = [int(c) for c in (args.baseline_clicks or ",".join(map(str, args.clicks))).split(",") if c]
    try:
        args.size, args.session_size = parse_size(args.size, 4), parse_size(args.session_size)
    except ValueError as exc:
        parser.error(str(exc))
    if args.device == "auto":
        args.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        args.devices = [args.device]
    return args


def machine(args) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(),
            "retain_freed_memory": args.retained}
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = os.getloadavg()
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def runs_of(args, name: str, model, device: str):
    """-> ``[(backend, attention, model)]``: the PyTorch model per attention, then the ONNX export
    (exported once per network into ``args.export_root``, whatever the thread counts)."""
    runs = [("torch", attention, model) for attention in args.attention] if "torch" in args.backend else []
    if "onnx" in args.backend:
        import onnxruntime as ort

        if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            print("  [cuda] onnx: skipped, onnxruntime has no CUDA provider here", file=sys.stderr)
        else:
            folder = os.path.join(args.export_root, name)
            if not os.path.isdir(folder):
                export_onnx(model.cpu(), folder)
                model.to(device)
            runs.append(("onnx", "fast", load_onnx_model(folder, threads=args.current_threads, device=device)))
    return runs


def bench_device(args, device: str) -> dict:
    """``{'models': {key: timings}, 'sessions': {key: session}}``, keyed ``'name/backend/attention'``."""
    height, width = args.size
    results = {"models": {}, "sessions": {}}
    image, gt_mask = synthetic_sample(*args.session_size)
    for name in args.models:
        torch.manual_seed(0)
        model = MODEL_REGISTRY[name](init=False).eval().requires_grad_(False).to(device)
        if not args.no_flops and name not in args.flops:   # the same for every thread count
            args.flops[name] = count_click_flops(model.cpu(), height, width, args.batch)
            model.to(device)
        flops = args.flops.get(name)
        for backend, attention, net in runs_of(args, name, model, device):
            key = f"{name}/{backend}/{attention}"
            net_device = device if backend == "torch" else "cpu"
            start = time.perf_counter()
            timing = time_model_clicks(net, height, width, args.batch, args.clicks, args.repeats, net_device,
                                       baseline_counts=args.baseline_clicks, baseline_repeats=args.baseline_repeats,
                                       attention=attention)
            if flops is not None:
                timing["flops"] = {"first": flops["first"], "later": flops[f"later_{attention}"]}
            results["models"][key] = timing
            print(f"  [{device}] {key}: model calls timed in {time.perf_counter() - start:.0f} s", file=sys.stderr)
            if not args.no_session:
                start = time.perf_counter()
                predictor = EMCClickPredictor(net, net_device, with_flip=not args.no_flip,
                                              infer_size=args.infer_size, attention=attention)
                session = time_session(predictor, image, gt_mask, max_clicks=args.session_clicks)
                later = slice(1, None)
                session.update({"total_median": median(session["total"][later]),
                                "network_median": median(session["network"][later]),
                                "other_median": median(session["other"][later]),
                                "net_input": list(predictor.input_size), "flip": not args.no_flip})
                results["sessions"][key] = session
                print(f"  [{device}] {key}: session timed in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        del model
    return results


def print_tables(args, device: str, threads: int, results: dict) -> None:
    height, width = args.size
    clicks = args.clicks
    ref = 2 if 2 in clicks else clicks[0]
    top = max(clicks)
    print(f"\n### {device}: model calls, batch {args.batch} x {height}x{width}, {threads or 'default'} "
          f"thread(s), median of {args.repeats} (ms)\n")
    head = " | ".join(f"later @{n}" for n in clicks)
    print(f"| model | backend | attention | first click | {head} | first / later@{ref} | FLOP ratio "
          f"| later@{top} / later@{ref} | full net @{args.baseline_clicks[0]} | full net @{args.baseline_clicks[-1]} |")
    print("|---|---|---|" + "---:|" * (len(clicks) + 6))
    for key, r in results["models"].items():
        name, backend, attention = key.split("/")
        later = " | ".join(ms(r["later"][n]) for n in clicks)
        flops = r.get("flops")
        flop_ratio = f"{flops['first'] / flops['later']:.1f}" if flops else "-"
        full = r["full"]
        print(f"| {name} | {backend} | {attention} | {ms(r['first'])} | {later} | {r['first'] / r['later'][ref]:.1f} "
              f"| {flop_ratio} | {r['later'][top] / r['later'][ref]:.2f} | {ms(full[args.baseline_clicks[0]])} "
              f"| {ms(full[args.baseline_clicks[-1]])} |")
    if results["sessions"]:
        hs, ws = args.session_size
        first = next(iter(results["sessions"].values()))
        hn, wn = first["net_input"]
        print(f"\n### {device}, {threads or 'default'} thread(s): {args.session_clicks}-click session on a "
              f"{hs}x{ws} image (network input {'2' if first['flip'] else '1'} x {hn}x{wn}), per click, "
              "median of clicks 2..N (ms)\n")
        print("| model | backend | attention | per click | network | everything else | first click |")
        print("|---|---|---|---:|---:|---:|---:|")
        for key, s in results["sessions"].items():
            name, backend, attention = key.split("/")
            print(f"| {name} | {backend} | {attention} | {ms(s['total_median'])} | {ms(s['network_median'])} "
                  f"| {ms(s['other_median'])} | {ms(s['total'][0])} |")


def main(argv=None) -> dict:
    args = parse_args(argv)
    args.retained = False if args.no_retain_memory else retain_freed_memory()
    report = {"machine": machine(args), "args": {k: v for k, v in vars(args).items() if k != "devices"},
              "runs": {}}
    args.flops = {}
    with tempfile.TemporaryDirectory(prefix="emcclick_bench_") as args.export_root:
        for threads in args.threads:
            if threads > 0:
                torch.set_num_threads(threads)
                cv2.setNumThreads(threads)
            args.current_threads = threads
            for device in args.devices:
                report["runs"][f"{device}/{threads}"] = bench_device(args, device)
    if hasattr(os, "getloadavg"):
        report["machine"]["load_average_end"] = os.getloadavg()
    m = report["machine"]
    print(f"torch {m['torch']}, {m['cpu']} x{m['cpu_count']}, freed memory retained: {m['retain_freed_memory']}, "
          f"load average {m.get('load_average_start')} -> {m.get('load_average_end')}")
    for run, results in report["runs"].items():
        device, threads = run.split("/")
        print_tables(args, device, int(threads), results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    sys.exit(run_cli(main))
