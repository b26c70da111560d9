"""Local stacks from their specs, side by side; releases deployed to them by a rolling replacement
that fails no request under load; a backup before a schema-forward deploy; the gate's report names
the release and the spec it judged; a fixing release ships while the slow release's latency alert
still fires (fix-forward). Real processes on the ports stack_ports gives (CODEX_PORT_BASE: a range per run)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codexops import http_client, localenv
from codexops.cli import cli
from codexops.gate import check_alerts, run_gate
from codexops.postgres_cluster import postgres_bin
from codexops.releases.local_backend import LocalBackend, database_revision
from codexops.releases.model import Release
from codexops.releases.shipping import ship
from codexops.targets import resolve_target, spec_digest
from infra.spec import load_spec
from tests.support.releases import build, copy_with_migration
from tests.support.traffic import Traffic
from tests.support.verdicts import slow_release_refused
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
READS = ("/health", "/health/ready", "/api/nodes?limit=5")  # anonymous: 401 is an answer, not a failure
runner = CliRunner()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Stacks and releases of this module live in a temporary folder, not in the clone's .local."""
    root = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CODEX_STACKS_DIR", str(root / "stacks"))
        patch.setenv("CODEX_RELEASES_DIR", str(root / "releases"))
        patch.setenv("CODEX_BACKEND", "local")
        try:
            yield root
        finally:
            for stack in ("production", "staging"):
                localenv.down(print, purge=True, stack=stack)


@pytest.fixture(scope="module")
def staging(stores: Path) -> localenv.LocalStack:
    gateway = localenv.stack_ports(load_spec("staging")).gateway
    if localenv.port_taken(gateway):
        pytest.fail(f"port {gateway} is taken: another local environment runs (codexops down)")
    result = runner.invoke(cli, ["up", "--stack", "staging"])
    assert result.exit_code == 0, result.output
    return localenv.local_stack("staging")


@pytest.fixture
def quiet_prometheus(staging: localenv.LocalStack) -> localenv.LocalStack:
    """Staging's Prometheus started again on an empty store: its windows hold only the test's requests,
    whatever ran before (thousands of fast ones would keep a 5-minute p95 low for minutes)."""
    localenv.supervisor(staging).stop("prometheus")
    shutil.rmtree(staging.runtime / "prometheus" / "data", ignore_errors=True)
    localenv.supervisor(staging).start("prometheus")
    ready = f"{staging.prometheus_url()}/-/ready"
    wait_until(lambda: http_client.get(ready, timeout=2).status_code == 200, 60, "staging's Prometheus ready")
    return staging


@pytest.fixture
def serving(staging: localenv.LocalStack) -> Release:
    """A release every staging replica serves, deployed here when none is (`up` alone serves no release)."""
    release = LocalBackend().current_release("staging")
    if release is None:
        release = build()
        assert LocalBackend().deploy("staging", release, print).ok
    return release


