"""Log files of the runbook: logs/server.log (rotated) and logs/request-tracker.log.

Every message is escaped before it is written: a CR, LF or other control character that came from a
client (a path, a query, a header) is written as `\\xNN`, so one event is one line and nobody can forge
a line. The request tracker writes from a background thread: a request only puts a record on a
queue; the writer drains it in batches and formats, writes, flushes and checks rotation once per batch
(a flush and two stat calls per line cost about 15% of a replica's CPU under load). A failed write
loses its batch only: the writer thread carries on and reopens the file for the next one.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
from logging.handlers import QueueHandler, RotatingFileHandler
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_MAX_BYTES = 10 * 1024 * 1024
_BACKUPS = 5
_QUEUE_BOUND = 10_000  # records waiting for the writer (a few MB at most); beyond it a line is dropped
_BATCH = 1_000  # records per write at most
log = logging.getLogger("codex.logs")
# Request-tracker lines lost since start, each counted by the one thread that loses it (no lock).
_dropped_queue_full = 0  # the event loop: the writer's queue was full
_dropped_write_failed = 0  # the writer thread: its write failed (disk full)
# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the backslash that escapes.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` on one line: control characters, separators and backslashes written as escapes."""
    return _UNSAFE.sub(_escape_char, text)


class EscapingFormatter(logging.Formatter):
    """Escapes the message (never the traceback appended after it, which is ours and multi-line)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)


class _DeferredQueueHandler(QueueHandler):
    """Puts the record as it is: the listener's handler formats it, off the event loop.

    Safe because the tracker's arguments are immutable values (str, int, float)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        # The disk cannot keep up: dropping a tracker line beats stalling every request.
        global _dropped_queue_full
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            _dropped_queue_full += 1


def dropped_lines() -> int:
    """Request-tracker lines lost since start (codex_request_log_dropped_lines)."""
    return _dropped_queue_full + _dropped_write_failed


def _file_handler(path: Path) -> RotatingFileHandler:
    handler = RotatingFileHandler(path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")
    handler.setFormatter(EscapingFormatter(FORMAT))
    return handler


class _TrackerWriter:
    """One thread per request-tracker file: waits for a record, takes whatever else is queued, and
    writes it all at once. The file can pass maxBytes by one batch before it rotates."""

    _STOP = None

    def __init__(self, path: Path) -> None:
        self.queue: queue.Queue[logging.LogRecord | None] = queue.Queue(_QUEUE_BOUND)
        self.file = _file_handler(path)
        self.failing = False
        self.thread = threading.Thread(target=self._run, name="request-tracker", daemon=True)
        self.thread.start()

    def _batch(self) -> list[logging.LogRecord | None]:
        batch = [self.queue.get()]
        with contextlib.suppress(queue.Empty):
            while len(batch) < _BATCH and batch[-1] is not self._STOP:
                batch.append(self.queue.get_nowait())
        return batch

    def _run(self) -> None:
        while True:
            batch = self._batch()
            try:
                self._write(batch)
                self.failing = False
            except Exception as exc:  # a full disk, a removed directory, a bad record: this batch only is lost
                self._lost(len(batch), exc)
            if batch[-1] is self._STOP:
                return

    def _write(self, batch: list[logging.LogRecord | None]) -> None:
        lines = "".join(self.file.format(record) + "\n" for record in batch if record is not None)
        with self.file.lock or contextlib.nullcontext():  # typed Optional; always set by Handler()
            stream = self.file.stream or self.file._open()
            self.file.stream = stream
            stream.write(lines)
            stream.flush()
            if stream.tell() >= self.file.maxBytes:
                self.file.doRollover()

    def _lost(self, count: int, exc: Exception) -> None:
        """Drop the file's stream (with what it buffered): the next batch opens the file again. A dead
        thread instead would lose every later line and hang stop() once the queue is full."""
        global _dropped_write_failed
        _dropped_write_failed += count
        with self.file.lock or contextlib.nullcontext():  # typed Optional; always set by Handler()
            stream, self.file.stream = self.file.stream, None
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
        if not self.failing:  # once per outage, not once per batch
            self.failing = True
            log.error("request-tracker: %d lines not written, and later ones until it writes again: %r", count, exc)

    def stop(self) -> None:
        self.queue.put(self._STOP)  # waits if full: everything queued before it is written
        self.thread.join()
        self.file.close()


_lock = threading.Lock()
_writers: dict[str, _TrackerWriter] = {}


def _tracker_handler(path: Path) -> QueueHandler:
    """One queue and one writer thread per request-tracker file."""
    key = str(path.resolve())
    with _lock:
        writer = _writers.get(key)
        if writer is None:
            writer = _writers[key] = _TrackerWriter(path)
        return _DeferredQueueHandler(writer.queue)


def flush_request_log(log_dir: str) -> None:
    """Write what is queued and stop the writer thread (at shutdown; a later configure restarts it)."""
    with _lock:
        writer = _writers.pop(str((Path(log_dir) / "request-tracker.log").resolve()), None)
    if writer is not None:
        writer.stop()


def configure_logging(log_dir: str, level: str) -> logging.Logger:
    """Send the service's log to server.log and the console; return the request-tracker logger."""
    directory = Path(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # Not in FORMAT, and each costs work per record on the event loop (the caller's file and line
    # walk the stack): the "optimization" settings of the logging documentation.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    codex = logging.getLogger("codex")
    codex.setLevel(level.upper())
    server_path = str((directory / "server.log").resolve())
    if not any(getattr(h, "baseFilename", None) == server_path for h in codex.handlers):
        codex.addHandler(_file_handler(directory / "server.log"))
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in codex.handlers):
        console = logging.StreamHandler()
        console.setFormatter(EscapingFormatter(FORMAT))
        codex.addHandler(console)

    tracker = logging.getLogger("codex.requests")
    tracker.propagate = False
    tracker.setLevel(logging.INFO)
    tracker.handlers = [_tracker_handler(directory / "request-tracker.log")]
    return tracker
