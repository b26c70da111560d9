"""A real Prometheus serving samples written beforehand: `promtool tsdb create-blocks-from openmetrics`
backfills them into a fresh data folder, then the Debian `prometheus` serves that folder on a free port.
Queries at the samples' times then give exact, known figures."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codexops import http_client
from tests.support.servers import free_port, wait_for_port
from tests.support.waiting import wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"  # installed by make setup
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

Family = tuple[str, str, list[tuple[str, list[tuple[float, float]]]]]  # (name, type, [(series, [(t, v)])])


def openmetrics(families: list[Family]) -> str:
    """The OpenMetrics text of the families: each series' samples with their unix timestamps."""
    lines = []
    for name, kind, series in families:
        lines.append(f"# TYPE {name} {kind}")
        for labelled, points in series:
            lines += [f"{labelled} {value!r} {at!r}" for at, value in points]
    return "\n".join([*lines, "# EOF", ""])


@contextmanager
def prometheus_with(families: list[Family]) -> Iterator[str]:
    """The URL of a Prometheus holding exactly these samples; stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="codex-prom-"))
    try:
        (folder / "samples.om").write_text(openmetrics(families))
        subprocess.run(
            [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "samples.om", "data"],
            cwd=folder,
            check=True,
            capture_output=True,
            timeout=60,
        )
        (folder / "prometheus.yml").write_text("global: {scrape_interval: 5s}\n")
        port = free_port()
        command = [
            PROMETHEUS,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with (folder / "prometheus.log").open("w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: http_client.get(f"{url}/-/ready", timeout=2).status_code == 200, 20, f"{url} ready")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
