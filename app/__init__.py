"""The Living Codex service (its version: app/version.py)."""
