"""The suite's steady reader (tests/support/traffic.py) behaves as an HTTP/1.1 client: a GET whose
keep-alive connection closed before any answer (what an nginx reload does to idle connections) is sent
once more on a new connection, and only a second miss is a failure."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.traffic import Traffic
from tests.support.waiting import wait_until

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"


@contextmanager
def server(answered_per_connection: int) -> Iterator[str]:
    """Answers the first `answered_per_connection` requests of each connection, then reads the next one
    and closes the connection without a byte (0: never answers)."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for served in range(answered_per_connection + 1):
                if not self._read_request():
                    return
                if served == answered_per_connection:
                    return  # closed unanswered
                self.wfile.write(ANSWER)
                self.wfile.flush()

        def _read_request(self) -> bool:
            while (line := self.rfile.readline()) not in (b"\r\n", b"\n"):
                if not line:
                    return False
            return True

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as tcp:
        tcp.daemon_threads = True
        threading.Thread(target=tcp.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{tcp.server_address[1]}"
        finally:
            tcp.shutdown()


def _read_until(url: str, requests: int) -> Traffic:
    """At least `requests` reads sent (a count, not a time: a niced shard may start the thread late)."""
    with Traffic(url, ("/",), threads=1, interval=0.01) as reads:
        wait_until(lambda: reads.requests >= requests, 60, f"{requests} reads sent")
    return reads


def test_a_get_closed_unanswered_on_a_reused_connection_is_sent_again_and_answered() -> None:
    with server(answered_per_connection=2) as url:
        reads = _read_until(url, 12)
    assert reads.requests > 6 and reads.failures == [], (reads.requests, reads.failures[:3])
    # Every third request meets a closed connection: each is sent once more, and answered.
    assert reads.resent >= reads.requests // 4, (reads.resent, reads.requests)


def test_a_get_that_is_never_answered_is_a_failure_after_one_resend() -> None:
    with server(answered_per_connection=0) as url:
        reads = _read_until(url, 3)
    assert reads.requests > 0 and len(reads.failures) == reads.requests == reads.resent
    assert "Server disconnected without sending a response" in reads.failures[0]
