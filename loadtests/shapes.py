"""Load shapes: (seconds from start, users, spawn rate) stages; CODEX_LOAD_SCALE stretches them."""

from __future__ import annotations

SHAPES: dict[str, list[tuple[int, int, float]]] = {
    # a quick look: a handful of users
    "smoke": [(20, 5, 5)],
    # the gate: ramp to 20 users, hold
    "gate": [(10, 20, 4), (50, 20, 4)],
    # sustained load for leaks and drift
    "soak": [(60, 20, 4), (1800, 20, 4)],
    # a sudden surge and its recovery
    "spike": [(20, 5, 5), (40, 50, 25), (60, 5, 25)],
}


def stages(name: str, scale: float = 1.0) -> list[tuple[int, int, float]]:
    if name not in SHAPES:
        raise ValueError(f"unknown load shape {name!r}; choose one of {', '.join(SHAPES)}")
    return [(max(1, round(end * scale)), users, rate) for end, users, rate in SHAPES[name]]


def duration(name: str, scale: float = 1.0) -> int:
    return stages(name, scale)[-1][0]
