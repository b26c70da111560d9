"""Where codexops keeps local state: `.local/` of the checkout, or of the current folder when
codexops is installed (outside a checkout)."""

from __future__ import annotations

from pathlib import Path

from infra.spec import ROOT


def local_root() -> Path:
    return ROOT / ".local" if (ROOT / "pyproject.toml").exists() else Path.cwd() / ".local"
