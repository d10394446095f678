"""The README's runbook coverage table is generated, and never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.core import docblocks
from gameday.coverage.runbooks import (
    BLOCK,
    MAKE_TARGET,
    expected_block,
    runbook_coverage,
    update_readme,
)
from gameday.plugins import catalog
from gameday.runbooks import load_catalog
from gameday.scenario.loader import load_scenarios

from .conftest import REPO


def test_the_readme_table_is_up_to_date() -> None:
    text = (REPO / "README.md").read_text()
    current = docblocks.block(text, BLOCK, "README.md", MAKE_TARGET)
    assert current == expected_block(REPO), "stale: run `make coverage-doc`"


def test_rows_say_who_reproduces_diagnoses_and_remedies_each_code() -> None:
    scenarios = load_scenarios([REPO / "scenarios"], catalog(), unique_names=False)
    rows = {row.code: row for row in runbook_coverage(load_catalog(), scenarios)}
    assert rows["PortInUse"].scenarios == ["port-conflict (local)"]
    assert rows["PortInUse"].diagnosed_by == ["port-conflict"]
    assert rows["PortInUse"].remedied_by == ["port-conflict (local)"]
    assert rows["InferenceModelLoading"].diagnosed_by == [
        "model-corrupt",
        "model-header-broken",
        "model-missing",
        "model-weights-missing",
    ]
    assert rows["InferenceModelLoading"].remedied_by == []
    assert rows["DEPLOYMENT003"].remedied_by == ["bad-image-tag (kubernetes)"]
    assert rows["STORAGE002"].scenarios == []
    # every scenario in scenarios/ names its code and asserts its diagnosis
    for item in scenarios:
        code = item.scenario.metadata.runbook
        assert code is not None, item.path
        assert item.scenario.name in rows[code].diagnosed_by, item.path


def test_update_readme_fills_the_markers_and_needs_them(tmp_path: Path) -> None:
    (tmp_path / "scenarios").symlink_to(REPO / "scenarios")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- runbook-coverage:start -->\n<!-- runbook-coverage:end -->\n")
    assert update_readme(readme) is True
    assert "| PortInUse | Port already in use | local | port-conflict (local) | yes |" in (
        readme.read_text()
    )
    assert update_readme(readme) is False
    readme.write_text("# no markers\n")
    with pytest.raises(docblocks.DocBlockError, match="run `make coverage-doc`"):
        update_readme(readme)


def test_every_tier_with_scenarios_has_one_that_runs_its_remedy() -> None:
    scenarios = load_scenarios([REPO / "scenarios"], catalog(), unique_names=False)
    tiers = {item.scenario.target.kind for item in scenarios}
    remedied = {item.scenario.target.kind for item in scenarios if item.scenario.remedy}
    assert tiers and remedied == tiers
