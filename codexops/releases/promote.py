"""Promotion and verified deploys: a stack gets a release only on evidence, and loses it on failure.

`promote`: the source stack's latest gate for the release serving there must be PASS (WARN with
--accept-warnings) and younger than the bound; then `change` makes the destination's desired state name
that exact release: it writes Pulumi.<stack>.yaml and the evidence (evidence/<stack>/<release>/), commits
them (release, evidence digest, who), ships it (shipping.py: the door, deploy, verify, roll back on
FAIL), and on FAIL commits the revert.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from codexops.releases import admission, desired, gitops, history
from codexops.releases.backend import Backend, Progress
from codexops.releases.evidence import Evidence, EvidenceRefused, check_evidence
from codexops.releases.history import Event
from codexops.releases.model import Release
from codexops.releases.serving import unverified
from codexops.releases.shipping import Refused, Result, ship
from infra.spec import BreakGlass

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_AGE_LIMIT = timedelta(days=365)


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
