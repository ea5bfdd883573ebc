"""JSON request bodies of the HTTP API (pydantic models); unknown fields are refused."""
from __future__ import annotations

from typing import List, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = ["ClickIn", "ClickRequest", "ThresholdRequest", "OpenImage", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.49
"""Probability above which a pixel belongs to the object (the original's evaluation default)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClickIn(_Body):
    """One click in image pixels: ``x`` the column, ``y`` the row (0 at the top-left pixel's centre)."""

    x: float = Field(allow_inf_nan=False, strict=True)
    y: float = Field(allow_inf_nan=False, strict=True)
    positive: StrictBool


class ClickRequest(_Body):
    """The whole click list of the current object (a shorter list than the last one undoes)."""

    clicks: List[ClickIn]
    format: Literal["png", "rle"] = "png"
    threshold: float = Field(DEFAULT_THRESHOLD, ge=0.0, le=1.0)


class ThresholdRequest(_Body):
    """The probability threshold that makes the current object's mask (finishing, saving)."""

    threshold: float = Field(DEFAULT_THRESHOLD, ge=0.0, le=1.0)


class OpenImage(_Body):
    """An image of the server's listing, by index or by exact file name."""

    image: Union[StrictInt, StrictStr]
