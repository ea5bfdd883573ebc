"""What one annotation server accepts: upload size, image size, sessions, clicks and objects."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerLimits:
    """Bounds that keep one server's memory and work bounded whatever the clients send.

    Attributes:
        max_upload_bytes: largest request body of an uploaded image (bytes).
        max_pixels: largest image, ``height * width``. A session keeps the image as float32 RGB
            (12 bytes per pixel) plus one ``H x W`` probability map per click: 12 MP is about
            150 MB before the first click.
        max_sessions: sessions held at once; opening one more evicts the least recently used
            session that has no request in flight.
        max_clicks: clicks per object.
        max_objects: finished objects per image (the instance PNG is 8-bit: ids 1 to 255).
    """

    max_upload_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 12_000_000
    max_sessions: int = 8
    max_clicks: int = 100
    max_objects: int = 255

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_sessions", "max_clicks", "max_objects"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServerLimits.{name} must be at least 1, got {getattr(self, name)}")
        if self.max_objects > 255:
            raise ValueError(f"ServerLimits.max_objects must be at most 255 (8-bit instance ids), "
                             f"got {self.max_objects}")
