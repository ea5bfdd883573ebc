"""The ONNX export of both stages and the onnxruntime backend, against PyTorch.

Networks: :func:`calibrated_model` (random weights whose batch-norm statistics are those of
synthetic images, so logits have a trained network's scale; plain random HRNets give logits of
1e7) and the shared fixture checkpoints. Tolerances, and why:

* encoder: both backends compute in float32 and these random networks amplify rounding (the
  PyTorch outputs of hr32 are 1e-4 of their scale away from the same network in float64). The
  onnxruntime outputs must be within 1e-4 of PyTorch's (relative to the outputs' scale), or no
  further from the float64 outputs than 3x PyTorch's own float32 error.
* corrector: fed the same inputs as PyTorch, its logits must be within 1e-3 of PyTorch's, or no
  further from the float64 logits than 3x PyTorch's float32 error (these networks' logits reach
  hundreds, float32 keeps 7 digits), except on clicks where two of the K + 1 best template scores
  tie (< 1e-6 apart: the templates' order feeds per-channel weights), which are reported.
"""
import json

import numpy as np
import pytest
import torch
from conftest import VARIANTS, load_script, shared_path

from isegm.inference.benchmarking import calibrated_model, synthetic_sample
from isegm.inference.onnx_backend import OnnxModel, load_onnx_model
from isegm.inference.onnx_parity import compare_stages, summarize
from isegm.inference.predictor import EMCClickPredictor
from isegm.inference.utils import load_is_model
from isegm.model.checkpoint import save_checkpoint
from isegm.model.export import export_onnx
from isegm.utils.cli import run_cli
from isegm.utils.errors import InputError, MissingFileError

pytest.importorskip("onnxruntime")

SIZE = (128, 160)   # calibration and parity size (the graphs are traced at 96 x 128)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model, export folder), built on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            model = calibrated_model(name, size=SIZE)
            folder = tmp_path_factory.mktemp(f"onnx_{name}")
            export_onnx(model, folder, name=name)
            cache[name] = model, folder
        return cache[name]

    return get


def check_parity(model, folder, height, width, clicks=4):
    report = compare_stages(model, folder, height, width, clicks=clicks)
    summary = summarize(report)
    print(json.dumps(summary))
    for name, diff in report["encoder"].items():
        scale = max(diff["ref_max_abs"], 1.0)
        assert diff["relative"] <= 1e-4 or diff["onnx_vs_float64"] <= 3 * diff["torch_vs_float64"] + 1e-6 * scale, \
            (name, diff)
    for step in report["corrector"]:
        if step["tie"]:
            print(f"template tie at click {step['clicks']}: gap {step['gap']:.2e}")
            continue
        logits = step["logits"]
        assert logits["max_abs"] <= 1e-3 or logits["onnx_vs_float64"] <= 3 * logits["torch_vs_float64"], step
    return report


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in ("hr18", "hr32", "segb3") else n
                                  for n in VARIANTS])
def test_both_graphs_match_pytorch(exported, name):
    model, folder = exported(name)
    runtime = json.loads((folder / "runtime.json").read_text())
    assert runtime["model"] == name and runtime["templates"] == model.refiner.corr_channel
    assert runtime["torch"] == torch.__version__ and runtime["opset"] >= 17
    report = check_parity(model, folder, *SIZE)
    # batch 2 (the flip), clicks 1 .. 4, at another size than the tracing example: all dynamic
    assert [s["clicks"] for s in report["corrector"]] == [1, 2, 3, 4]


def test_graphs_take_other_sizes_and_a_single_image(exported):
    model, folder = exported("hr18s")
    onnx = OnnxModel(folder, threads=1)
    image = torch.rand(1, 4, 96, 224, generator=torch.Generator().manual_seed(3))
    # one positive and one negative click, each half padded: rows (y, x, index), padding (-1, -1, -1)
    points = torch.tensor([[[40.0, 100.0, 0], [-1, -1, -1], [70.0, 20.0, 1], [-1, -1, -1]]], dtype=torch.float64)
    with torch.inference_mode():
        ours = onnx.correct(onnx.encode(image, points), points)
        ref = model.correct(model.encode(image, points), points, attention="fast")
    assert ours.logits.shape == (1, 1, 96, 224)
    assert (ours.logits - ref.logits).abs().max() <= 1e-3 * max(1.0, float(ref.logits.abs().max()) / 100)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hr18s", "segb0"])
