"""The benchmark's nginx: the project's template (as every environment renders it) plus two anchors.

One nginx process serves, each on its own port: the service through the template's server block,
a static `return 200` with the node's JSON, and the bare FastAPI replicas behind an upstream with the
same keep-alive settings as the service's. Rate limits are lifted: the load generator is one address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.render import render_nginx
from infra.spec import EnvironmentSpec

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    service: int = 5301
    static: int = 5302
    bare: int = 5303
    bare_replicas: tuple[int, ...] = (5201, 5202)


def anchors(ports: Ports, node_json: str) -> str:
    body = node_json.replace("\\", "\\\\").replace("'", "\\'")
    bare = "".join(f"        server {HOST}:{port};\n" for port in ports.bare_replicas)
    return (
        "    upstream bench_bare {\n"
        "        least_conn;\n"
        f"{bare}"
        "        keepalive 32;\n"
        "    }\n\n"
        "    server {\n"
        f"        listen {HOST}:{ports.static};\n"
        "        location / {\n"
        f"            return 200 '{body}';\n"
        "        }\n"
        "    }\n\n"
        "    server {\n"
        f"        listen {HOST}:{ports.bare};\n"
        "        location / {\n"
        "            proxy_pass http://bench_bare;\n"
        "        }\n"
        "    }\n"
    )


def nginx_config(
    spec: EnvironmentSpec, service_replicas: Sequence[str], runtime: Path, ports: Ports, node_json: str
) -> str:
    rendered = render_nginx(
        spec,
        service_replicas,
        runtime_dir=str(runtime),
        listen_host=f"{HOST}:",
        http_port=ports.service,
        api_rate="1000000r/s",
        api_burst=100000,
    ).rstrip()
    if not rendered.endswith("}"):
        raise ValueError("nginx.conf.j2 no longer ends with the http block's closing brace")
    return rendered[:-1] + "\n" + anchors(ports, node_json) + "}\n"
