"""An ASGI wrapper that refuses request bodies over a size limit before they are held in memory.

A declared ``Content-Length`` over the limit is answered at once with 413; a body that grows past
the limit while it is read (chunked uploads) raises :class:`~isegm.web.errors.ApiError` (413)
from ``receive``, which the application's error handler answers.
"""
from __future__ import annotations

import json
from typing import Callable

from isegm.web.errors import ApiError

__all__ = ["BodyLimit"]


class BodyLimit:
    """Wrap ``app``; ``limit_for(method, path)`` gives the largest body, in bytes, of a request."""

    def __init__(self, app, limit_for: Callable[[str, str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _refuse(send, f"the request body has {declared.decode(errors='replace')} bytes; the limit for "
                                f"{scope['method']} {scope['path']} is {limit} bytes")
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise ApiError(413, "too_large", f"the request body exceeds the limit for {scope['method']} "
                                   f"{scope['path']}: {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


async def _refuse(send, message: str) -> None:
    body = json.dumps({"error": "too_large", "detail": message}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
