"""/health's database probe is reused for about a second and shared; the JSON response falls back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from app import health
from app.health import ProbeCache
from app.responses import FastJSONResponse


class Probe:
    def __init__(self, status: str = "up") -> None:
        self.calls, self.status = 0, status

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0.01)
        return {"status": self.status, "call": self.calls}


async def test_an_up_answer_is_reused_within_the_ttl_and_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    cache, probe = ProbeCache(), Probe()
    answers = await asyncio.gather(*(cache.get(probe) for _ in range(50)))
    assert probe.calls == 1 and all(a["call"] == 1 for a in answers)
    assert (await cache.get(probe))["call"] == 1
    monkeypatch.setattr(health, "PROBE_TTL_SECONDS", 0.0)
    assert (await cache.get(probe))["call"] == 2


async def test_a_down_answer_is_never_reused() -> None:
    cache, probe = ProbeCache(), Probe("down")
    await cache.get(probe)
    await cache.get(probe)
    assert probe.calls == 2


def test_json_response_uses_orjson_and_falls_back_for_what_it_cannot_encode() -> None:
    assert FastJSONResponse({"a": [1, "é"]}).body == b'{"a":[1,"\xc3\xa9"]}'
    huge = {"n": 10**30, 1: "non-string key"}
    assert json.loads(bytes(FastJSONResponse(huge).body)) == {"n": 10**30, "1": "non-string key"}
