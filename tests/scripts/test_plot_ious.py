"""scripts/plot_ious_analysis.py: both pickle formats, padding, PNG output and the restricted unpickler."""
import collections
import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

from isegm.utils.pickles import UnsafePickleError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "plot_ious_analysis.py"


@pytest.fixture(scope="module")
def plot_script():
    spec = importlib.util.spec_from_file_location("plot_ious_analysis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dump(path: Path, obj, protocol=pickle.HIGHEST_PROTOCOL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def test_plots_both_formats(plot_script, tmp_path, capsys):
    ious = [np.linspace(0.5, 0.95, 20, dtype=np.float32), np.full(20, 0.8, dtype=np.float32)]
    dump(tmp_path / "in" / "plots" / "GrabCut_emc-click_EMC-Click_20.pickle",
         {"dataset_name": "GrabCut", "model_name": "hr18s_EMC-Click", "all_ious": ious})
    # --save-ious layout with early-stopped (shorter) arrays, protocol 2 (bytes via _codecs)
    dump(tmp_path / "in" / "hr32" / "ious" / "GrabCut_emc-click_EMC-Click_20.pkl",
         [np.array([0.5, 0.91], dtype=np.float32), np.array([0.95], dtype=np.float32)], protocol=2)
    dump(tmp_path / "in" / "hr32" / "ious" / "COCO_MVal_emc-click_EMC-Click_20.pkl",
         [np.array([0.7, 0.8, 0.9], dtype=np.float32)])

    out = tmp_path / "out"
    written = plot_script.main(["--files", str(tmp_path / "in" / "**" / "*.pickle"),
                                str(tmp_path / "in" / "**" / "*.pkl"), "--output-dir", str(out), "--n-clicks", "5"])
    assert sorted(p.name for p in written) == ["COCO_MVal.png", "GrabCut.png"]
    for path in written:
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "hr18s_EMC-Click on GrabCut" in printed and "hr32_EMC-Click on GrabCut" in printed
    assert "hr32_EMC-Click on COCO_MVal: mIoU@1=70.00%; mIoU@3=90.00%; mIoU@5=90.00%;" in printed


def test_names_and_padding(plot_script, tmp_path):
    path = tmp_path / "others" / "hr18" / "ious" / "last" / "D585_SP_emc-click_EMC-Click_20.pkl"
    assert plot_script.names_from_path(path) == ("D585_SP", "hr18:last_EMC-Click")
    curve = plot_script.mean_iou_curve([np.array([0.5, 0.9]), np.array([0.2, 0.4, 0.6, 0.8])], 3)
    assert np.allclose(curve, [0.35, 0.65, 0.75])       # the first array is padded with 0.9


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("payload", [Evil(), collections.OrderedDict(a=1)])
def test_rejects_disallowed_classes(plot_script, tmp_path, capsys, payload):
    path = dump(tmp_path / "bad.pickle", {"dataset_name": "GrabCut", "model_name": "m", "all_ious": [payload]})
    with pytest.raises(UnsafePickleError, match=r"bad\.pickle.*refusing to load"):
        plot_script.main(["--files", str(path), "--output-dir", str(tmp_path / "out")])
    assert "this must never run" not in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_missing_files_and_bad_content(plot_script, tmp_path):
    with pytest.raises(FileNotFoundError):
        plot_script.main(["--files", str(tmp_path / "nothing*.pkl"), "--output-dir", str(tmp_path)])
    path = dump(tmp_path / "x.pkl", {"all_ious": []})
    with pytest.raises(ValueError, match="needs the keys"):
        plot_script.main(["--files", str(path), "--output-dir", str(tmp_path)])
