"""Durations ("1m30s") and byte quantities ("512Mi") as scenario files write them."""

from __future__ import annotations

import math
import re
import warnings
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

__all__ = [
    "ByteSize",
    "Duration",
    "Regex",
    "Span",
    "SpanValue",
    "format_bytes",
    "format_duration",
    "format_sample_value",
    "format_span",
    "parse_bytes",
    "parse_duration",
    "parse_span",
]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h))+$"


def parse_duration(value: Any) -> float:
    """Seconds from ``15s``, ``1m30s``, ``500ms``, ``2h`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: expected e.g. 30s, 2m, 1m30s")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(DURATION_PATTERN, text):
            raise ValueError(f"invalid duration {value!r}: expected e.g. 30s, 2m, 1m30s, 500ms")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    else:
        raise ValueError(f"invalid duration {value!r}: expected e.g. 30s, 2m, 1m30s")
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r}: must be a finite, non-negative time")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest scenario spelling of a duration: 90 -> '1m30s', 0.5 -> '500ms'."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds, 3)
    minutes, rest = divmod(whole, 60)
    hours, minutes = divmod(int(minutes), 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if rest or not out:
        out += f"{rest:g}s"
    return out


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "1m30s"]},
                {"type": "number", "minimum": 0, "description": "seconds"},
            ]
        }
    ),
]


class SpanValue(float):
    """Seconds, plus some number of the server's start-ups: ``30s + startup``.

    A scenario states its intent ("fails within 15 s of trying to start") and not one
    engine's timings: the simulator starts in a second, the real vLLM on a CPU in 20-70 s.
    The runner resolves the start-ups with the start-up time it measured when the target
    came up. As a float it is the seconds alone, which is what it means with no start-up.
    """

    startups: float

    def __new__(cls, seconds: float, startups: float = 0.0) -> SpanValue:
        value = super().__new__(cls, seconds)
        value.startups = startups
        return value

    def resolve(self, startup: float) -> float:
        """Seconds, with each start-up counted as ``startup`` seconds."""
        return float(self) + self.startups * startup

    def __repr__(self) -> str:
        return f"SpanValue({format_span(self)!r})"

    def __reduce__(self) -> tuple[type[SpanValue], tuple[float, float]]:
        return (SpanValue, (float(self), self.startups))


_STARTUP_TERM = re.compile(r"(?:(\d+(?:\.\d+)?)\s*(?:x|\*)?\s*)?startups?")
SPAN_PATTERN = (
    r"^\s*((\d+(\.\d+)?\s*(x|\*)?\s*)?startups?|(\d+(\.\d+)?(ms|s|m|h))+)"
    r"(\s*\+\s*((\d+(\.\d+)?\s*(x|\*)?\s*)?startups?|(\d+(\.\d+)?(ms|s|m|h))+))*\s*$"
)


def parse_span(value: Any) -> SpanValue:
    """``30s``, ``1m + startup``, ``2 startups + 10s``, ``startup`` or a number of seconds."""
    if isinstance(value, SpanValue):
        return value
    if not isinstance(value, str):
        return SpanValue(parse_duration(value))
    seconds = startups = 0.0
    for term in value.split("+"):
        text = term.strip()
        match = _STARTUP_TERM.fullmatch(text)
        if match:
            startups += float(match.group(1) or 1)
            continue
        try:
            seconds += parse_duration(text)
        except ValueError:
            raise ValueError(
                f"invalid time {value!r}: expected e.g. 30s, 1m30s, 30s + startup, 2 startups + 10s"
            ) from None
    if not math.isfinite(startups) or startups > 1000:
        raise ValueError(f"invalid time {value!r}: too many start-ups")
    return SpanValue(seconds, startups)


def format_span(value: float) -> str:
    """The scenario spelling: ``30s``, ``startup + 15s``, ``2 startups + 1m``."""
    startups = getattr(value, "startups", 0.0)
    seconds = format_duration(float(value))
    if not startups:
        return seconds
    count = f"{startups:g} startups" if startups != 1 else "startup"
    return count if float(value) == 0 else f"{count} + {seconds}"


Span = Annotated[
    float,
    PlainValidator(parse_span),
    PlainSerializer(format_span, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": SPAN_PATTERN,
                    "examples": ["30s", "1m30s", "startup + 15s", "2 startups + 10s"],
                },
                {"type": "number", "minimum": 0, "description": "seconds"},
            ],
            "description": "A time, optionally plus the server's measured start-up time "
            "('startup'): the simulator starts in about a second, vLLM in tens of seconds.",
        }
    ),
]
"""A deadline or a fault's duration: seconds, optionally plus start-ups of the server."""

_BYTE_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
BYTES_PATTERN = r"^\d+(\.\d+)?(k|M|G|T|Ki|Mi|Gi|Ti)?$"


def parse_bytes(value: Any) -> int:
    """Bytes from a Kubernetes-style quantity: ``512Mi``, ``2Gi``, ``1G`` or a plain integer."""
    if isinstance(value, bool):
        raise ValueError(f"invalid byte quantity {value!r}: expected e.g. 512Mi, 2Gi")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid byte quantity {value!r}: must not be negative")
        return value
    if isinstance(value, str) and re.fullmatch(BYTES_PATTERN, value.strip()):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", value.strip())
        assert match is not None
        return int(float(match.group(1)) * _BYTE_UNITS[match.group(2)])
    raise ValueError(f"invalid byte quantity {value!r}: expected e.g. 512Mi, 2Gi, 1G")


def format_bytes(count: int) -> str:
    for unit in ("Ti", "Gi", "Mi", "Ki"):
        size = _BYTE_UNITS[unit]
        if count >= size and count % size == 0:
            return f"{count // size}{unit}"
    return str(count)


def format_sample_value(text: str) -> str:
    """A sample value as Prometheus writes it (``3.809825296031393e-01``, ``1e+00``) for
    people: ``0.381``, ``1``; three significant digits, integers whole, anything that is
    not a number (``NaN`` included) as it came."""
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    if abs(number) >= 100:
        return f"{number:.1f}"
    return f"{number:.3g}"


ByteSize = Annotated[
    int,
    BeforeValidator(parse_bytes),
    PlainSerializer(format_bytes, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": BYTES_PATTERN, "examples": ["512Mi", "2Gi"]},
                {"type": "integer", "minimum": 0},
            ]
        }
    ),
]


def _compiles(pattern: str) -> str:
    try:
        with warnings.catch_warnings():
            # "Possible nested set": re's note on a pattern that compiles; not the user's error
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


Regex = Annotated[
    str,
    AfterValidator(_compiles),
    WithJsonSchema({"type": "string", "format": "regex", "minLength": 1}),
]
"""A Python regular expression, searched (not anchored) in the observed text; one that
does not compile is refused when the file is loaded."""
