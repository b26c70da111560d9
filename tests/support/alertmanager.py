"""A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, for tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import free_port, wait_for_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


@contextmanager
def running_alertmanager(config: str, directory: Path) -> Iterator[str]:
    """Alertmanager with `config`; yields its URL. Clustering is off (no gossip port)."""
    (directory / "alertmanager.yml").write_text(config)
    port = free_port()
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def post_alert(url: str, **labels: str) -> None:
    """Send one firing alert, the way Prometheus does."""
    alert: dict[str, Any] = {"labels": labels, "annotations": {"summary": f"{labels['alertname']} in a test"}}
    response = httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=5)
    response.raise_for_status()