def _status(stack: str) -> dict[str, object]:
    result = runner.invoke(cli, ["status", "--stack", stack, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_staging_and_production_run_side_by_side_from_their_specs(staging: localenv.LocalStack) -> None:
    started = runner.invoke(cli, ["up", "--stack", "production"])
    assert started.exit_code == 0, started.output
    try:
        views = {stack: _status(stack) for stack in ("staging", "production")}
        for stack, view in views.items():  # without CODEX_PORT_BASE: the runbook's :5002 and production's 5200
            assert view["gateway"] == f"http://127.0.0.1:{localenv.stack_ports(load_spec(stack)).gateway}"
        for stack, view in views.items():
            spec = load_spec(stack)
            processes = view["processes"]
            assert isinstance(processes, list)
            apps = [p for p in processes if p["name"].startswith("app-")]
            assert len(apps) == spec.replicas and all(p["state"] == "RUNNING" for p in processes)
            health = http_client.get(f"{view['gateway']}/health", timeout=5).json()
            assert health["environment"] == spec.environment
            memory = http_client.get(f"{view['gateway']}/health/memory", timeout=5).json()
            assert memory["memoryUsage"]["limitBytes"] == spec.resources.memory_limit_bytes
            assert memory["thresholds"]["warningPercent"] == spec.thresholds.memoryUsagePercent.warning
        ports = {stack: {p["port"] for p in view["processes"]} for stack, view in views.items()}  # type: ignore[attr-defined]
        assert not ports["staging"] & ports["production"]
    finally:
        stopped = runner.invoke(cli, ["down", "--stack", "production"])
    assert stopped.exit_code == 0, stopped.output
    assert not [p.name for p in localenv.local_stack("production").processes if localenv.port_taken(p.port)]
    assert _status("staging")["gateway"] == views["staging"]["gateway"]  # staging untouched


def _versions(stack: localenv.LocalStack) -> set[str]:
    return {
        http_client.get(f"{url}/health", timeout=5).json()["version"] for url in resolve_target(stack.name).app_urls
    }


def _firing(prometheus: str) -> set[str]:
    alerts = http_client.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


def test_a_fixing_release_ships_while_the_slow_releases_latency_alert_still_fires(
    quiet_prometheus: localenv.LocalStack, tmp_path: Path
) -> None:
    """Fix-forward: the verification of the fix judges the fix's own samples; a plain gate of the
    slow release, and the slow release's own window, still FAIL."""
    staging = quiet_prometheus  # CodexP95LatencyCritical's 5-minute window: this test's requests only
    good = build(FIX_FORWARD="the fixing release")  # not the rolling deploy's release: that one must move
    slow = build(CHAOS_LATENCY_MS="1500")
    assert LocalBackend().deploy("staging", slow, print).ok
    slow_since = datetime.now(UTC)
    target = resolve_target("staging")  # names the slow release now serving
    prometheus = target.prometheus_url
    assert prometheus and target.release == {"id": slow.id, "digest": slow.digest}
    # Slow reads (CodexP95LatencyCritical holds for its `for: 1m`); meanwhile a full gate (half scale,
    # as the healthy one in test_bad_releases) judges the slow stack. Traffic starts after the deploy:
    # during it, nginx (least connections) would keep the deploy's routing probe off the slow replica.
    with Traffic(staging.gateway_url(), ("/api/nodes?limit=5",), threads=8):
        full = run_gate(target, shape="gate", scale=0.5, reports=tmp_path / "full", alert_wait=1.0)
        wait_until(lambda: "CodexP95LatencyCritical" in _firing(prometheus), 120, "CodexP95LatencyCritical firing")
        plain, own_window = check_alerts(target, 0), check_alerts(target, 0, since=slow_since)
    assert slow_release_refused(full), (full.verdict, full.reasons())
    assert plain.status == "fail" and "CodexP95LatencyCritical" in " ".join(plain.reasons)
    assert own_window.status == "fail", own_window.figures  # the slow release's own samples are slow
    assert "CodexP95LatencyCritical" not in own_window.figures["predating_deploy"]

    shipped = ship(LocalBackend(), "staging", good, kind="deploy", reports=tmp_path / "verify", say=print)
    assert shipped.exit_code == 0 and shipped.verdict in ("PASS", "WARN"), shipped.message
    assert _versions(staging) == {good.id}
    report = json.loads(next((tmp_path / "verify").glob("*/report.json")).read_text())
    alerts = next(step for step in report["steps"] if step["name"] == "alerts")
    assert "CodexP95LatencyCritical" in alerts["figures"]["predating_deploy"]  # it fired during the check
    assert "CodexP95LatencyCritical" in _firing(prometheus)  # and still does: only the window moved


def test_a_rolling_deploy_under_load_fails_no_request(staging: localenv.LocalStack) -> None:
    release = build()
    with Traffic(staging.gateway_url(), READS) as load:
        outcome = LocalBackend().deploy("staging", release, print)
    print(f"rolling deploy under load: {load.requests} requests, {len(load.failures)} failed")
    assert outcome.ok, outcome.detail
    assert load.requests > 200, f"too little load to mean anything: {load.requests} requests"
    assert load.failures == [], f"{len(load.failures)} of {load.requests} failed: {load.failures[:5]}"
    assert _versions(staging) == {release.id}
    assert LocalBackend().current_release("staging") == release
    assert _status("staging")["release"] == {"id": release.id, "digest": release.digest}
    assert outcome.backup is None  # same schema head: nothing to back up


def test_the_gate_report_names_the_release_and_the_spec(serving: Release, tmp_path: Path) -> None:
    release = serving
    report = run_gate(resolve_target("staging"), shape="smoke", scale=0.5, reports=tmp_path, alert_wait=1.0)
    written = json.loads((Path(report.directory) / "report.json").read_text())
    assert written["release"] == {"id": release.id, "digest": release.digest}
    assert written["spec_digest"] == spec_digest(load_spec("staging")) and written["spec_digest"].startswith("sha256:")
    assert not (Path(report.directory) / "target.json").exists()  # it carried the admin password


def test_a_release_that_cannot_start_is_put_back(staging: localenv.LocalStack, serving: Release) -> None:
    before = serving
    broken = build(CODEX_URLS="not-a-url")  # every replica of it refuses to start
    with Traffic(staging.gateway_url(), READS, threads=2) as load:
        outcome = LocalBackend().deploy("staging", broken, print)
    assert not outcome.ok and "app-1" in outcome.detail
    assert load.failures == [], load.failures[:5]
    assert _versions(staging) == {before.id}


def test_a_schema_forward_deploy_takes_a_backup_first(staging: localenv.LocalStack, tmp_path: Path) -> None:
    before = database_revision(staging)
    ahead = build(copy_with_migration(tmp_path / "tree", revision="9001"))
    outcome = LocalBackend().deploy("staging", ahead, print)
    assert outcome.ok, outcome.detail
    assert outcome.backup is not None and outcome.backup.stat().st_size > 0
    listing = subprocess.run(
        [postgres_bin("pg_restore"), "--list", str(outcome.backup)], capture_output=True, text=True, check=True
    ).stdout
    assert "alembic_version" in listing and "release_probe_9001" not in listing  # taken before the migration
    assert database_revision(staging) == "9001"
    LocalBackend().restore_backup("staging", outcome.backup, print)
    assert database_revision(staging) == before
