"""Load shapes: (seconds from start, users, spawn rate) stages; CODEX_LOAD_SCALE stretches them.

Users run at constant throughput (loadtests/locustfile.py): each user does the spec's targetRps /
users tasks per second, so the gate shape holds the spec's target rate once every user is running.
"""

from __future__ import annotations

import math

from infra.spec import Load

# Logins at start, with the session users' refreshes, stay under the gateway's auth limit (10 r/s per
# address): spawn at most this many users a second.
MAX_SPAWN_RATE = 4.0
SMOKE_SHARE = 0.2  # a smoke is a quick look: a fifth of the users for the spec's smokeSeconds
FIXED: dict[str, list[tuple[int, float, float]]] = {
    # (end second, users as a share of the spec's users, spawn rate)
    "spike": [(20, 0.25, MAX_SPAWN_RATE), (40, 2.0, MAX_SPAWN_RATE), (60, 0.25, MAX_SPAWN_RATE)],
}
SHAPE_NAMES = ("smoke", "gate", "soak", "spike")


def ramp_seconds(load: Load) -> int:
    """The spec's ramp, or longer when its users cannot all start within it at MAX_SPAWN_RATE."""
    return max(load.rampSeconds, math.ceil(load.users / MAX_SPAWN_RATE))


def stages(name: str, load: Load, scale: float = 1.0) -> list[tuple[int, int, float]]:
    if name not in SHAPE_NAMES:
        raise ValueError(f"unknown load shape {name!r}; choose one of {', '.join(SHAPE_NAMES)}")
    ramp = ramp_seconds(load)
    spawn = min(MAX_SPAWN_RATE, load.users / ramp)
    if name == "gate":  # ramp, then hold the target for the spec's duration
        plan = [(ramp, load.users, spawn), (max(load.durationSeconds, ramp + 5), load.users, spawn)]
    elif name == "soak":  # the gate's rate for 10 minutes: leaks and drift
        plan = [(ramp, load.users, spawn), (600, load.users, spawn)]
    elif name == "smoke":
        plan = [(load.smokeSeconds, max(1, round(SMOKE_SHARE * load.users)), MAX_SPAWN_RATE)]
    else:
        plan = [(end, max(1, round(share * load.users)), rate) for end, share, rate in FIXED[name]]
    return [(max(1, round(end * scale)), users, rate) for end, users, rate in plan]


def duration(name: str, load: Load, scale: float = 1.0) -> int:
    return stages(name, load, scale)[-1][0]


def per_user_rate(load: Load) -> float:
    """Tasks per second each user does, so that the spec's users make the spec's target rate."""
    return load.targetRps / load.users
