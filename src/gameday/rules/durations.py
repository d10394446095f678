"""Durations as Prometheus writes them: ``1h30m``, ``90s``, ``500ms``, ``2w``, ``0``.

Prometheus' grammar differs from the scenario files' (``gameday.scenario.units``):
integers only, units ``y w d h m s ms`` each at most once and largest first. Values
are kept as whole milliseconds, Prometheus' own resolution, so that parsing and
formatting round-trip exactly.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "format_prometheus_duration",
    "parse_prometheus_duration",
    "prometheus_duration_ms",
]

_UNITS_MS: tuple[tuple[str, int], ...] = (
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
)
# The same shape as prometheus/common model.ParseDuration: each unit optional, in order.
_DURATION = re.compile(
    r"(?:(?P<y>\d+)y)?(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?"
    r"(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+)s)?(?:(?P<ms>\d+)ms)?"
)


MAX_DURATION_MS = (2**63 - 1) // 1_000_000
"""The longest duration Prometheus parses (int64 nanoseconds), in milliseconds."""


def prometheus_duration_ms(text: str) -> int:
    """Whole milliseconds of a Prometheus duration such as ``1h30m``, ``500ms`` or ``0``.

    Raises ValueError for anything Prometheus would refuse (``1.5m``, ``30s1m``, ``-5m``).
    """
    if text == "0":
        return 0
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(
            f"invalid Prometheus duration {text!r}: expected e.g. 30s, 5m, 1h30m, 500ms"
        )
    total = sum(int(match.group(unit)) * size for unit, size in _UNITS_MS if match.group(unit))
    if total > MAX_DURATION_MS:
        # Prometheus holds a duration in int64 nanoseconds and refuses a longer one
        raise ValueError(f"invalid Prometheus duration {text!r}: out of range (about 292y at most)")
    return total


def parse_prometheus_duration(text: str) -> float:
    """Seconds of a Prometheus duration: ``"1h30m"`` -> 5400.0, ``"500ms"`` -> 0.5."""
    return prometheus_duration_ms(text) / 1000


def format_prometheus_duration(seconds: float) -> str:
    """The spelling Prometheus itself prints: 5400 -> ``1h30m``, 0.5 -> ``500ms``, 0 -> ``0s``.

    Rounded to the millisecond, Prometheus' resolution."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite and non-negative, not {seconds!r}")
    remaining = round(seconds * 1000)
    if remaining == 0:
        return "0s"
    out = []
    for unit, size in _UNITS_MS:
        count, remaining = divmod(remaining, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
