"""`codexops history`: a stack's desired-state commits (its file's git log) merged with the events
recorded on this machine (gates, deploys, verifications, failed deploys), oldest first.

A commit row has kind "commit" (a commit that changed the release the file names): the release it
named, the evidence digest and the actor from the commit's trailers (the author for a hand-made
commit), the commit id and subject. Its verdict says what its evidence is worth, checked, not read from
trailers (anyone can write a trailer): VERIFIED when the attestation committed under
evidence/<stack>/<release>/ at that commit verifies against the trusted keys and is the one the Evidence
trailer names; UNVERIFIED (and why) when a trailer claims evidence that does not verify, or the stack
requires evidence and none is there; BREAK-GLASS when the file records an override; else COMMITTED.
Every printed field is one line: control characters are shown escaped.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codexops.releases import admission, desired, gitops, history
from codexops.releases.evidence import EvidenceRefused
from codexops.releases.gitops import Change
from codexops.releases.model import Release, ReleaseNotFound, load_release

Row = dict[str, Any]


def _utc(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_row(stack: str, change: Change, source: str | None = None) -> Row:
    """`source`: the stack whose gate the stack's spec requires (None: it requires none)."""
    verdict, why = evidence_verdict(stack, change, source)
    return {
        "kind": "commit",
        "stack": stack,
        "release": change.state.release or "",
        "digest": change.trailers.get("Release-Digest", ""),
        "verdict": verdict,
        "detail": change.subject,
        "evidence": change.evidence,
        "evidenceCheck": why,
        "commit": change.commit,
        "actor": change.actor,
        "at": _utc(change.at),
    }


def evidence_verdict(stack: str, change: Change, source: str | None) -> tuple[str, str]:
    """(VERIFIED | UNVERIFIED | BREAK-GLASS | COMMITTED, why) for the release a commit named."""
    release, glass = change.state.release, change.state.break_glass
    if release is None:
        return "COMMITTED", ""
    if glass is not None and glass.release == release:
        return "BREAK-GLASS", f"BREAK-GLASS by {glass.by}: {glass.reason}"
    with tempfile.TemporaryDirectory(prefix="codex-evidence-") as scratch:
        folder = _files_at(change.commit, stack, release, Path(scratch))
        if folder is None:
            if change.evidence or source:
                return "UNVERIFIED", f"no evidence/{stack}/{release}/ at this commit" + (
                    f" (the trailer claims {change.evidence})" if change.evidence else ""
                )
            return "COMMITTED", ""
        try:
            admitted = admission.verify_folder(folder, _release_of(release, change), source or "", "its evidence")
        except EvidenceRefused as refusal:
            return "UNVERIFIED", str(refusal)
    if change.evidence and change.evidence != admitted.evidence:
        return "UNVERIFIED", f"the trailer names {change.evidence}, the committed attestation is {admitted.evidence}"
    return "VERIFIED", admitted.detail


def _release_of(release_id: str, change: Change) -> Release:
    """The release a commit named, with its digest: from the store, else the trailer when it agrees
    with the id's own digest prefix (an id is <version>+<digest12>)."""
    try:
        return load_release(release_id)
    except ReleaseNotFound:
        digest = change.trailers.get("Release-Digest", "")
        short = release_id.partition("+")[2]
        matches = bool(short) and digest.removeprefix("sha256:").startswith(short)
        return admission.named_release(release_id, digest if matches else "", None)


def _files_at(commit: str, stack: str, release: str, scratch: Path) -> Path | None:
    """The evidence folder of `release` as `commit` holds it, copied into `scratch`; None when absent."""
    repo = desired.repo_dir()
    relative = admission.evidence_dir(stack, release, repo).relative_to(repo)
    names = gitops.git(repo, "ls-tree", "--name-only", commit, f"{relative}/", check=False).split()
    if not names:
        return None
    for name in names:
        (scratch / Path(name).name).write_bytes(gitops.git_bytes(repo, "show", f"{commit}:{name}"))
    return scratch


def merged(stack: str) -> list[Row]:
    """Commits and recorded events by time; at the same second a commit comes first (it precedes its
    deploy)."""
    source = _required_source(stack)
    rows = [commit_row(stack, change, source) for change in _log(stack)]
    events: list[tuple[str, int, Row]] = [(r["at"], 0, r) for r in rows]
    events += [(e.at, 1, asdict(e)) for e in history.read(stack)]
    return [row for _, _, row in sorted(events, key=lambda item: (item[0], item[1]))]


def _required_source(stack: str) -> str | None:
    try:
        return admission.required_source(stack)
    except admission.NotAdmitted:
        return None


def _log(stack: str) -> list[Change]:
    """The stack file's commits that changed the release it names, oldest first (edits of other keys
    are not deploys); empty outside a Git repository."""
    if not gitops.is_repository(desired.repo_dir()) or not desired.path_of(stack).exists():
        return []
    changes, named = [], None
    for change in reversed(gitops.log(stack)):
        if change.state.release != named:
            changes.append(change)
        named = change.state.release
    return changes


def one_line(value: object) -> str:
    """`value` as one printable line: newlines and other control characters shown escaped (\\n, \\x1b)."""
    text = str(value)
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def note(row: Row) -> str:
    """The last column of the table: the commit and what its evidence is worth, or the report / detail."""
    if row["kind"] == "commit":
        evidence = f"; evidence {row['evidence']}" if row.get("evidence") else ""
        check = f" [{row['verdict']}: {row['evidenceCheck']}]" if row.get("evidenceCheck") else ""
        return f"{row['commit'][:12]} {row['detail']}{evidence}{check}"
    text = str(row.get("report") or row.get("detail") or "")
    if row.get("rollout"):
        text += f" | {rollout_note(row['rollout'])}"
    return f"from {row['source']}; {text}" if row.get("source") else text


def rollout_note(rollout: dict[str, Any]) -> str:
    """A deploy's canary steps in one line: each step's weight, decision and both sides' figures."""

    def side(figures: dict[str, Any]) -> str:
        return f"{figures.get('requests', 0):.0f} req, p95 {figures.get('p95_ms')} ms"

    steps = [
        f"step {s.get('step')} {s.get('weight')}% {s.get('decision')} "
        f"(canary {side(s.get('canary') or {})}; baseline {side(s.get('baseline') or {})})"
        for s in rollout.get("steps") or []
    ]
    outcome = str(rollout.get("outcome"))
    if outcome == "ABORTED":
        outcome += f": {rollout.get('reason', '')}"
    where = f"; attestation {rollout['attestation']}" if rollout.get("attestation") else ""
    return f"canary {'; '.join(steps) or 'no step ran'}; {outcome}{where}"
