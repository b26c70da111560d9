"""The leak detector on recorded shapes: a warm-up's plateau and a smoke load's ramp are not leaks; linear
growth is, from the end of the warm-up on."""

from __future__ import annotations

import math
import random

from app.leak import MB, MIN_R_SQUARED, judge_leak, linear_trend

THRESHOLD = 2.0  # MB/min, the setting's default
INTERVAL = 2.0  # s, what local stacks sample at


def series(mb_at: list[float], interval: float = INTERVAL, noise_mb: float = 0.05) -> list[tuple[float, int]]:
    """(monotonic seconds, RSS bytes) every `interval`, with a little deterministic jitter."""
    jitter = random.Random(7)
    return [(i * interval, int((mb + jitter.uniform(-noise_mb, noise_mb)) * MB)) for i, mb in enumerate(mb_at)]


def plateau(samples: int = 30, rise_mb: float = 3.0, tau: float = 20.0) -> list[float]:
    """The allocator warming up: a rise that levels off (arenas, pools and caches filling)."""
    return [100 + rise_mb * (1 - math.exp(-i * INTERVAL / tau)) for i in range(samples)]


def test_the_incidents_plateau_fooled_a_straight_line_but_is_not_a_leak() -> None:
    samples = series(plateau())  # 30 samples, 58 s: what /health/memory reported on a healthy replica
    trend = linear_trend(samples)
    # What the old detector judged: slope above the threshold, r² above 0.8 over a 58 s window.
    assert trend.mb_per_minute > THRESHOLD and trend.r_squared > MIN_R_SQUARED and trend.window_seconds == 58
    verdict = judge_leak(samples, warm_from=0, threshold=THRESHOLD, minimum=30)
    assert verdict.judged and not verdict.detected, verdict.note
    assert verdict.parts[-1] < verdict.parts[0] / 2


def test_a_smoke_loads_ramp_inside_the_window_is_not_a_leak() -> None:
    # Quiet, then 20 s of smoke load growing RSS by 4 MB, then quiet again at the new level.
    shape = [100.0] * 10 + [100 + 0.4 * i for i in range(1, 11)] + [104.0] * 10
    for window in (shape, shape[10:], shape[:20]):  # ramp in the middle, at the start, at the end
        verdict = judge_leak(series(window), warm_from=0, threshold=THRESHOLD, minimum=10)
        assert verdict.judged and not verdict.detected, verdict.note


def test_linear_growth_is_a_leak() -> None:
    leak = [100 + 3.0 * i * INTERVAL / 60 for i in range(30)]  # 3 MB/min
    verdict = judge_leak(series(leak, noise_mb=0.1), warm_from=0, threshold=THRESHOLD, minimum=30)
    assert verdict.detected, verdict.note
    assert abs(verdict.trend.mb_per_minute - 3.0) < 0.3


def test_the_chaos_leaks_steps_are_a_leak() -> None:
    # CHAOS_LEAK_MB_PER_MIN=120 adds 2 MB every second; sampled every 2 s, over 8 samples (the fault test).
    verdict = judge_leak(series([100 + 4.0 * i for i in range(8)]), warm_from=0, threshold=THRESHOLD, minimum=4)
    assert verdict.detected, verdict.note


def test_growth_below_the_threshold_is_not_a_leak() -> None:
    slow = [100 + 1.0 * i * INTERVAL / 60 for i in range(30)]  # 1 MB/min
    assert not judge_leak(series(slow, noise_mb=0.0), warm_from=0, threshold=THRESHOLD, minimum=30).detected


def test_samples_of_the_warm_up_are_not_judged() -> None:
    samples = series(plateau(samples=60))  # 118 s; the first 30 samples are the warm-up's rise
    assert not judge_leak(samples, warm_from=1e9, threshold=THRESHOLD, minimum=4).judged
    warmed = judge_leak(samples, warm_from=60.0, threshold=THRESHOLD, minimum=20)
    assert warmed.judged and not warmed.detected and warmed.trend.samples == 30
    assert warmed.trend.mb_per_minute < THRESHOLD / 2  # the warmed half is flat
    leak = series([100 + 3.0 * i * INTERVAL / 60 for i in range(60)])
    assert judge_leak(leak, warm_from=60.0, threshold=THRESHOLD, minimum=20).detected  # after it, a leak is seen


def test_too_few_warmed_samples_are_not_judged() -> None:
    leak = series([100 + 4.0 * i for i in range(5)])
    verdict = judge_leak(leak, warm_from=0, threshold=THRESHOLD, minimum=4)
    assert not verdict.judged and not verdict.detected and "6 samples needed" in verdict.note
