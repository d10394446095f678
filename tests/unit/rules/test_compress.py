"""Time compression: durations shrink by the factor, never below the floor, never grow."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from gameday.rules import (
    Change,
    Rule,
    RuleError,
    RuleGroup,
    compress,
    compress_expr,
    find_durations,
    load_bundled_rules,
    load_rule_file,
    scale_duration,
    write_rule_file,
)
from gameday.rules.durations import prometheus_duration_ms

from .conftest import PromtoolRunner, promtool_output


def group(*rules: Rule, interval: str | None = None, name: str = "g") -> RuleGroup:
    return RuleGroup(name=name, interval=interval, rules=list(rules))


def alert(expr: str, for_: str | None = None, **extra: str) -> Rule:
    return Rule(alert="A", expr=expr, for_=for_, **extra)


def test_the_example_from_the_design() -> None:
    # "for 10m over [5m]" becomes "for 20s over [10s]" at factor 30.
    (out,), changes = compress([group(alert("rate(x[5m]) > 1", "10m"))], 30, 5)
    assert out.rules[0].expr == "rate(x[10s]) > 1"
    assert out.rules[0].for_ == "20s"
    assert changes == [
        Change("g", "A", "range", "5m", "10s"),
        Change("g", "A", "for", "10m", "20s"),
    ]
    assert [str(c) for c in changes] == ["A: range 5m -> 10s", "A: for 10m -> 20s"]


@pytest.mark.parametrize(
    ("before_ms", "factor", "floor_ms", "after_ms"),
    [
        (300_000, 30, 5_000, 10_000),
        (300_000, 100, 10_000, 10_000),  # 3s would be below the floor
        (5_000, 30, 10_000, 5_000),  # already below the floor: left alone, not lengthened
        (10_000, 30, 10_000, 10_000),  # at the floor
        (0, 30, 10_000, 0),  # for: 0s stays immediate
        (300_000, 7, 0, 42_857),
        (300_000, 1, 10_000, 300_000),
    ],
)
def test_scale_duration(before_ms: int, factor: float, floor_ms: int, after_ms: int) -> None:
    assert scale_duration(before_ms, factor, floor_ms) == after_ms


def test_scale_never_lengthens_and_respects_the_floor() -> None:
    durations = [0, 1, 500, 1_000, 9_999, 10_000, 10_001, 60_000, 300_000, 3_600_000]
    for before, factor, floor in itertools.product(durations, [1, 1.5, 30, 1000], [0, 10_000]):
        after = scale_duration(before, factor, floor)
        assert after <= before
        assert after >= floor or after == before


def test_odd_results_keep_millisecond_precision() -> None:
    (out,), _ = compress([group(alert("rate(x[5m]) > 1", "5m"))], 7, 1)
    assert out.rules[0].expr == "rate(x[42s857ms]) > 1"
    assert out.rules[0].for_ == "42s857ms"


def test_subquery_step_keeps_its_ratio_to_the_range() -> None:
    expr, changes = compress_expr("max_over_time(rate(x[1m])[5m:30s])", 30, 10)
    assert expr == "max_over_time(rate(x[10s])[10s:1s])"
    assert changes == [("range", "1m", "10s"), ("range", "5m", "10s"), ("step", "30s", "1s")]
    # The floor shortened the range less than the factor: the step follows the range.
    assert compress_expr("max_over_time(x[1m:30s])", 30, 10)[0] == "max_over_time(x[10s:5s])"
    # A range left alone leaves its step alone.
    assert compress_expr("max_over_time(x[10s:2s])", 30, 10)[0] == "max_over_time(x[10s:2s])"
    assert compress_expr("max_over_time(x[30m:])", 30, 10)[0] == "max_over_time(x[1m:])"


def test_offsets_are_compressed_and_keep_their_sign() -> None:
    expr, changes = compress_expr("x - x offset 1h + y offset -10m", 30, 10)
    assert expr == "x - x offset 2m + y offset -20s"
    assert [field for field, _, _ in changes] == ["offset", "offset"]


def test_string_literals_are_not_touched() -> None:
    expr = (
        'sum(rate(http_requests_total{handler=~"/v1/[a-z]+", path=~`[0-9]{5m}`,'
        " note='offset 1h [5m]'}[5m])) # [10m]\n"
    )
    out, changes = compress_expr(expr, 30, 5)
    assert out == expr.replace("}[5m]))", "}[10s]))")
    assert changes == [("range", "5m", "10s")]


def test_every_timing_field_is_compressed() -> None:
    rule = Rule(alert="A", expr="rate(x[5m]) > 1", for_="10m", keep_firing_for="15m")
    record = Rule(record="job:x:rate5m", expr="sum by (job) (rate(x[5m]))")
    (out,), changes = compress([group(rule, record, interval="1m")], 30, 1)
    assert out.interval == "2s"
    assert out.rules[0].keep_firing_for == "30s"
    assert out.rules[1].expr == "sum by (job) (rate(x[10s]))"
    assert {(c.rule, c.field) for c in changes} == {
        (None, "interval"),
        ("A", "range"),
        ("A", "for"),
        ("A", "keep_firing_for"),
        ("job:x:rate5m", "range"),
    }
    assert str(changes[0]) == "group g: interval 1m -> 2s"


def test_nothing_else_changes_and_the_input_is_untouched() -> None:
    rule = Rule(
        alert="A",
        expr="x > 1",
        labels={"severity": "warning"},
        annotations={"summary": "for 5m over [5m]"},
    )
    original = group(rule)
    (out,), changes = compress([original], 30, 1)
    assert changes == []
    assert out == original
    (out,), _ = compress([group(alert("rate(x[5m]) > 1", "5m"))], 30, 1)
    assert out.rules[0].labels == {} and out.rules[0].annotations == {}
    assert original.rules[0] is rule and rule.expr == "x > 1"


def test_unchanged_durations_keep_their_spelling() -> None:
    (out,), changes = compress([group(alert("rate(x[300s]) > 1", "60s"))], 1, 0)
    assert (out.rules[0].expr, out.rules[0].for_, changes) == ("rate(x[300s]) > 1", "60s", [])


@pytest.mark.parametrize(
    ("factor", "floor"),
    [(0, 1), (0.5, 1), (float("nan"), 1), (float("inf"), 1), (30, -1), (30, float("inf"))],
)
def test_bad_arguments(factor: float, floor: float) -> None:
    with pytest.raises(ValueError):
        compress([group(alert("x"))], factor, floor)


def test_malformed_expression_names_the_rule() -> None:
    with pytest.raises(RuleError, match=r"group 'g', rule 'A'.*unterminated string"):
        compress([group(alert('x{a="b}[5m]'))], 30, 1)


def test_bundled_rules_compress_above_the_floor() -> None:
    groups, changes = compress(load_bundled_rules(), 30, 5)
    assert changes
    changed = {(c.rule, c.field) for c in changes}
    assert ("ModelInferenceFailure", "for") in changed
    assert ("ModelInferenceFailure", "range") in changed
    for g in groups:
        for rule in g.rules:
            for span in find_durations(rule.expr):
                assert span.milliseconds >= 5_000 or span.kind == "step"
            if rule.for_ is not None:
                ms = prometheus_duration_ms(rule.for_)
                assert ms == 0 or ms >= 5_000


def test_compressed_bundled_rules_pass_promtool(promtool: PromtoolRunner, tmp_path: Path) -> None:
    groups, _ = compress(load_bundled_rules(), 30, 5)
    path = write_rule_file(groups, tmp_path / "compressed.yml")
    result = promtool("check", "rules", path)
    assert result.returncode == 0, promtool_output(result, ["check", "rules", path])
    assert load_rule_file(path) == groups


def test_compressed_rules_fire_on_the_compressed_clock(
    promtool: PromtoolRunner, tmp_path: Path
) -> None:
    """Factor 30, floor 10s: ModelInferenceFailure's [5m]/for 5m become [10s]/for 10s;
    InferenceTargetDown's for 1m would be 2s and is floored to 10s. Scraped every 2s."""
    serving = [g for g in load_bundled_rules() if g.name == "gameday-serving"]
    groups, _ = compress(serving, 30, 10)
    write_rule_file(groups, tmp_path / "serving.yml")
    chat = 'http_requests_total{job="inference",instance="i",handler="/v1/chat/completions"'
    test = {
        "rule_files": ["serving.yml"],
        "evaluation_interval": "2s",
        "tests": [
            {
                "interval": "2s",
                "input_series": [
                    {"series": chat + ',status="2xx"}', "values": "0+94x30"},
                    {"series": chat + ',status="5xx"}', "values": "0+6x30"},
                    # down from 20s: pending at 20s, firing from 30s
                    {"series": 'up{job="inference",instance="i"}', "values": "1+0x9 0+0x20"},
                ],
                "alert_rule_test": [
                    # 6% errors from 2s (the first rate): pending until 12s.
                    {"eval_time": "10s", "alertname": "ModelInferenceFailure"},
                    {
                        "eval_time": "12s",
                        "alertname": "ModelInferenceFailure",
                        "exp_alerts": [
                            {
                                "exp_labels": _labels(groups, "ModelInferenceFailure"),
                                "exp_annotations": _annotations(
                                    groups, "ModelInferenceFailure", "6%"
                                ),
                            }
                        ],
                    },
                    {"eval_time": "28s", "alertname": "InferenceTargetDown"},
                    {
                        "eval_time": "30s",
                        "alertname": "InferenceTargetDown",
                        "exp_alerts": [
                            {
                                "exp_labels": _labels(groups, "InferenceTargetDown"),
                                "exp_annotations": _annotations(groups, "InferenceTargetDown", ""),
                            }
                        ],
                    },
                ],
            }
        ],
    }
    YAML(typ="safe", pure=True).dump(test, tmp_path / "serving.test.yml")
    result = promtool("test", "rules", "serving.test.yml", cwd=tmp_path)
    assert result.returncode == 0, promtool_output(result, ["test", "rules", "serving.test.yml"])


def _rule(groups: list[RuleGroup], name: str) -> Rule:
    return next(rule for g in groups for rule in g.rules if rule.name == name)


def _labels(groups: list[RuleGroup], name: str) -> dict[str, str]:
    return {**_rule(groups, name).labels, "job": "inference", "instance": "i"}


def _annotations(groups: list[RuleGroup], name: str, value: str) -> dict[str, str]:
    def render(text: str) -> str:
        return (
            text.replace("{{ $value | humanizePercentage }}", value)
            .replace("{{ $labels.instance }}", "i")
            .replace("{{ $labels.job }}", "inference")
        )

    return {key: render(text) for key, text in _rule(groups, name).annotations.items()}
