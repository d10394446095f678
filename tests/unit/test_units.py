import pytest

from gameday.scenario.units import (
    format_bytes,
    format_duration,
    format_sample_value,
    parse_bytes,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("2h", 7200),
        (3, 3.0),
        ("1.5s", 1.5),
        ("1h1m1s", 3661),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["15", "15x", "s", "", "-1s", True, None, [1], "1m 30s"])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m30s"), (0.5, "500ms"), (3600, "1h"), (0, "0s"), (2.5, "2.5s")]
)
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "count"), [("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30), ("1G", 10**9), (42, 42)]
)
def test_parse_bytes(text: object, count: int) -> None:
    assert parse_bytes(text) == count


@pytest.mark.parametrize("bad", ["12XB", "-1", -5, "Mi", True])
def test_parse_bytes_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid byte quantity"):
        parse_bytes(bad)


def test_format_bytes() -> None:
    assert format_bytes(64 * 2**20) == "64Mi"
    assert format_bytes(1000) == "1000"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("3.809825296031393e-01", "0.381"),
        ("1e+00", "1"),
        ("0e+00", "0"),
        ("12345.678", "12345.7"),
        ("0.000123", "0.000123"),
        ("-2.5", "-2.5"),
        ("NaN", "NaN"),
        ("+Inf", "+Inf"),
        ("not a number", "not a number"),
    ],
)
def test_sample_values_are_written_for_people(text: str, shown: str) -> None:
    assert format_sample_value(text) == shown
