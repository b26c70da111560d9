"""Refuse request bodies over MAX_BODY_BYTES with 413 and a JSON body, declared or streamed."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


def _too_large_body(limit: int) -> bytes:
    return json.dumps(
        {"error": "body_too_large", "field": "body", "message": f"request body exceeds {limit} bytes"}
    ).encode()


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def _refuse(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": _too_large_body(self.limit)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                if value.isdigit() and int(value) > self.limit:
                    await self._refuse(send)
                    return
                has_body = value != b"0"
            elif key == b"transfer-encoding":
                has_body = True
        if not has_body:  # HTTP/1.1: no Content-Length and no Transfer-Encoding means no body to count
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)
