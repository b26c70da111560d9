"""Promotion and verified deploys: a stack gets a release only on evidence, and loses it on failure.

`promote`: the source stack's latest gate for the release serving there must be PASS (WARN with
--accept-warnings) and younger than the bound; then `change` makes the destination's desired state name
that exact release: it writes Pulumi.<stack>.yaml and the evidence (evidence/<stack>/<release>/), commits
them (release, evidence digest, who), ships it, and on FAIL commits the revert (the stack is rolled back
to what served before).
`ship` (promote, `codexops deploy`, sync): the door first (admission.py: the evidence the stack's spec
requires, or a break-glass in its file), then deploy, run the checklist and a smoke load on the stack, and
on FAIL roll back to the release that served before. Every step is an event in the stack's history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from codexops.releases import admission, desired, gitops, history
from codexops.releases.backend import Backend, Progress
from codexops.releases.history import Event
from codexops.releases.model import Release
from codexops.releases.serving import unverified
from infra.spec import BreakGlass

if TYPE_CHECKING:
    from codexops.releases.evidence import Evidence

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_AGE_LIMIT = timedelta(days=365)
SMOKE = "smoke"


class Refused(RuntimeError):
    """Promotion refused (exit 1): the message is the reason."""


@dataclass(frozen=True)
class Result:
    exit_code: int  # 0 shipped, 1 refused or rolled back
    verdict: str
    message: str


def parse_age(text: str) -> timedelta:
    """'24h', '90m', '2d', '45s' (a bare number is hours)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"--max-age {text[:40]!r}: a positive duration such as 24h, 90m, 2d")
    seconds = float(match.group(1)) * UNITS[match.group(2) or "h"]
    if seconds > MAX_AGE_LIMIT.total_seconds():
        raise ValueError(f"--max-age {text[:40]!r}: at most {MAX_AGE_LIMIT.days}d (evidence that old proves nothing)")
    return timedelta(seconds=seconds)


def promote(
    backend: Backend,
    source: str,
    destination: str,
    *,
    now: datetime,
    max_age: timedelta,
    accept_warnings: bool,
    reports: Path,
    say: Progress,
    commit_only: bool = False,
) -> Result:
    """Check the evidence, then commit the destination's file naming the source's release and ship it
    (with `commit_only`, stop after the commit: in CI its pull request is the approval, merging deploys).
    Hold the destination's lock."""
    from codexops.releases.evidence import EvidenceRefused, check_evidence

    release = backend.current_release(source)
    try:  # the one place promotion checks its evidence: a signed full gate of the release's digest
        if release is None:
            raise EvidenceRefused(f"no release is deployed on {source}: deploy one there and gate it first")
        proof = check_evidence(source, release, now=now, max_age=max_age, accept_warnings=accept_warnings)
    except EvidenceRefused as refusal:
        if release is not None:
            history.append(
                Event("promote", destination, release.id, release.digest, "REFUSED", str(refusal), source=source)
            )
        raise Refused(str(refusal)) from None
    say(
        f"==> evidence: {proof.verdict} full gate of {release.id} on {source} at {proof.at:%Y-%m-%dT%H:%M:%SZ}, "
        f"signed by {proof.signer} ({proof.digest}; report {proof.report})"
    )
    return change(
        backend,
        destination,
        release,
        kind="promote",
        evidence=proof,
        accept_warnings=accept_warnings,
        reports=reports,
        say=say,
        source=source,
        commit_only=commit_only,
    )


