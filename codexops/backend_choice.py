"""Which deployment backend runs: one rule for the release commands and for the gate's targets.

`--local` wins; else CODEX_BACKEND (`local` or `pulumi`, any case, spaces ignored; anything else is
refused); else Pulumi when its CLI is on PATH, local otherwise.
"""

from __future__ import annotations

import os
import shutil

BACKENDS = ("local", "pulumi")


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here (exit 2); the message says what is missing."""


def backend_name(local: bool = False) -> str:
    """`local` or `pulumi`, by the rule above; BackendUnavailable for any other CODEX_BACKEND."""
    if local:
        return "local"
    chosen = os.environ.get("CODEX_BACKEND", "").strip().lower()
    if chosen and chosen not in BACKENDS:
        raise BackendUnavailable(f"CODEX_BACKEND={chosen!r}: use one of {', '.join(BACKENDS)}")
    return chosen or ("pulumi" if shutil.which("pulumi") else "local")
