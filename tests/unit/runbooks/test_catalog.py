"""The bundled runbook catalog validates, its schema is fresh, its patterns are real."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from pydantic import ValidationError

from gameday.core.errors import UsageError
from gameday.runbooks import (
    CATALOG_FILE,
    Catalog,
    CatalogError,
    catalog_json_schema,
    load_catalog,
    parse_catalog,
)
from gameday.runbooks.__main__ import main, schema_path, schema_text
from gameday.runbooks.model import (
    AlertFiring,
    BudgetSource,
    Entry,
    MetricCondition,
    Reproducible,
    Tier,
)
from gameday.scenario.model import RUNBOOK_CODE_PATTERN

from .conftest import REPO

PACKAGE = REPO / "src" / "gameday" / "runbooks"
CATALOG = load_catalog()
ENTRIES = {entry.code: entry for entry in CATALOG.entries}
RULE_FILES = sorted((REPO / "src" / "gameday" / "rules").rglob("*.yml"))


def _raw_catalog() -> Any:
    return yaml.safe_load((PACKAGE / CATALOG_FILE).read_text(encoding="utf-8"))


def _alert_rules() -> list[tuple[Path, dict[str, Any]]]:
    rules: list[tuple[Path, dict[str, Any]]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8")).get("groups", []):
            rules.extend((path, rule) for rule in group.get("rules", []) if "alert" in rule)
    return rules


# --- the catalog and its schema -------------------------------------------------------


def test_catalog_validates_through_the_model() -> None:
    again = Catalog.model_validate(_raw_catalog())
    assert again == CATALOG
    assert len(CATALOG.entries) >= 40


def test_catalog_validates_against_its_json_schema() -> None:
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema is not installed: the catalog is checked by the model only"
    )
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = list(validator(schema).iter_errors(_raw_catalog()))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_schema_file_is_fresh() -> None:
    shipped = json.loads(schema_path().read_text(encoding="utf-8"))
    assert shipped == catalog_json_schema(), (
        "src/gameday/runbooks/catalog.schema.json is stale: run `python -m gameday.runbooks --schema`"
    )
    assert schema_path().read_text(encoding="utf-8") == schema_text(), (
        "run `python -m gameday.runbooks --schema`"
    )


def test_schema_is_a_json_schema_with_discriminated_unions() -> None:
    schema = catalog_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {"apiVersion", "kind", "entries"}
    entry = schema["$defs"]["Entry"]
    assert entry["additionalProperties"] is False
    signatures = entry["properties"]["signatures"]["items"]
    assert signatures["discriminator"]["propertyName"] == "kind"
    assert "k8s-event" in signatures["discriminator"]["mapping"]
    actions = entry["properties"]["remediation"]["items"]
    assert {"rollout-undo", "free-port", "manual", "wait"} <= set(
        actions["discriminator"]["mapping"]
    )
    # the YAML names the field `for`, as Prometheus rules do
    assert "for" in schema["$defs"]["MetricCondition"]["properties"]


def test_main_lists_the_catalog_and_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == len(CATALOG.entries)
    assert listed[0].split()[0] == CATALOG.entries[0].code
    assert main(["--print-schema"]) == 0
    assert json.loads(capsys.readouterr().out) == catalog_json_schema()


def test_load_catalog_is_cached_and_reads_other_files(tmp_path: Path) -> None:
    assert load_catalog() is load_catalog()
    copy = tmp_path / "mine.yaml"
    copy.write_text((PACKAGE / CATALOG_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    assert load_catalog(copy) == CATALOG


# --- entries ------------------------------------------------------------------------


def test_codes_are_unique_and_valid_scenario_runbook_codes() -> None:
    counts = Counter(entry["code"] for entry in _raw_catalog()["entries"])
    assert [code for code, n in counts.items() if n > 1] == []
    assert all(re.fullmatch(RUNBOOK_CODE_PATTERN, code) for code in counts)


def test_the_error_pattern_reference_codes_are_all_there() -> None:
    reference = [
        *(f"DEPLOYMENT00{n}" for n in (1, 2, 3)),
        *(f"RUNTIME00{n}" for n in (1, 2, 3)),
        *(f"NETWORK00{n}" for n in (1, 2, 3)),
        *(f"GPU00{n}" for n in (1, 2, 3)),
        "MEMORY001",
        "MEMORY002",
        "STORAGE001",
        "STORAGE002",
        "AUTH001",
        "AUTH002",
    ]
    assert len(reference) == 18
    missing = [code for code in reference if code not in CATALOG]
    assert missing == []
    for code in reference:
        assert ENTRIES[code].source.file == "000_383c4dca91e56b28.txt"
        assert ENTRIES[code].source.section.startswith(f"{code}: ")


def test_model_inference_failure_and_its_root_causes() -> None:
    runbook = ENTRIES["ModelInferenceFailure"]
    causes = [code for code in runbook.related if code.startswith("Inference")]
    assert len(causes) == 4
    for code in causes:
        assert ENTRIES[code].source.file == runbook.source.file
        assert ENTRIES[code].source.section[0] in "1234"
    assert runbook.budget.source is BudgetSource.SEED
    assert runbook.budget.section == "Immediate Actions (0-5 minutes)"
    assert runbook.budget.recover == 300


def test_seed_budgets_match_the_time_box_their_section_names() -> None:
    for entry in CATALOG.entries:
        budget = entry.budget
        if budget.source is BudgetSource.DEFAULT:
            assert budget.recover == 15 * 60, entry.code
            continue
        assert budget.section is not None
        box = re.search(r"\((\d+)-(\d+) minutes\)", budget.section)
        assert box, f"{entry.code}: the budget's section {budget.section!r} gives no time box"
        assert budget.recover == int(box.group(2)) * 60, entry.code


def test_every_reproducible_entry_has_a_signature() -> None:
    for entry in CATALOG.entries:
        if entry.reproducible.tiers != (Tier.NONE,):
            assert entry.signatures, f"{entry.code} can be reproduced but has no signature"
        if Tier.NONE in entry.reproducible.tiers or Tier.KIND_ONLY in entry.reproducible.tiers:
            assert entry.reproducible.reason, entry.code


def test_every_regex_compiles_and_matches_its_examples() -> None:
    checked = 0
    for entry in CATALOG.entries:
        for signature in entry.signatures:
            patterns = signature.patterns()
            for pattern in patterns:
                re.compile(pattern)
            for example in signature.examples:
                assert patterns, f"{entry.code}: {signature.kind} has examples but no pattern"
                assert any(re.search(p, example) for p in patterns), (
                    f"{entry.code}: {signature.kind} pattern {patterns} does not match {example!r}"
                )
                checked += 1
        for action in entry.remediation:
            until = getattr(action, "until_log", None)
            if until:
                re.compile(until)
    assert checked >= 40


def test_seed_error_strings_are_recognised() -> None:
    """The error lines the seeds quote, each matched by its own entry's signatures."""
    quoted = {
        "PortInUse": "OSError: [Errno 98] Address already in use",
        "DEPLOYMENT003": 'Back-off pulling image "x": ErrImagePull',
        "STORAGE001": 'storageclass.storage.k8s.io "fast" not found',
        "PodUnschedulable": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
        "RUNTIME001": "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "NETWORK002": "nslookup: can't resolve 'model-service.default.svc.cluster.local'",
        "GPU002": "RuntimeError: No CUDA GPUs are available",
        "CUDAGraphsUnsupported": "RuntimeError: CUDA error: an illegal instruction was encountered",
    }
    for code, line in quoted.items():
        patterns = [p for s in ENTRIES[code].signatures for p in s.patterns()]
        assert any(re.search(p, line) for p in patterns), f"{code} does not recognise {line!r}"


