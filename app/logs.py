"""Log files of the runbook: logs/server.log (rotated) and logs/request-tracker.log.

Every message is escaped before it is written: a CR, LF or other control character that came from a
client (a path, a query, a header) is written as `\\xNN`, so one event is one line and nobody can forge
a line. The request tracker writes from a background thread (QueueHandler -> QueueListener): a request
only puts a record on a queue; formatting, rotation and the file write happen off the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_MAX_BYTES = 10 * 1024 * 1024
_BACKUPS = 5
_QUEUE_BOUND = 10_000  # records waiting for the writer (a few MB at most); beyond it a line is dropped
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
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(record)


def _file_handler(path: Path) -> RotatingFileHandler:
    handler = RotatingFileHandler(path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")
    handler.setFormatter(EscapingFormatter(FORMAT))
    return handler


_lock = threading.Lock()
_listeners: dict[str, QueueListener] = {}


def _tracker_handler(path: Path) -> QueueHandler:
    """One queue and one writer thread per request-tracker file."""
    key = str(path.resolve())
    with _lock:
        listener = _listeners.get(key)
        if listener is None:
            records: queue.Queue[logging.LogRecord] = queue.Queue(_QUEUE_BOUND)
            listener = QueueListener(records, _file_handler(path), respect_handler_level=False)
            listener.start()
            _listeners[key] = listener
        return _DeferredQueueHandler(listener.queue)


def flush_request_log(log_dir: str) -> None:
    """Write what is queued and stop the writer thread (at shutdown; a later configure restarts it)."""
    with _lock:
        listener = _listeners.pop(str((Path(log_dir) / "request-tracker.log").resolve()), None)
    if listener is not None:
        listener.stop()  # drains the queue, then joins the thread
        for handler in listener.handlers:
            handler.close()


def configure_logging(log_dir: str, level: str) -> logging.Logger:
    """Send the service's log to server.log and the console; return the request-tracker logger."""
    directory = Path(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
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
