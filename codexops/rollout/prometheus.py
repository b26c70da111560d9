"""An instant query on a stack's Prometheus, as a step's analysis asks it (codexops/rollout/analysis.py)."""

from __future__ import annotations

from codexops import http_client
from codexops.rollout.analysis import Query

HTTP_TIMEOUT = 10.0


class PrometheusRefused(ValueError):
    """Prometheus answered the query with an error."""


def instant_query(base_url: str) -> Query:
    """A Query on the Prometheus at `base_url`: the single value of an instant query (None: no series)."""
    url = f"{base_url.rstrip('/')}/api/v1/query"

    def value(expression: str) -> float | None:
        answer = http_client.get(url, params={"query": expression}, timeout=HTTP_TIMEOUT).json()
        if answer.get("status") != "success":
            raise PrometheusRefused(f"Prometheus refused {expression!r}: {answer.get('error')}")
        result = answer["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    return value
