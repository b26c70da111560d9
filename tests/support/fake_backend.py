"""A backend without processes, for the promotion and rollback rules: it records what it was asked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from codexops.releases.backend import DeployOutcome, Progress
from codexops.releases.model import MANIFEST, Release, read_release, release_id
from codexops.releases.serving import Replica, Serving


def make_release(store: Path, version: str, digest_char: str, schema_head: str = "0001") -> Release:
    """A release record in the store (no built files: the fake backend never runs it)."""
    digest = "sha256:" + digest_char * 64
    release = Release(
        id=release_id(version, digest),
        version=version,
        commit="c0ffee",
        digest=digest,
        built_at=f"2026-11-28T05:{int(version.split('.')[-1]):02d}:00Z",
        path=None,
        image=f"living-codex@{digest}",
        schema_head=schema_head,
    )
    directory = store / f"{version}-{release.short_digest}"
    directory.mkdir(parents=True)
    (directory / MANIFEST).write_text(json.dumps(release.to_json()))
    return read_release(directory)


@dataclass
class FakeReport:
    verdict: str
    directory: str
    release: dict[str, str] | None
    why: list[str] = field(default_factory=list)

    def reasons(self) -> list[str]:
        return self.why


@dataclass
class FakeBackend:
    name: str = "fake"
    deploys_by_image: bool = False
    served: dict[str, Release] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)  # release id -> gate verdict on deploy
    failing_deploys: set[str] = field(default_factory=set)  # release ids whose deploy fails
    backup_dir: Path | None = None  # set: a deploy that moves schema_head forward "takes" a backup here
    calls: list[str] = field(default_factory=list)
    settings_drift: dict[str, str] = field(default_factory=dict)  # stack -> what `drift` reports

    def deploy(self, stack: str, release: Release, progress: Progress) -> DeployOutcome:
        self.calls.append(f"deploy {stack} {release.id}")
        before = self.served.get(stack)
        backup = None
        if self.backup_dir and before and release.schema_head > before.schema_head:
            backup = self.backup_dir / f"{stack}-{len(self.calls)}.dump"
            backup.write_text("dump")
        if release.id in self.failing_deploys:
            return DeployOutcome(False, "replica 1 never became ready", backup)
        self.served[stack] = release
        return DeployOutcome(True, "2 replicas replaced", backup)

    def current_release(self, stack: str) -> Release | None:
        return self.served.get(stack)

    def serving(self, stack: str) -> Serving:
        release = self.served.get(stack)
        if release is None:
            return Serving((Replica("fake", "STOPPED", None, problem="stopped"),))
        return Serving((Replica("fake", "RUNNING", release.id, release.digest),))

    def drift(self, stack: str) -> str:
        return self.settings_drift.get(stack, "")

    def check_release(self, release: Release) -> None:
        """A record in the store has no files to check."""

    def restore_backup(self, stack: str, backup: Path, progress: Progress) -> None:
        self.calls.append(f"restore {stack} {backup.name}")

    def gate(self, stack: str, shape: str, reports: Path, since: datetime | None = None) -> FakeReport:
        release = self.served[stack]
        self.calls.append(f"gate {stack} {shape}" + (" since-deploy" if since else ""))
        verdict = self.verdicts.get(release.id, "PASS")
        if verdict == "CANNOT RUN":
            raise RuntimeError(f"http://{stack}.test does not answer")
        why = ["load: p95 2100 ms above the critical 1000 ms"] if verdict == "FAIL" else []
        named = {"id": release.id, "digest": release.digest}
        directory = reports / f"{stack}-{len(self.calls)}"
        if shape == "gate":
            write_full_gate(directory, stack, named, verdict)
        return FakeReport(verdict, str(directory), named, why)


def write_full_gate(directory: Path, stack: str, release: dict[str, str], verdict: str) -> None:
    """What a full gate leaves: report.json at the spec's load and its attestation (signed when the
    caller set up CODEX_SIGNING_KEY), written by the gate's own code."""
    from dataclasses import asdict

    from codexops.gate import GateReport
    from codexops.releases import attestation, desired
    from infra.spec import load_spec

    directory.mkdir(parents=True, exist_ok=True)
    report = GateReport(stack, stack, f"http://{stack}.test", "t", verdict, [], str(directory), release)
    report.shape, report.scale = "gate", 1.0
    report.target_rps = report.achieved_rps = load_spec(stack, desired.repo_dir()).load.targetRps
    (directory / "report.json").write_text(json.dumps(asdict(report), default=str))
    attestation.attest_gate(directory, lambda _: None)
