"""Whether a release may run on a stack: the door every path to a stack passes (deploy, promote, sync,
rollback, and the policy pack at `pulumi up`).

A stack's spec says what a release needs there (`living-codex:promotion: {from: staging}`): a signed full
gate of the release's exact digest on that stack, committed beside the desired state under
`evidence/<stack>/<release>/` (the attestation, the report it signs, and promotion.json: who promoted it
and whether a WARN was accepted). A fresh clone or a runner verifies it with keys/trusted-keys.txt at that
commit: nothing here reads the machine's own gate history. A stack without the key admits any release (it
is where gates run). The only other way in is an explicit break-glass, written into the stack file
(`living-codex:breakGlass: {release, reason, by}`) so it is reviewed, shown by `history` and reported by
`diff` until a promotion with evidence replaces it.

The age of the evidence and the load it ran at are checked once, when `promote` commits it; later doors
check that it is the signed, unedited full gate of this digest on the source stack.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from codexops.releases import desired, gitops, history
from codexops.releases.attestation import BUNDLE, ENVELOPE, REPORT, envelope_digest
from codexops.releases.evidence import (
    Evidence,
    EvidenceRefused,
    check_report,
    checked_predicate,
    verified_statement,
)
from codexops.releases.model import Release
from infra.spec import RELEASE_PATTERN, BreakGlass, SpecError, check_stack_name, load_spec

EVIDENCE_DIR = "evidence"
PROMOTION = "promotion.json"  # who committed the evidence, and whether its WARN was accepted
How = Literal["not required", "evidence", "break-glass"]


class NotAdmitted(RuntimeError):
    """The release may not run on the stack (exit 1): what is missing and what to run next."""


@dataclass(frozen=True)
class Admission:
    how: How
    detail: str  # one line for progress output and history
    evidence: str = ""  # "sha256:<hex>" of the committed attestation, when admitted by evidence

    @property
    def loud(self) -> bool:
        return self.how == "break-glass"


def evidence_dir(stack: str, release_id: str, repo: Path | None = None) -> Path:
    if not re.fullmatch(RELEASE_PATTERN, release_id):
        raise NotAdmitted(f"release id {release_id[:80]!r} is not a release id")
    return (repo or desired.repo_dir()) / EVIDENCE_DIR / check_stack_name(stack) / release_id


def named_release(release_id: str, digest: str, image: str | None = None) -> Release:
    """A release known only by id and digest (what a stack file or a workload names)."""
    return Release(release_id, release_id.partition("+")[0], "unknown", digest, "", None, image, "")


# -- writing: promote commits the evidence it checked -------------------------------------------------
def store(stack: str, proof: Evidence, *, accept_warnings: bool, repo: Path | None = None) -> list[Path]:
    """Copy the verified attestation and its report under evidence/<stack>/<release>/; the files written."""
    folder = evidence_dir(stack, proof.release, repo)
    folder.mkdir(parents=True, exist_ok=True)
    signed = folder / proof.attestation.name
    shutil.copyfile(proof.attestation, signed)
    shutil.copyfile(proof.report, folder / REPORT)
    note = {
        "release": proof.release,
        "source": proof.statement.get("predicate", {}).get("stack"),
        "verdict": proof.verdict,
        "acceptWarnings": accept_warnings and proof.verdict == "WARN",
        "signer": proof.signer,
        "promotedBy": history.actor(),
    }
    (folder / PROMOTION).write_text(json.dumps(note, indent=2, sort_keys=True) + "\n")
    return [signed, folder / REPORT, folder / PROMOTION]


# -- reading: every door ------------------------------------------------------------------------------
def required_source(stack: str, repo: Path | None = None) -> str | None:
    """The stack whose full gate a release needs to run on `stack`; None when it needs none."""
    try:
        promotion = load_spec(stack, repo).promotion
    except SpecError as exc:
        raise NotAdmitted(f"the spec of {stack} cannot be read to know what a release needs there: {exc}") from None
    return promotion.source if promotion else None


def verify_committed(stack: str, release: Release, repo: Path | None = None) -> Admission:
    """Admission by the evidence committed for `release` on `stack`, or EvidenceRefused saying why."""
    source = required_source(stack, repo)
    if source is None:
        return Admission("not required", f"{stack} needs no evidence (its spec names no promotion source)")
    folder = evidence_dir(stack, release.id, repo)
    where = f"the evidence of {release.id} for {stack} ({folder.relative_to(folder.parents[2])}/)"
    return verify_folder(folder, release, source, where)


def verify_folder(folder: Path, release: Release, source: str, where: str) -> Admission:
    """Admission by the evidence files in `folder` (a checkout's, or extracted from a commit)."""
    if not any((folder / name).exists() for name in (ENVELOPE, BUNDLE)):
        raise EvidenceRefused(f"{where} is not in the repository: no signed full gate of it on {source} was committed")
    document, signer, signed = verified_statement(folder, release, where)
    body = checked_predicate(document, release, source, where, check_load=False)
    check_report(folder / REPORT, body, where)
    verdict = str(body.get("verdict"))
    if verdict == "WARN" and not _accepted_warnings(folder):
        raise EvidenceRefused(f"{where} is a WARN gate that no promotion accepted (--accept-warnings)")
    if verdict not in ("PASS", "WARN"):
        raise EvidenceRefused(f"{where} is a {verdict} gate")
    digest = envelope_digest(signed)
    return Admission("evidence", f"{verdict} full gate on {source}, signed by {signer} ({digest[:19]}…)", digest)


def _accepted_warnings(folder: Path) -> bool:
    try:
        return json.loads((folder / PROMOTION).read_text()).get("acceptWarnings") is True
    except (OSError, ValueError, AttributeError):
        return False


def admit(
    stack: str, release: Release, *, break_glass: BreakGlass | None = None, repo: Path | None = None
) -> Admission:
    """May `release` run on `stack`? By its committed evidence, else by the break-glass the stack file
    holds for it (or `break_glass`, given now, which the caller commits); else NotAdmitted."""
    try:
        return verify_committed(stack, release, repo)
    except EvidenceRefused as refusal:
        override = break_glass or desired.read(stack, repo).break_glass
        if override is not None and override.release == release.id:
            return Admission("break-glass", f"BREAK-GLASS by {override.by}: {override.reason} (no evidence: {refusal})")
        source = required_source(stack, repo)
        raise NotAdmitted(
            f"{release.id} may not run on {stack}: {refusal}. Gate it on {source} (`codexops gate --target "
            f"{source}`) and promote it (`codexops promote --from {source} --to {stack}`), which commits its "
            f"evidence; in an emergency only: `codexops deploy {stack} --release {release.id} --break-glass "
            f"'<why>'` (recorded in the stack file, shown by history and diff)"
        ) from None


def override(release: Release, reason: str) -> BreakGlass:
    """The break-glass of `release` for `reason` (one line, at least a sentence), decided by the actor."""
    text = " ".join(reason.split())
    if len(text) < 8:
        raise ValueError("--break-glass: say why in a sentence (at least 8 characters); it is recorded")
    by = " ".join(history.actor().split())[:100] or "unknown"
    return BreakGlass(release=release.id, reason=text[:500], by=by)


def past_break_glass(stack: str, release_id: str, repo: Path | None = None) -> BreakGlass | None:
    """The override under which `release_id` ran on `stack` before (the stack file's git log), if any:
    rolling back to it is the same decision again, recorded again."""
    for change in gitops.log(stack, repo):
        glass = change.state.break_glass
        if glass is not None and glass.release == release_id:
            return glass
    return None


def rollback_override(stack: str, target: Release, reason: str | None, repo: Path | None = None) -> BreakGlass | None:
    """The break-glass a rollback to `target` commits: none when its evidence is committed; the one given
    (`reason`), or the one it ran under before (the same decision, recorded again); else NotAdmitted."""
    given = override(target, reason) if reason else None
    door = admit(stack, target, break_glass=given, repo=repo) if given else None
    if door is not None:
        return given
    try:
        door = admit(stack, target, repo=repo)
    except NotAdmitted:
        before = past_break_glass(stack, target.id, repo)
        if before is None:
            raise
        again = f"rollback to a release that ran here by break-glass: {before.reason}"
        return override(target, again)
    return desired.read(stack, repo).break_glass if door.loud else None
