"""The benchmark's nginx: the project's template (as every environment renders it) plus the anchors.

One nginx process serves, each on its own port: the service through the template's server block,
a static `return 200` with the node's JSON, the bare FastAPI replicas and the asyncpg replicas, each
behind an upstream with the same keep-alive settings as the service's. Rate limits are lifted: the
load generator is one address. The scale curve re-renders it with other replica lists and reloads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.render import render_nginx
from infra.spec import EnvironmentSpec

HOST = "127.0.0.1"
LOOPBACK_NAMES = ("localhost", HOST)  # codexops/localenv.py's: wrk's Host header is the address
# Ports are base + 501 and up: without CODEX_PORT_BASE 5301-5304 (as before), bare 5311-5312, asyncpg 5321+;
# with CODEX_PORT_BASE=B, B+501 and up: in the staging stack's slot (B+400..B+599), above its replicas.
DEFAULT_BASE = 4800


@dataclass(frozen=True)
class Ports:
    base: int = DEFAULT_BASE

    @classmethod
    def from_env(cls) -> Ports:
        text = os.environ.get("CODEX_PORT_BASE", "").strip()
        return cls(int(text)) if text.isdigit() else cls()

    @property
    def service(self) -> int:
        return self.base + 501

    @property
    def static(self) -> int:
        return self.base + 502

    @property
    def bare(self) -> int:
        return self.base + 503

    @property
    def asyncpg(self) -> int:
        return self.base + 504

    @property
    def bare_replicas(self) -> tuple[int, ...]:
        return (self.base + 511, self.base + 512)

    def asyncpg_replicas(self, count: int) -> tuple[int, ...]:
        return tuple(self.base + 521 + i for i in range(count))

    def extra_service_replicas(self, count: int) -> tuple[int, ...]:
        """Service replicas the scale curve starts beside the stack's own (app-3, app-4, ...)."""
        return tuple(self.base + 541 + i for i in range(count))


def _upstream(name: str, replicas: Sequence[int]) -> str:
    servers = "".join(f"        server {HOST}:{port};\n" for port in replicas)
    return f"    upstream {name} {{\n        least_conn;\n{servers}        keepalive 32;\n    }}\n\n"


def _proxy(port: int, upstream: str) -> str:
    return (
        "    server {\n"
        f"        listen {HOST}:{port};\n"
        "        location / {\n"
        f"            proxy_pass http://{upstream};\n"
        "        }\n"
        "    }\n\n"
    )


def anchors(ports: Ports, node_json: str, asyncpg_replicas: Sequence[int]) -> str:
    body = node_json.replace("\\", "\\\\").replace("'", "\\'")
    return (
        _upstream("bench_bare", ports.bare_replicas) + _upstream("bench_asyncpg", asyncpg_replicas) + "    server {\n"
        f"        listen {HOST}:{ports.static};\n"
        "        location / {\n"
        f"            return 200 '{body}';\n"
        "        }\n"
        "    }\n\n" + _proxy(ports.bare, "bench_bare") + _proxy(ports.asyncpg, "bench_asyncpg")
    )


def nginx_config(
    spec: EnvironmentSpec,
    service_replicas: Sequence[str],
    runtime: Path,
    ports: Ports,
    node_json: str,
    asyncpg_replicas: Sequence[int],
) -> str:
    local = spec.model_copy(update={"tls": False, "serverNames": LOOPBACK_NAMES})  # as the local gateway's
    rendered = render_nginx(
        local,
        service_replicas,
        runtime_dir=str(runtime),
        listen_host=f"{HOST}:",
        http_port=ports.service,
        api_rate="1000000r/s",
        api_burst=100000,
    ).rstrip()
    if not rendered.endswith("}"):
        raise ValueError("nginx.conf.j2 no longer ends with the http block's closing brace")
    return rendered[:-1] + "\n" + anchors(ports, node_json, asyncpg_replicas) + "}\n"
