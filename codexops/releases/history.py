"""Each stack's history: one JSON line per deploy, promotion, rollback or gate, appended atomically.

`.local/stacks/<stack>/history.jsonl` (root overridable by `CODEX_STACKS_DIR`). A line is written with one
`write` on a descriptor opened with O_APPEND and fsynced, so concurrent writers never interleave and a
crash never leaves half a line; a torn last line (a power cut mid-write) is skipped when reading.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from codexops.paths import stacks_root
from infra.spec import check_stack_name

KINDS = ("deploy", "promote", "rollback", "sync", "gate")
VERDICTS = ("PASS", "WARN", "FAIL", "INCONCLUSIVE", "REFUSED")
CHANGES_SERVICE = ("deploy", "promote", "rollback", "sync")  # kinds that put a release in service when they succeed


class GateResult(Protocol):
    """What the history and promotion read of a gate run (codexops.gate.GateReport has it)."""

    verdict: str  # PASS, WARN, FAIL, INCONCLUSIVE
    directory: str  # the report's folder
    release: dict[str, str] | None  # {"id", "digest"} of the release judged

    def reasons(self) -> list[str]: ...


def stack_dir(stack: str) -> Path:
    return stacks_root() / check_stack_name(stack)


def actor() -> str:
    """Who acts: the GitHub user in a workflow, else the OS user."""
    return os.environ.get("GITHUB_ACTOR") or getpass.getuser()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    kind: str
    stack: str
    release: str  # release id
    digest: str
    verdict: str
    detail: str = ""
    report: str | None = None
    backup: str | None = None  # pg_dump taken before this event moved the schema forward
    source: str | None = None  # the stack a promotion came from
    rollout: dict[str, Any] | None = None  # the deploy's canary steps: each step's figures and decision
    actor: str = ""
    at: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: one of {', '.join(KINDS)}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r}: one of {', '.join(VERDICTS)}")

    @property
    def in_service(self) -> bool:
        """This event left its release serving the stack."""
        return self.kind in CHANGES_SERVICE and self.verdict in ("PASS", "WARN")

    @property
    def at_time(self) -> datetime:
        return datetime.strptime(self.at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def append(event: Event) -> Event:
    """Stamp who and when (unless given), then append one line durably."""
    stamped = Event.from_json({**asdict(event), "actor": event.actor or actor(), "at": event.at or now()})
    path = stack_dir(stamped.stack) / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {k: v for k, v in asdict(stamped).items() if k != "rollout" or v is not None}  # lines as before
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return stamped


def read(stack: str) -> list[Event]:
    """Every event of the stack, oldest first; an unreadable line (torn by a crash) is skipped."""
    path = stack_dir(stack) / "history.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(Event.from_json(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return events


def in_service(events: list[Event]) -> Event | None:
    """The event that put the serving release in place: the last successful deploy, promotion or rollback."""
    return next((e for e in reversed(events) if e.in_service), None)


def previous_release(events: list[Event], current: str | None) -> Event | None:
    """The last event that put a release other than `current` in service: what "back" means."""
    return next((e for e in reversed(events) if e.in_service and e.release != current), None)


def record_gate(stack: str, report: GateResult) -> Event | None:
    """Record a gate run (a GateReport naming its release) in the stack's history; None without a release."""
    release = report.release or {}
    if not release.get("id"):
        return None
    return append(
        Event(
            kind="gate",
            stack=stack,
            release=release["id"],
            digest=release.get("digest", ""),
            verdict=report.verdict,
            report=f"{report.directory}/report.json",
            detail="; ".join(report.reasons())[:500],
        )
    )


def backup_to_restore(events: list[Event], release: str) -> str | None:
    """Going back to `release`: the first backup taken after it last served, if the schema moved since.

    A deploy that moves the schema forward takes a pg_dump first, whether it then succeeds or not; the
    oldest one after `release` was last in service holds the data as that release left it.
    """
    backup = None
    for event in reversed(events):
        if event.in_service and event.release == release:
            break
        if event.kind in CHANGES_SERVICE and event.backup:
            backup = event.backup
    return backup
