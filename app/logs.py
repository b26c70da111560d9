"""Log files of the runbook: logs/server.log (rotated) and logs/request-tracker.log."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_MAX_BYTES = 10 * 1024 * 1024
_BACKUPS = 5


def _file_handler(path: Path) -> RotatingFileHandler:
    handler = RotatingFileHandler(path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


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
        console.setFormatter(logging.Formatter(FORMAT))
        codex.addHandler(console)

    tracker = logging.getLogger("codex.requests")
    tracker.propagate = False
    tracker.setLevel(logging.INFO)
    tracker_path = str((directory / "request-tracker.log").resolve())
    tracker.handlers = [h for h in tracker.handlers if getattr(h, "baseFilename", "") == tracker_path]
    if not tracker.handlers:
        tracker.addHandler(_file_handler(directory / "request-tracker.log"))
    return tracker
