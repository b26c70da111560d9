"""The interface every deployment backend implements.

Local (processes on this machine, `local_backend.py`) and Pulumi (the Automation API,
`pulumi_backend.py`); which one runs is codexops/backend_choice.py's rule, built by `selection.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from codexops.releases.history import GateResult
from codexops.releases.model import Release
from codexops.releases.serving import Serving

Progress = Callable[[str], None]


class ReleaseTampered(RuntimeError):
    """The release's files no longer match what was built (refused, exit 1); the message names them."""


@dataclass(frozen=True)
class DeployOutcome:
    ok: bool
    detail: str
    backup: Path | None = None  # pg_dump taken first because the release moves the schema forward
    rollout: dict[str, Any] | None = None  # the canary steps and their analyses (codexops/rollout/driver.py)


class Backend(Protocol):
    name: str
    # It deploys a release by its image alone (Pulumi: the image the stack file names), so a release the
    # store lacks needs no local build; the local backend runs the release's files.
    deploys_by_image: bool

    def deploy(self, stack: str, release: Release, progress: Progress) -> DeployOutcome: ...

    def current_release(self, stack: str) -> Release | None:
        """The release the whole stack serves, as `serving(stack).uniform` (None when it is not uniform)."""
        ...

    def serving(self, stack: str) -> Serving:
        """What each replica serves, asked of the stack now (never a record of the last deploy); with
        `image`, the image the platform runs, when it runs one."""
        ...

    def drift(self, stack: str) -> str:
        """What differs from the stack's whole desired state (its file and the program) beyond the release
        `serving` reports: settings, replicas, rendered configuration; "" when nothing. Pulumi: `preview
        --refresh --expect-no-changes` (what changed outside Pulumi too); local: the spec rendered now
        against what runs."""
        ...

    def check_release(self, release: Release) -> None:
        """Raise ReleaseTampered when the release's content no longer matches its digest."""
        ...

    def restore_backup(self, stack: str, backup: Path, progress: Progress) -> None: ...

    def gate(self, stack: str, shape: str, reports: Path, since: datetime | None = None) -> GateResult:
        """`since`: a verification's deploy time; alerts firing only on older samples do not count."""
        ...
