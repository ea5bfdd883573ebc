"""The HTTP session API through FastAPI's test client: masks, undo, objects, saving, eviction."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import DiskModel, decode_png, png_bytes, sample_image
from fastapi.testclient import TestClient

from isegm.inference.predictor import EMCClickPredictor
from isegm.web import ImageListing, ServerLimits, create_app
from isegm.web.masks import decode_rle


def open_upload(client: TestClient, image: np.ndarray, name: str = "") -> str:
    response = client.post("/api/sessions" + (f"?name={name}" if name else ""), content=png_bytes(image),
                           headers={"Content-Type": "image/png"})
    assert response.status_code == 201, response.text
    return response.json()["session"]


def send(client: TestClient, session: str, clicks, **extra) -> dict:
    body = {"clicks": [{"x": x, "y": y, "positive": p} for y, x, p in clicks], **extra}
    response = client.post(f"/api/sessions/{session}/clicks", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_masks_are_the_predictors_and_later_clicks_run_only_the_head(hr18s):
    """A random-weight hr18s: the served mask is what EMCClickPredictor gives; encode once per object."""
    image = sample_image(72, 100)
    clicks = [(30, 40, True), (10, 90, False), (60, 20, True)]
    counted = CallCounter(hr18s)
    app = create_app(counted, "cpu", infer_size=64)
    direct = EMCClickPredictor(hr18s, "cpu", infer_size=64)
    direct.set_image(image)
    with TestClient(app) as client:
        session = open_upload(client, image)
        for n in range(1, 4):
            answer = send(client, session, clicks[:n])
            expected = direct.predict(clicks[:n])
            assert answer["backbone"] == (n == 1)
            assert (answer["width"], answer["height"], answer["clicks"]) == (100, 72, n)
            np.testing.assert_array_equal(decode_png(answer["mask"]["data"]),
                                          np.rint(expected * 255).astype(np.uint8))
            assert set(answer["timings_ms"]) == {"wait", "model", "encode", "server"}
        assert counted.calls == {"encode": 1, "correct": 3}
        rle = send(client, session, clicks, format="rle", threshold=0.3)["mask"]
        assert rle["format"] == "rle" and rle["size"] == [72, 100]
        np.testing.assert_array_equal(decode_rle(rle), direct.predict(clicks) > 0.3)
        assert counted.calls == {"encode": 1, "correct": 3}   # the same clicks again: no model call
        send(client, session, clicks[:2])                      # undo: back to a kept correction
        assert counted.calls == {"encode": 1, "correct": 3}
        send(client, session, clicks[:2] + [(50, 50, False)])  # another third click: the head once
        assert counted.calls == {"encode": 1, "correct": 4}
        assert client.post(f"/api/sessions/{session}/objects", json={"threshold": 0.0}).status_code == 200
        assert send(client, session, [(20, 20, True)])["backbone"]   # next object: a new first click
        assert counted.calls == {"encode": 2, "correct": 5}


class CallCounter:
    """Counts a model's ``encode`` / ``correct`` calls (a model is anything with these two calls)."""

    def __init__(self, model):
        self.model, self.training = model, False
        self.calls = {"encode": 0, "correct": 0}

    def encode(self, *args, **kwargs):
        self.calls["encode"] += 1
        return self.model.encode(*args, **kwargs)

    def correct(self, *args, **kwargs):
        self.calls["correct"] += 1
        return self.model.correct(*args, **kwargs)


def disk_mask(client, session, clicks) -> np.ndarray:
    return decode_rle(send(client, session, clicks, format="rle")["mask"])


def test_undo_returns_exactly_the_earlier_mask(disk_client):
    session = open_upload(disk_client, sample_image())
    one = send(disk_client, session, [(30, 30, True)])
    two = disk_mask(disk_client, session, [(30, 30, True), (60, 100, True)])
    assert two[30, 30] and two[60, 100] and not two[5, 120]
    again = send(disk_client, session, [(30, 30, True)])
    assert again["mask"]["data"] == one["mask"]["data"] and not again["backbone"]
    assert not disk_mask(disk_client, session, [(30, 30, True)])[60, 100]
    assert not disk_mask(disk_client, session, []).any()


