"""Rollback: put the previous (or a named) release back on a stack.

`codexops rollback B` is a commit of Pulumi.B.yaml back to B's previous desired state (read from the
file's git log) plus a sync; `git revert <promotion commit>` + `codexops sync B` does the same. When the
schema moved forward since that release served, the backup taken before the move is restored first
(pg_restore): writes made since are discarded, so the command asks first (or takes --yes). A rollback
is PASS only when the checklist and smoke load pass afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codexops.releases import admission, desired, gitops, history
from codexops.releases.backend import Backend, GateResult, Progress
from codexops.releases.history import Event
from codexops.releases.model import Release, load_release
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
    from codexops.releases.sync import release_named

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
        target = release_named(previous, say)
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


def roll_back(backend: Backend, stack: str, target: Release, say: Progress, *, reason: str, reports: Path) -> Event:
    """Restore the backup the history names (if any), deploy `target`, verify it with the checklist and a
    smoke load, record the rollback: PASS only when the verification passes."""
    backup = history.backup_to_restore(history.read(stack), target.id)
    restored = ""
    if backup:
        say(f"==> restoring the database of {stack} from {backup} (writes since are discarded)")
        backend.restore_backup(stack, Path(backup), say)
        restored = f"; database restored from {backup}"
    outcome = backend.deploy(stack, target, say)
    taken = str(outcome.backup) if outcome.backup else None
    verdict, checked, report = ("PASS" if outcome.ok else "FAIL"), "", None
    if outcome.ok:
        verdict, checked, report = verify(backend, stack, reports, say)
    detail = f"{reason}{restored}; {outcome.detail}{checked}"
    return history.append(Event("rollback", stack, target.id, target.digest, verdict, detail, report, taken))


def verify(backend: Backend, stack: str, reports: Path, say: Progress) -> tuple[str, str, str | None]:
    """The checklist and a smoke load after a rollback: (verdict, what it found, report path)."""
    say(f"==> checklist and smoke load on {stack} after the rollback")
    try:
        report = backend.gate(stack, "smoke", reports)
    except Exception as exc:  # a verification that cannot run does not pass
        return "FAIL", f"; the checklist could not run: {exc}", None
    history.record_gate(stack, report)
    verdict = "FAIL" if _failed(report) else "PASS"
    found = "; ".join(report.reasons())[:300]
    checked = f"; checklist and smoke load {verdict}, gate {report.verdict}" + (f": {found}" if found else "")
    return verdict, checked, f"{report.directory}/report.json"


def _failed(report: GateResult) -> bool:
    """The rollback is judged by its checklist and smoke load. Its alert state is not: right after a
    rollback, alerts are computed from the samples of the release rolled back from (5-minute windows)."""
    steps = getattr(report, "steps", None)  # codexops.gate.GateReport; other results give a verdict only
    if steps is None:
        return report.verdict == "FAIL"
    return any(step.status == "fail" for step in steps if step.name != "alerts")
