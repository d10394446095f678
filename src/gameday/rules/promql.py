"""A small PromQL scanner that finds the durations written in an expression.

It is not a parser: it only knows enough PromQL to find, reliably, the three places
where a duration may stand:

- the range of a range-vector selector, ``rate(x[5m])``;
- the range and the optional step of a subquery, ``max_over_time(rate(x[1m])[30m:30s])``;
- the duration of an ``offset`` modifier, ``x offset 1h`` (also ``offset -5m``).

Brackets inside string literals are not ranges: ``{handler=~"/v1/[a-z]+"}`` holds
none. Strings are skipped in all three PromQL spellings (``"..."`` and ``'...'`` with
backslash escapes, raw backtick strings without) and so are ``#`` comments. Numbers
that mean seconds (``predict_linear(x[1h], 3600)``, ``time() - x > 600``) are not
durations and are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gameday.rules.durations import prometheus_duration_ms

__all__ = [
    "DurationKind",
    "DurationSpan",
    "PromQLScanError",
    "find_durations",
    "replace_durations",
]

DurationKind = Literal["range", "step", "offset"]

_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
# Recording-rule names such as vllm:num_requests_waiting carry colons.
_IDENT_CHARS = _IDENT_START | frozenset("0123456789:")
_DURATION_CHARS = frozenset("0123456789.ywdhms")
_SPACE = frozenset(" \t\r\n")


class PromQLScanError(ValueError):
    """The expression cannot be scanned: an unterminated string or a malformed bracket."""

    def __init__(self, message: str, expr: str, position: int) -> None:
        self.expr = expr
        self.position = position
        super().__init__(f"{message} at offset {position} of {expr!r}")


@dataclass(frozen=True)
class DurationSpan:
    """One duration written in an expression; ``expr[start:end] == text``."""

    kind: DurationKind
    start: int
    end: int
    text: str
    bracket: int | None = None
    """For ranges and steps: which bracket (0, 1, ...) they stand in, tying a step to its range."""

    @property
    def milliseconds(self) -> int:
        return _duration_ms(self.text)


def _duration_ms(text: str) -> int:
    # Newer Prometheus also takes plain seconds in brackets ("[300]"); accept them.
    if text.replace(".", "", 1).isdigit():
        return round(float(text) * 1000)
    return prometheus_duration_ms(text)


def find_durations(expr: str) -> list[DurationSpan]:
    """Every range, subquery step and offset duration in ``expr``, in order of position."""
    spans: list[DurationSpan] = []
    brackets = 0
    in_matchers = False
    i = 0
    n = len(expr)
    while i < n:
        char = expr[i]
        if char in "\"'":
            i = _skip_quoted(expr, i)
        elif char == "`":
            close = expr.find("`", i + 1)
            if close < 0:
                raise PromQLScanError("unterminated raw string", expr, i)
            i = close + 1
        elif char == "#":
            newline = expr.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif char == "{":
            in_matchers = True
            i += 1
        elif char == "}":
            in_matchers = False
            i += 1
        elif char == "[":
            if in_matchers:
                raise PromQLScanError("'[' inside label matchers", expr, i)
            i = _scan_bracket(expr, i, brackets, spans)
            brackets += 1
        elif char == "]":
            raise PromQLScanError("']' without '['", expr, i)
        elif char in _IDENT_START:
            start = i
            while i < n and expr[i] in _IDENT_CHARS:
                i += 1
            if not in_matchers and expr[start:i].lower() == "offset":
                i = _scan_offset(expr, i, spans)
        elif char.isdigit() or char == ".":
            # A number (1e3, 0x1f, 2.5): skip it whole so its letters are not a name.
            while i < n and (expr[i].isalnum() or expr[i] in "._"):
                i += 1
        else:
            i += 1
    return spans


def replace_durations(expr: str, replace: Callable[[DurationSpan], str]) -> str:
    """``expr`` with each duration replaced by ``replace(span)``; everything else untouched."""
    out = expr
    for span in reversed(find_durations(expr)):
        out = out[: span.start] + replace(span) + out[span.end :]
    return out


def _skip_quoted(expr: str, start: int) -> int:
    quote = expr[start]
    i = start + 1
    while i < len(expr):
        if expr[i] == "\\":
            i += 2
        elif expr[i] == quote:
            return i + 1
        else:
            i += 1
    raise PromQLScanError("unterminated string", expr, start)


def _skip_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i] in _SPACE:
        i += 1
    return i


def _read_duration(expr: str, i: int) -> tuple[int, int]:
    start = i
    while i < len(expr) and expr[i] in _DURATION_CHARS:
        i += 1
    return start, i


def _checked(
    expr: str, kind: DurationKind, start: int, end: int, bracket: int | None
) -> DurationSpan:
    span = DurationSpan(kind, start, end, expr[start:end], bracket)
    try:
        span.milliseconds  # noqa: B018 - validates the text
    except ValueError as exc:
        raise PromQLScanError(f"invalid {kind} duration {span.text!r}", expr, start) from exc
    return span


def _scan_bracket(expr: str, open_at: int, index: int, spans: list[DurationSpan]) -> int:
    i = _skip_space(expr, open_at + 1)
    start, i = _read_duration(expr, i)
    if start == i:
        raise PromQLScanError("expected a duration after '['", expr, open_at)
    spans.append(_checked(expr, "range", start, i, index))
    i = _skip_space(expr, i)
    if i < len(expr) and expr[i] == ":":
        i = _skip_space(expr, i + 1)
        start, i = _read_duration(expr, i)
        if start != i:  # "[30m:]" leaves the step to the evaluation interval
            spans.append(_checked(expr, "step", start, i, index))
        i = _skip_space(expr, i)
    if i >= len(expr) or expr[i] != "]":
        raise PromQLScanError("expected ']' to close the range", expr, open_at)
    return i + 1


def _scan_offset(expr: str, i: int, spans: list[DurationSpan]) -> int:
    # "offset" is also a legal metric or label name ("sum by (offset)"): only a
    # duration after it makes it the modifier.
    j = _skip_space(expr, i)
    if j < len(expr) and expr[j] in "+-":
        j = _skip_space(expr, j + 1)
    if j < len(expr) and expr[j].isdigit():
        start, end = _read_duration(expr, j)
        if end < len(expr) and expr[end] in _IDENT_CHARS:
            return i  # e.g. "offset 5mx": not a duration we understand; leave it to promtool
        spans.append(_checked(expr, "offset", start, end, None))
        return end
    return i
