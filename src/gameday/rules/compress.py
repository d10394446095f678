"""Time compression: run alert rules written for minutes in seconds, for CI game days.

``compress(groups, factor=30, floor_seconds=10)`` divides every duration that decides
when an alert fires by ``factor``: ``for``, ``keep_firing_for``, the group's
``interval`` if it has one, and in each expression the ranges of range-vector
selectors and subqueries and the ``offset`` durations. "for 10m over [5m]" becomes
"for 20s over [10s]". Nothing is made shorter than ``floor_seconds`` (choose it at
least twice the scrape interval, or ``rate()`` sees a single sample), and nothing
already at or below the floor is touched, so compression never lengthens a duration
and ``for: 0s`` stays immediate.

A subquery's step keeps its ratio to the range (``[5m:30s]`` -> ``[10s:1s]``) so the
subquery still sees as many points; the floor does not apply to it. Durations
written as numbers of seconds (``predict_linear(x[1h], 3600)``) are not recognised
and stay as they are. Groups without an ``interval`` follow Prometheus'
``evaluation_interval``, which the caller compresses in its own configuration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gameday.rules.durations import format_prometheus_duration, prometheus_duration_ms
from gameday.rules.model import RuleError, RuleGroup
from gameday.rules.promql import DurationSpan, PromQLScanError, find_durations

__all__ = [
    "Change",
    "compress",
    "compress_expr",
    "scale_duration",
]


@dataclass(frozen=True)
class Change:
    """One duration compression changed, for the report."""

    group: str
    rule: str | None
    """The alert or recorded series' name; None for the group's own ``interval``."""
    field: str
    """``interval``, ``for``, ``keep_firing_for``; in ``expr``: ``range``, ``step``, ``offset``."""
    before: str
    after: str

    def __str__(self) -> str:
        where = self.rule if self.rule is not None else f"group {self.group}"
        return f"{where}: {self.field} {self.before} -> {self.after}"


def scale_duration(milliseconds: int, factor: float, floor_ms: int) -> int:
    """``milliseconds / factor``, never below ``floor_ms``; at or below the floor: unchanged."""
    if milliseconds <= floor_ms:
        return milliseconds
    return max(round(milliseconds / factor), floor_ms)


def compress_expr(
    expr: str, factor: float, floor_seconds: float
) -> tuple[str, list[tuple[str, str, str]]]:
    """``expr`` with its ranges, subquery steps and offsets compressed, and the
    ``(field, before, after)`` of each duration changed."""
    floor_ms = _check(factor, floor_seconds)
    changes: list[tuple[str, str, str]] = []
    ratios: dict[int, float] = {}  # bracket -> how much its range shrank, for its step
    replaced: list[tuple[DurationSpan, str]] = []
    for span in find_durations(expr):
        before = span.milliseconds
        if span.kind == "step":
            ratio = ratios.get(span.bracket if span.bracket is not None else -1, 1.0)
            after = max(round(before * ratio), 1) if ratio < 1 else before
        else:
            after = scale_duration(before, factor, floor_ms)
            if span.kind == "range" and span.bracket is not None and before:
                ratios[span.bracket] = after / before
        if after != before:
            text = format_prometheus_duration(after / 1000)
            replaced.append((span, text))
            changes.append((span.kind, span.text, text))
    out = expr
    for span, text in reversed(replaced):
        out = out[: span.start] + text + out[span.end :]
    return out, changes


def compress(
    groups: Sequence[RuleGroup], factor: float, floor_seconds: float
) -> tuple[list[RuleGroup], list[Change]]:
    """The groups with every rule's timing divided by ``factor`` (floored at
    ``floor_seconds``), and the list of changes made. The input is not modified."""
    floor_ms = _check(factor, floor_seconds)
    changes: list[Change] = []

    def duration(value: str | None, group: str, rule: str | None, field: str) -> str | None:
        if value is None:
            return None
        before = prometheus_duration_ms(value)
        after = scale_duration(before, factor, floor_ms)
        if after == before:
            return value
        text = format_prometheus_duration(after / 1000)
        changes.append(Change(group, rule, field, value, text))
        return text

    out: list[RuleGroup] = []
    for group in groups:
        interval = duration(group.interval, group.name, None, "interval")
        rules = []
        for rule in group.rules:
            try:
                expr, expr_changes = compress_expr(rule.expr, factor, floor_seconds)
            except PromQLScanError as exc:
                raise RuleError(f"group {group.name!r}, rule {rule.name!r}: {exc}") from exc
            changes.extend(Change(group.name, rule.name, *change) for change in expr_changes)
            update = {
                "expr": expr,
                "for_": duration(rule.for_, group.name, rule.name, "for"),
                "keep_firing_for": duration(
                    rule.keep_firing_for, group.name, rule.name, "keep_firing_for"
                ),
            }
            rules.append(rule.model_copy(update=update))
        out.append(group.model_copy(update={"interval": interval, "rules": rules}))
    return out, changes


def _check(factor: float, floor_seconds: float) -> int:
    if not math.isfinite(factor) or factor < 1:
        raise ValueError(f"compression factor must be a finite number >= 1, not {factor!r}")
    if not math.isfinite(floor_seconds) or floor_seconds < 0:
        raise ValueError(f"floor_seconds must be finite and >= 0, not {floor_seconds!r}")
    return round(floor_seconds * 1000)
