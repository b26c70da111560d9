"""The local backend: releases deployed to a stack's local environment (codexops/localenv.py).

A deploy is a rolling replacement behind nginx, one replica at a time: the replica is stopped (SIGTERM:
it fails readiness and keeps serving for the spec's drain seconds, then closes its listener and
finishes its requests), restarts from the new release's virtualenv on the same port, and the next
replica follows once it is ready and serves the new version. Meanwhile nginx passes every request the
stopped replica refuses to connect to on to another replica (`proxy_next_upstream error`; a request
that was never sent is retried whatever its method), so clients see no failure. nginx is not reloaded:
a reload closes the clients' idle keep-alive connections, and a client sending on one at that instant
gets no answer. A replica that does not become ready is put back on its previous release and the
deploy stops there.

What a stack serves is asked of its replicas (`serving`), not read from state.json: state.json is what
the deployer last wrote, before it knew whether the replica would serve.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx

from codexops import http_client, localenv
from codexops.gate import GateReport, run_gate
from codexops.postgres_cluster import as_postgres, postgres_bin
from codexops.releases import manifest
from codexops.releases.backend import DeployOutcome, Progress, ReleaseTampered
from codexops.releases.build import release_differences
from codexops.releases.local_canary import LocalCanary, leftover
from codexops.releases.local_replicas import apply_settings, start_replica
from codexops.releases.model import MANIFEST, Release, ReleaseNotFound, load_release, read_release
from codexops.releases.serving import Replica, Serving
from codexops.rollout.driver import RolloutResult, run_canary
from codexops.rollout.traffic import rehearsal_traffic
from codexops.targets import local_target
from infra.app_env import GATE_USERNAME

ROUTED_TIMEOUT = 30.0
DATABASE = "livingcodex"


class LocalBackend:
    name = "local"
    deploys_by_image = False

    def deploy(self, stack: str, release: Release, progress: Progress) -> DeployOutcome:
        entry = None if release.path is None else release.path / "venv" / "bin" / "codexops"
        if entry is None or not entry.exists():
            return DeployOutcome(False, f"release {release.id} has no local build: run `codexops release build`")
        try:
            self.check_release(release)
        except ReleaseTampered as exc:
            return DeployOutcome(False, str(exc))
        local = localenv.local_stack(stack)
        if localenv.supervisord_pid(local) is None:
            progress(f"  stack {stack} is not running: starting it on its current release first")
            try:
                localenv.up(local.spec, progress)
            except localenv.LocalEnvError as exc:
                return DeployOutcome(False, f"stack {stack} could not start: {exc}")
        try:
            backup = backup_if_schema_moves_forward(local, release, progress)
        except (subprocess.SubprocessError, OSError) as exc:
            return DeployOutcome(False, f"the backup before a schema change failed, nothing deployed: {exc}")
        apply_settings(local, progress)
        if leftover(local):
            progress("  a canary of an unfinished rollout still runs: removed first")
            LocalCanary(local, release).stop_canary(progress)
        asked = {replica.name: replica for replica in self.serving(stack).replicas}
        rollout = canary_steps(local, release, list(asked.values()), progress)
        if rollout is not None and rollout.outcome == "ABORTED":
            _await_scrapes(local, progress)
            return DeployOutcome(
                False, f"canary aborted, nothing else changed: {rollout.reason}", backup, rollout.as_dict()
            )
        for app, port in zip(local.apps, local.ports.apps, strict=True):
            settings = environment_drift(local, app)
            if asked[app].sound and asked[app].release == release.id and not settings:  # e.g. a killed deploy's half
                progress(f"  {app} (:{port}) serves {release.id} already, verified, with the spec's settings: kept")
                continue
            if settings and asked[app].release == release.id:
                progress(f"  {app}: settings changed ({'; '.join(settings)})")
            progress(f"  {app} (:{port}) -> {release.id}")
            try:
                problem = replace_replica(local, app, port, release, progress)
            except localenv.LocalEnvError as exc:
                return DeployOutcome(False, f"{app}: {exc}", backup)
            if problem:
                _await_scrapes(local, progress)
                return DeployOutcome(False, f"{app} did not serve {release.id}: {problem}; put back", backup)
        if rollout is not None:
            LocalCanary(local, release).stop_canary(progress)  # the replicas serve its release now
        remove_extra_replicas(local, progress)
        _await_scrapes(local, progress)
        detail = f"{len(local.apps)} replicas of stack {stack} serve {release.id}"
        if rollout is not None:
            detail += f" after {len(rollout.steps)} canary steps"
        summary = rollout.as_dict() if rollout else None
        return DeployOutcome(True, detail + (f"; backup {backup}" if backup else ""), backup, summary)

    def current_release(self, stack: str) -> Release | None:
        """The release every replica serves, as they say (None when one is down, differs or is edited)."""
        uniform = self.serving(stack).uniform
        if uniform is None:
            return None
        try:
            return load_release(uniform)
        except ReleaseNotFound:  # served, but gone from the store: what the deployer recorded of it
            records = localenv.read_state(localenv.local_stack(stack))["releases"].values()
            return next((Release.from_json(r) for r in records if r["id"] == uniform), None)

    def serving(self, stack: str) -> Serving:
        """Each replica as it is now: supervisord's state, its /health, the folder its pid runs from."""
        local = localenv.local_stack(stack)
        states = localenv.process_states(local)
        checked: dict[Path, list[str]] = {}  # a folder both replicas run is hashed once
        replicas = tuple(
            ask_replica(local, app, port, states.get(app, "STOPPED" if states else "NOT RUNNING"), checked)
            for app, port in zip(local.apps, local.ports.apps, strict=True)
        )
        return Serving(replicas)

    def drift(self, stack: str) -> str:
        """What runs with other settings than the committed spec renders now (the gateway's, Prometheus'
        and Alertmanager's files, each replica's environment as it started, replicas beyond the spec's
        count); "" when none. The release each replica serves is `serving`'s concern."""
        local = localenv.local_stack(stack)
        if localenv.supervisord_pid(local) is None:
            return ""
        lines = [f"  {path.name}: not what the spec renders now" for path in localenv.stale_files(local)]
        lines += [f"  {app}: {change}" for app in local.apps for change in environment_drift(local, app)]
        if leftover(local):
            lines.append("  canary: a canary of an unfinished rollout still runs (the next deploy removes it)")
        extra = extra_replicas(local)
        if extra:
            lines.append(f"  {', '.join(extra)}: beyond the spec's {len(local.apps)} replicas")
        return "\n".join(lines)

    def check_release(self, release: Release) -> None:
        """Refuse (ReleaseTampered) a release whose folder no longer holds what was built."""
        found = release_differences(release)
        if found:
            raise ReleaseTampered(tampered_message(release, found))

    def restore_backup(self, stack: str, backup: Path, progress: Progress) -> None:
        restore(localenv.local_stack(stack), backup, progress)

    def gate(self, stack: str, shape: str, reports: Path, since: datetime | None = None) -> GateReport:
        return run_gate(local_target(stack, stack), shape=shape, reports=reports, alert_wait=1.0, since=since)


