"""The interface every deployment backend implements, and the choice between them.

Local (processes on this machine, `local_backend.py`) and Pulumi (the Automation API,
`pulumi_backend.py`). `--local` or `CODEX_BACKEND=local|pulumi` choose; by default Pulumi when its CLI is
installed, local otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from codexops.releases.model import Release
from codexops.releases.serving import Serving

Progress = Callable[[str], None]
BACKENDS = ("local", "pulumi")


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here (exit 2); the message says what is missing."""


class ReleaseTampered(RuntimeError):
    """The release's files no longer match what was built (refused, exit 1); the message names them."""


@dataclass(frozen=True)
class DeployOutcome:
    ok: bool
    detail: str
    backup: Path | None = None  # pg_dump taken first because the release moves the schema forward


class GateResult(Protocol):
    """What promotion reads of a gate run (codexops.gate.GateReport has it)."""

    verdict: str  # PASS, WARN, FAIL, INCONCLUSIVE
    directory: str  # the report's folder
    release: dict[str, str] | None  # {"id", "digest"} of the release judged

    def reasons(self) -> list[str]: ...


class Backend(Protocol):
    name: str

    def deploy(self, stack: str, release: Release, progress: Progress) -> DeployOutcome: ...

    def current_release(self, stack: str) -> Release | None:
        """The release the whole stack serves, as `serving(stack).uniform` (None when it is not uniform)."""
        ...

    def serving(self, stack: str) -> Serving:
        """What each replica serves, asked of the stack now (never a record of the last deploy)."""
        ...

    def drift(self, stack: str) -> str:
        """What differs from the stack's whole desired state (its file and the program) beyond the release
        each replica serves: settings, replicas, rendered configuration; "" when nothing. Pulumi: `preview
        --expect-no-changes`; local: the spec rendered now against what runs."""
        ...

    def check_release(self, release: Release) -> None:
        """Raise ReleaseTampered when the release's content no longer matches its digest."""
        ...

    def restore_backup(self, stack: str, backup: Path, progress: Progress) -> None: ...

    def gate(self, stack: str, shape: str, reports: Path, since: datetime | None = None) -> GateResult:
        """`since`: a verification's deploy time; alerts firing only on older samples do not count."""
        ...


def backend_name(local: bool) -> str:
    """Which backend: --local, else CODEX_BACKEND, else pulumi when its CLI is on PATH, else local."""
    if local:
        return "local"
    chosen = os.environ.get("CODEX_BACKEND", "").strip().lower()
    if chosen and chosen not in BACKENDS:
        raise BackendUnavailable(f"CODEX_BACKEND={chosen!r}: use one of {', '.join(BACKENDS)}")
    return chosen or ("pulumi" if shutil.which("pulumi") else "local")


def select_backend(local: bool) -> Backend:
    # Imported on demand: each backend pulls in its own dependencies (the Automation API, supervisor).
    if backend_name(local) == "pulumi":
        from codexops.releases.pulumi_backend import PulumiBackend

        return PulumiBackend()
    from codexops.releases.local_backend import LocalBackend

    return LocalBackend()