def change(
    backend: Backend,
    stack: str,
    release: Release,
    *,
    kind: str,
    reports: Path,
    say: Progress,
    evidence: Evidence | None = None,
    accept_warnings: bool = False,
    break_glass: str | None = None,
    source: str | None = None,
    commit_only: bool = False,
) -> Result:
    """Make Pulumi.<stack>.yaml name `release` (with its evidence, or `break_glass`: the reason it runs
    without), commit it, ship it; on FAIL commit the revert. Refused before anything is written when
    the stack's door would refuse it.

    Nothing happens (no commit, no restart) when the stack serves `release` and its file names it."""
    repo, path = desired.repo_dir(), desired.path_of(stack)
    gitops.require_committed(stack)
    before = path.read_text()
    named = desired.read(stack).release
    backend.check_release(release)  # edited bytes are refused before the commit
    serving = backend.current_release(stack)  # every replica asked; None when one is down or differs
    served = serving is not None and serving.id == release.id
    fresh = served and not unverified(stack, release.id, backend.serving(stack))
    if fresh and named == release.id and not break_glass:
        return Result(0, "NO CHANGE", f"{stack} already serves {release.id}, as its file names: nothing to do")
    glass = admission.override(release, break_glass) if break_glass else None
    admitted, stored = _admitted_with(stack, release, evidence, accept_warnings, glass)
    files = [file for file in stored if gitops.uncommitted(file, repo)]  # a promotion repeated: already in Git
    glass = glass if admitted.loud else None
    if named == release.id and not files and glass is None:  # named, not served (verified) everywhere: no commit
        say(f"==> {path.name} names {release.id} already; {stack} serves {backend.serving(stack).describe()}")
        if commit_only:
            return Result(0, "COMMITTED", f"{path.name} names {release.id} already; `codexops sync {stack}` deploys it")
        return ship(backend, stack, release, kind=kind, reports=reports, say=say, source=source)
    desired.write(stack, desired.Desired(release.id, release.image, glass))
    glass_reason = glass.reason if glass else ""
    trailers = gitops.release_trailers(stack, release, Evidence=admitted.evidence, **{"Break-Glass": glass_reason})
    subject = f"{kind} {release.id} to {stack}" + (f" (from {source})" if source else "")
    commit = gitops.commit_files(repo, [path, *files], gitops.message(subject, trailers))
    say(f"==> committed {commit[:12]}: {path.name} names {release.id}" + (" (BREAK-GLASS)" if glass_reason else ""))
    if commit_only:
        return Result(
            0, "COMMITTED", f"{path.name} names {release.id} in {commit[:12]}; `codexops sync {stack}` deploys it"
        )
    if serving is not None and serving.id == release.id:
        return Result(0, "PASS", f"{stack} already serves {release.id}; its file now names it too (no restart)")
    result = ship(backend, stack, release, kind=kind, reports=reports, say=say, source=source)
    if result.exit_code == 0:
        return result
    path.write_text(before)
    back = {"Stack": stack, "Release": named or "", "Reverts": commit, "Actor": history.actor()}
    reverted = gitops.commit_file(repo, path, gitops.message(f"revert {kind} of {release.id} to {stack}", back))
    say(f"==> committed the revert {reverted[:12]}: {path.name} names {named or 'no release'} again")
    return Result(result.exit_code, result.verdict, f"{result.message}; {path.name} reverted in {reverted[:12]}")


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
    if not outcome.ok:
        failed = f"deploy failed: {outcome.detail}"
        history.append(Event(kind, stack, release.id, release.digest, "FAIL", failed, None, backup, source))
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
    history.append(Event(kind, stack, release.id, release.digest, report.verdict, reasons, path, backup, source))
    if report.verdict not in ("PASS", "WARN"):  # INCONCLUSIVE too: the release is not verified
        failure = "failed" if report.verdict == "FAIL" else f"was not verified ({report.verdict})"
        why = f"{release.id} {failure} on {stack}: {reasons}"
        return _roll_back_after(backend, stack, release, previous, why, say, reports)
    return Result(0, report.verdict, f"{stack} serves {release.id} ({report.verdict}; report {path})")


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


def _admitted_with(
    stack: str, release: Release, proof: Evidence | None, accept_warnings: bool, glass: BreakGlass | None
) -> tuple[admission.Admission, list[Path]]:
    """The door's answer for the change, with the evidence files it commits (promote's, written first so
    the door checks what will be committed); refused here, before anything is committed."""
    files = admission.store(stack, proof, accept_warnings=accept_warnings) if proof else []
    try:
        return admission.admit(stack, release, break_glass=glass), files
    except admission.NotAdmitted as refusal:
        for file in files:
            file.unlink(missing_ok=True)
        raise Refused(str(refusal)) from None


def _roll_back_after(
    backend: Backend, stack: str, failed: Release, previous: Release | None, why: str, say: Progress, reports: Path
) -> Result:
    from codexops.releases.rollback import roll_back

    if previous is None or previous.id == failed.id:
        return Result(1, "FAIL", f"{why}; no earlier release on {stack} to roll back to")
    say(f"==> rolling {stack} back to {previous.id}: {why}")
    event = roll_back(backend, stack, previous, say, reason=f"automatic: {why}", reports=reports)
    state = "rolled back to" if event.verdict == "PASS" else "ROLLBACK FAILED to"
    return Result(1, "FAIL", f"{why}; {state} {previous.id} ({event.detail})")
