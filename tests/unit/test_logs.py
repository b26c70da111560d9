"""Log lines cannot be forged: control characters are escaped, request ids are tokens."""

from __future__ import annotations

import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

import app.logs
from app.logs import EscapingFormatter, configure_logging, escape, flush_request_log
from app.middleware.observe import loggable_path, request_id_of


def test_escape_keeps_one_event_on_one_line() -> None:
    forged = "/x\r\n2026-11-28 INFO codex.requests method=GET status=200\x00\x1b[31m\u2028\x85\\"
    escaped = escape(forged)
    assert escaped.splitlines() == [escaped]  # splitlines also breaks on \x85 and \u2028
    assert escaped == "/x\\x0d\\x0a2026-11-28 INFO codex.requests method=GET status=200\\x00\\x1b[31m\\u2028\\x85\\\\"


def test_formatter_escapes_the_message_not_the_traceback() -> None:
    formatter = EscapingFormatter("%(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("codex", logging.ERROR, __file__, 1, "path %s", ("/a\nb",), None)
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert text.startswith("path /a\\x0ab\nTraceback")


def test_request_id_only_a_short_token() -> None:
    assert request_id_of(b"trace-me-42") == "trace-me-42"
    for bad in (b"a\r\nforged", b"a b", b"x" * 65, b"", b"\xff", b"id;drop"):
        generated = request_id_of(bad)
        assert re.fullmatch(r"[0-9a-f]{32}", generated), bad
    assert request_id_of(None) != request_id_of(None)


def test_logged_path_is_one_field() -> None:
    assert loggable_path("/api/nodes/a b\nstatus=200") == "/api/nodes/a%20b%0Astatus=200"
    assert loggable_path("/api/nodes/codex.note:1") == "/api/nodes/codex.note:1"


def test_request_tracker_writes_from_a_queue(tmp_path: Path) -> None:
    tracker = configure_logging(str(tmp_path), "INFO")
    assert all(isinstance(h, logging.handlers.QueueHandler) for h in tracker.handlers)
    tracker.info("method=%s path=%s", "GET", "/x\ny")
    flush_request_log(str(tmp_path))
    assert (tmp_path / "request-tracker.log").read_text().count("\n") == 1
    assert "path=/x\\x0ay" in (tmp_path / "request-tracker.log").read_text()


async def test_made_up_methods_share_one_metric_label() -> None:
    from app.metrics import Metrics
    from app.middleware.observe import RequestObserver

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 405, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        return None

    metrics = Metrics()
    observer = RequestObserver(app, metrics, logging.getLogger("test.tracker"), None, "t")
    for method in ("QZXWVUTS", "ABCDEFGH", "GET"):
        await observer({"type": "http", "method": method, "path": "/x", "headers": []}, receive, send)
    methods = {s.labels["method"] for f in metrics.http_requests.collect() for s in f.samples}
    assert methods == {"OTHER", "GET"}


def test_request_tracker_rotates_in_batches_and_loses_no_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("app.logs._MAX_BYTES", 20_000)
    tracker = configure_logging(str(tmp_path), "INFO")
    for n in range(2_000):  # ~150 KB: several rotations, batches of whatever was queued
        tracker.info("method=GET path=/n/%d status=200", n)
    flush_request_log(str(tmp_path))
    files = sorted(tmp_path.glob("request-tracker.log*"))
    assert len(files) > 2
    kept = [line for f in files for line in f.read_text().splitlines()]
    numbers = sorted(int(line.split("/n/")[1].split()[0]) for line in kept)
    # Five backups are kept: the newest lines survive, in order, none dropped or repeated.
    assert numbers == list(range(2_000 - len(numbers), 2_000))
    assert all(f.stat().st_size < 20_000 + 150 * 1_000 for f in files)


def _writer_on_a_full_disk(tmp_path: Path) -> tuple[logging.Logger, Any]:
    """The tracker writing to /dev/full (every write fails: ENOSPC), after its first write failed
    (it says so, or its thread died). The writer is keyed by the resolved path, /dev/full: taken out of
    the registry here, so each test has its own and stops it itself."""
    (tmp_path / "request-tracker.log").symlink_to("/dev/full")
    tracker = configure_logging(str(tmp_path), "INFO")
    writer = app.logs._writers.pop("/dev/full")
    tracker.info("method=GET path=/lost status=200")
    deadline = time.monotonic() + 10
    while writer.thread.is_alive() and not getattr(writer, "failing", False) and time.monotonic() < deadline:
        time.sleep(0.01)
    return tracker, writer


def _stops_within(writer: Any, seconds: float) -> bool:
    """writer.stop() (what flush_request_log runs at shutdown, on the event loop) in a thread: False
    when it is still blocked after `seconds`, a hung shutdown."""
    stopper = threading.Thread(target=writer.stop, daemon=True)
    stopper.start()
    stopper.join(seconds)
    return not stopper.is_alive()


def test_request_tracker_writes_again_after_a_failed_write(tmp_path: Path) -> None:
    """A full disk loses the lines of that batch, not every later line: the writer thread survives."""
    dropped = app.logs.dropped_lines()
    tracker, writer = _writer_on_a_full_disk(tmp_path)
    assert app.logs.dropped_lines() == dropped + 1  # counted (codex_request_log_dropped_lines)
    (tmp_path / "request-tracker.log").unlink()  # space again
    tracker.info("method=GET path=/kept status=200")
    assert _stops_within(writer, 10)
    assert "path=/kept" in (tmp_path / "request-tracker.log").read_text()


def test_shutdown_does_not_hang_when_the_disk_is_full(tmp_path: Path) -> None:
    """Lines beyond the queue's bound are dropped, and stopping the writer still returns: it must
    never wait on a writer that no longer reads the queue."""
    tracker, writer = _writer_on_a_full_disk(tmp_path)
    for n in range(12_000):  # more than the queue holds
        tracker.info("method=GET path=/n/%d status=200", n)
    assert _stops_within(writer, 10)


def test_a_line_dropped_on_a_full_queue_is_counted() -> None:
    handler = app.logs._DeferredQueueHandler(queue.Queue(1))
    record = logging.LogRecord("codex.requests", logging.INFO, __file__, 1, "method=GET", (), None)
    dropped = app.logs.dropped_lines()
    handler.emit(record)
    handler.emit(record)  # the writer is behind: this one is dropped, not waited for
    assert app.logs.dropped_lines() == dropped + 1
