"""Plot mIoU-versus-clicks curves of several models, one PNG per dataset, from saved IoU pickles.

Accepted pickles (both written by ``scripts/evaluate_model.py``):

* ``--iou-analysis``: ``{'dataset_name': str, 'model_name': str, 'all_ious': [float32 array, ...]}``
  (``<logs>/plots/[<prefix>_]<dataset>_<eval_mode>_<mode>_<n_clicks>.pickle``);
* ``--save-ious``: a bare list of per-sample float32 arrays
  (``<logs>/others/<checkpoint>/ious/[<prefix>/]<dataset>_<eval_mode>_<mode>_<n_clicks>.pkl``); the
  dataset and model names are read from that path.

Each array holds the IoU after click 1, 2, ... of one sample. Files are read with the project's
restricted unpickler (``isegm.utils.pickles.safe_pickle_load``: numpy arrays / scalars / dtypes and
plain builtins only), so a pickle cannot run code. Arrays shorter than the plotted number of clicks
(samples that stopped early at the target IoU) are padded with their last value, i.e. the mask is
assumed to stay as it was when the target was reached; ``--iou-analysis`` runs never stop early, so
their curves need no padding.

Example::

    python scripts/plot_ious_analysis.py --files 'experiments/evaluation_logs/others/*/plots/*.pickle' \\
        --output-dir experiments/evaluation_logs/iou_analysis --n-clicks 20
"""
from __future__ import annotations

import argparse
import glob
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from isegm.utils.cli import add_debug_flag, run_cli
from isegm.utils.errors import InputError, MissingFileError
from isegm.utils.pickles import safe_pickle_load

SUMMARY_CLICKS = (1, 3, 5, 10, 20)


def load_pickle(path: Path) -> Any:
    """Load ``path`` with the project's restricted unpickler; errors name the file."""
    return safe_pickle_load(path, "IoU pickle")


def names_from_path(path: Path) -> Tuple[str, str]:
    """``(dataset, model)`` of a ``--save-ious`` file ``.../<model>/ious/[<prefix>/]<dataset>_<eval>_<mode>_<n>.pkl``.

    Falls back to ``(file stem, parent folder name)`` for other names.
    """
    parts = path.stem.rsplit("_", 3)
    if len(parts) != 4 or not parts[3].isdigit():
        return path.stem, path.parent.name
    dataset, _eval_mode, mode, _n_clicks = parts
    if path.parent.name == "ious":
        model = path.parent.parent.name
    elif path.parent.parent.name == "ious":
        model = f"{path.parent.parent.parent.name}:{path.parent.name}"
    else:
        model = path.parent.name
    return dataset, f"{model}_{mode}"


def read_results(path: Path) -> Tuple[str, str, List[np.ndarray]]:
    """``(dataset_name, model_name, per-sample IoU arrays)`` of one pickle of either format."""
    data = load_pickle(path)
    if isinstance(data, dict):
        missing = {"dataset_name", "model_name", "all_ious"} - set(data)
        if missing:
            raise InputError(f"{path}: an --iou-analysis pickle needs the keys {sorted(missing)}")
        dataset, model, all_ious = str(data["dataset_name"]), str(data["model_name"]), data["all_ious"]
    elif isinstance(data, (list, tuple)):
        (dataset, model), all_ious = names_from_path(path), data
    else:
        raise InputError(f"{path}: expected a dict (--iou-analysis) or a list of arrays (--save-ious), "
                         f"got {type(data).__name__}")
    arrays = [np.asarray(x, dtype=np.float64).reshape(-1) for x in all_ious]
    if not arrays or any(a.size == 0 for a in arrays):
        raise InputError(f"{path}: no samples, or a sample with no click")
    return dataset, model, arrays


def mean_iou_curve(all_ious: Sequence[np.ndarray], n_clicks: int) -> np.ndarray:
    """mIoU after clicks ``1..n_clicks``: each array cut or padded with its last value to ``n_clicks``."""
    padded = [np.pad(a[:n_clicks], (0, max(0, n_clicks - len(a))), mode="edge") for a in all_ious]
    return np.mean(padded, axis=0)


def expand_files(patterns: Sequence[str]) -> List[Path]:
    """Files matching the glob ``patterns`` (``**`` allowed), each once, in pattern then name order."""
    files: List[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) or ([pattern] if Path(pattern).is_file() else [])
        if not matches:
            raise MissingFileError(f"no file matches {pattern!r}")
        files.extend(Path(m) for m in matches if Path(m) not in files)
    return files


def plot_dataset(dataset: str, curves: Dict[str, np.ndarray], output_dir: Path) -> Path:
    """Write ``<output_dir>/<dataset>.png`` with one mIoU curve per model; returns its path."""
    import matplotlib
    matplotlib.use("Agg")   # files only, no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 7))
    max_clicks = 0
    for model, curve in curves.items():
        clicks = 1 + np.arange(len(curve))
        ax.plot(clicks, curve, linewidth=2, label=model)
        max_clicks = max(max_clicks, len(curve))
    ax.set_title(f"mIoU after every click for {dataset}", fontsize="x-large")
    ax.set_xlabel("clicks")
    ax.set_ylabel("mIoU")
    ax.set_xticks(1 + np.arange(max_clicks))
    ax.grid()
    ax.legend(loc="lower right", fontsize="x-large")
    path = output_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', dataset)}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_debug_flag(parser)
    parser.add_argument("--files", nargs="+", required=True,
                        help="IoU pickles or glob patterns (quote them), --iou-analysis or --save-ious format")
    parser.add_argument("--output-dir", type=Path, default=Path("experiments/evaluation_logs/iou_analysis"),
                        help="folder for the <dataset>.png plots (created if needed)")
    parser.add_argument("--n-clicks", type=int, default=-1,
                        help="clicks to plot; -1: the longest IoU array of each dataset")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[Path]:
    """Run the CLI; returns the written PNG paths."""
    args = parse_args(argv)
    # dataset -> model -> per-sample arrays, in file order
    results: Dict[str, Dict[str, List[np.ndarray]]] = defaultdict(dict)
    for path in expand_files(args.files):
        dataset, model, all_ious = read_results(path)
        if model in results[dataset]:
            model = f"{model} ({path.stem})"   # two files for the same model: keep both, tell them apart
        results[dataset][model] = all_ious

    args.output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset, models in results.items():
        n_clicks = args.n_clicks if args.n_clicks > 0 else max(len(a) for ious in models.values() for a in ious)
        curves = {model: mean_iou_curve(ious, n_clicks) for model, ious in models.items()}
        for model, curve in curves.items():
            summary = " ".join(f"mIoU@{k}={curve[k - 1]:.2%};" for k in SUMMARY_CLICKS if k <= len(curve))
            print(f"{model} on {dataset}: {summary}")
        written.append(plot_dataset(dataset, curves, args.output_dir))
        print(f"wrote {written[-1]}")
    return written


if __name__ == "__main__":
    sys.exit(run_cli(main))
