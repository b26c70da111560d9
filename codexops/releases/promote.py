"""Promotion and verified deploys: a stack gets a release only on evidence, and loses it on failure.

`promote`: the source stack's latest gate for the release serving there must be PASS (WARN with
--accept-warnings) and younger than the bound; then `change` makes the destination's desired state name
that exact release: it writes Pulumi.<stack>.yaml, commits it (release, evidence digest, who), ships it,
and on FAIL commits the revert (the stack is rolled back to what served before).
`ship` (promote, `codexops deploy`, sync): deploy, run the checklist and a smoke load on the stack, and on
FAIL roll back to the release that served before. Every step is an event in the stack's history.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from codexops.releases import desired, gitops, history
from codexops.releases.backend import Backend, Progress
from codexops.releases.history import Event
from codexops.releases.model import Release
from codexops.releases.serving import unverified

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
        evidence=proof.digest,
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
    evidence: str = "",
    source: str | None = None,
    commit_only: bool = False,
) -> Result:
    """Make Pulumi.<stack>.yaml name `release`, commit it, ship it; on FAIL commit the revert.

    Nothing happens (no commit, no restart) when the stack serves `release` and its file names it."""
    repo, path = desired.repo_dir(), desired.path_of(stack)
    gitops.require_committed(stack)
    before = path.read_text()
    named = desired.read(stack).release
    backend.check_release(release)  # edited bytes are refused before the commit
    serving = backend.current_release(stack)  # every replica asked; None when one is down or differs
    served = serving is not None and serving.id == release.id
    if served and named == release.id and not unverified(stack, release.id, backend.serving(stack)):
        return Result(0, "NO CHANGE", f"{stack} already serves {release.id}, as its file names: nothing to do")
    if named == release.id:  # named, not served (verified) by every replica, e.g. a killed deploy: no commit
        say(f"==> {path.name} names {release.id} already; {stack} serves {backend.serving(stack).describe()}")
        if commit_only:
            return Result(0, "COMMITTED", f"{path.name} names {release.id} already; `codexops sync {stack}` deploys it")
        return ship(backend, stack, release, kind=kind, reports=reports, say=say, source=source)
    desired.write(stack, desired.Desired(release.id, release.image))
    trailers = gitops.release_trailers(stack, release, Evidence=evidence)
    subject = f"{kind} {release.id} to {stack}" + (f" (from {source})" if source else "")
    commit = gitops.commit_file(repo, path, gitops.message(subject, trailers))
    say(f"==> committed {commit[:12]}: {path.name} names {release.id}")
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
    """Deploy, verify with the checklist and a smoke load, roll back on failure. Hold the stack's lock."""
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
    reasons = "; ".join(report.reasons())[:500]
    history.append(Event(kind, stack, release.id, release.digest, report.verdict, reasons, path, backup, source))
    if report.verdict == "FAIL":
        why = f"{release.id} failed on {stack}: {reasons}"
        return _roll_back_after(backend, stack, release, previous, why, say, reports)
    return Result(0, report.verdict, f"{stack} serves {release.id} ({report.verdict}; report {path})")


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
