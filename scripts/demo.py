#!/usr/bin/env python
"""Click on images in a browser: a local annotation server on an EMC-Click checkpoint.

    python scripts/demo.py --checkpoint weights/hr18s.pth                  # the sample images in assets/
    python scripts/demo.py --checkpoint weights/hr18s.pth --images photos/ --output labels/ --device cuda

Open the printed address. Left click: object, right click: background, Ctrl+Z: undo; "Finish
object" keeps the object and starts the next one; "Save" writes ``<image>.png`` (instance ids)
and ``<image>.json`` (the clicks) into ``--output``. On a remote GPU machine, start it there
(it listens on 127.0.0.1) and forward the port: ``ssh -N -L 8000:127.0.0.1:8000 gpu-host``, then
open http://127.0.0.1:8000/ locally. The HTTP API is described in ``isegm/web/app.py``.
"""
from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path

import torch

from isegm.inference.onnx_backend import load_onnx_model
from isegm.inference.utils import load_is_model
from isegm.model.refiner import ATTENTION
from isegm.utils.errors import EMCClickError
from isegm.utils.malloc import retain_freed_memory
from isegm.web import ImageListing, ServerLimits, create_app
from isegm.web.serve import listening_socket, make_server

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_HINT = ("released checkpoints (hr18s.pth, hr18.pth, hr32.pth, segb0.pth, segb3.pth, from the original "
                "EMC-Click release page) go in weights/; without them, `python scripts/quickstart.py` trains hr18s "
                "on synthetic images and writes experiments/quickstart/hrnet18s_synthetic/NNN_quickstart/"
                "checkpoints/last_checkpoint.pth")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="an EMC-Click checkpoint (e.g. weights/hr18s.pth), or "
                        "with --backend onnx a folder written by scripts/export_onnx.py")
    parser.add_argument("--images", default=str(REPO / "assets"), help="folder of images to annotate "
                        "(default: the sample images in assets/)")
    parser.add_argument("--output", default="annotations", help="where Save writes the annotations")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help="run the network in PyTorch or in onnxruntime (a .pth is exported first)")
    parser.add_argument("--attention", choices=ATTENTION, default="exact", help="the correction head's attention")
    parser.add_argument("--infer-size", type=int, default=384, help="short side of the network input")
    parser.add_argument("--no-flip", action="store_true", help="no flip averaging (half the work per click)")
    parser.add_argument("--max-sessions", type=int, default=ServerLimits.max_sessions,
                        help="images open at once; the least recently used is evicted")
    parser.add_argument("--max-upload-mb", type=float, default=ServerLimits.max_upload_bytes / 2 ** 20)
    parser.add_argument("--max-pixels", type=int, default=ServerLimits.max_pixels)
    parser.add_argument("--threads", type=int, default=0, help="torch / onnxruntime CPU threads (0: their default)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_model(args: argparse.Namespace):
    """The network in eval mode on ``args.device``; a missing or unusable file exits with one line."""
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"error: --device {args.device}: no CUDA device is available (use --device cpu)")
    try:
        if args.backend == "onnx":
            if not Path(args.checkpoint).exists():
                raise FileNotFoundError(args.checkpoint)
            return load_onnx_model(args.checkpoint, threads=args.threads, device=args.device)
        return load_is_model(args.checkpoint, args.device)
    except FileNotFoundError:
        sys.exit(f"error: checkpoint {args.checkpoint!r} not found: {WEIGHTS_HINT}")
    except EMCClickError as exc:   # torch's own messages run over several lines: keep the first
        sys.exit(f"error: {str(exc).splitlines()[0]} ({WEIGHTS_HINT})")


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        limits = ServerLimits(max_upload_bytes=int(args.max_upload_mb * 2 ** 20), max_pixels=args.max_pixels,
                              max_sessions=args.max_sessions)
        images = ImageListing(args.images)
    except (ValueError, FileNotFoundError) as exc:
        sys.exit(f"error: {exc}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.device == "cpu":
        retain_freed_memory()   # every click reallocates the same large tensors (isegm/utils/malloc.py)
    model = load_model(args)
    device = "cpu" if args.backend == "onnx" else args.device   # onnxruntime hands back host arrays
    app = create_app(model, device, images=images, output_dir=Path(args.output), limits=limits,
                     model_name=Path(args.checkpoint).name, attention=args.attention, infer_size=args.infer_size,
                     with_flip=not args.no_flip)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}, not on this machine only: anyone who reaches this port can use "
              "the model and read the listed images (the server has no authentication); prefer the default "
              "127.0.0.1 with SSH port forwarding", file=sys.stderr)
    try:
        sock = listening_socket(args.host, args.port)
    except OSError as exc:
        sys.exit(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"EMC-Click annotation: http://{shown}:{port}/  ({Path(args.checkpoint).name} on {args.device}, "
          f"{args.backend}, {len(images)} images from {args.images}, saving into {args.output})", flush=True)
    logging.getLogger("isegm").setLevel(args.log_level.upper())
    make_server(app, args.log_level).run(sockets=[sock])


if __name__ == "__main__":
    main()
