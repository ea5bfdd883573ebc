#!/usr/bin/env python
"""Parameters and FLOPs of a first click and of a later click for the five EMC-Click models.

    python scripts/count_flops.py                      # 384x384 and 576x576 (the evaluation short sides), batch 1
    python scripts/count_flops.py --quick              # 384x384 only
    python scripts/count_flops.py --models hr18s --sizes 384x512 --batch 2 --json flops.json

Convention: FLOPs = 2 x multiply-adds, as counted by ``torch.utils.flop_counter`` (MACs, the unit
most papers quote, are FLOPs / 2). Counted: convolutions, matrix products and attention; not
counted: element-wise work (BN, activations, resizing, click maps). Weights are random: FLOPs do
not depend on them. A first click is ``encode`` + ``correct`` (backbone + correction head); a later
click is one ``correct`` on the embedding (the head's per-image share done once per image), with
exact or fast attention; "original" is the original's later click, which redoes the head's
per-image share every click. The evaluation runs batch 2 (flip augmentation): 2x.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from isegm.build import MODEL_REGISTRY, list_models
from isegm.inference.benchmarking import count_click_flops, num_parameters, parse_size, select_models
from isegm.utils.cli import add_debug_flag, run_cli

MODELS = list_models()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_debug_flag(parser)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--sizes", default="384x384,576x576", help="comma-separated HxW network input sizes")
    parser.add_argument("--batch", type=int, default=1, help="batch size (2 = the evaluation's flip augmentation)")
    parser.add_argument("--quick", action="store_true", help="384x384 only")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (the counts do not depend on it; 0: torch's default)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "384x384"
    args.models = select_models(args.models, parser)
    try:
        args.sizes = [parse_size(s, 4) for s in args.sizes.split(",") if s]
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv=None) -> list:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for name in args.models:
        model = MODEL_REGISTRY[name](init=False).eval().requires_grad_(False)
        params = num_parameters(model)
        for height, width in args.sizes:
            flops = count_click_flops(model, height, width, args.batch)
            rows.append({"model": name, "params": params, "height": height, "width": width, "batch": args.batch,
                         **flops, "ratio": flops["first"] / flops["later_exact"],
                         "ratio_fast": flops["first"] / flops["later_fast"],
                         "ratio_plain": flops["first"] / flops["later_plain"]})
        del model

    print("FLOPs = 2 x multiply-adds (torch.utils.flop_counter; MACs = FLOPs / 2); conv, matmul and attention only.")
    print("first = encode + correct (backbone + correction head); later = one correct on the embedding.\n")
    print("| model | params | input | first click GFLOPs (GMACs) | later, exact | later, fast | first / later "
          "(exact, fast) | original later | original first / later |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['batch']}x{r['height']}x{r['width']} "
              f"| {r['first'] / 1e9:.2f} ({r['first'] / 2e9:.2f}) | {r['later_exact'] / 1e9:.3f} "
              f"| {r['later_fast'] / 1e9:.3f} | {r['ratio']:.1f}, {r['ratio_fast']:.1f} "
              f"| {r['later_plain'] / 1e9:.3f} | {r['ratio_plain']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"convention": "FLOPs = 2 x multiply-adds (torch.utils.flop_counter); MACs = FLOPs / 2",
                       "torch": torch.__version__, "rows": rows}, f, indent=1)
        print(f"\nwrote {args.json}")
    return rows


if __name__ == "__main__":
    sys.exit(run_cli(main))
