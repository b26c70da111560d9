"""What a stack serves, from its replicas' own answers: uniform only when every replica serves one release
soundly; the folder a replica's process runs from, read from /proc; a stack whose file names the release
but that does not serve it everywhere is repaired without a commit; a release serving is unverified
until a verification of it passes after the newest replica started."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from codexops.releases import gitops, history, promote
from codexops.releases.history import Event
from codexops.releases.local_backend import executing_folder, stack_release
from codexops.releases.serving import Replica, Serving, unverified
from tests.support.evidence import commit_evidence
from tests.support.fake_backend import FakeBackend, make_release

A, B = "1.0.1+aaaaaaaaaaaa", "1.0.2+bbbbbbbbbbbb"


def running(name: str, release: str, digest: str = "sha256:a", problem: str = "") -> Replica:
    return Replica(name, "RUNNING", release, digest, f"/store/{release}", problem)


def test_a_stack_serves_a_release_only_when_every_replica_does_soundly() -> None:
    both = Serving((running("app-1", A), running("app-2", A)))
    assert both.uniform == A and both.differences(A) == [] and both.describe() == A
    assert stack_release(both) == {"id": A, "digest": "sha256:a"}


def test_a_stopped_replica_is_not_serving_and_is_named() -> None:
    half = Serving((running("app-1", A), Replica("app-2", "STOPPED", None, problem="stopped")))
    assert half.uniform is None
    assert half.differences(A) == ["app-2 serves no release (stopped)"]
    assert stack_release(half) == {
        "id": "mixed: app-1 serves " + A + "; app-2 serves no release (stopped)",
        "digest": "",
    }


def test_mixed_releases_name_each_replica_and_what_it_serves() -> None:
    mixed = Serving((running("app-1", B, "sha256:b"), running("app-2", A)))
    assert mixed.uniform is None
    assert mixed.differences(B) == [f"app-2 serves {A}"]
    assert mixed.differences(A) == [f"app-1 serves {B}"]


def test_edited_bytes_make_a_replica_unsound_though_it_reports_the_release() -> None:
    drifted = Serving((running("app-1", A), running("app-2", A, problem="its release folder's content drifted")))
    assert drifted.uniform is None
    assert drifted.differences(A) == [f"app-2 serves {A} (its release folder's content drifted)"]


def test_no_replica_is_never_in_sync() -> None:
    assert Serving(()).uniform is None and Serving(()).differences(A) == ["no replica runs"]


def test_the_executing_folder_is_read_from_the_processs_command_line(tmp_path: Path) -> None:
    folder = tmp_path / "store" / "1.0.1-aaaaaaaaaaaa"
    (folder / "venv" / "bin").mkdir(parents=True)
    (folder / "venv" / "bin" / "python").symlink_to(sys.executable)
    process = subprocess.Popen([str(folder / "venv" / "bin" / "python"), "-c", "import time; time.sleep(30)"])
    try:
        began = time.monotonic()
        while executing_folder(process.pid) is None and time.monotonic() - began < 10:
            time.sleep(0.05)  # until the exec has happened
        assert executing_folder(process.pid) == folder
    finally:
        process.kill()
        process.wait()
    assert executing_folder(process.pid) is None and executing_folder(0) is None


def test_a_named_release_not_served_everywhere_is_deployed_without_a_commit(store: Path, tmp_path: Path) -> None:
    r1 = make_release(store, "1.0.1", "a")
    commit_evidence("production", r1)
    backend = FakeBackend(served={"production": r1})
    named = promote.change(backend, "production", r1, kind="deploy", reports=tmp_path, say=print, commit_only=True)
    assert named.verdict == "COMMITTED"
    commits = len(gitops.log("production"))
    del backend.served["production"]  # a replica stopped: the stack no longer serves r1 as a whole
    repaired = promote.change(backend, "production", r1, kind="deploy", reports=tmp_path, say=print)
    assert (repaired.exit_code, repaired.verdict) == (0, "PASS"), repaired.message
    assert backend.calls[-2:] == [f"deploy production {r1.id}", "gate production smoke since-deploy"]
    assert len(gitops.log("production")) == commits  # the file named it already: nothing to commit
    again = promote.change(backend, "production", r1, kind="deploy", reports=tmp_path, say=print)
    assert again.verdict == "NO CHANGE"


def test_a_release_serving_is_unverified_until_a_verification_passes_after_its_newest_start(store: Path) -> None:
    started = time.time() - 60
    asked = Serving(
        (replace(running("app-1", A), started_at=started - 30), replace(running("app-2", A), started_at=started))
    )
    assert "no verification of " + A + " passed on production" in unverified("production", A, asked)
    at = datetime.fromtimestamp(started - 10, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    history.append(Event("deploy", "production", A, "sha256:a", "PASS", at=at))  # before app-2 restarted
    history.append(Event("deploy", "production", A, "sha256:a", "FAIL"))  # after, but failed
    history.append(Event("gate", "production", B, "sha256:b", "PASS"))  # after, another release
    assert unverified("production", A, asked)
    history.append(Event("sync", "production", A, "sha256:a", "WARN"))
    assert unverified("production", A, asked) == ""
    assert unverified("production", B, Serving((running("app-1", B),))) == ""  # no start time: not judged
