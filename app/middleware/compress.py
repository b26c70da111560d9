"""gzip only for clients that ask for it; every other request skips the compression layer entirely.

Starlette's GZipMiddleware builds a responder and parses headers on every request, gzip or not. Behind
nginx no request asks (nginx drops Accept-Encoding upstream and compresses itself), so there this
layer costs one pass over the request headers.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class GzipWhenAsked:
    def __init__(self, app: ASGIApp, minimum_size: int, compresslevel: int) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, value in scope.get("headers", ()):
                if key == b"accept-encoding" and b"gzip" in value:
                    await self.gzip(scope, receive, send)
                    return
        await self.app(scope, receive, send)
