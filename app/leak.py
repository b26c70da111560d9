"""The leak verdict on a window of RSS samples: only a warmed window is judged, and only growth that goes
on through the whole window is a leak.

An allocator (pymalloc arenas, glibc's heap, caches and pools filling) grows fast when a process starts
or a load begins, then levels off; a leak keeps growing at its rate. A straight line fitted to a window
that holds such a plateau's rise can look steady (2.5 MB/min, r² 0.9 over a minute was seen on a healthy
replica right after a smoke load), so the slope alone does not decide. The window is cut to its samples
taken after the warm-up (N seconds after the process started) and judged in thirds: a leak grows in every
third (at least half the threshold rate) and does not slow down (the last third's slope is at least half
the first's). A rise that levels off, a load's ramp at either end of the window, fails one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

MB = 1024 * 1024
PARTS = 3  # sub-windows: enough to see a curve bend, each with a few samples
SUSTAINED = 0.5  # every part grows at least at this share of the threshold rate
SLOWING = 0.5  # the last part's slope below this share of the first's: levelling off, not a leak
MIN_R_SQUARED = 0.8  # growth must be steady, not one spike


@dataclass(frozen=True)
class Trend:
    mb_per_minute: float
    r_squared: float
    samples: int
    window_seconds: float


@dataclass(frozen=True)
class LeakVerdict:
    detected: bool
    judged: bool  # False: too few warmed samples to say
    note: str  # why it is or is not a leak, in plain words
    trend: Trend  # of the judged (warmed) samples
    parts: tuple[float, ...]  # MB/min of each third


def linear_trend(samples: list[tuple[float, int]]) -> Trend:
    """Least-squares slope of RSS over time, and how well a straight line explains it."""
    n = len(samples)
    if n < 2:
        return Trend(0.0, 0.0, n, 0.0)
    xs = [t for t, _ in samples]
    ys = [rss / MB for _, rss in samples]
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    syy = sum((y - mean_y) ** 2 for y in ys)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if sxx else 0.0
    r_squared = (sxy * sxy) / (sxx * syy) if sxx and syy else 0.0
    return Trend(slope * 60, r_squared, n, xs[-1] - xs[0])


def part_slopes(samples: list[tuple[float, int]], parts: int = PARTS) -> tuple[float, ...]:
    """MB/min of each of `parts` consecutive sub-windows; neighbours share their boundary sample."""
    last = len(samples) - 1
    edges = [round(i * last / parts) for i in range(parts + 1)]
    return tuple(linear_trend(samples[a : b + 1]).mb_per_minute for a, b in pairwise(edges))


def judge_leak(samples: list[tuple[float, int]], warm_from: float, threshold: float, minimum: int) -> LeakVerdict:
    """Is the growth in `samples` (monotonic seconds, RSS bytes) a leak? Samples before `warm_from` are
    the warm-up's and are left out; fewer than `minimum` warmed samples are not judged."""
    warmed = [s for s in samples if s[0] >= warm_from]
    trend = linear_trend(warmed)
    if len(warmed) < max(minimum, 2 * PARTS):
        note = f"not judged: {len(warmed)} of the {max(minimum, 2 * PARTS)} samples needed after the warm-up"
        return LeakVerdict(False, False, note, trend, ())
    parts = part_slopes(warmed)
    figures = f"{trend.mb_per_minute:.2f} MB/min, r² {trend.r_squared:.2f}, thirds " + ", ".join(
        f"{p:.2f}" for p in parts
    )
    if trend.mb_per_minute < threshold or trend.r_squared < MIN_R_SQUARED:
        return LeakVerdict(False, True, f"no steady growth at {threshold:g} MB/min ({figures})", trend, parts)
    if min(parts) < SUSTAINED * threshold:
        return LeakVerdict(False, True, f"growth confined to part of the window ({figures})", trend, parts)
    if parts[-1] < SLOWING * parts[0]:
        return LeakVerdict(False, True, f"growth levelling off: the allocator settling ({figures})", trend, parts)
    return LeakVerdict(True, True, f"sustained growth ({figures})", trend, parts)
