"""The PromQL scanner finds ranges, subquery steps and offsets, and nothing inside strings."""

from __future__ import annotations

import re

import pytest

from gameday.rules.promql import PromQLScanError, find_durations, replace_durations


def kinds(expr: str) -> list[tuple[str, str]]:
    return [(span.kind, span.text) for span in find_durations(expr)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up == 0", []),
        ("rate(x[5m])", [("range", "5m")]),
        ('rate(x{job="a"}[1h30m])', [("range", "1h30m")]),
        ("rate(x[ 5m ])", [("range", "5m")]),
        (
            "max_over_time(rate(x[1m])[30m:30s])",
            [("range", "1m"), ("range", "30m"), ("step", "30s")],
        ),
        ("max_over_time(x[30m:])", [("range", "30m")]),
        ("max_over_time(x[30m : 1m])", [("range", "30m"), ("step", "1m")]),
        ("x offset 5m", [("offset", "5m")]),
        ("x OFFSET 5m", [("offset", "5m")]),
        ("rate(x[5m] offset 1h)", [("range", "5m"), ("offset", "1h")]),
        ("x offset -5m", [("offset", "5m")]),
        ("rate(x[5m:1m] offset 10m)", [("range", "5m"), ("step", "1m"), ("offset", "10m")]),
        ("x - x offset 1d", [("offset", "1d")]),
        # Colons in metric names are not subquery separators.
        ("rate(vllm:prompt_tokens_total[5m])", [("range", "5m")]),
        ("vllm:num_requests_waiting > 50", []),
        # Seconds as numbers are not durations.
        ("predict_linear(x[1h], 3600) < 0", [("range", "1h")]),
        ("time() - x > 600", []),
        ("x @ 1609746000", []),
        ("rate(x[300])", [("range", "300")]),
        ("histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) > 5", [("range", "5m")]),
    ],
)
def test_finds_durations(expr: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        'rate(x{handler=~"/v1/[a-z]+"}[5m])',
        "rate(x{handler=~'/v1/[a-z]+'}[5m])",
        "rate(x{handler=~`/v1/[a-z]+`}[5m])",
        r'rate(x{path=~"a\"[1m]\"b"}[5m])',
        r"rate(x{path=~'it\'s [1m]'}[5m])",
        r'rate(x{path="C:\\[1m]\\"}[5m])',
        'rate(x{a="offset 1h"}[5m])',
        "rate(x{a=`\\`}[5m])",  # raw strings have no escapes: the backslash is the content
        'rate(x{a="#[1m]"}[5m])',
        "rate(x[5m]) # a comment with [1h] and offset 2h\n",
    ],
)
def test_skips_string_literals_and_comments(expr: str) -> None:
    assert kinds(expr) == [("range", "5m")]


def test_offset_is_also_a_name() -> None:
    # "offset" as a metric name, a label name and a grouping label.
    assert kinds('offset{offset="1"} + sum by (offset) (rate(y[5m]))') == [("range", "5m")]
    assert kinds("my_offset 5") == []
    assert kinds("offset5m") == []


def test_spans_point_at_the_text() -> None:
    expr = "max_over_time(rate(x[1m])[30m:30s] offset -1h)"
    for span in find_durations(expr):
        assert expr[span.start : span.end] == span.text
    ranges = [s for s in find_durations(expr) if s.kind != "offset"]
    assert [s.bracket for s in ranges] == [0, 1, 1]


def test_milliseconds() -> None:
    assert [s.milliseconds for s in find_durations("x[1m30s] offset 500ms")] == [90_000, 500]


def test_replace_durations_rewrites_only_durations() -> None:
    expr = 'sum(rate(x{h=~"/v1/[a-z]+"}[5m] offset 1h)) / sum(max_over_time(y[10m:1m]))'
    out = replace_durations(expr, lambda span: f"<{span.kind}:{span.text}>")
    assert out == (
        'sum(rate(x{h=~"/v1/[a-z]+"}[<range:5m>] offset <offset:1h>))'
        " / sum(max_over_time(y[<range:10m>:<step:1m>]))"
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('x{a="b}[5m]', "unterminated string"),
        ("x{a='b}", "unterminated string"),
        ("x{a=`b}", "unterminated raw string"),
        ("rate(x[5m)", "expected ']'"),
        ("rate(x[])", "expected a duration"),
        ("rate(x[$__rate_interval])", "expected a duration"),
        ("rate(x[5x])", "expected ']'"),
        ("rate(x[1.5m])", "invalid range duration"),
        ("rate(x[5m:1q])", "expected ']'"),
        ("x]", "']' without '['"),
        ("x{a[5m]}", "inside label matchers"),
        ("x offset 1.5h", "invalid offset duration"),
    ],
)
def test_malformed_expressions_are_errors(expr: str, message: str) -> None:
    with pytest.raises(PromQLScanError, match=re.escape(message)) as info:
        find_durations(expr)
    assert 0 <= info.value.position <= len(expr)
