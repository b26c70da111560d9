"""The default JSON response: orjson (several times faster than json), the standard encoder as fallback.

orjson refuses what JSON allows but it cannot encode (integers beyond 64 bits, non-string keys);
those bodies go through the standard encoder instead of failing.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)
