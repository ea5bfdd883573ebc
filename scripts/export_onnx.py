#!/usr/bin/env python
"""Export both stages of an EMC-Click checkpoint to ONNX, for onnxruntime (``--backend onnx``).

    python scripts/export_onnx.py --checkpoint weights/hr18s.pth --output exported/hr18s
    python scripts/export_onnx.py --model hr18s --output exported/hr18s_random    # random weights

Writes ``encoder.onnx`` (first click: backbone and the correction head's per-image work),
``corrector.onnx`` (one correction) and ``runtime.json`` (model name, normalisation, input layout,
opset, the exporter's torch version); see :mod:`isegm.model.export`. Image height and width, the
batch (1, or 2 with the flip) and the number of clicks are dynamic. ``--check`` runs both graphs
in onnxruntime on a seeded input at another size than the tracing example and compares them with
PyTorch.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from isegm.build import MODEL_REGISTRY, list_models
from isegm.inference.utils import load_is_model
from isegm.model.export import export_onnx
from isegm.utils.cli import add_debug_flag, run_cli
from isegm.utils.errors import InputError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a released-format .pth checkpoint")
    source.add_argument("--model", choices=list_models(), help="export this network with random weights")
    parser.add_argument("--output", required=True, help="folder to write the graphs and runtime.json into")
    parser.add_argument("--trace-size", default="96x128", help="HxW of the tracing example (multiples of 32)")
    parser.add_argument("--check", action="store_true", help="compare both graphs with PyTorch after export")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    try:
        args.height, args.width = (int(v) for v in args.trace_size.lower().split("x"))
    except ValueError:
        raise InputError(f"--trace-size {args.trace_size!r}: expected HxW, e.g. 96x128") from None
    if args.height % 32 or args.width % 32 or min(args.height, args.width) < 64:
        raise InputError(f"--trace-size {args.trace_size}: both sides must be multiples of 32, at least 64")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.checkpoint:
        model, name = load_is_model(args.checkpoint, "cpu"), ""
    else:
        torch.manual_seed(0)
        model, name = MODEL_REGISTRY[args.model](init=True).eval().requires_grad_(False), args.model
    runtime = export_onnx(model, args.output, args.height, args.width, name=name)
    print(f"wrote {args.output}/{runtime['encoder']}, {runtime['corrector']}, runtime.json "
          f"({runtime['model']}, opset {runtime['opset']})")
    if args.check:
        from isegm.inference.onnx_parity import compare_stages, summarize
        report = compare_stages(model, args.output)
        for name, diff in report["encoder"].items():
            print(f"encoder {name}: max |onnx - torch| {diff['max_abs']:.2e} (outputs up to {diff['ref_max_abs']:.3g})")
        for step in report["corrector"]:
            tie = f", template tie (scores {step['gap']:.1e} apart)" if step["tie"] else ""
            print(f"corrector, {step['clicks']} click(s): max |onnx - torch| {step['logits']['max_abs']:.2e} "
                  f"(logits up to {step['logits']['ref_max_abs']:.3g}){tie}")
        runtime["check"] = summarize(report)
        print(json.dumps(runtime["check"]))
    return runtime


if __name__ == "__main__":
    sys.exit(run_cli(main))
