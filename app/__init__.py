"""The Living Codex service."""

__version__ = "1.0.0"
