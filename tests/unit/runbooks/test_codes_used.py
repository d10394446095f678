"""Every runbook code anything in src/ and scenarios/ names is in the catalog."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from gameday.runbooks import load_catalog

from .conftest import REPO

CATALOG = load_catalog()
CATALOG_FILE = REPO / "src" / "gameday" / "runbooks" / "catalog.yaml"
# `runbook = "NETWORK001"` (a fault class), `runbook: ClassVar[str | None] = "X"`,
# `runbook="X"` (a keyword argument)
PY_RUNBOOK = re.compile(r"""\brunbook\s*(?::[^=\n]+)?=\s*["']([^"']+)["']""")


def _yaml_codes(node: Any) -> Iterator[str]:
    """Values of `runbook:` keys: `runbook: X` (scenario metadata, rule labels) and
    `runbook: {code: X}` (an expectation)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "runbook":
                if isinstance(value, str):
                    yield value
                elif isinstance(value, dict) and isinstance(value.get("code"), str):
                    yield value["code"]
            yield from _yaml_codes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _yaml_codes(item)


def _yaml_files() -> Iterator[Path]:
    for root in (REPO / "src", REPO / "scenarios"):
        for pattern in ("*.yaml", "*.yml"):
            yield from (p for p in root.rglob(pattern) if p != CATALOG_FILE)


def codes_named_in_the_repo() -> dict[str, list[str]]:
    """Each code, with the places that name it."""
    named: dict[str, list[str]] = {}
    for path in sorted(_yaml_files()):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError:
            continue  # templates and fixtures that are not YAML documents
        for code in (c for document in documents for c in _yaml_codes(document)):
            named.setdefault(code, []).append(str(path.relative_to(REPO)))
    for path in sorted((REPO / "src").rglob("*.py")):
        for code in PY_RUNBOOK.findall(path.read_text(encoding="utf-8")):
            named.setdefault(code, []).append(str(path.relative_to(REPO)))
    return named


def test_every_code_the_repo_names_is_in_the_catalog() -> None:
    named = codes_named_in_the_repo()
    missing = {code: places for code, places in named.items() if code not in CATALOG}
    assert missing == {}, f"runbook codes named in the repo but not in the catalog: {missing}"
    # the scan finds what it must: scenario metadata, rule labels, fault classes
    assert {"NETWORK001", "MEMORY001", "KVCacheExhaustion", "RUNTIME001"} <= set(named)
    assert {"CrashLoopBackOff", "PodUnschedulable", "DecodeBottleneck"} <= set(named)
    assert any(place.startswith("scenarios/") for places in named.values() for place in places)
    assert any(place.endswith(".py") for places in named.values() for place in places)


def test_every_registered_fault_names_a_catalog_code() -> None:
    from gameday.injectors.base import faults
    from gameday.plugins import load_builtins

    load_builtins()
    for name, cls in faults.items():
        if cls.runbook is not None:
            assert cls.runbook in CATALOG, f"fault {name} names unknown runbook {cls.runbook}"


def test_the_scan_reads_both_yaml_spellings() -> None:
    document = {
        "metadata": {"runbook": "NETWORK001"},
        "expect": [{"runbook": {"code": "MEMORY001"}}],
        "groups": [{"rules": [{"labels": {"runbook": "KVCacheExhaustion"}}]}],
    }
    assert list(_yaml_codes(document)) == ["NETWORK001", "MEMORY001", "KVCacheExhaustion"]
    assert PY_RUNBOOK.findall('    runbook = "RUNTIME001"\n') == ["RUNTIME001"]
    assert PY_RUNBOOK.findall("    runbook: ClassVar[str | None] = None\n") == []
