"""`gameday alerts lint` without a network: selectors, suggestions, sources, findings, exit codes.

Targets here are /metrics texts held in strings and Prometheus servers answered by
httpx.MockTransport; the real simulator and a real Prometheus are in
tests/integration/test_alerts_lint.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from gameday.cli.alerts import app as alerts_app
from gameday.cli.common import out as cli_out
from gameday.core.errors import ComponentMissing, ComponentUnreachable, UsageError
from gameday.rules import RuleGroup, parse_rule_documents
from gameday.rules.lint import (
    VLLM_RENAMES,
    ExpositionSource,
    LabelMatcher,
    PrometheusSource,
    PromQLSyntaxError,
    Selector,
    connect,
    extract_selectors,
    find_promtool,
    lint,
    promtool_errors,
    suggest_label,
    suggest_metric,
    suggest_value,
)

from .conftest import find_promtool as require_promtool

# -- selectors --------------------------------------------------------------------------


def shapes(expr: str) -> list[tuple[str | None, list[str], bool]]:
    return [(s.metric, [str(m) for m in s.matchers], s.in_absent) for s in extract_selectors(expr)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up == 0", [("up", [], False)]),
        ('up{job="inference"} == 0', [("up", ['job="inference"'], False)]),
        # by/without labels, function names, durations and numbers are not selectors
        (
            'sum by (job, instance) (rate(http_requests_total{handler=~"/v1/(chat/)?completions", '
            'status="5xx"}[5m])) > 0.05',
            [
                (
                    "http_requests_total",
                    ['handler=~"/v1/(chat/)?completions"', 'status="5xx"'],
                    False,
                )
            ],
        ),
        ("sum without (instance, engine) (x) * 2", [("x", [], False)]),
        # every matcher operator
        (
            'x{a="1", b!="2", c=~"3|4", d!~"5.*"}',
            [("x", ['a="1"', 'b!="2"', 'c=~"3|4"', 'd!~"5.*"'], False)],
        ),
        # the name as a matcher, and a name that is only a regular expression
        (
            '{__name__="vllm:kv_cache_usage_perc", engine="0"} > 0.9',
            [("vllm:kv_cache_usage_perc", ['engine="0"'], False)],
        ),
        ('{__name__=~"vllm:.*_perc"}', [(None, ['__name__=~"vllm:.*_perc"'], False)]),
        # vector matching keywords and their label lists
        (
            "a * on (namespace, pod) group_left (owner_kind) b",
            [("a", [], False), ("b", [], False)],
        ),
        (
            "a and ignoring (reason) b unless c",
            [("a", [], False), ("b", [], False), ("c", [], False)],
        ),
        ("a > bool 1", [("a", [], False)]),
        # offsets, subqueries and @ modifiers
        ("a offset 5m - a offset 1h", [("a", [], False), ("a", [], False)]),
        ("max_over_time(rate(x[1m])[30m:30s])", [("x", [], False)]),
        ("x @ 1609746000", [("x", [], False)]),
        # string arguments are not selectors, aggregation parameters may be
        (
            'label_replace(x, "dst", "$1", "src", "(.*)")',
            [("x", [], False)],
        ),
        ('count_values("version", build_info)', [("build_info", [], False)]),
        ("topk(scalar(n), x)", [("n", [], False), ("x", [], False)]),
        ("time() - last_seen > 600", [("last_seen", [], False)]),
        ("vector(1) + 2 * -3", []),
        # absent() is meant to select nothing
        ('absent(up{job="inference"})', [("up", ['job="inference"'], True)]),
        (
            "absent_over_time(x[5m]) or y",
            [("x", [], True), ("y", [], False)],
        ),
        ("absent(sum(rate(x[5m])))", [("x", [], True)]),
        # escapes in strings
        (r'x{path="a\"b"}', [("x", [r'path="a\"b"'], False)]),
        # recording-rule names carry colons
        ("job:requests:rate5m > 10", [("job:requests:rate5m", [], False)]),
    ],
)
def test_extract_selectors(expr: str, expected: list[tuple[str | None, list[str], bool]]) -> None:
    assert shapes(expr) == expected


@pytest.mark.parametrize(
    "expr", ["sum(rate(x[5m]) > 0", "x{a=b}", 'x{a="1"', "rate(x[5m]", "no_such_function(x)"]
)
def test_extract_selectors_refuses_what_does_not_parse(expr: str) -> None:
    with pytest.raises(PromQLSyntaxError):
        extract_selectors(expr)


def test_bundled_rules_have_the_selectors_they_are_written_with() -> None:
    from gameday.rules import alert_rules, load_bundled_rules

    names = {
        s.metric for rule in alert_rules(load_bundled_rules()) for s in extract_selectors(rule.expr)
    }
    assert names == {
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "kube_pod_container_status_last_terminated_reason",
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_status_waiting_reason",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
        "http_requests_total",
        "up",
    }


@pytest.mark.parametrize(
    ("matcher", "value", "expected"),
    [
        (LabelMatcher("a", "=", "x"), "x", True),
        (LabelMatcher("a", "=", "x"), "", False),
        (LabelMatcher("a", "=", ""), "", True),  # an absent label is ""
        (LabelMatcher("a", "!=", "x"), "", True),
        (LabelMatcher("a", "=~", "5.."), "500", True),
        (LabelMatcher("a", "=~", "5"), "500", False),  # anchored at both ends
        (LabelMatcher("a", "=~", "Pending|Unknown"), "Unknown", True),
        (LabelMatcher("a", "!~", "Pending|Unknown"), "Running", True),
        (LabelMatcher("a", "!~", ".*"), "anything", False),
        (LabelMatcher("a", "=~", "a.b"), "a\nb", True),  # . matches a newline, as in Prometheus
    ],
)
def test_matcher_semantics(matcher: LabelMatcher, value: str, expected: bool) -> None:
    assert matcher.matches(value) is expected


def test_selector_text() -> None:
    assert str(Selector("up", (LabelMatcher("job", "=", "x"),))) == 'up{job="x"}'
    assert str(Selector("up", ())) == "up"


# -- suggestions ------------------------------------------------------------------------

VLLM = {
    "vllm:prompt_tokens_total": "counter",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:inter_token_latency_seconds_bucket": "histogram",
    "vllm:inter_token_latency_seconds_sum": "histogram",
    "vllm:inter_token_latency_seconds_count": "histogram",
    "vllm:time_to_first_token_seconds_bucket": "histogram",
    "vllm:prefix_cache_hits_total": "counter",
    "process_open_fds": "gauge",
}
SGLANG = {"sglang:token_usage": "gauge", "sglang:num_queue_reqs": "gauge"}


@pytest.mark.parametrize(
    ("name", "exposed", "replacement", "reason"),
    [
        ("vllm:prompt_tokens", VLLM, "vllm:prompt_tokens_total", "_total suffix"),
        ("vllm:gpu_cache_usage_perc", VLLM, "vllm:kv_cache_usage_perc", "renamed in vLLM 0.9.2"),
        (
            "vllm:time_per_output_token_seconds_bucket",
            VLLM,
            "vllm:inter_token_latency_seconds_bucket",
            "renamed in vLLM 0.11",
        ),
        (
            "vllm:time_per_output_token_seconds_count",
            VLLM,
            "vllm:inter_token_latency_seconds_count",
            "renamed",
        ),
        # renamed, and its counter written without _total
        ("vllm:gpu_prefix_cache_hits", VLLM, "vllm:prefix_cache_hits_total", "renamed"),
        ("vllm:gpu_prefix_cache_hits_total", VLLM, "vllm:prefix_cache_hits_total", "renamed"),
        (
            "vllm:time_to_first_token_seconds",
            VLLM,
            "vllm:time_to_first_token_seconds_bucket",
            "histogram",
        ),
        ("process_open_fds_total", VLLM, "process_open_fds", "without the _total"),
        ("vllm:num_request_waiting", VLLM, "vllm:num_requests_waiting", "closest"),
        # a rule for vLLM against SGLang
        ("vllm:kv_cache_usage_perc", SGLANG, "sglang:token_usage", "other engine"),
        ("sglang:num_queue_reqs", VLLM, "vllm:num_requests_waiting", "other engine"),
        # renamed, but the target has neither name: the successor all the same
        ("vllm:gpu_cache_usage_perc", {}, "vllm:kv_cache_usage_perc", "removed in 0.12"),
        (
            "vllm:avg_generation_throughput_toks_per_s",
            VLLM,
            "rate(vllm:generation_tokens_total[1m])",
            "V0 engine",
        ),
        ("vllm:num_requests_swapped", VLLM, None, "nothing replaces it"),
    ],
)
def test_suggest_metric(
    name: str, exposed: dict[str, str], replacement: str | None, reason: str
) -> None:
    suggestion = suggest_metric(name, exposed)
    assert suggestion is not None
    assert suggestion.replacement == replacement
    assert reason in suggestion.reason


def test_suggest_metric_gives_nothing_far_fetched() -> None:
    assert suggest_metric("kube_pod_container_status_restarts_total", VLLM) is None


def test_rename_table_points_at_names_the_simulator_exposes() -> None:
    from gameday.sim.metrics import Metrics

    metrics = Metrics(flavor="vllm", deprecated=False, model_name="m")
    exposed = {family.name for family in metrics.collect()}
    for old, rename in VLLM_RENAMES.items():
        if old.startswith("vllm:gpu_prefix"):
            continue  # the simulator has no prefix cache
        assert rename.new in exposed, old


def test_suggest_label_and_value() -> None:
    assert suggest_label("model_nmae", {"engine", "model_name"}) == "model_name"
    assert suggest_label("zone", {"engine", "model_name"}) is None
    assert suggest_value("500", {"2xx", "4xx", "5xx"}) == "5xx"
    assert suggest_value("llama", {"gameday-sim-tiny"}) == "gameday-sim-tiny"  # the only one
    assert suggest_value("OOMKill", {"Completed", "Error", "OOMKilled"}) == "OOMKilled"
    assert suggest_value("zzz", {"alpha", "beta"}) is None


# -- sources ----------------------------------------------------------------------------

TEXT = """\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny"} 0.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="tiny"} 12.0
# TYPE go_style counter
go_style{code="200"} 3
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="tiny"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="tiny"} 1.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="tiny"} 1.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="tiny"} 0.2
# HELP http_requests_total Total number of requests by method, status and handler.
# TYPE http_requests_total counter
http_requests_total{handler="/v1/chat/completions",method="POST",status="2xx"} 4.0
# TYPE kube_pod_container_status_last_terminated_reason gauge
# TYPE kube_pod_status_phase gauge
kube_pod_status_phase{namespace="a",pod="p",phase="Running"} 1
kube_pod_status_phase{namespace="a",pod="p",phase="Pending"} 0
# TYPE request_latency histogram
"""


def source(text: str = TEXT, **kwargs: Any) -> ExpositionSource:
    return ExpositionSource(text, "http://sim/metrics", **kwargs)


def test_exposition_names_are_what_prometheus_stores() -> None:
    names = source().names()
    assert names["vllm:prompt_tokens_total"] == "counter"
    # `# TYPE go_style counter` + `go_style 3` is stored as go_style (prometheus_client's
    # parser calls it go_style_total)
    assert "go_style" in names
    assert "go_style_total" not in names
    assert names["vllm:time_to_first_token_seconds_bucket"] == "histogram"
    # declared families without series still have names
    assert "kube_pod_container_status_last_terminated_reason" in names
    assert {"request_latency_bucket", "request_latency_sum", "request_latency_count"} <= set(names)
    assert not source().has_series("request_latency_bucket")
    assert source().label_names("vllm:num_requests_waiting") == {"engine", "model_name"}


def test_openmetrics_counters_are_name_total() -> None:
    text = '# TYPE foo counter\nfoo_total{a="b"} 1.0\nfoo_created{a="b"} 1.0\n# EOF\n'
    om = source(text)
    assert om.openmetrics
    assert om.has_series("foo_total")
    assert "foo" not in om.names()


def test_garbage_is_not_metrics() -> None:
    with pytest.raises(UsageError, match="not Prometheus metrics text"):
        source("<html><body>login</body></html>")


# -- linting ----------------------------------------------------------------------------


def rules(text: str) -> list[tuple[str, RuleGroup]]:
    return [("rules.yml", group) for group in parse_rule_documents(text, "rules.yml")]


def one(expr: str, target_labels: tuple[str, ...] = ()) -> Any:
    """The result of linting one alert with ``expr`` against TEXT (no promtool)."""
    found = source(target_labels=target_labels)
    report = lint(rules(_alert(expr)), [found], promtool=None, target_labels=target_labels)
    return report.results[0]


def kinds(result: Any) -> list[tuple[str, str | None]]:
    return [(f.kind, f.suggestion) for f in result.findings]


def test_a_rule_that_can_fire_has_no_finding() -> None:
    result = one(
        'histogram_quantile(0.99, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{model_name="tiny"}[5m]))) > 5'
    )
    assert result.can_fire
    assert result.findings == []
    assert result.selectors[0].matchers == {'model_name="tiny"': "ok"}
    assert result.selectors[0].found_in == ["http://sim/metrics"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("rate(vllm:prompt_tokens[5m]) > 0", [("unknown-metric", "vllm:prompt_tokens_total")]),
        ("vllm:gpu_cache_usage_perc > 0.9", [("unknown-metric", "vllm:kv_cache_usage_perc")]),
        (
            'vllm:num_requests_waiting{model_nmae="tiny"} > 1',
            [("unknown-label", 'model_name="tiny"')],
        ),
        (
            'vllm:num_requests_waiting{model_name="llama"} > 1',
            [("label-value", 'model_name="tiny"')],
        ),
        ('rate(http_requests_total{status="500"}[5m]) > 0', [("label-value", 'status="5xx"')]),
        ('vllm:num_requests_waiting{model_name=~"llama.*"} > 1', [("label-value", None)]),
        # every series has engine="0": `!=` selects none of them
        ('vllm:num_requests_waiting{engine!="0"} > 1', [("label-value", None)]),
        ('{__name__=~"sglang:.*"} > 1', [("unknown-metric", None)]),
        # two mistakes in one rule, both found
        (
            'vllm:gpu_cache_usage_perc > 0.9 and vllm:num_requests_waiting{modelname="x"} > 1',
            [("unknown-metric", "vllm:kv_cache_usage_perc"), ("unknown-label", 'model_name="x"')],
        ),
    ],
)
def test_findings(expr: str, expected: list[tuple[str, str | None]]) -> None:
    result = one(expr)
    assert kinds(result) == expected
    assert not result.can_fire


@pytest.mark.parametrize(
    ("expr", "note"),
    [
        # absent() is written to fire when its series are missing
        ("absent(vllm:gpu_cache_usage_perc)", "absent() is true now"),
        ('absent_over_time(nothing{a="b"}[5m])', "absent() is true now"),
        # job and instance come from the scrape configuration
        ('up{job="inference"} == 0', "job of up comes from Prometheus' scrape configuration"),
        ('vllm:num_requests_waiting{instance="a:1"} > 1', "attached by Prometheus"),
        # a value the exporter emits once it happens
        (
            'rate(http_requests_total{status="5xx"}[5m]) > 0',
            "5xx is a value http_requests_total gets",
        ),
        ('kube_pod_status_phase{phase="Failed"} == 1', "matches no series yet"),
        # declared, no series yet: labels unknown
        (
            'kube_pod_container_status_last_terminated_reason{reason="OOMKilled"} == 1',
            "OOMKilled",
        ),
        ('request_latency_bucket{le="1"} > 0', "has no series yet"),
    ],
)
def test_notes_are_not_findings(expr: str, note: str) -> None:
    result = one(expr)
    assert result.can_fire, result.findings
    assert any(note in n for n in result.notes), result.notes


def test_an_old_name_still_exposed_can_fire_with_a_note() -> None:
    # a simulator started with --deprecated-metrics
    text = TEXT + "# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc 0.1\n"
    report = lint(rules(_alert("vllm:gpu_cache_usage_perc > 0.9")), [source(text)], promtool=None)
    assert report.results[0].can_fire
    assert "use vllm:kv_cache_usage_perc" in report.results[0].notes[0]


def _alert(expr: str) -> str:
    return f"groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '{expr}'\n"


def test_kube_value_not_in_the_known_set_is_a_finding() -> None:
    result = one('kube_pod_status_phase{phase="Runing"} == 1')
    assert kinds(result) == [("label-value", 'phase="Running"')]


def test_scrape_labels_are_not_checked_against_a_metrics_endpoint() -> None:
    expr = 'vllm:num_requests_waiting{namespace="serving"} > 1'
    assert kinds(one(expr)) == [("unknown-label", None)]
    result = one(expr, target_labels=("namespace",))
    assert result.can_fire
    assert result.selectors[0].matchers == {'namespace="serving"': "unchecked"}


def test_recorded_series_exist_and_recording_rules_are_linted_too() -> None:
    text = """\
