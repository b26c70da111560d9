"""The step promote, sync, deploy and rollback share: put a release on a stack and verify it.

`ship`: the door first (admission.py: the evidence the stack's spec requires, or a break-glass in its
file), then deploy, run the checklist and a smoke load on the stack, and on FAIL roll back to the release
that served before. `roll_back`: restore the backup the history names (if any), deploy, verify; PASS only
when the verification passes. Every step is an event in the stack's history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codexops.releases import admission, history
from codexops.releases.backend import Backend, Progress
from codexops.releases.history import Event, GateResult
from codexops.releases.model import Release
from codexops.releases.rollout_attestation import attest_rollout
from infra.spec import load_spec

SMOKE = "smoke"


class Refused(RuntimeError):
    """Refused before anything changed (exit 1): the message is the reason."""


@dataclass(frozen=True)
class Result:
    exit_code: int  # 0 shipped, 1 refused or rolled back
    verdict: str
    message: str


def ship(
    backend: Backend,
    stack: str,
    release: Release,
    *,
    kind: str,
    reports: Path,
    say: Progress,
    source: str | None = None,
) -> Result:
    """The door, then deploy, verify with the checklist and a smoke load, roll back on failure. Hold the
    stack's lock."""
    admitted = door(stack, release, kind, say, source)
    previous = backend.current_release(stack)
    say(f"==> {kind} {release.id} to {stack} ({backend.name}); serving now: {previous.id if previous else 'nothing'}")
    outcome = backend.deploy(stack, release, say)
    backup = str(outcome.backup) if outcome.backup else None
    rollout = _attested(outcome.rollout, stack, release, previous, reports, say)
    if not outcome.ok:
        failed = f"deploy failed: {outcome.detail}"
        history.append(Event(kind, stack, release.id, release.digest, "FAIL", failed, None, backup, source, rollout))
        why = f"deploy of {release.id} failed: {outcome.detail}"
        return _roll_back_after(backend, stack, release, previous, why, say, reports)
    deployed_at = datetime.now(UTC)  # the verification judges alerts on samples from here on (fix-forward)
    say(f"==> checklist and {SMOKE} load on {stack}")
    try:
        report = backend.gate(stack, SMOKE, reports, since=deployed_at)
    except Exception as exc:  # whatever stops the verification, the release is not verified: it goes back
        why = f"the checklist and smoke load on {stack} could not run: {exc}"
        history.append(Event(kind, stack, release.id, release.digest, "FAIL", why, None, backup, source))
        return _roll_back_after(backend, stack, release, previous, why, say, reports)
    history.record_gate(stack, report)
    path = f"{report.directory}/report.json"
    loud = f"{admitted.detail}; " if admitted.loud else ""  # a break-glass shows in every line it caused
    reasons = (loud + "; ".join(report.reasons()))[:500]
    history.append(
        Event(kind, stack, release.id, release.digest, report.verdict, reasons, path, backup, source, rollout)
    )
    if report.verdict not in ("PASS", "WARN"):  # INCONCLUSIVE too: the release is not verified
        failure = "failed" if report.verdict == "FAIL" else f"was not verified ({report.verdict})"
        why = f"{release.id} {failure} on {stack}: {reasons}"
        return _roll_back_after(backend, stack, release, previous, why, say, reports)
    return Result(0, report.verdict, f"{stack} serves {release.id} ({report.verdict}; report {path})")


def _attested(
    rollout: dict[str, Any] | None, stack: str, release: Release, previous: Release | None, reports: Path, say: Progress
) -> dict[str, Any] | None:
    """The deploy's canary steps with the path of their signed attestation (None: no steps ran)."""
    if rollout is None:
        return None
    spec = load_spec(stack)
    folder = attest_rollout(reports, spec, release, previous.id if previous else None, rollout, say)
    return {**rollout, "attestation": str(folder)}


def door(stack: str, release: Release, kind: str, say: Progress, source: str | None = None) -> admission.Admission:
    """What the stack's spec requires, checked from the repository before anything starts; a refusal is
    recorded and raised as Refused."""
    try:
        admitted = admission.admit(stack, release)
    except admission.NotAdmitted as refusal:
        history.append(Event(kind, stack, release.id, release.digest, "REFUSED", str(refusal)[:500], source=source))
        raise Refused(str(refusal)) from None
    if admitted.how != "not required":
        say(f"==> admitted to {stack} by {admitted.how}: {admitted.detail}")
    return admitted


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
        verdict, checked, report = verify_rollback(backend, stack, reports, say)
    detail = f"{reason}{restored}; {outcome.detail}{checked}"
    return history.append(Event("rollback", stack, target.id, target.digest, verdict, detail, report, taken))


def verify_rollback(backend: Backend, stack: str, reports: Path, say: Progress) -> tuple[str, str, str | None]:
    """The checklist and a smoke load after a rollback: (verdict, what it found, report path)."""
    say(f"==> checklist and {SMOKE} load on {stack} after the rollback")
    try:
        report = backend.gate(stack, SMOKE, reports)
    except Exception as exc:  # a verification that cannot run does not pass
        return "FAIL", f"; the checklist could not run: {exc}", None
    history.record_gate(stack, report)
    verdict = "FAIL" if rollback_failed(report) else "PASS"
    found = "; ".join(report.reasons())[:300]
    checked = f"; checklist and smoke load {verdict}, gate {report.verdict}" + (f": {found}" if found else "")
    return verdict, checked, f"{report.directory}/report.json"


def rollback_failed(report: GateResult) -> bool:
    """The rollback is judged by its checklist and smoke load. Its alert state is not: right after a
    rollback, alerts are computed from the samples of the release rolled back from (5-minute windows)."""
    steps = getattr(report, "steps", None)  # codexops.gate.GateReport; other results give a verdict only
    if steps is None:
        return report.verdict == "FAIL"
    return any(step.status == "fail" for step in steps if step.name != "alerts")


def _roll_back_after(
    backend: Backend, stack: str, failed: Release, previous: Release | None, why: str, say: Progress, reports: Path
) -> Result:
    if previous is None or previous.id == failed.id:
        return Result(1, "FAIL", f"{why}; no earlier release on {stack} to roll back to")
    say(f"==> rolling {stack} back to {previous.id}: {why}")
    event = roll_back(backend, stack, previous, say, reason=f"automatic: {why}", reports=reports)
    state = "rolled back to" if event.verdict == "PASS" else "ROLLBACK FAILED to"
    return Result(1, "FAIL", f"{why}; {state} {previous.id} ({event.detail})")
