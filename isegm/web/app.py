"""The annotation server: a FastAPI application on one shared model, with sessions per image.

    app = create_app(model, "cpu", images=ImageListing("assets"), output_dir=Path("annotations"))
    uvicorn.run(app, host="127.0.0.1", port=8000)

HTTP API (JSON unless said; every error is ``{"error": code, "detail": message}`` with a 4xx
status, or 503 when every session is busy):

* ``GET /``: the annotation page (``isegm/web/static``); ``GET /api/info``: model, device, limits.
* ``GET /api/images``: the ``--images`` listing ``[{"index", "name"}]``;
  ``GET /api/images/{index}/file``: that file.
* ``POST /api/sessions``: open an image. Body: the image's bytes (``Content-Type: image/...`` or
  ``application/octet-stream``; optional ``?name=`` shown back), or JSON ``{"image": index or
  file name}`` of the listing. -> 201 ``{"session", "name", "width", "height", ...}``.
* ``POST /api/sessions/{id}/clicks``: ``{"clicks": [{"x", "y", "positive"}, ...], "format":
  "png" | "rle", "threshold": 0.49}``, the whole click list of the current object in image
  pixels (a shorter list undoes). -> the mask (``png``: base64 8-bit PNG of the probabilities,
  ``round(255 p)``; ``rle``: COCO run-length encoding of ``p > threshold``), ``backbone`` (whether
  the backbone ran: the object's first click) and ``timings_ms``.
* ``POST /api/sessions/{id}/objects``: finish the current object (``{"threshold"}``) -> its id
  and the instance map (base64 8-bit PNG); the next click starts a new object.
* ``POST /api/sessions/{id}/save``: write ``<stem>.png`` (instance ids) and ``<stem>.json``
  (clicks) into the output folder; ``GET`` / ``DELETE /api/sessions/{id}``.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Type, TypeVar

import numpy as np
import torch
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from isegm.inference.predictor import EMCClickPredictor
from isegm.web.annotations import save_annotation
from isegm.web.body_limit import BodyLimit
from isegm.web.device import DeviceRunner, runner_for
from isegm.web.errors import ApiError, describe_validation, install_error_handlers, malformed_json
from isegm.web.images import ImageListing, decode_image
from isegm.web.limits import ServerLimits
from isegm.web.masks import encode_rle, instances_png, probabilities_png
from isegm.web.schemas import ClickRequest, OpenImage, ThresholdRequest
from isegm.web.sessions import Session, SessionStore

__all__ = ["create_app", "STATIC"]

STATIC = Path(__file__).resolve().parent / "static"
JSON_BODY_LIMIT = 1 << 20   # bytes of a JSON request (a click list of the largest object is a few KB)

Body = TypeVar("Body", bound=BaseModel)


@dataclass
class ServerState:
    """What the routes share: the model, its device's thread, the sessions and the configuration."""

    model: Any
    device: torch.device
    limits: ServerLimits
    store: SessionStore
    runner: DeviceRunner
    listing: Optional[ImageListing]
    output_dir: Optional[Path]
    model_name: str
    predictor_args: Dict[str, Any]

    def new_session(self, name: str, output_stem: Optional[str], image: np.ndarray) -> Session:
        predictor = EMCClickPredictor(self.model, self.device, **self.predictor_args)
        return Session(name, output_stem, image, predictor)


def create_app(model: Any, device="cpu", images: Optional[ImageListing] = None, output_dir: Optional[Path] = None,
               limits: Optional[ServerLimits] = None, model_name: str = "EMC-Click", attention: str = "exact",
               infer_size: int = 384, with_flip: bool = True) -> FastAPI:
    """The annotation server's ASGI application.

    Args:
        model: the network, shared by every session: anything with ``encode`` / ``correct`` (an
            :class:`~isegm.model.is_model.ISModel` in eval mode, or another backend of the same
            calls) and a ``training`` flag.
        device: where the model runs; images are moved there.
        images: the images clients may open by index or name (None: uploads only).
        output_dir: where ``save`` writes annotations (None: saving is refused with 409).
        limits: upload, image, session, click and object bounds (:class:`ServerLimits`).
        model_name: shown by ``/api/info`` and written into saved annotations.
        attention, infer_size, with_flip: the predictor's settings (see :class:`EMCClickPredictor`).
    """
    limits = limits or ServerLimits()
    device = torch.device(device)
    state = ServerState(model=model, device=device, limits=limits, store=SessionStore(limits.max_sessions),
                        runner=runner_for(str(device)), listing=images,
                        output_dir=Path(output_dir) if output_dir is not None else None, model_name=model_name,
                        predictor_args={"attention": attention, "infer_size": infer_size, "with_flip": with_flip})
    app = FastAPI(title="EMC-Click annotation server", docs_url=None, redoc_url=None)
    app.state.server = state
    install_error_handlers(app)
    _add_page_routes(app, state)
    _add_session_routes(app, state)

    def body_limit(method: str, path: str) -> int:
        return limits.max_upload_bytes if (method, path.rstrip("/")) == ("POST", "/api/sessions") else JSON_BODY_LIMIT

    app.add_middleware(BodyLimit, limit_for=body_limit)
    return app


