"""Starting a local replica and re-reading rendered settings: what a rolling replacement and a canary share."""

from __future__ import annotations

import time

import httpx

from codexops import http_client, localenv
from codexops.releases.backend import Progress

READY_TIMEOUT = 90.0


def apply_settings(local: localenv.LocalStack, progress: Progress) -> None:
    """Write the rendered files that changed and have their processes re-read them (SIGHUP: nginx keeps
    its connections; a replica removed from the spec leaves the gateway before it stops)."""
    localenv.make_folders(local)
    stale = localenv.stale_files(local)
    if not stale:
        return
    texts = localenv.rendered_files(local)
    for path in stale:
        path.write_text(texts[path])
    readers = sorted({localenv.READERS[path.name] for path in stale})
    progress(f"  settings changed in {', '.join(p.name for p in stale)}: reloading {', '.join(readers)}")
    localenv.supervisor(local).signal("HUP", *readers)


def serves(port: int, release_id: str | None) -> bool:
    """Ready, and (when a release is named) serving that release."""
    try:
        if http_client.get(f"http://{localenv.HOST}:{port}/health/ready", timeout=2).status_code != 200:
            return False
        return (
            release_id is None
            or http_client.get(f"http://{localenv.HOST}:{port}/health", timeout=5).json().get("version") == release_id
        )
    except (httpx.HTTPError, ValueError):
        return False


def start_replica(local: localenv.LocalStack, app: str, port: int, release_id: str | None) -> str | None:
    """Start the replica and wait until it serves; the reason when it does not."""
    control = localenv.supervisor(local)
    try:
        control.start(app)
    except localenv.LocalEnvError as exc:  # it could not even be spawned
        return str(exc)
    first_pid = control.pid(app)
    began = time.monotonic()
    while time.monotonic() - began < READY_TIMEOUT:
        if serves(port, release_id):
            return None
        # A replica that exits while starting is restarted by supervisord: a new pid, or a failed state.
        state = localenv.process_states(local).get(app)
        pid = control.pid(app)
        if state in ("FATAL", "BACKOFF", "EXITED") or pid != first_pid:
            log = local.runtime / "logs" / f"{app}.out.log"
            tail = log.read_text()[-600:].strip().splitlines()[-3:] if log.exists() else []
            return "it exited: " + " | ".join(tail)
        time.sleep(0.3)
    return f"not ready (or not serving {release_id}) within {READY_TIMEOUT:.0f} s"