def canary_steps(
    local: localenv.LocalStack, release: Release, replicas: list[Replica], progress: Progress
) -> RolloutResult | None:
    """The spec's canary steps, when it has some and another release serves to compare with; None when
    the release goes straight to the replicas (no steps, nothing serving, or this release already)."""
    steps = local.spec.rollout.steps
    if not steps or not any(r.sound and r.release and r.release != release.id for r in replicas):
        return None
    progress(f"  canary: {len(steps)} steps before the replicas move ({', '.join(f'{s.weight}%' for s in steps)})")
    platform = LocalCanary(local, release)
    rps = local.spec.rollout.trafficRps
    if not rps:
        return run_canary(platform, release.id, local.spec, progress)
    values = localenv.local_secrets(local)
    progress(f"  rehearsal traffic: {rps:g} requests/s through the gateway during each step")
    with rehearsal_traffic(local.gateway_url(), GATE_USERNAME, values["GATE_PASSWORD"], rps) as sent:
        result = run_canary(platform, release.id, local.spec, progress)
    progress(f"  rehearsal traffic: {sent.requests} requests, {sent.failed} failed")
    return result


def tampered_message(release: Release, found: list[str]) -> str:
    return (
        f"release {release.id} in {release.path} no longer matches what was built ({len(found)} differ: "
        f"{manifest.summary(found)}); rebuild it: `codexops release build` at commit {release.commit} "
        "(the edited folder is moved aside), then deploy or sync again"
    )


# -- what each replica serves ---------------------------------------------------------------------
def ask_replica(local: localenv.LocalStack, app: str, port: int, state: str, checked: dict[Path, list[str]]) -> Replica:
    if state != "RUNNING":
        return Replica(app, state, None, problem=state.lower().replace("_", " "))
    answer = _health(port)
    pid = _pid(local, app)
    folder = executing_folder(pid)
    replica = Replica(
        app,
        state,
        _text(answer.get("version")),
        _text(answer.get("digest")),
        str(folder) if folder else None,
        "" if answer else "does not answer /health",
        _seconds(answer.get("startedAt")),
    )
    if not answer:
        return replica
    return replace(replica, problem=_problem(replica, pid, folder, checked))


