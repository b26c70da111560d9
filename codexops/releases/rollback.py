"""Rollback: put the previous (or a named) release back on a stack.

When the schema moved forward since that release served, the backup taken before the move is restored
first (pg_restore): writes made since are discarded, so the command asks first (or takes --yes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codexops.releases import history
from codexops.releases.backend import Backend, Progress
from codexops.releases.history import Event
from codexops.releases.model import Release, load_release


class NothingToRollBackTo(RuntimeError):
    """No earlier release (or the named one already serves); the message says which."""


@dataclass(frozen=True)
class Plan:
    stack: str
    current: Release | None
    target: Release
    backup: Path | None  # restored first: the schema moved forward since target served


def plan(backend: Backend, stack: str, to: str | None) -> Plan:
    current = backend.current_release(stack)
    events = history.read(stack)
    if to is not None:
        target = find_release(to)
    else:
        previous = history.previous_release(events, current.id if current else None)
        if previous is None:
            raise NothingToRollBackTo(f"{stack}'s history names no release before {_id(current)}; use --to RELEASE")
        target = load_release(previous.release)
    if current is not None and target.id == current.id:
        raise NothingToRollBackTo(f"{stack} already serves {target.id}")
    backup = history.backup_to_restore(events, target.id)
    return Plan(stack, current, target, Path(backup) if backup else None)


def find_release(ref: str) -> Release:
    """A release by id, digest prefix, version or 'latest' (the store's lookup); a version built more
    than once is refused with its builds listed (AmbiguousRelease), never resolved to the newest."""
    return load_release(ref)


def _id(release: Release | None) -> str:
    return release.id if release else "the one serving"


def roll_back(backend: Backend, stack: str, target: Release, say: Progress, *, reason: str) -> Event:
    """Restore the backup the history names (if any), deploy `target`, record the rollback."""
    backup = history.backup_to_restore(history.read(stack), target.id)
    restored = ""
    if backup:
        say(f"==> restoring the database of {stack} from {backup} (writes since are discarded)")
        backend.restore_backup(stack, Path(backup), say)
        restored = f"; database restored from {backup}"
    outcome = backend.deploy(stack, target, say)
    verdict = "PASS" if outcome.ok else "FAIL"
    detail = f"{reason}{restored}; {outcome.detail}"
    taken = str(outcome.backup) if outcome.backup else None
    return history.append(Event("rollback", stack, target.id, target.digest, verdict, detail, None, taken))
