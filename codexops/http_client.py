"""codexops' HTTP GETs: `httpx.get` with one TLS context for the process.

Each `httpx.get` builds a client, and each client a TLS context: the CA bundle read and parsed again,
about 29 ms of CPU (2026-12-07), even for the plain-HTTP health, readiness and Prometheus polls that
make up most calls here. The context is the one httpx would build (SSL_CERT_FILE or SSL_CERT_DIR when
set, else certifi), made once; every GET still opens its own connection, so a poll sees the process as
it is now, never a kept-alive connection to one that stopped.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, verify=tls_context(), **kwargs)
