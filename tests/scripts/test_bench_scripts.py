"""The FLOPs and benchmark scripts run end to end on tiny inputs (their numbers are not asserted)."""
from conftest import load_script


def test_count_flops_script(tmp_path, capsys):
    flops = load_script("count_flops")
    rows = flops.main(["--models", "hr18s", "--sizes", "64x64", "--json", str(tmp_path / "f.json")])
    assert rows[0]["params"] == 4_322_416
    assert rows[0]["first"] > rows[0]["later_plain"] > rows[0]["later_exact"] > rows[0]["later_fast"] > 0
    assert "| hr18s |" in capsys.readouterr().out and (tmp_path / "f.json").exists()


def test_benchmark_script_quick(tmp_path, capsys):
    report = load_script("benchmark").main(["--quick", "--models", "hr18s", "--size", "64x64", "--clicks", "1,2,3",
                                            "--session-size", "60x80", "--infer-size", "64", "--session-clicks", "3",
                                            "--backend", "torch,onnx", "--threads", "1,2", "--no-retain-memory",
                                            "--device", "cpu", "--json", str(tmp_path / "b.json")])
    assert set(report["runs"]) == {"cpu/1", "cpu/2"}
    result = report["runs"]["cpu/1"]
    assert set(result["models"]) == {"hr18s/torch/exact", "hr18s/torch/fast", "hr18s/onnx/fast"}
    for key in result["models"]:
        assert set(result["models"][key]["later"]) == {1, 2, 3}
        session = result["sessions"][key]
        assert session["clicks"] == 3 and len(session["network"]) == 3 and all(t > 0 for t in session["network"])
    out = capsys.readouterr().out
    assert "| hr18s | onnx | fast |" in out and "2 thread(s)" in out and "everything else" in out
    assert (tmp_path / "b.json").exists()


def test_benchmark_rejects_unknown_backend(capsys):
    import pytest

    with pytest.raises(SystemExit):
        load_script("benchmark").main(["--backend", "tensorrt"])
    assert "--backend" in capsys.readouterr().err
