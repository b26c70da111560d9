"""uvicorn's h11 and httptools protocols with a deadline for request headers, and a shutdown that
leaves idle keep-alive connections to the client.

uvicorn bounds idle keep-alive connections but not a request whose headers trickle in: any byte
cancels the keep-alive timer, so a client sending one byte a second holds a connection for as long
as it likes. Here a connection must deliver complete headers within `HEADER_TIMEOUT_SECONDS` of its
first byte (or of connecting), or it is closed.

At shutdown uvicorn closes idle keep-alive connections at once. nginx may be writing a request on one
at that moment: the replica resets it, and nginx cannot retry a POST it has sent, so the client gets
502 (seen once in ~1,300 writes while a replica restarted). Instead an idle connection stays open: a
request that still arrives on it is answered with `Connection: close`, and otherwise the client (nginx
drops idle upstream connections after 10 s) or the keep-alive timeout (15 s) ends it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from codexops.wire_errors import BoundedHttpTools, JsonWireErrors

HEADER_TIMEOUT_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 15  # above nginx's upstream keepalive_timeout (10 s): nginx closes first


class LeaveIdleToClient:
    """Mixed in before uvicorn's protocol class: see the module's second paragraph."""

    cycle: Any
    _draining = False

    def shutdown(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._draining = True  # not closed here: a request may be on its way
        else:
            self.cycle.keep_alive = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._draining and self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # answered with Connection: close, then closed


class HeaderDeadline:
    """Mixed in before uvicorn's protocol class: a connection that has not delivered complete headers
    within `header_timeout` of the deadline being armed is closed."""

    header_timeout = HEADER_TIMEOUT_SECONDS
    _header_deadline: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _waiting_for_headers(self) -> bool:
        return True  # armed only while waiting, unless the protocol can tell better

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()


class HeaderTimeoutH11Protocol(JsonWireErrors, HeaderDeadline, LeaveIdleToClient, H11Protocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_headers():  # a request has begun but its headers are incomplete
            self._arm_header_deadline()
        else:
            self._cancel_header_deadline()

    def on_response_complete(self) -> None:
        self._cancel_header_deadline()  # idle from here on: the keep-alive timeout applies
        super().on_response_complete()

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE


class HeaderTimeoutHttpToolsProtocol(BoundedHttpTools, HeaderDeadline, LeaveIdleToClient, HttpToolsProtocol):
    """The same deadline on httptools (what `codexops serve` runs): armed when a connection opens and
    when a request's first byte arrives, cancelled when its headers are complete."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        super().on_headers_complete()
