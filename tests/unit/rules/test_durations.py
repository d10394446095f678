from __future__ import annotations

import pytest

from gameday.rules.durations import (
    format_prometheus_duration,
    parse_prometheus_duration,
    prometheus_duration_ms,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("0s", 0),
        ("90s", 90),
        ("1m30s", 90),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1s500ms", 1.5),
        ("5m", 300),
        ("1d", 86400),
        ("2w", 14 * 86400),
        ("1y", 365 * 86400),
        ("1y2w3d4h5m6s7ms", 365 * 86400 + 17 * 86400 + 4 * 3600 + 5 * 60 + 6.007),
        ("15ms", 0.015),
        ("1m5ms", 60.005),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_prometheus_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "5", "1.5m", "-5m", "5M", "30s1m", "1m1m", "5 m", "m", "1ms5s", " 5m", "1h 30m"]
)
def test_parse_refuses_what_prometheus_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid Prometheus duration"):
        prometheus_duration_ms(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1.5, "1s500ms"),
        (10, "10s"),
        (90, "1m30s"),
        (300, "5m"),
        (5400, "1h30m"),
        (86400, "1d"),
        (8 * 86400, "1w1d"),
        (365 * 86400, "1y"),
        (0.0004, "0s"),
        (42.857142, "42s857ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_prometheus_duration(seconds) == text


@pytest.mark.parametrize("ms", [0, 1, 999, 1000, 61_001, 3_600_000, 5_400_000, 694_861_001])
def test_round_trip(ms: int) -> None:
    assert prometheus_duration_ms(format_prometheus_duration(ms / 1000)) == ms


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_format_refuses_impossible_durations(bad: float) -> None:
    with pytest.raises(ValueError):
        format_prometheus_duration(bad)
