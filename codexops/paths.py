"""Where codexops keeps local state: `.local/` of the checkout, or of the current folder when
codexops is installed (outside a checkout)."""

from __future__ import annotations

import os
from pathlib import Path

from infra.spec import ROOT


def local_root() -> Path:
    return ROOT / ".local" if (ROOT / "pyproject.toml").exists() else Path.cwd() / ".local"


def stacks_root() -> Path:
    """Each stack's folder (its local environment, history and lock) is below this: `.local/stacks/`, or
    CODEX_STACKS_DIR (read at each call: tests point it at a temporary folder)."""
    return Path(os.environ.get("CODEX_STACKS_DIR") or local_root() / "stacks")