def _problem(replica: Replica, pid: int, folder: Path | None, checked: dict[Path, list[str]]) -> str:
    """What is wrong with a replica that answers ("" when it runs its release as built)."""
    if folder is None or not (folder / MANIFEST).is_file():
        return "runs no release from the store (a checkout's code)"
    built = read_release(folder)
    if (built.id, built.digest) != (replica.release, replica.digest):
        return f"runs {folder.name} but reports {replica.release} ({replica.digest}): not what its folder holds"
    if started_with(pid, "CODEX_RELEASE_MANIFEST") not in (None, built.manifest_digest):
        return f"started from another build of {built.id} (since moved aside): restart it"
    if folder not in checked:
        checked[folder] = release_differences(built)
    return f"its release folder's content drifted: {manifest.summary(checked[folder])}" if checked[folder] else ""


def stack_release(serving: Serving) -> dict[str, str] | None:
    """`status --json`'s release: {id, digest} when every replica serves it soundly; "mixed: ..." naming
    each replica otherwise; None when no replica reports a release (this checkout's code, or stopped)."""
    if serving.uniform:
        return {"id": serving.uniform, "digest": serving.replicas[0].digest or ""}
    if not any(replica.release for replica in serving.replicas):
        return None
    return {"id": "mixed: " + serving.describe(), "digest": ""}


def _text(value: object) -> str | None:
    return str(value) if value else None