groups:
  - name: g
    rules:
      - record: job:waiting:sum
        expr: sum by (model_name) (vllm:num_requests_waiting)
      - record: job:broken
        expr: sum(vllm:num_request_waiting)
      - alert: A
        expr: job:waiting:sum{model_name="tiny"} > 50
"""
    report = lint(rules(text), [source()], promtool=None)
    by_name = {r.rule.name: r for r in report.results}
    assert by_name["job:waiting:sum"].can_fire
    assert kinds(by_name["job:broken"]) == [("unknown-metric", "vllm:num_requests_waiting")]
    assert by_name["A"].can_fire
    assert any("recorded by rules.yml:g" in n for n in by_name["A"].notes)
    assert [r.rule.name for r in report.never_fire] == ["job:broken"]


def test_without_promtool_the_parser_judges_the_syntax() -> None:
    result = one("sum(rate(vllm:prompt_tokens_total[5m]) > 0")
    assert [f.kind for f in result.findings] == ["invalid"]
    assert "promtool not installed" in result.findings[0].message


def test_several_targets_are_one_union() -> None:
    ksm = ExpositionSource(
        "# TYPE kube_pod_container_status_restarts_total counter\n"
        'kube_pod_container_status_restarts_total{namespace="n",pod="p",container="c"} 1\n',
        "http://ksm/metrics",
    )
    text = _alert(
        "increase(kube_pod_container_status_restarts_total[10m]) > 0 "
        "and on (namespace) vllm:num_requests_waiting > 0"
    )
    alone = lint(rules(text), [source()], promtool=None)
    assert kinds(alone.results[0]) == [("unknown-metric", None)]
    both = lint(rules(text), [source(), ksm], promtool=None)
    assert both.results[0].can_fire
    assert [s.found_in for s in both.results[0].selectors] == [
        ["http://ksm/metrics"],
        ["http://sim/metrics"],
    ]


def test_report_json_shape() -> None:
    report = lint(rules(_alert("vllm:gpu_cache_usage_perc > 0.9")), [source()], promtool=None)
    data = json.loads(json.dumps(report.to_json()))
    assert data["summary"] == {"rules": 1, "can_fire": 0, "can_never_fire": 1, "findings": 1}
    (rule,) = data["rules"]
    assert rule["name"] == "A"
    assert rule["file"] == "rules.yml"
    assert rule["group"] == "g"
    assert rule["findings"][0]["suggestion"] == "vllm:kv_cache_usage_perc"
    assert data["targets"][0]["kind"] == "metrics-endpoint"


# -- promtool ---------------------------------------------------------------------------


def test_promtool_errors_go_to_their_rule() -> None:
    binary = require_promtool()
    text = """\
