"""The local environment's one error type: the message says what stops it and what to do."""

from __future__ import annotations


class LocalEnvError(RuntimeError):
    """Something stops the local environment; the message says what to do."""
