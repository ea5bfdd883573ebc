"""The server's answer to a bad request: a status, a short code and a message that names the problem."""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


class ApiError(HTTPException):
    """A request the server refuses; answered as ``{"error": code, "detail": message}`` with ``status``.

    A Starlette ``HTTPException``, so that FastAPI lets it through when it is raised while the
    request body is read (the body-size limit).

    Args:
        status: HTTP status (4xx for the client's mistakes, 503 when every session is busy).
        code: machine-readable reason (``'not_an_image'``, ``'unknown_session'``...).
        message: what is wrong, naming the field, value or limit.
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status_code=status, detail=message)
        self.status = status
        self.code = code
        self.message = message


def describe_validation(errors: Sequence[Mapping[str, Any]]) -> str:
    """pydantic / FastAPI validation errors -> one line, each naming its field (``clicks[0].x: ...``)."""
    parts = []
    for error in errors:
        loc = list(error.get("loc", ()))
        source = loc.pop(0) if loc and loc[0] in ("body", "query", "path") else ""
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        field = field or f"the request {source}".rstrip()
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def malformed_json(message: str, position: int) -> ApiError:
    return ApiError(400, "malformed_json", f"the request body is not valid JSON: {message} at character {position}")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"error": code, "detail": message}``; the server keeps serving."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            loc = bad_json.get("loc", ())
            error = malformed_json((bad_json.get("ctx") or {}).get("error", "JSON decode error"),
                                   loc[-1] if loc and isinstance(loc[-1], int) else 0)
            return await api_error(request, error)
        return JSONResponse({"error": "invalid_request", "detail": describe_validation(errors)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_").replace("-", "_")
        detail = exc.detail if exc.status_code != 404 else f"no route {request.method} {request.url.path}"
        return JSONResponse({"error": code, "detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal_error", "detail": f"{type(exc).__name__}: {exc}"}, status_code=500)