groups:
  - name: g
    interval: 30s
    rules:
      - alert: Good
        expr: up == 0
      - alert: Bad
        expr: sum(rate(x[5m]) > 1
      - alert: BadTemplate
        expr: up == 0
        annotations:
          summary: "{{ $labels.job "
"""
    (group,) = parse_rule_documents(text)
    errors = promtool_errors(binary, [(group, rule) for rule in group.rules])
    assert errors[0] is None
    assert errors[1] == "could not parse expression: 1:20: parse error: unclosed left parenthesis"
    assert errors[2] is not None
    assert 'annotation "summary"' in errors[2]
    assert "FAILED" not in errors[1]


def test_missing_promtool_is_an_error_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ComponentMissing, match="CI=true"):
        find_promtool()
    monkeypatch.delenv("CI")
    assert find_promtool() is None


# -- reaching targets -------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def prometheus(request: httpx.Request) -> httpx.Response:
    """A Prometheus server with up{job="inference"} and vllm:num_requests_waiting."""
    path, params = request.url.path, request.url.params
    ok: Callable[[Any], httpx.Response] = lambda data: httpx.Response(  # noqa: E731
        200, json={"status": "success", "data": data}
    )
    if path == "/api/v1/label/__name__/values":
        return ok(["up", "vllm:num_requests_waiting"])
    if path == "/api/v1/metadata":
        return ok({"vllm:num_requests_waiting": [{"type": "gauge", "help": "", "unit": ""}]})
    if path == "/api/v1/series":
        match = params["match[]"]
        assert params["limit"] == "1"
        assert "start" in params
        found = 'job="inference"' in match or 'model_name="tiny"' in match
        return ok([{"__name__": "up"}] if found else [])
    if path == "/api/v1/labels":
        return ok(["__name__", "instance", "job"])
    if path == "/api/v1/label/job/values":
        return ok(["inference", "kube-state-metrics"])
    return httpx.Response(404, text="404 page not found")


def test_a_prometheus_server_is_detected_and_asked() -> None:
    found = connect("http://prom:9090", client=client(prometheus))
    assert isinstance(found, PrometheusSource)
    assert "a Prometheus server" in found.describe()
    text = _alert('up{job="inferenc"} == 0 or up{job="inference"} == 0')
    report = lint(rules(text), [found], promtool=None)
    result = report.results[0]
    assert kinds(result) == [("label-value", 'job="inference"')]
    assert [s.matchers for s in result.selectors] == [
        {'job="inferenc"': "finding"},
        {'job="inference"': "ok"},  # checked: a server knows its job labels
    ]


def test_a_metrics_endpoint_is_detected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/metrics":
            return httpx.Response(200, text=TEXT, headers={"content-type": "text/plain"})
        return httpx.Response(404, json={"detail": "Not Found"})

    found = connect("http://sim:8000/metrics", client=client(handler))
    assert isinstance(found, ExpositionSource)
    # a bare host: its /metrics
    assert connect("http://sim:8000", client=client(handler)).location == "http://sim:8000/metrics"


@pytest.mark.parametrize(
    ("url", "handler", "error", "message"),
    [
        ("ftp://host/metrics", None, UsageError, "http:// or https://"),
        ("localhost:9090", None, UsageError, "http:// or https://"),
        (
            "http://sim/nothing",
            lambda r: httpx.Response(404, text="no"),
            UsageError,
            "answered HTTP 404",
        ),
        (
            "http://grafana/login",
            lambda r: httpx.Response(200, text="<html/>", headers={"content-type": "text/html"}),
            UsageError,
            "not metrics",
        ),
        (
            "http://sim/metrics",
            lambda r: httpx.Response(503, text="starting"),
            ComponentUnreachable,
            "HTTP 503",
        ),
    ],
)
def test_connect_errors(url: str, handler: Handler | None, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        connect(url, client=client(handler or prometheus))


def test_unreachable_target() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(ComponentUnreachable, match=r"--target http://prom:9090: cannot reach"):
        connect("http://prom:9090", client=client(refuse))


# -- the command ------------------------------------------------------------------------


def invoke(*args: object) -> Any:
    root = typer.Typer()
    root.add_typer(alerts_app, name="alerts")
    return CliRunner().invoke(root, ["alerts", "lint", *map(str, args)])


@pytest.fixture
def metrics_file(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.txt"
    path.write_text(TEXT)
    return path


def test_cli_exit_codes_and_json(tmp_path: Path, metrics_file: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(_alert("vllm:num_requests_waiting > 50"))
    bad = tmp_path / "bad.yml"
    bad.write_text(_alert("vllm:gpu_cache_usage_perc > 0.9"))

    passed = invoke(good, "--metrics-file", metrics_file)
    assert passed.exit_code == 0, passed.output
    assert "1 rules checked: 1 can fire, 0 can never fire" in passed.output

    failed = invoke(good, bad, "--metrics-file", metrics_file, "--format", "json")
    assert failed.exit_code == 1, failed.output
    data = json.loads(failed.stdout)
    assert data["summary"]["can_never_fire"] == 1
    assert data["rules"][1]["findings"][0]["suggestion"] == "vllm:kv_cache_usage_perc"


def test_cli_table(tmp_path: Path, metrics_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # wide enough that no cell folds, whatever the length of the temporary path (the
    # console read COLUMNS when it was made, which under xdist was another test's width)
    monkeypatch.setattr(cli_out, "width", 300)
    bad = tmp_path / "bad.yml"
    bad.write_text(_alert("vllm:gpu_cache_usage_perc > 0.9"))
    result = invoke(bad, "--metrics-file", metrics_file)
    assert result.exit_code == 1
    for text in ("rule", "file:group", "finding", "suggestion", "unknown-metric", "bad.yml:g"):
        assert text in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{missing}", "--metrics-file", "{metrics}"], "cannot read rule file"),
        (["{good}"], "give at least one --target URL or --metrics-file"),
        (["{good}", "--metrics-file", "{missing}"], "cannot read metrics file"),
        (["{good}", "--target", "ftp://x"], "http:// or https://"),
        (["{good}", "--metrics-file", "{metrics}", "--lookback", "soon"], "--lookback"),
        (["{notrules}", "--metrics-file", "{metrics}"], "scenario.yml: invalid rules"),
    ],
)
def test_cli_bad_input_exits_2(
    tmp_path: Path, metrics_file: Path, args: list[str], message: str
) -> None:
    good = tmp_path / "good.yml"
    good.write_text(_alert("up == 0"))
    notrules = tmp_path / "scenario.yml"
    notrules.write_text("name: x\n")
    paths = {
        "missing": tmp_path / "missing.yml",
        "good": good,
        "metrics": metrics_file,
        "notrules": notrules,
    }
    result = invoke(*(a.format(**paths) for a in args))
    assert result.exit_code == 2, result.output
    assert message in result.output
