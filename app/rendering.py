"""JSON bodies rendered once, strictly: a value that cannot be rendered fails before anything commits."""

from __future__ import annotations

import json
from typing import Any


def render_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
