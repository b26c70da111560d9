"""Rollback: put the previous (or a named) release back on a stack.

`codexops rollback B` is a commit of Pulumi.B.yaml back to B's previous desired state (read from the
file's git log) plus a sync; `git revert <promotion commit>` + `codexops sync B` does the same. When the
schema moved forward since that release served, the backup taken before the move is restored first
(pg_restore): writes made since are discarded, so the command asks first (or takes --yes). A rollback
is PASS only when the checklist and smoke load pass afterwards. This module plans and commits it; the
restore, deploy and verification are shipping.roll_back, which a failed ship uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codexops.releases import admission, desired, gitops, history
from codexops.releases.backend import Backend, Progress
from codexops.releases.model import Release, load_release
from codexops.releases.named import release_named
from infra.spec import BreakGlass


class NothingToRollBackTo(RuntimeError):
    """No earlier release (or the named one already serves); the message says which."""


@dataclass(frozen=True)
class Plan:
    stack: str
    current: Release | None
    target: Release
    backup: Path | None  # restored first: the schema moved forward since target served
    break_glass: BreakGlass | None = None  # committed with it: target runs without evidence, and why


def plan(
    backend: Backend, stack: str, to: str | None, say: Progress = print, *, break_glass: str | None = None
) -> Plan:
    """What a rollback would do; NotAdmitted when the target may not run on the stack (no evidence
    committed for it, no break-glass it ran under before, none given)."""
    current = backend.current_release(stack)
    events = history.read(stack)
    if to is not None:
        target = find_release(to)
    else:
        previous = gitops.previous_state(stack)
        if previous is None:
            named = desired.read(stack).release or "no release"
            raise NothingToRollBackTo(
                f"the git log of Pulumi.{stack}.yaml names no release before {named}; use --to RELEASE"
            )
        target = release_named(previous, say, by_image=backend.deploys_by_image)
    if current is not None and target.id == current.id and desired.read(stack).release == target.id:
        raise NothingToRollBackTo(f"{stack} already serves {target.id}, as its file names")
    glass = admission.rollback_override(stack, target, break_glass)
    backup = history.backup_to_restore(events, target.id)
    return Plan(stack, current, target, Path(backup) if backup else None, glass)


def commit_rollback(stack: str, target: Release, reason: str, glass: BreakGlass | None = None) -> str:
    """Pulumi.<stack>.yaml names `target` again (with its break-glass, if it runs by one), committed; the
    commit's id."""
    path = desired.path_of(stack)
    gitops.require_committed(stack)
    desired.write(stack, desired.Desired(target.id, target.image, glass))
    trailers = gitops.release_trailers(stack, target, **{"Break-Glass": glass.reason if glass else ""})
    text = gitops.message(f"rollback {stack} to {target.id}: {reason}", trailers)
    return gitops.commit_file(desired.repo_dir(), path, text)


def find_release(ref: str) -> Release:
    """A release by id, digest prefix, version or 'latest' (the store's lookup); a version built more
    than once is refused with its builds listed (AmbiguousRelease), never resolved to the newest."""
    return load_release(ref)
