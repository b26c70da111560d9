"""Where a service path's time goes: py-spy samples one replica while wrk drives the path.

Two samplers attach to the same process at once (--nonblocking: the replica is never paused): one
writes the flame graph (SVG), the other the collapsed stacks that top_costs() sums into a table.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

BIN = Path(sys.executable).parent
RATE = 97  # samples per second: a prime, so sampling does not beat in step with the event loop's timers


def start(pid: int, seconds: float, svg: Path, collapsed: Path) -> list[subprocess.Popen[bytes]]:
    common = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", f"{seconds:.0f}"]
    common += ["--rate", str(RATE), "--nonblocking"]
    return [
        subprocess.Popen(
            [*common, "--format", form, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for form, out in (("flamegraph", svg), ("raw", collapsed))
    ]


def wait(samplers: list[subprocess.Popen[bytes]], timeout: float) -> bool:
    return all(s.wait(timeout=timeout) == 0 for s in samplers)


def _frame(text: str) -> str:
    """'handle (app/routes/graph.py:57)' -> 'handle (app/routes/graph.py)': a function, not a line."""
    name, _, where = text.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/"):
        path = path.split(marker, 1)[-1]
    return f"{name} ({path})" if path else name


IDLE = ("select ", "Condition.wait ", "Event.wait ", "Queue.get ", "sleep ")  # waiting, not a cost


def _samples(collapsed: str) -> list[tuple[list[str], int]]:
    """(frames outermost first, count) of each busy stack in py-spy's raw output."""
    found = []
    for line in filter(None, collapsed.splitlines()):
        stack, _, count_text = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if frames and count_text.isdigit() and not frames[-1].startswith(IDLE):
            found.append((frames, int(count_text)))
    return found


def top_costs(collapsed: str, limit: int = 12) -> list[tuple[str, float, float]]:
    """(function, self share, inclusive share) of the busy samples, biggest self first: where the
    time is spent, not the middleware layers it passes through (those have inclusive time only)."""
    samples = _samples(collapsed)
    busy = sum(count for _, count in samples)
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in samples:
        names = [_frame(f) for f in frames]
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    ranked = sorted(own, key=lambda f: (-own[f], -inclusive[f], f))[:limit]
    return [(f, own[f] / busy, inclusive[f] / busy) for f in ranked]


# The parts a profile's busy time is split into. A sample goes to the part of its innermost frame that
# matches one (so a driver call made by SQLAlchemy is the driver's, JSON encoding called by the app's
# renderer is the renderer's); nothing matching: "other".
PARTS: dict[str, tuple[str, ...]] = {
    "asyncpg driver": ("asyncpg/",),
    "SQLAlchemy Core (statement, pool, result)": ("sqlalchemy/",),
    "JSON rendering (app/rendering.py, json)": ("app/rendering.py", "json/"),
    "request log and metrics": ("app/middleware/observe.py", "app/logs.py", "prometheus_client/", "logging/"),
    "response cache": ("app/cache.py", "cachetools/", "hashlib"),
    "auth (token, view)": ("app/identity.py", "app/authview.py", "jwt/"),
    "validation (pydantic)": ("pydantic",),
    "FastAPI/Starlette routing and middleware": ("fastapi/", "starlette/", "app/middleware/"),
    "uvicorn HTTP (httptools)": ("uvicorn/", "httptools"),
    "other service code (app/)": ("app/",),
    "asyncio event loop": ("asyncio/", "uvloop"),
}


def part_shares(collapsed: str, parts: dict[str, tuple[str, ...]] = PARTS) -> dict[str, float]:
    """Each part's share of the busy samples, plus "other"; the shares add up to 1."""
    hits = dict.fromkeys([*parts, "other"], 0)
    samples = _samples(collapsed)
    busy = sum(count for _, count in samples)
    for frames, count in samples:
        hits[_part_of(frames, parts)] += count
    return {part: (hits[part] / busy if busy else 0.0) for part in hits}


def _part_of(frames: list[str], parts: dict[str, tuple[str, ...]]) -> str:
    for frame in reversed(frames):
        for part, markers in parts.items():
            if any(marker in frame for marker in markers):
                return part
    return "other"
