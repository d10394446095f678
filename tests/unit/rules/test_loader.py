"""Loading rule files and PrometheusRule manifests, writing rule files; errors name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.core.errors import InputError
from gameday.rules import (
    Rule,
    RuleError,
    RuleGroup,
    bundled_rule_files,
    dump_rule_file,
    load_bundled_rules,
    load_rule_file,
    load_rule_files,
    parse_rule_documents,
    write_rule_file,
)

PLAIN = """\
groups:
  - name: example
    interval: 30s
    rules:
      - record: job:requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
      - alert: Down
        expr: |
          up == 0
        for: 1m
        keep_firing_for: 30s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.instance }} is down"
"""

MANIFEST = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {name}
  namespace: monitoring
spec:
  groups:
    - name: {group}
      rules:
        - alert: {alert}
          expr: up == 0
          for: 5m
"""


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_plain_rule_file(tmp_path: Path) -> None:
    (group,) = load_rule_file(write(tmp_path, PLAIN))
    assert group.name == "example"
    assert group.interval == "30s"
    record, down = group.rules
    assert (record.kind, record.name) == ("record", "job:requests:rate5m")
    assert (down.kind, down.name, down.for_, down.keep_firing_for) == ("alert", "Down", "1m", "30s")
    assert down.expr == "up == 0\n"
    assert down.labels == {"severity": "critical"}
    assert group.alerts == [down]


def test_prometheus_rule_manifests(tmp_path: Path) -> None:
    text = (
        MANIFEST.format(name="one", group="a", alert="A")
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\ndata: {}\n---\n"
        + MANIFEST.format(name="two", group="b", alert="B")
    )
    groups = load_rule_file(write(tmp_path, text))
    assert [(g.name, g.rules[0].name) for g in groups] == [("a", "A"), ("b", "B")]


def test_kubectl_list_of_prometheus_rules() -> None:
    items = "\n".join(
        "  - " + MANIFEST.format(name=n, group=n, alert=n.title()).replace("\n", "\n    ")
        for n in ("x", "y")
    )
    groups = parse_rule_documents(f"apiVersion: v1\nkind: List\nitems:\n{items}\n")
    assert [g.name for g in groups] == ["x", "y"]


def test_load_rule_files_keeps_order(tmp_path: Path) -> None:
    a = write(tmp_path, MANIFEST.format(name="a", group="a", alert="A"), "a.yaml")
    b = write(tmp_path, PLAIN, "b.yml")
    assert [g.name for g in load_rule_files([b, a])] == ["example", "a"]


def test_yaml_numbers_are_text() -> None:
    text = (
        "groups:\n- name: g\n  rules:\n"
        "  - alert: A\n    expr: 1\n    for: 0\n    labels: {priority: 2}\n"
    )
    (group,) = parse_rule_documents(text)
    assert (group.rules[0].expr, group.rules[0].for_, group.rules[0].labels) == (
        "1",
        "0",
        {"priority": "2"},
    )


def test_bundled_rules_load() -> None:
    groups = load_bundled_rules()
    assert len(groups) == len(bundled_rule_files())
    assert all(group.rules for group in groups)


def test_dump_and_reload_round_trips(tmp_path: Path) -> None:
    groups = load_rule_file(write(tmp_path, PLAIN)) + load_bundled_rules()
    path = write_rule_file(groups, tmp_path / "out" / "all.yml")
    assert path.read_text(encoding="utf-8") == dump_rule_file(groups)
    assert load_rule_file(path) == groups
    assert [p.name for p in path.parent.iterdir()] == ["all.yml"]


def test_dump_reads_like_a_hand_written_rule_file() -> None:
    group = RuleGroup(
        name="g",
        rules=[
            Rule(alert="A", expr="rate(x[5m])\n  > 1\n", for_="5m", labels={"severity": "warning"}),
            Rule(record="r", expr="sum(x)"),
        ],
    )
    assert dump_rule_file([group]) == (
        "groups:\n"
        "  - name: g\n"
        "    rules:\n"
        "      - alert: A\n"
        "        expr: |\n"
        "          rate(x[5m])\n"
        "            > 1\n"
        "        for: 5m\n"
        "        labels:\n"
        "          severity: warning\n"
        "      - record: r\n"
        "        expr: sum(x)\n"
    )


def test_dump_refuses_repeated_group_names() -> None:
    group = RuleGroup(name="g", rules=[])
    with pytest.raises(RuleError, match="group name 'g' is repeated"):
        dump_rule_file([group, group])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("groups: [", r"rules\.yml:\d+:\d+: invalid YAML"),
        ("", "rules.yml: no rule groups: the file is empty"),
        ("apiVersion: v1\nkind: ConfigMap\n", "rules.yml: no rule groups: expected"),
        ("- a\n- b\n", "rules.yml: expected a mapping"),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n",
            r"rules\.yml: invalid rules:\n  line 4: groups\[0\]\.rules\[0\]\.expr: Field required",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    fro: 5m\n",
            r"line 6: groups\[0\]\.rules\[0\]\.fro: Extra inputs are not permitted",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5 minutes\n",
            r"line 6: groups\[0\]\.rules\[0\]\.for: invalid Prometheus duration '5 minutes'",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    record: b\n    expr: up\n",
            "exactly one of 'alert' and 'record'",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 5m\n",
            "a recording rule cannot have 'for'",
        ),
        (
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    annotations: {a: b}\n",
            "a recording rule cannot have 'annotations'",
        ),
        ("groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n", "'g' is repeated"),
        (
            "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n"
            "metadata: {name: x, namespace: ns}\nspec:\n  groups:\n  - name: g\n"
            "    rules:\n    - alert: A\n      expr: ''\n",
            r"PrometheusRule ns/x: invalid rules:\n  line 9: spec\.groups\[0\]\.rules\[0\]\.expr",
        ),
        (
            "apiVersion: monitoring.example.com/v1\nkind: PrometheusRule\nspec: {groups: []}\n",
            "expected monitoring.coreos.com/v1",
        ),
    ],
)
def test_errors_name_the_file(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(RuleError, match=expected) as info:
        load_rule_file(write(tmp_path, text))
    assert str(info.value).startswith(str(tmp_path / "rules.yml"))
    assert isinstance(info.value, InputError)


def test_errors_name_the_document(tmp_path: Path) -> None:
    text = (
        MANIFEST.format(name="ok", group="a", alert="A")
        + "---\n"
        + MANIFEST.format(name="bad", group="b", alert="B").replace("for: 5m", "for: soon")
    )
    with pytest.raises(
        RuleError, match=r"rules\.yml \(document 2\): PrometheusRule monitoring/bad"
    ):
        load_rule_file(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"missing\.yml: cannot read rule file"):
        load_rule_file(tmp_path / "missing.yml")
