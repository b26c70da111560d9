"""The checkout's root: a module of its own, so that `codexops serve` (and every command's option
defaults) can name it without loading the spec's models."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