def _add_page_routes(app: FastAPI, state: ServerState) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def info() -> Dict[str, Any]:
        return {"model": state.model_name, "device": str(state.device), "images": len(state.listing or ()),
                "can_save": state.output_dir is not None, "limits": asdict(state.limits),
                "sessions": len(state.store), "evicted": state.store.evicted, **state.predictor_args}

    @app.get("/api/images")
    def images() -> Dict[str, Any]:
        return {"images": [{"index": e.index, "name": e.name} for e in state.listing or ()]}

    @app.get("/api/images/{index}/file")
    def image_file(index: int) -> FileResponse:
        return FileResponse(_listing(state).get(index).path)


def _add_session_routes(app: FastAPI, state: ServerState) -> None:
    limits, store = state.limits, state.store

    @app.post("/api/sessions", status_code=201)
    async def open_session(request: Request, name: Optional[str] = None) -> JSONResponse:
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        body = await request.body()
        if kind == "application/json":
            key = _parse(OpenImage, body).image
            entry = _listing(state).get(key)
            image = await run_in_threadpool(state.listing.read, entry, limits.max_pixels)
            shown, stem = entry.name, entry.output_stem
        elif kind.startswith("image/") or kind == "application/octet-stream":
            if not body:
                raise ApiError(400, "empty_upload", "the request body is empty: send the image file's bytes")
            image = await run_in_threadpool(decode_image, body, limits.max_pixels)
            shown, stem = (name or "upload")[:200], None
        else:
            raise ApiError(415, "unsupported_media_type", f"Content-Type {kind or '(none)'}: send an image's bytes "
                           "(image/png, image/jpeg, ...) or JSON {\"image\": <index or file name of GET /api/images>}")
        session = await run_in_threadpool(state.new_session, shown, stem, image)
        evicted = store.add(session)
        return JSONResponse({**_describe(session), "evicted": len(evicted)}, status_code=201)

    @app.get("/api/sessions/{session_id}")
    def get_session(session_id: str) -> Dict[str, Any]:
        with store.use(session_id) as session, session.lock:
            return _describe(session)

    @app.post("/api/sessions/{session_id}/clicks")
    def clicks(session_id: str, body: ClickRequest) -> JSONResponse:
        start = time.perf_counter()
        points = [(c.y, c.x, c.positive) for c in body.clicks]
        with store.use(session_id) as session:
            with session.lock:
                locked = time.perf_counter()
                session.check_clicks(points, limits.max_clicks)
                result = session.predict(points, state.runner)
                encoding = time.perf_counter()
                mask = _mask(result.probs, body.format, body.threshold)
            done = time.perf_counter()
            ms = {"wait": 1e3 * (locked - start + result.wait_s), "model": 1e3 * result.model_s,
                  "encode": 1e3 * (done - encoding), "server": 1e3 * (done - start)}
            return JSONResponse({"session": session.id, "clicks": len(points), "width": session.width,
                                 "height": session.height, "backbone": result.backbone, "mask": mask,
                                 "timings_ms": {k: round(v, 3) for k, v in ms.items()}})

    @app.post("/api/sessions/{session_id}/objects")
    def finish_object(session_id: str, body: Optional[ThresholdRequest] = None) -> Dict[str, Any]:
        threshold = (body or ThresholdRequest()).threshold
        with store.use(session_id) as session, session.lock:
            object_id = session.finish(threshold, limits.max_objects)
            return {"object": object_id, "objects": len(session.objects),
                    "instances": {"format": "png", "data": _b64(instances_png(session.instances))}}

    @app.post("/api/sessions/{session_id}/save")
    def save(session_id: str, body: Optional[ThresholdRequest] = None) -> Dict[str, Any]:
        threshold = (body or ThresholdRequest()).threshold
        if state.output_dir is None:
            raise ApiError(409, "saving_disabled", "this server has no output folder: start it with --output DIR")
        with store.use(session_id) as session, session.lock:
            written = save_annotation(session, state.output_dir, state.model_name, threshold)
            return {"files": [str(p) for p in written], "objects": len(session.objects) + bool(session.clicks)}

    @app.delete("/api/sessions/{session_id}")
    def delete_session(session_id: str) -> Dict[str, Any]:
        if store.delete(session_id) is None:
            raise ApiError(404, "unknown_session", f"no session {session_id!r} (deleted, evicted or never created)")
        return {"deleted": session_id}


def _listing(state: ServerState) -> ImageListing:
    if state.listing is None:
        raise ApiError(404, "no_image_listing", "this server has no image listing (start it with --images DIR); "
                       "upload the image instead")
    return state.listing


def _parse(model: Type[Body], body: bytes) -> Body:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise malformed_json(exc.msg, exc.pos) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_validation(exc.errors())) from None


def _describe(session: Session) -> Dict[str, Any]:
    return {"session": session.id, "name": session.name, "width": session.width, "height": session.height,
            "clicks": len(session.clicks), "objects": len(session.objects)}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _mask(probs: np.ndarray, fmt: str, threshold: float) -> Dict[str, Any]:
    if fmt == "rle":
        return {"format": "rle", "threshold": threshold, **encode_rle(probs > threshold)}
    return {"format": "png", "data": _b64(probabilities_png(probs))}
