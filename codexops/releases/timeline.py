"""`codexops history`: a stack's desired-state commits (its file's git log) merged with the events
recorded on this machine (gates, deploys, verifications, failed deploys), oldest first.

A commit row has kind "commit" (a commit that changed the release the file names): the release it
named, the evidence digest and the actor from the commit's trailers (the author for a hand-made
commit), the commit id and subject.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from codexops.releases import gitops, history
from codexops.releases.gitops import Change

Row = dict[str, Any]


def _utc(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit_row(stack: str, change: Change) -> Row:
    return {
        "kind": "commit",
        "stack": stack,
        "release": change.state.release or "",
        "digest": change.trailers.get("Release-Digest", ""),
        "verdict": "COMMITTED",
        "detail": change.subject,
        "evidence": change.evidence,
        "commit": change.commit,
        "actor": change.actor,
        "at": _utc(change.at),
    }


def merged(stack: str) -> list[Row]:
    """Commits and recorded events by time; at the same second a commit comes first (it precedes its
    deploy)."""
    events: list[tuple[str, int, Row]] = [(r["at"], 0, r) for r in map(lambda c: commit_row(stack, c), _log(stack))]
    events += [(e.at, 1, asdict(e)) for e in history.read(stack)]
    return [row for _, _, row in sorted(events, key=lambda item: (item[0], item[1]))]


def _log(stack: str) -> list[Change]:
    """The stack file's commits that changed the release it names, oldest first (edits of other keys
    are not deploys); empty outside a Git repository."""
    from codexops.releases import desired

    if not gitops.is_repository(desired.repo_dir()) or not desired.path_of(stack).exists():
        return []
    changes, named = [], None
    for change in reversed(gitops.log(stack)):
        if change.state.release != named:
            changes.append(change)
        named = change.state.release
    return changes


def note(row: Row) -> str:
    """The last column of the table: the commit and evidence, or the report / detail."""
    if row["kind"] == "commit":
        evidence = f"; evidence {row['evidence']}" if row.get("evidence") else ""
        return f"{row['commit'][:12]} {row['detail']}{evidence}"
    text = str(row.get("report") or row.get("detail") or "")
    return f"from {row['source']}; {text}" if row.get("source") else text
