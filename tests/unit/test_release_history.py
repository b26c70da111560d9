"""Stack history: durable JSON lines, who and when, what serves, what came before, which backup."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from codexops.releases import history
from codexops.releases.history import Event


@pytest.fixture(autouse=True)
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path / "stacks"))
    return tmp_path / "stacks"


def event(kind: str, release: str, verdict: str = "PASS", backup: str | None = None) -> Event:
    return Event(kind, "production", release, f"sha256:{release}", verdict, backup=backup)


def test_append_stamps_actor_and_time_and_reads_back(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    written = history.append(event("deploy", "1.0.0+aa"))
    assert written.actor == "octocat" and written.at.endswith("Z")
    line = json.loads((stacks / "production" / "history.jsonl").read_text())
    assert line["release"] == "1.0.0+aa" and line["actor"] == "octocat" and line["kind"] == "deploy"
    assert history.read("production") == [written]


def test_actor_is_the_os_user_outside_github(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    assert history.append(event("deploy", "r1")).actor == "alice"


def test_a_torn_last_line_is_skipped(stacks: Path) -> None:
    history.append(event("deploy", "r1"))
    with (stacks / "production" / "history.jsonl").open("a") as handle:
        handle.write('{"kind": "deploy", "rel')
    assert [e.release for e in history.read("production")] == ["r1"]


def test_unknown_kind_or_verdict_and_odd_stack_names_are_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        event("upgrade", "r1")
    with pytest.raises(ValueError, match="verdict"):
        event("deploy", "r1", "OK")
    with pytest.raises(ValueError, match="plain name"):
        history.stack_dir("../etc")


def _append_many(worker: int) -> None:
    for i in range(50):
        history.append(Event("gate", "production", f"w{worker}-{i}", "sha256:x", "PASS", detail="x" * 2000))


def test_concurrent_appends_never_interleave(stacks: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, range(4))
    lines = (stacks / "production" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["detail"] == "x" * 2000 for line in lines)


def test_in_service_and_previous_release_skip_failures_and_gates() -> None:
    events = [
        event("deploy", "r1"),
        event("gate", "r1"),
        event("promote", "r2", "WARN"),
        event("deploy", "r3", "FAIL"),
        event("rollback", "r2"),
        event("promote", "r4", "REFUSED"),
    ]
    current = history.in_service(events)
    assert current is not None and current.release == "r2"
    previous = history.previous_release(events, "r2")
    assert previous is not None and previous.release == "r1"
    assert history.previous_release([event("deploy", "r1")], "r1") is None


def test_backup_to_restore_is_the_oldest_since_the_target_last_served() -> None:
    events = [
        event("deploy", "r1"),
        event("deploy", "r2", backup="b2"),
        event("deploy", "r3", backup="b3"),
    ]
    assert history.backup_to_restore(events, "r1") == "b2"
    assert history.backup_to_restore(events, "r2") == "b3"
    # a failed deploy that migrated is counted; once rolled back past it, it is not restored again
    failed = [event("deploy", "r1"), event("deploy", "r2", "FAIL", backup="b2")]
    assert history.backup_to_restore(failed, "r1") == "b2"
    assert history.backup_to_restore([*failed, event("rollback", "r1")], "r1") is None