def test_metric_conditions_are_promql() -> None:
    for entry in CATALOG.entries:
        for signature in entry.signatures:
            if isinstance(signature, MetricCondition):
                try:
                    promql_parser.parse(signature.expr)
                except Exception as exc:  # the parser raises ValueError subclasses
                    pytest.fail(f"{entry.code}: {signature.expr!r} is not PromQL: {exc}")


def test_alert_signatures_name_bundled_alerts_and_bundled_alerts_are_signatures() -> None:
    rules = _alert_rules()
    bundled = {rule["alert"] for _, rule in rules}
    for entry in CATALOG.entries:
        for signature in entry.signatures:
            if isinstance(signature, AlertFiring):
                assert signature.name in bundled, (
                    f"{entry.code}: alert {signature.name} is not in src/gameday/rules"
                )
    for path, rule in rules:
        code = rule.get("labels", {}).get("runbook")
        if code is None or code not in ENTRIES:
            continue  # an unknown code is test_codes_used's finding
        names = {s.name for s in ENTRIES[code].signatures if isinstance(s, AlertFiring)}
        assert rule["alert"] in names, (
            f"{path.name}: alert {rule['alert']} has runbook {code}, "
            f"but {code} has no alert signature for it"
        )


def test_related_codes_and_faults_exist() -> None:
    from gameday.injectors.base import faults
    from gameday.plugins import load_builtins

    load_builtins()
    for entry in CATALOG.entries:
        assert all(code in CATALOG for code in entry.related), entry.code
        for fault in entry.faults:
            assert faults.target_kinds_of(fault), f"{entry.code}: fault {fault!r} is not registered"
    for key, cls in faults.items():
        name = key.split("/", 1)[1]
        if cls.runbook is not None and cls.runbook in ENTRIES:
            assert name in ENTRIES[cls.runbook].faults, (
                f"fault {name} reproduces {cls.runbook}, whose entry does not list it in faults"
            )


def test_tiers_add_up() -> None:
    tiers = Counter(tier for entry in CATALOG.entries for tier in entry.reproducible.tiers)
    assert tiers[Tier.LOCAL] >= 20
    assert tiers[Tier.KWOK] >= 8
    assert tiers[Tier.NONE] >= 5