def test_several_objects_and_save(disk_client, tmp_path):
    session = open_upload(disk_client, sample_image(), name="my photo.png")
    first = [(30, 30, True)]
    mask_1 = disk_mask(disk_client, session, first)
    finished = disk_client.post(f"/api/sessions/{session}/objects", json={"threshold": 0.5}).json()
    assert (finished["object"], finished["objects"]) == (1, 1)
    np.testing.assert_array_equal(decode_png(finished["instances"]["data"]), mask_1.astype(np.uint8))
    second = [(40, 45, True), (70, 110, True)]       # overlaps the first object
    mask_2 = disk_mask(disk_client, session, second)
    assert (mask_1 & mask_2).any()
    ids = decode_png(disk_client.post(f"/api/sessions/{session}/objects").json()["instances"]["data"])
    expected = np.where(mask_1, 1, np.where(mask_2, 2, 0))   # a finished object keeps its pixels
    np.testing.assert_array_equal(ids, expected)
    third = [(85, 10, True)]
    mask_3 = disk_mask(disk_client, session, third)           # not finished: saved as it is
    saved = disk_client.post(f"/api/sessions/{session}/save", json={"threshold": 0.5})
    assert saved.status_code == 200 and saved.json()["objects"] == 3
    png, record = (tmp_path / "out" / f"upload-{session}.png"), tmp_path / "out" / f"upload-{session}.json"
    assert [str(png), str(record)] == saved.json()["files"]
    written = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, np.where(expected > 0, expected, np.where(mask_3, 3, 0)))
    data = json.loads(record.read_text())
    assert data["image"] == "my photo.png" and (data["width"], data["height"]) == (128, 96)
    assert [o["clicks"] for o in data["objects"]] == [
        [{"x": x, "y": y, "positive": p} for y, x, p in clicks] for clicks in (first, second, third)]
    assert [o["pixels"] for o in data["objects"]] == [int((written == k).sum()) for k in (1, 2, 3)]


