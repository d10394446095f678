"""Every class of bad input is one located error (exit 2), never a traceback or an
unbounded expansion: the regression corpus in tests/data/fuzz/ (written by hand from the
issue's classes, and found by make fuzz), in process and through the CLI."""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path

import pytest
import yaml

from gameday.core.errors import GamedayError, ScenarioError
from gameday.core.yamlfile import MAX_DEPTH, YamlInputError, load_yaml_documents
from gameday.plugins import catalog
from gameday.rules import load_rule_file
from gameday.rules.model import RuleError
from gameday.runbooks import CatalogError, parse_catalog
from gameday.scenario.loader import load_scenario
from tests.fuzz.fuzz import KINDS
from tests.unit.test_cli import gameday

CORPUS = Path(__file__).resolve().parents[1] / "data" / "fuzz" / "scenario"
VALID = {"bom.yaml", "tagged_seq.yaml"}
CASES = sorted(CORPUS.glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_each_corpus_file_is_a_scenario_error_or_a_scenario(path: Path) -> None:
    started = time.monotonic()
    if path.name in VALID:
        load_scenario(path, catalog())
        return
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, catalog())
    issue = caught.value.issues[0]
    assert issue.file == str(path) and issue.message
    assert time.monotonic() - started < 10  # bounded: the alias bomb took 37 s and 4 GB


@pytest.mark.parametrize(
    ("name", "located"),
    [
        ("int_tag.yaml", ":18:37: invalid YAML: cannot build a !!int from 'x'"),
        ("bool_tag.yaml", ":18:63: invalid YAML: cannot build a !!bool from 'maybe'"),
        ("set_scalar.yaml", ":18:63: invalid YAML: cannot build a !!set from 'x'"),
        ("bigint.yaml", ":18:37: invalid YAML: cannot build a !!int from '1000"),
        ("deep.yaml", f":1:{MAX_DEPTH + 3}: invalid YAML: nested deeper than {MAX_DEPTH} levels"),
        ("alias_bomb.yaml", ": invalid YAML: more than 200,000 values once its aliases"),
        ("escape.yaml", ": invalid YAML: chr() arg not in range(0x110000)"),
    ],
)
def test_the_cli_prints_one_located_line_and_exits_2(
    name: str, located: str, tmp_path: Path
) -> None:
    path = CORPUS / name
    result = gameday("validate", str(path), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {path}")
    assert located in line


def test_the_alias_bomb_is_refused_before_it_is_expanded() -> None:
    text = (CORPUS / "alias_bomb.yaml").read_text()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(YamlInputError, match="once its aliases are expanded"):
        load_yaml_documents(text, "bomb.yaml")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB


@pytest.mark.parametrize("reader", ["libyaml", "ruamel"])
@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("alias_bomb.yaml", "once its aliases are expanded"),
        ("deep.yaml", f":1:{MAX_DEPTH + 3}: invalid YAML: nested deeper than {MAX_DEPTH} levels"),
    ],
)
def test_both_event_readers_hold_the_same_bounds(
    reader: str, name: str, refused: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libyaml counts the events where it can read the text; ruamel where it cannot (or
    # where PyYAML was built without libyaml)
    assert yaml.__with_libyaml__  # PyPI's PyYAML wheels bundle it: the fast path is tested
    if reader == "ruamel":
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
    with pytest.raises(YamlInputError, match=re.escape(refused)):
        load_yaml_documents((CORPUS / name).read_text(), "x.yaml")


def test_what_libyaml_refuses_is_still_bounded_by_ruamel(monkeypatch: pytest.MonkeyPatch) -> None:
    # where libyaml gives up on a text ruamel may read, ruamel's events count it instead
    def refuse(*_: object, **__: object) -> None:
        raise yaml.YAMLError("libyaml will not read this")

    monkeypatch.setattr(yaml, "parse", refuse)
    with pytest.raises(YamlInputError, match="once its aliases are expanded"):
        load_yaml_documents((CORPUS / "alias_bomb.yaml").read_text(), "x.yaml")
    (document,) = load_yaml_documents("a: &x [1]\nb: *x\n", "ok.yaml")
    assert document["b"] == [1]


def test_aliases_within_bounds_still_load() -> None:
    (document,) = load_yaml_documents("a: &x [1, 2]\nb: *x\nc: {<<: {k: 1}}\n", "ok.yaml")
    assert document["b"] == [1, 2] and document["c"]["k"] == 1


def test_rule_files_and_the_catalog_share_the_bounds(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: !!int x\n")
    with pytest.raises(RuleError, match=r"rules.yml:5:11: invalid YAML: cannot build a !!int"):
        load_rule_file(rules)
    with pytest.raises(CatalogError) as caught:
        parse_catalog("codes: " + "[" * 100 + "]" * 100, "catalog.yaml")
    assert "nested deeper than" in caught.value.issues[0].message


FOUND = sorted(path for kind in KINDS for path in (CORPUS.parent / kind).glob(f"*{KINDS[kind][1]}"))


@pytest.mark.parametrize("path", FOUND, ids=[f"{p.parent.name}/{p.name}" for p in FOUND])
def test_the_fuzz_corpus_replays_clean(path: Path) -> None:
    """Each input the fuzz (make fuzz) found, through the function the CLI calls for its
    kind: it loads or it is the project's own input error, never another exception."""
    check = KINDS[path.parent.name][0]
    try:
        check(path)
    except GamedayError as error:
        assert str(error).strip(), "an input error says what is wrong"