# --- the API and the model's refusals --------------------------------------------------


def test_get_returns_the_entry_and_suggests_close_codes() -> None:
    assert CATALOG.get("MEMORY001").title == "OOM killed"
    with pytest.raises(
        UsageError, match=r"unknown runbook code 'memory001'; did you mean MEMORY001\?"
    ):
        CATALOG.get("memory001")
    with pytest.raises(UsageError, match=r"did you mean KVCacheExhaustion"):
        CATALOG.get("KVCacheExhausted")
    with pytest.raises(UsageError, match=r"unknown runbook code 'Nope'") as raised:
        CATALOG.get("Nope")
    assert "did you mean" not in str(raised.value)
    assert "NETWORK001" in CATALOG and "nope" not in CATALOG


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "code": "TEST001",
        "title": "t",
        "category": "runtime",
        "cause": "c",
        "source": {"file": "000_383c4dca91e56b28.txt", "section": "s"},
        "signatures": [{"kind": "log", "pattern": "boom"}],
        "remediation": [{"kind": "manual", "text": "fix it"}],
        "budget": {"source": "default"},
        "reproducible": {"tiers": ["local"]},
    }
    entry.update(changes)
    return entry


def _catalog(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gameday/v1alpha1", "kind": "RunbookCatalog", "entries": list(entries)}


def test_model_accepts_a_minimal_entry() -> None:
    catalog = Catalog.model_validate(_catalog(_entry()))
    assert catalog.get("TEST001").budget.recover == 900


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"signatures": []}, "can be reproduced needs a signature"),
        ({"reproducible": {"tiers": ["none"]}}, "reproducible none needs a reason"),
        ({"reproducible": {"tiers": ["local", "none"], "reason": "x"}}, "cannot be combined"),
        ({"reproducible": {"tiers": ["local", "local"]}}, "listed twice"),
        ({"signatures": [{"kind": "log", "pattern": "("}]}, "invalid regular expression"),
        (
            {"signatures": [{"kind": "smell", "pattern": "x"}]},
            "does not match any of the expected tags",
        ),
        ({"signatures": [{"kind": "log", "pattern": "x", "colour": "red"}]}, "Extra inputs"),
        ({"signatures": [{"kind": "process-exit"}]}, "needs code, reason or signal"),
        ({"remediation": [{"kind": "scale"}]}, "exactly one of replicas and delta"),
        (
            {"remediation": [{"kind": "set-engine-flag", "flag": "max-num-seqs"}]},
            "should match pattern",
        ),
        (
            {"remediation": [{"kind": "set-env", "name": "A"}]},
            "exactly one of value and from_secret",
        ),
        ({"remediation": []}, "at least 1 item"),
        ({"budget": {"source": "seed"}}, "names the seed's section"),
        ({"budget": {"source": "default", "section": "x"}}, "has no seed section"),
        ({"source": {"file": "seed.md", "section": "s"}}, "should match pattern"),
        ({"code": "not a code"}, "should match pattern"),
        ({"related": ["TEST001"]}, "lists itself"),
        ({"related": ["NOPE001"]}, "related codes not in the catalog"),
    ],
)
def test_model_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Catalog.model_validate(_catalog(_entry(**changes)))


def test_model_refuses_duplicate_codes() -> None:
    with pytest.raises(
        ValidationError, match=r"code TEST001 is used by entries\[0\] and entries\[1\]"
    ):
        Catalog.model_validate(_catalog(_entry(), _entry()))


def test_entries_are_frozen() -> None:
    entry = ENTRIES["MEMORY001"]
    with pytest.raises(ValidationError):
        entry.title = "changed"  # type: ignore[misc]
    assert isinstance(entry, Entry)
    assert isinstance(entry.reproducible, Reproducible)


def test_parse_errors_name_file_line_and_field() -> None:
    text = yaml.safe_dump(_catalog(_entry(category="weather")), sort_keys=False)
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "mine.yaml")
    (issue,) = raised.value.issues
    assert issue.file == "mine.yaml"
    assert issue.field == "entries[0].category"
    assert (
        issue.line is not None and text.splitlines()[issue.line - 1].strip() == "category: weather"
    )
    assert str(issue).startswith(f"mine.yaml:{issue.line}:")


def test_items_that_fail_do_not_also_report_their_list_too_short() -> None:
    text = yaml.safe_dump(_catalog(_entry(remediation=[{"kind": "manual"}])), sort_keys=False)
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "mine.yaml")
    assert [issue.field for issue in raised.value.issues] == ["entries[0].remediation[0].text"]


def test_yaml_syntax_errors_are_located() -> None:
    with pytest.raises(CatalogError) as raised:
        parse_catalog("entries:\n  - code: X\n    title: [unclosed\n  - code: Y\n", "bad.yaml")
    (issue,) = raised.value.issues
    assert issue.file == "bad.yaml" and issue.line is not None and issue.line >= 3
    assert "while parsing a flow sequence" in issue.message
    assert "<unicode string>" not in issue.message