def test_listing_opens_by_index_or_name_only(disk_model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("b.png", "a.png", "a.jpg"):
        cv2.imwrite(str(folder / name), sample_image(40, 60))
    (folder / "notes.txt").write_text("not an image")
    (tmp_path / "secret.png").write_bytes(png_bytes(sample_image(40, 60)))
    app = create_app(disk_model, "cpu", images=ImageListing(folder), output_dir=tmp_path / "out", infer_size=64)
    with TestClient(app) as client:
        assert client.get("/api/images").json()["images"] == [
            {"index": 0, "name": "a.jpg"}, {"index": 1, "name": "a.png"}, {"index": 2, "name": "b.png"}]
        assert client.get("/api/images/2/file").content == (folder / "b.png").read_bytes()
        by_name = client.post("/api/sessions", json={"image": "b.png"}).json()
        assert by_name["name"] == "b.png" and (by_name["width"], by_name["height"]) == (60, 40)
        for key in ("../secret.png", str(tmp_path / "secret.png"), "notes.txt", 3, -1):
            response = client.post("/api/sessions", json={"image": key})
            assert response.status_code == 404 and response.json()["error"] == "unknown_image", key
        assert client.get("/api/images/7/file").status_code == 404
        session = client.post("/api/sessions", json={"image": 0}).json()["session"]
        send(client, session, [(20, 30, True)])
        saved = client.post(f"/api/sessions/{session}/save").json()["files"]
        assert saved == [str(tmp_path / "out" / "a_jpg.png"), str(tmp_path / "out" / "a_jpg.json")]


def test_least_recently_used_sessions_are_evicted(disk_client):
    app_state = disk_client.app.state.server
    ids = [open_upload(disk_client, sample_image(seed=i)) for i in range(3)]
    send(disk_client, ids[0], [(10, 10, True)])                # now ids[1] is the least recently used
    fourth = disk_client.post("/api/sessions", content=png_bytes(sample_image()),
                              headers={"Content-Type": "image/png"}).json()
    assert fourth["evicted"] == 1
    missing = disk_client.post(f"/api/sessions/{ids[1]}/clicks", json={"clicks": []})
    assert missing.status_code == 404 and ids[1] in missing.json()["detail"]
    assert disk_client.get("/api/info").json()["evicted"] == 1
    live = [ids[0], ids[2], fourth["session"]]
    for session in live:
        assert disk_client.get(f"/api/sessions/{session}").status_code == 200
    with app_state.store.use(live[0]), app_state.store.use(live[1]), app_state.store.use(live[2]):
        busy = disk_client.post("/api/sessions", content=png_bytes(sample_image()),
                                headers={"Content-Type": "image/png"})
        assert busy.status_code == 503 and busy.json()["error"] == "server_busy"
    assert disk_client.delete(f"/api/sessions/{live[0]}").json() == {"deleted": live[0]}
    assert disk_client.get(f"/api/sessions/{live[0]}").status_code == 404
    assert len(app_state.store) == 2


def test_evicted_sessions_free_their_image():
    model = DiskModel().eval()
    app = create_app(model, "cpu", limits=ServerLimits(max_sessions=1), infer_size=64)
    with TestClient(app) as client:
        first = open_upload(client, sample_image())
        with app.state.server.store.use(first) as session:
            predictor = session.predictor
        assert predictor.original_size == (96, 128)
        open_upload(client, sample_image())
        assert predictor.original_size is None and predictor.embedding is None


JSON = {"Content-Type": "application/json"}
BAD_REQUESTS = [
    # (name, method, path, body, headers, status, error code, words in the message)
    ("not an image", "POST", "/api/sessions", b"GIF89a but not really", {"Content-Type": "image/gif"}, 415,
     "not_an_image", ["not an image"]),
    ("truncated image", "POST", "/api/sessions", png_bytes(sample_image(60, 80))[:200], {"Content-Type": "image/png"},
     415, "not_an_image", ["truncated"]),
    ("empty upload", "POST", "/api/sessions", b"", {"Content-Type": "image/png"}, 400, "empty_upload", ["empty"]),
    ("unsupported type", "POST", "/api/sessions", b"hello", {"Content-Type": "text/plain"}, 415,
     "unsupported_media_type", ["text/plain"]),
    ("upload too large", "POST", "/api/sessions", b"\0" * 5000, {"Content-Type": "image/png"}, 413, "too_large",
     ["4096 bytes"]),
    ("too many pixels", "POST", "/api/sessions", png_bytes(sample_image(80, 120)), {"Content-Type": "image/png"},
     413, "too_many_pixels", ["120x80 = 9600 pixels", "limit is 9000"]),
    ("image too small", "POST", "/api/sessions", png_bytes(sample_image(3, 40)), {"Content-Type": "image/png"},
     422, "image_too_small", ["40x3"]),
    ("no listing", "POST", "/api/sessions", b'{"image": 0}', JSON, 404, "no_image_listing", ["--images"]),
    ("malformed JSON to open", "POST", "/api/sessions", b'{"image": ', JSON, 400, "malformed_json", ["JSON"]),
    ("wrong type to open", "POST", "/api/sessions", b'{"image": 1.5}', JSON, 422, "invalid_request", ["image"]),
    ("unknown session", "POST", "/api/sessions/nope/clicks", b'{"clicks": []}', JSON, 404, "unknown_session",
     ["'nope'"]),
    ("delete unknown session", "DELETE", "/api/sessions/nope", None, {}, 404, "unknown_session", ["'nope'"]),
    ("save unknown session", "POST", "/api/sessions/nope/save", None, {}, 404, "unknown_session", ["'nope'"]),
    ("malformed JSON", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [', JSON, 400, "malformed_json",
     ["not valid JSON", "character"]),
    ("click outside", "POST", "/api/sessions/{s}/clicks",
     b'{"clicks": [{"x": 5, "y": 5, "positive": true}, {"x": 80, "y": 5, "positive": false}]}', JSON, 422,
     "click_outside_image", ["clicks[1]", "x=80", "80x60"]),
    ("negative coordinate", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [{"x": 5, "y": -1, "positive": true}]}',
     JSON, 422, "click_outside_image", ["clicks[0]", "y=-1"]),
    ("not a number", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [{"x": "5", "y": 5, "positive": true}]}', JSON,
     422, "invalid_request", ["clicks[0].x"]),
    ("NaN", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [{"x": NaN, "y": 5, "positive": true}]}', JSON, 422,
     "invalid_request", ["clicks[0].x", "finite"]),
    ("missing sign", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [{"x": 5, "y": 5}]}', JSON, 422,
     "invalid_request", ["clicks[0].positive", "required"]),
    ("unknown field", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [], "colour": 1}', JSON, 422,
     "invalid_request", ["colour"]),
    ("bad format", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [], "format": "json"}', JSON, 422,
     "invalid_request", ["format"]),
    ("threshold out of range", "POST", "/api/sessions/{s}/clicks", b'{"clicks": [], "threshold": 1.5}', JSON, 422,
     "invalid_request", ["threshold"]),
    ("too many clicks", "POST", "/api/sessions/{s}/clicks",
     json.dumps({"clicks": [{"x": 1, "y": 1, "positive": True}] * 6}).encode(), JSON, 422, "too_many_clicks",
     ["6 clicks", "at most 5"]),
    ("JSON too large", "POST", "/api/sessions/{s}/clicks", b" " * (1 << 20) + b"{}", JSON, 413, "too_large",
     ["1048576 bytes"]),
    ("finish without clicks", "POST", "/api/sessions/{s}/objects", None, {}, 409, "no_clicks", ["no clicks"]),
    ("nothing to save", "POST", "/api/sessions/{s}/save", None, {}, 409, "nothing_to_save", ["no object"]),
    ("no such route", "GET", "/api/nothing", None, {}, 404, "not_found", ["/api/nothing"]),
    ("wrong method", "PUT", "/api/sessions/{s}/clicks", b"{}", JSON, 405, "method_not_allowed", []),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_keeps_serving(case, tmp_path):
    name, method, path, body, headers, status, code, words = case
    limits = ServerLimits(max_upload_bytes=4096 if name == "upload too large" else 1 << 24, max_pixels=9000,
                          max_clicks=5)
    app = create_app(DiskModel().eval(), "cpu", limits=limits, output_dir=tmp_path, infer_size=64)
    with TestClient(app) as client:
        session = open_upload(client, sample_image(60, 80)) if "{s}" in path else None
        response = client.request(method, path.replace("{s}", session or ""), content=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == code
        for word in words:
            assert word in response.json()["detail"]
        assert client.get("/api/info").status_code == 200
        if session:
            assert send(client, session, [(10, 10, True)])["clicks"] == 1


def test_saving_is_refused_without_an_output_folder(disk_model):
    with TestClient(create_app(disk_model, "cpu", infer_size=64)) as client:
        session = open_upload(client, sample_image())
        send(client, session, [(10, 10, True)])
        response = client.post(f"/api/sessions/{session}/save")
        assert response.status_code == 409 and "--output" in response.json()["detail"]


def test_the_page_and_its_files_are_served(disk_client):
    page = disk_client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("static/app.js", "static/style.css"):
        assert asset in page.text
        assert disk_client.get("/" + asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")   # nothing from another host: it works offline


def test_a_chunked_upload_is_cut_at_the_limit(disk_model):
    """No Content-Length: the body is counted while it is read, and refused past the limit."""
    app = create_app(disk_model, "cpu", limits=ServerLimits(max_upload_bytes=10_000), infer_size=64)
    with TestClient(app) as client:
        chunks = (b"\0" * 4000 for _ in range(5))
        response = client.post("/api/sessions", content=chunks, headers={"Content-Type": "image/png"})
        assert response.status_code == 413 and "10000 bytes" in response.json()["detail"]
        small = (part for part in (png_bytes(sample_image(20, 30)),))
        assert client.post("/api/sessions", content=small, headers={"Content-Type": "image/png"}).status_code == 201