def _seconds(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def started_with(pid: int, name: str) -> str | None:
    """The value of `name` in the process's environment as it started (None when unset or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes() if pid > 0 else b""
    except OSError:
        return None
    prefix = name.encode() + b"="
    return next((item[len(prefix) :].decode() for item in raw.split(b"\0") if item.startswith(prefix)), None)


def _health(port: int) -> dict[str, object]:
    """The replica's /health body ({} when it does not answer); a 503 (unhealthy) still names its release."""
    try:
        body = http_client.get(f"http://{localenv.HOST}:{port}/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _pid(local: localenv.LocalStack, app: str) -> int:
    return localenv.supervisor(local).pid(app)


def executing_folder(pid: int) -> Path | None:
    """The release folder the process runs from: `<folder>/venv/bin/python <folder>/venv/bin/codexops`
    in its command line (the launcher execs the release's entry point; /proc/<pid>/exe is the base
    interpreter the venv links to, the same for every release)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if pid > 0 else []
    except OSError:
        return None
    for raw in arguments:
        path = Path(raw.decode(errors="replace"))
        if path.parent.name == "bin" and path.parent.parent.name == "venv":
            return path.parents[2]
    return None


# -- the spec's settings ---------------------------------------------------------------------------
def environment_drift(local: localenv.LocalStack, app: str) -> list[str]:
    """The spec's settings (thresholds, proxies, drain: localenv.spec_env) a running replica started
    with other values of; asked of the process (/proc/<pid>/environ). Empty for a replica not running."""
    pid = _pid(local, app)
    if pid <= 0:
        return []
    changed = []
    for key, value in localenv.spec_env(local.spec).items():
        started = started_with(pid, key)
        if started != value:
            changed.append(f"{key}={started if started is not None else '(unset)'} running, {value} in the spec")
    return changed


def extra_replicas(local: localenv.LocalStack) -> list[str]:
    """Replica programs supervisord runs beyond the spec's count (after `replicas` went down)."""
    states = localenv.process_states(local)
    return sorted(n for n in states if n.startswith("app-") and n not in local.apps)


def remove_extra_replicas(local: localenv.LocalStack, progress: Progress) -> None:
    extra = extra_replicas(local)
    if extra:
        progress(f"  {', '.join(extra)}: beyond the spec's {len(local.apps)} replicas, stopped and removed")
        state = localenv.read_state(local)
        for app in extra:
            state["releases"].pop(app, None)
        localenv.write_state(local, state)
        localenv.write_supervisor_conf(local, state)
        localenv.supervisor(local).update(*extra)  # a group gone from the config is removed


# -- the rolling replacement ----------------------------------------------------------------------
def _await_scrapes(local: localenv.LocalStack, progress: Progress) -> None:
    """Return once Prometheus has scraped every replica since its restart (what the gate checks next)."""
    try:
        localenv.wait_until(lambda: localenv.replicas_scraped(local), "scrapes", 30, progress, local)
    except localenv.LocalEnvError:
        progress("  Prometheus has not scraped every replica within 30 s")


def _set_release(local: localenv.LocalStack, app: str, release: dict[str, object] | None) -> None:
    state = localenv.read_state(local)
    if release is None:
        state["releases"].pop(app, None)
    else:
        state["releases"][app] = release
    localenv.write_state(local, state)
    localenv.write_supervisor_conf(local, state)
    # Only this replica's program: a changed setting in the others' environment waits for their turn.
    localenv.supervisor(local).update(app)


def replace_replica(
    local: localenv.LocalStack, app: str, port: int, release: Release, progress: Progress
) -> str | None:
    previous = localenv.read_state(local)["releases"].get(app)
    localenv.supervisor(local).stop(app)  # SIGTERM: it drains, then exits
    _set_release(local, app, release.to_json())
    problem = start_replica(local, app, port, release.id)
    if problem:
        progress(f"  {app} failed on {release.id} ({problem}); back to {previous['id'] if previous else 'checkout'}")
        localenv.supervisor(local).stop(app)
        _set_release(local, app, previous)
        if start_replica(local, app, port, previous["id"] if previous else None):
            progress(f"  {app} did not come back on its previous release either")
            return problem
    if not _routed_again(local, app):
        progress(f"  the gateway has not routed to {app} again within {ROUTED_TIMEOUT:.0f} s")
    if not problem:
        progress(f"  {app} serves {release.id}")
    return problem


def _routed_again(local: localenv.LocalStack, app: str) -> bool:
    """nginx answers from the replica again: after refused connections it may hold it out for up to
    fail_timeout, and the next replica must not stop before this one carries traffic."""
    instance = f"{local.name}-{app}"
    began = time.monotonic()
    with httpx.Client(base_url=local.gateway_url(), timeout=5) as client:
        while time.monotonic() - began < ROUTED_TIMEOUT:
            try:
                if client.get("/health").json().get("instance") == instance:
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
    return False


# -- database backup and restore -----------------------------------------------------------------
def database_revision(local: localenv.LocalStack) -> str | None:
    if not localenv.sql(local, "SELECT to_regclass('public.alembic_version')", DATABASE):
        return None
    return localenv.sql(local, "SELECT version_num FROM alembic_version", DATABASE) or None


def release_revisions(release: Release) -> list[str]:
    """Every migration revision the release knows, from its own code."""
    assert release.path is not None
    code = (
        "from alembic.config import Config; from alembic.script import ScriptDirectory; "
        "from app.storage.migrate import MIGRATIONS; c = Config(); "
        "c.set_main_option('script_location', str(MIGRATIONS)); "
        "print(' '.join(s.revision for s in ScriptDirectory.from_config(c).walk_revisions()))"
    )
    python = release.path / "venv" / "bin" / "python"
    # cwd: the release's folder, so `python -c` cannot import a checkout's code from the current folder
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True, cwd=release.path
    )
    return result.stdout.split()


def _as_superuser(local: localenv.LocalStack, tool: str) -> list[str]:
    """A PostgreSQL client tool run as postgres against the stack's server, over its socket folder."""
    host, port = str(local.postgres_dir), str(local.ports.postgres)
    return [*as_postgres(), postgres_bin(tool), "-h", host, "-p", port, "-U", "postgres"]


def backup_if_schema_moves_forward(local: localenv.LocalStack, release: Release, progress: Progress) -> Path | None:
    current = database_revision(local)
    if current is None or current == release.schema_head or current not in release_revisions(release):
        return None  # no data yet, same schema, or not forward (an older release: rollback restores)
    backups = local.runtime / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = backups / f"{stamp}-{current}-to-{release.schema_head}.dump"
    progress(f"  schema {current} -> {release.schema_head}: pg_dump -Fc to {path}")
    command = [*_as_superuser(local, "pg_dump"), "-Fc", DATABASE]
    with path.open("wb") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.PIPE, timeout=600, check=True)
    path.chmod(0o600)
    return path


def restore(local: localenv.LocalStack, backup: Path, progress: Progress) -> None:
    """The runbook's Database Rollback: the database as the backup holds it; later writes are gone."""
    progress(f"  restoring {backup} into {DATABASE} of stack {local.name}")
    # Into an empty database: pg_restore --clean drops only what the archive holds, so tables a newer
    # release created would survive it.
    localenv.sql(local, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    localenv.sql(local, f"CREATE DATABASE {DATABASE} OWNER codex")
    command = [*_as_superuser(local, "pg_restore"), "--single-transaction", "-d", DATABASE]
    with backup.open("rb") as archive:
        subprocess.run(command, stdin=archive, capture_output=True, timeout=600, check=True)