def test_fixture_checkpoints(tmp_path, name):
    model = load_is_model(shared_path("fixtures", f"{name}_random.pth"), "cpu")
    export_onnx(model, tmp_path)
    check_parity(model, tmp_path, 384, 512, clicks=3)   # their batch norm was calibrated at 384 x 512


def test_predictor_on_onnx(exported):
    model, folder = exported("hr18s")
    image, _ = synthetic_sample(*SIZE, seed=1)
    onnx_predictor = EMCClickPredictor(OnnxModel(folder, threads=1), infer_size=SIZE[0])
    torch_predictor = EMCClickPredictor(model, infer_size=SIZE[0])
    clicks = [(64, 70, True), (30, 120, False), (90, 40, True)]
    for predictor in (onnx_predictor, torch_predictor):
        predictor.set_image(image)
    first = [p.predict(clicks[:1]) for p in (onnx_predictor, torch_predictor)]
    assert first[0].shape == SIZE and 0 <= first[0].min() and first[0].max() <= 1
    assert ((first[0] > 0.49) == (first[1] > 0.49)).mean() >= 0.999
    two = onnx_predictor.predict(clicks[:2]).copy()
    onnx_predictor.predict(clicks)
    np.testing.assert_array_equal(onnx_predictor.predict(clicks[:2]), two)   # undo: the kept state, bit for bit
    single = EMCClickPredictor(OnnxModel(folder, threads=1), infer_size=SIZE[0], with_flip=False)
    single.set_image(image)
    assert single.predict(clicks).shape == SIZE


def test_bad_export_folders(tmp_path, exported):
    with pytest.raises(MissingFileError, match="runtime.json"):
        OnnxModel(tmp_path)
    _, folder = exported("hr18s")
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in folder.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "corrector.onnx").write_bytes(b"not a graph")
    with pytest.raises(InputError, match="corrector.onnx"):
        OnnxModel(broken)
    runtime = json.loads((broken / "runtime.json").read_text())
    (broken / "runtime.json").write_text(json.dumps({**runtime, "format": 99}))
    with pytest.raises(InputError, match="format 99"):
        OnnxModel(broken)


def test_export_cli(tmp_path, capsys):
    export = load_script("export_onnx")
    assert run_cli(export.main, ["--model", "segb0", "--output", str(tmp_path / "out"), "--check"]) == 0
    assert json.loads((tmp_path / "out" / "runtime.json").read_text())["model"] == "segb0"
    out = capsys.readouterr().out
    assert "encoder logits_lr: max |onnx - torch|" in out and "corrector, 6 click(s)" in out
    (tmp_path / "notes.pth").write_text("a text file\n")
    assert run_cli(export.main, ["--checkpoint", str(tmp_path / "notes.pth"), "--output", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.pth" in err[0]
    assert run_cli(export.main, ["--model", "segb0", "--output", str(tmp_path / "notes.pth")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.pth: exists and is not a folder" in err[0]
    model = calibrated_model("hr18s", size=SIZE)
    save_checkpoint(model, tmp_path / "m.pth")
    data = torch.load(tmp_path / "m.pth", weights_only=True)
    data["config"]["class"] = "os.system"
    torch.save(data, tmp_path / "evil.pth")
    assert run_cli(export.main, ["--checkpoint", str(tmp_path / "evil.pth"), "--output", str(tmp_path / "y")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "os.system" in err[0]
    assert not (tmp_path / "y").exists()


def test_load_onnx_model_exports_a_checkpoint(tmp_path):
    model = calibrated_model("segb0", size=SIZE)
    save_checkpoint(model, tmp_path / "segb0.pth")
    onnx = load_onnx_model(tmp_path / "segb0.pth", threads=1, export_dir=tmp_path / "exported")
    assert onnx.name == "segb0" and (tmp_path / "exported" / "encoder.onnx").is_file()
