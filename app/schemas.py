"""Request bodies: size limits and shapes, so a client's mistake is a 422 that names the field.

Types are strict (no "1" for 1, no true for 1), and everything the database would refuse is refused
here first: NUL characters (PostgreSQL text cannot
hold them), integers outside a 32-bit column, NaN/Infinity and deep nesting inside `meta`.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_META_BYTES = 64 * 1024
MAX_META_DEPTH = 32
MAX_INT32 = 2**31 - 1
ID_PATTERN = r"^[A-Za-z0-9._:\-]+$"
TOKEN_PATTERN = r"^[A-Za-z0-9_.\-]+$"
NodeState = Literal["ice", "water", "gas"]


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


# A string the database can store: use for every free-text field, body or query.
SafeStr = Annotated[str, AfterValidator(no_nul)]


def _check_json_value(value: Any, depth: int) -> None:
    """Walk meta: bounded depth, finite numbers, no NUL in keys or strings."""
    if depth > MAX_META_DEPTH:
        raise ValueError(f"meta is nested deeper than {MAX_META_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            no_nul(str(key))
            _check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)
    elif isinstance(value, str):
        no_nul(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("meta must not contain NaN or Infinity")
    elif isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError("meta integers must fit in 64 bits")


def _bounded_meta(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return value
    _check_json_value(value, 1)
    if len(json.dumps(value)) > MAX_META_BYTES:
        raise ValueError(f"meta is larger than {MAX_META_BYTES} bytes as JSON")
    return value


class Strict(BaseModel):
    # strict: a number must be a JSON number ("version": "1", true or 1.0 is a 422, never coerced to 1);
    # a float field still takes an integer.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_anywhere(cls, value: Any) -> Any:
        return no_nul(value) if isinstance(value, str) else value


class NodeIn(Strict):
    id: str | None = Field(None, min_length=1, max_length=200, pattern=ID_PATTERN)
    typeId: str = Field(min_length=1, max_length=200, pattern=ID_PATTERN)
    title: str = Field(min_length=1, max_length=500)
    content: str = Field("", max_length=100_000)
    meta: dict[str, Any] = Field(default_factory=dict)
    state: NodeState = "ice"

    _meta = field_validator("meta")(_bounded_meta)


class NodePatch(Strict):
    typeId: str | None = Field(None, min_length=1, max_length=200, pattern=ID_PATTERN)
    title: str | None = Field(None, min_length=1, max_length=500)
    content: str | None = Field(None, max_length=100_000)
    meta: dict[str, Any] | None = None
    state: NodeState | None = None
    version: int | None = Field(None, ge=1, le=MAX_INT32, description="optimistic concurrency: expected version")

    _meta = field_validator("meta")(_bounded_meta)


class EdgeIn(Strict):
    fromId: str = Field(min_length=1, max_length=200, pattern=ID_PATTERN)
    toId: str = Field(min_length=1, max_length=200, pattern=ID_PATTERN)
    role: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._\-]+$")
    weight: float = Field(1.0, ge=0, le=1_000_000, allow_inf_nan=False)
    meta: dict[str, Any] = Field(default_factory=dict)

    _meta = field_validator("meta")(_bounded_meta)


class Credentials(Strict):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=10, max_length=256)


class LoginIn(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(Strict):
    refreshToken: str = Field(min_length=1, max_length=300, pattern=TOKEN_PATTERN)


class RoleIn(Strict):
    role: Literal["viewer", "editor", "admin"]


class ExtractIn(Strict):
    nodeId: str | None = Field(None, min_length=1, max_length=200, pattern=ID_PATTERN)
    text: str | None = Field(None, min_length=1, max_length=50_000)

    @model_validator(mode="after")
    def _something_to_read(self) -> ExtractIn:
        if self.nodeId is None and self.text is None:
            raise ValueError("give nodeId, text, or both")
        return self
