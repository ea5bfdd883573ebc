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
                                        "--no-retain-memory", "--device", "cpu", "--json", str(tmp_path / "b.json")])
    result = report["devices"]["cpu"]
    assert set(result["models"]) == {"hr18s/exact", "hr18s/fast"}
    assert set(result["models"]["hr18s/exact"]["later"]) == {1, 2, 3}
    session = result["sessions"]["hr18s/fast"]
    assert session["clicks"] == 3 and len(session["network"]) == 3 and all(t > 0 for t in session["network"])
    out = capsys.readouterr().out
    assert "| hr18s |" in out and "everything else" in out and (tmp_path / "b.json").exists()
