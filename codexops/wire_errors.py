"""A replica's own protocol errors as JSON, like every other answer: {"error", "message", "requestId"}.

uvicorn refuses what its parser cannot take (a malformed request line, a 100 kB URL) with a plain-text
400 before the app sees the request. Here that answer is JSON with the app's security headers, and the
request line and headers are bounded, so an oversized one is a 414 or 431 rather than whatever the
parser makes of it (httptools takes headers of any size). nginx refuses these first at the edge; this
is for a replica reached directly.

The answer is sent before the request has all arrived (a 100 kB URL is refused at 16 kB). Closing at
once would reset the connection while the client still sends, and a reset can discard the answer
before the client reads it (seen in CI). So the replica closes as nginx does (`lingering_close`): it
ends its side, reads and discards what the client still sends, and closes when the client does, or
after `LINGER_SECONDS` or `LINGER_BYTES`.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

from app.middleware.observe import SECURITY_HEADERS, request_id_of

MAX_URL_BYTES = 16 * 1024  # nginx's request line fits 8 KiB (large_client_header_buffers)
MAX_HEADER_BYTES = 64 * 1024  # names and values of one request, together
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
BAD_REQUEST = (400, "bad_request", "the request could not be parsed")
URI_TOO_LONG = (414, "uri_too_long", f"the request target is longer than {MAX_URL_BYTES} bytes")
HEADERS_TOO_LARGE = (
    431,
    "headers_too_large",
    f"the request headers are larger than {MAX_HEADER_BYTES} bytes together",
)


class RequestRefused(Exception):
    """Raised from a parser callback: the parser stops, and uvicorn calls send_400_response."""


def error_response(status: int, code: str, message: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    request_id = request_id_of(None)
    body = json.dumps({"error": code, "message": message, "requestId": request_id}).encode()
    headers = [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
        (b"x-request-id", request_id.encode()),
    ]
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()
    return head + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body


class JsonWireErrors:
    """Mixed in before uvicorn's h11 or httptools protocol: its 400 answer, as JSON."""

    transport: Any
    server_state: Any
    loop: asyncio.AbstractEventLoop
    _wire_error: tuple[int, str, str] | None = None
    _lingering: asyncio.TimerHandle | None = None
    _discarded = 0

    def send_400_response(self, msg: str) -> None:
        status, code, message = self._wire_error or BAD_REQUEST
        self.transport.write(error_response(status, code, message, self.server_state.default_headers))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete; the client may still be sending
            self._lingering = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._lingering is None:
            super().data_received(data)  # type: ignore[misc]
            return
        self._discarded += len(data)  # the rest of a refused request: read so the close is clean
        if self._discarded > LINGER_BYTES:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lingering is not None:
            self._lingering.cancel()
        super().connection_lost(exc)  # type: ignore[misc]

    def _refuse(self, error: tuple[int, str, str]) -> None:
        self._wire_error = error
        raise RequestRefused(error[1])


class BoundedHttpTools(JsonWireErrors):
    """Mixed in before uvicorn's httptools protocol: the request target and headers are bounded."""

    _url_bytes = 0
    _header_bytes = 0

    def on_message_begin(self) -> None:
        self._url_bytes = self._header_bytes = 0
        super().on_message_begin()  # type: ignore[misc]

    def on_url(self, url: bytes) -> None:  # called once per chunk of the target as it arrives
        self._url_bytes += len(url)
        if self._url_bytes > MAX_URL_BYTES:
            self._refuse(URI_TOO_LONG)
        super().on_url(url)  # type: ignore[misc]

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(HEADERS_TOO_LARGE)
        super().on_header(name, value)  # type: ignore[misc]
