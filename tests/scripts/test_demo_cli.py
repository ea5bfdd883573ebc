"""scripts/demo.py and scripts/load_test.py: a real server in a subprocess, over real HTTP on 127.0.0.1."""
from __future__ import annotations

import http.client
import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from conftest import REPO, png_bytes, sample_image, script_env

from isegm.build import build_emc_click
from isegm.model.checkpoint import save_checkpoint

DEMO = str(REPO / "scripts" / "demo.py")
LOAD_TEST = str(REPO / "scripts" / "load_test.py")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "hr18s_random.pth"
    torch.manual_seed(0)
    save_checkpoint(build_emc_click("hr18s"), path)
    return path


def script(name: str, path: str = DEMO):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case", ["missing", "not a checkpoint", "no images", "no cuda"])
def test_bad_arguments_are_one_line_errors(case, tmp_path, checkpoint, monkeypatch):
    """``sys.exit(message)``: Python prints the message alone on stderr and exits with status 1."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if case == "missing":
        args = ["--checkpoint", str(tmp_path / "hr18s.pth")]
        words = [str(tmp_path / "hr18s.pth"), "not found", "weights/", "scripts/quickstart.py"]
    elif case == "not a checkpoint":
        (tmp_path / "notes.pth").write_text("not a checkpoint")
        args = ["--checkpoint", str(tmp_path / "notes.pth")]
        words = ["notes.pth", "weights/", "quickstart"]
    elif case == "no images":
        args = ["--checkpoint", str(checkpoint), "--images", str(tmp_path)]
        words = [str(tmp_path), "holds no image"]
    else:
        args = ["--checkpoint", str(checkpoint), "--device", "cuda"]
        words = ["--device cuda", "no CUDA device"]
    with pytest.raises(SystemExit) as exit_info:
        script("demo").main(args)
    message = exit_info.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message
    for word in words:
        assert word in message


def test_only_loopback_addresses_count_as_local():
    is_loopback = script("demo").is_loopback
    assert all(map(is_loopback, ["127.0.0.1", "127.3.0.1", "localhost", "::1"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.org"]))


@pytest.mark.slow
def test_the_server_answers_over_http_and_warns_off_loopback(checkpoint, tmp_path):
    """Listening on every address prints a warning; the page, the listing and a click work over HTTP."""
    cmd = [sys.executable, DEMO, "--checkpoint", str(checkpoint), "--host", "0.0.0.0", "--port", "0",
           "--output", str(tmp_path / "out"), "--infer-size", "64", "--threads", "1", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://0.0.0.0:" in line, line + proc.stderr.read() if proc.poll() is not None else line
        port = int(line.split("http://0.0.0.0:")[1].split("/")[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def call(method, path, body=None, content_type="application/json"):
            connection.request(method, path, body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            return response.status, response.read()

        status, page = call("GET", "/")
        assert status == 200 and b"app.js" in page
        status, listing = call("GET", "/api/images")
        names = [i["name"] for i in json.loads(listing)["images"]]
        assert status == 200 and names == sorted(p.name for p in (REPO / "assets").glob("*.jpg"))
        status, opened = call("POST", "/api/sessions", png_bytes(sample_image(48, 64)), "image/png")
        assert status == 201
        session = json.loads(opened)["session"]
        status, answer = call("POST", f"/api/sessions/{session}/clicks",
                              json.dumps({"clicks": [{"x": 30, "y": 20, "positive": True}]}).encode())
        assert status == 200 and json.loads(answer)["backbone"] is True
        status, error = call("POST", f"/api/sessions/{session}/clicks", b"{")
        assert status == 400 and json.loads(error)["error"] == "malformed_json"
        status, _ = call("GET", "/api/info")
        assert status == 200
        connection.close()
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "warning: listening on 0.0.0.0" in stderr and "no authentication" in stderr


@pytest.mark.slow
def test_the_load_test_reports_latency_errors_and_memory(tmp_path, checkpoint, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", script_env()["PYTHONPATH"])   # the server it starts imports this checkout
    out = tmp_path / "load.json"
    report = script("load_test", LOAD_TEST).main([
        "--sessions", "2", "--clicks", "3", "--rounds", "2", "--max-sessions", "2", "--size", "48x64",
        "--infer-size", "64", "--threads", "1", "--time-limit", "120", "--checkpoint", str(checkpoint),
        "--json", str(out)])
    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["latency"] == report["latency"]
    assert report["errors"] == [] and report["clicks_made"] == 12 and report["incomplete"] == 0
    first, later = report["latency"]["first click"], report["latency"]["later clicks"]
    assert (first["requests"], first["backbone_ran"]) == (4, 4)      # every session's first click: the backbone
    assert (later["requests"], later["backbone_ran"]) == (8, 0)      # later clicks: the head only
    assert 0 < first["p50_ms"] <= first["p95_ms"] and later["p50_ms"] > 0
    assert report["evicted"] == 2 and report["rss_after_eviction_started"] is not None
    assert 100 * 2 ** 20 < report["peak_rss"] < 8 * 2 ** 30
    for heading in ("| first click | 4 |", "| later clicks | 8 |", "errors: 0", "resident memory: peak"):
        assert heading in printed


def test_the_onnx_backend_serves_clicks(checkpoint, tmp_path):
    """``--backend onnx`` exports the checkpoint and the server runs its clicks in onnxruntime."""
    pytest.importorskip("onnxruntime")
    from fastapi.testclient import TestClient

    from isegm.inference.onnx_backend import OnnxModel
    from isegm.web import create_app

    demo = script("demo")
    args = demo.parse_args(["--checkpoint", str(checkpoint), "--backend", "onnx", "--threads", "1"])
    model = demo.load_model(args)
    assert isinstance(model, OnnxModel) and model.name == "hr18s"
    with TestClient(create_app(model, "cpu", output_dir=tmp_path / "out", infer_size=64)) as client:
        opened = client.post("/api/sessions", content=png_bytes(sample_image(48, 64)),
                             headers={"Content-Type": "image/png"})
        assert opened.status_code == 201
        session = opened.json()["session"]
        for clicks in ([{"x": 30, "y": 20, "positive": True}],
                       [{"x": 30, "y": 20, "positive": True}, {"x": 5, "y": 5, "positive": False}]):
            answer = client.post(f"/api/sessions/{session}/clicks", json={"clicks": clicks})
            assert answer.status_code == 200, answer.text
        assert answer.json()["backbone"] is False
    with pytest.raises(SystemExit) as exit_info:
        demo.load_model(demo.parse_args(["--checkpoint", str(tmp_path / "none"), "--backend", "onnx"]))
    assert "not found" in exit_info.value.code
