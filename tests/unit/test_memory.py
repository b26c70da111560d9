from __future__ import annotations

from app.leak import MB, linear_trend
from app.memory import detect_limit


def test_steady_growth_has_its_slope_and_a_high_r_squared() -> None:
    samples = [(t * 5.0, 100 * MB + t * 5 * MB) for t in range(12)]  # +1 MB/s
    trend = linear_trend(samples)
    assert abs(trend.mb_per_minute - 60.0) < 1e-6
    assert trend.r_squared > 0.99


def test_flat_memory_has_no_growth() -> None:
    trend = linear_trend([(float(t), 100 * MB) for t in range(10)])
    assert trend.mb_per_minute == 0


def test_a_single_spike_is_not_steady_growth() -> None:
    samples = [(float(t), 100 * MB) for t in range(20)]
    samples[10] = (10.0, 400 * MB)
    assert linear_trend(samples).r_squared < 0.8


def test_heap_size_limit_wins(make_settings) -> None:
    assert detect_limit(make_settings(heap_size_limit="1GB")) == (1024**3, "HEAP_SIZE_LIMIT")
