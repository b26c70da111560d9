"""Reading a Prometheus over its HTTP API: an instant value at a given time, and a range of values.

Every failure (no answer, an error status, a malformed reply) is a PrometheusError naming the server, so
a caller says what it could not read instead of inventing a figure."""

from __future__ import annotations

import math
from typing import Any

import httpx

from codexops import http_client

HTTP_TIMEOUT = 5.0


class PrometheusError(RuntimeError):
    """The Prometheus did not answer the query; the message says which and why."""


def _get(url: str, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        answer = http_client.get(f"{url}{path}", params=params, timeout=HTTP_TIMEOUT).json()
        if answer.get("status") != "success":
            raise PrometheusError(f"{url} refused {params['query']!r}: {answer.get('error', 'no answer')}")
        return list(answer["data"]["result"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PrometheusError(f"{url} did not answer: {type(exc).__name__}: {exc}") from None


def _number(text: object) -> float | None:
    value = float(str(text))
    return None if math.isnan(value) or math.isinf(value) else value


def value_at(url: str, expression: str, at: float) -> float | None:
    """The expression's single value at `at` (unix seconds); None when it has no series or is NaN."""
    result = _get(url, "/api/v1/query", {"query": expression, "time": at})
    return _number(result[0]["value"][1]) if result else None


def labels_at(url: str, expression: str, label: str, at: float) -> list[str]:
    """The values of `label` across the expression's series at `at`, sorted."""
    result = _get(url, "/api/v1/query", {"query": expression, "time": at})
    return sorted({str(r["metric"][label]) for r in result if label in r.get("metric", {})})


def series(url: str, expression: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
    """The expression's first series from `start` to `end`: (unix seconds, value), NaN points left out."""
    result = _get(url, "/api/v1/query_range", {"query": expression, "start": start, "end": end, "step": step})
    points = result[0]["values"] if result else []
    return [(float(t), v) for t, raw in points if (v := _number(raw)) is not None]
