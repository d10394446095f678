"""Every seed section the catalog and the alert rules name exists in the seed runbooks."""

from __future__ import annotations

import difflib
import hashlib
import re
from typing import Any

import pytest
import yaml

from gameday.runbooks import load_catalog
from gameday.runbooks.model import SeedRef
from gameday.runbooks.seeds import Heading, find_heading, slug

from .conftest import REPO

CATALOG = load_catalog()
REFS = [(entry.code, ref) for entry in CATALOG.entries for ref in entry.seed_refs()]


def _resolve(code: str, ref: SeedRef, seed_headings: dict[str, list[Heading]]) -> Heading:
    if ref.file not in seed_headings:
        pytest.fail(f"{code}: seed file {ref.file} does not exist (have: {sorted(seed_headings)})")
    headings = seed_headings[ref.file]
    found = find_heading(headings, ref.section, ref.within)
    if not found:
        texts = [h.text for h in headings]
        near = difflib.get_close_matches(ref.section, texts, n=3, cutoff=0.4)
        where = f" within {ref.within!r}" if ref.within else ""
        pytest.fail(
            f"{code}: no heading {ref.section!r}{where} in {ref.file}"
            + (f"; nearest: {near}" if near else "")
        )
    if len(found) > 1:
        lines = [h.line for h in found]
        pytest.fail(
            f"{code}: heading {ref.section!r} occurs {len(found)} times in {ref.file} "
            f"(lines {lines}); add `within:` naming the enclosing heading"
        )
    return found[0]


@pytest.mark.parametrize(
    ("code", "ref"), REFS, ids=[f"{code}:{ref.file[:3]}:{ref.section}" for code, ref in REFS]
)
def test_source_sections_exist(
    code: str, ref: SeedRef, seed_headings: dict[str, list[Heading]]
) -> None:
    heading = _resolve(code, ref, seed_headings)
    if ref.within is not None:
        assert ref.within in heading.parents


def test_every_seed_file_is_used(seed_headings: dict[str, list[Heading]]) -> None:
    used = {ref.file for _, ref in REFS}
    assert set(seed_headings) <= used, f"seed files no entry names: {set(seed_headings) - used}"


def _rules() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((REPO / "src" / "gameday" / "rules").rglob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8")).get("groups", []):
            found.extend((path.name, rule) for rule in group.get("rules", []) if "alert" in rule)
    return found


def test_rule_runbook_urls_point_at_the_sections_of_their_catalog_entry(
    seed_headings: dict[str, list[Heading]],
) -> None:
    checked = 0
    for file, rule in _rules():
        url = rule.get("annotations", {}).get("runbook_url")
        code = rule.get("labels", {}).get("runbook")
        if not url:
            continue
        match = re.fullmatch(r"seeds/([^#]+)#(.+)", url)
        assert match, f"{file}: {rule['alert']}: runbook_url {url!r} is not seeds/FILE#ANCHOR"
        seed, anchor = match.groups()
        assert seed in seed_headings, f"{file}: {rule['alert']}: no seed file {seed}"
        sections = [h.text for h in seed_headings[seed] if h.anchor == anchor]
        assert sections, f"{file}: {rule['alert']}: no heading in {seed} has the anchor #{anchor}"
        if code in CATALOG:
            named = {(ref.file, ref.section) for ref in CATALOG.get(code).seed_refs()}
            assert any((seed, section) in named for section in sections), (
                f"{file}: {rule['alert']} points at {seed}#{anchor}, which catalog entry "
                f"{code} does not name as its source or see_also"
            )
        checked += 1
    assert checked >= 15


def test_slug_is_githubs_anchor() -> None:
    assert slug("MEMORY001: OOM Killed") == "memory001-oom-killed"
    assert slug("Slow Time-to-First-Token (TTFT)") == "slow-time-to-first-token-ttft"
    assert slug("Runbook: Model Inference Failure") == "runbook-model-inference-failure"


def test_repository_copies_of_the_seeds_are_intact() -> None:
    """docs/seeds are byte-for-byte copies: their SHA256SUMS hold, and where the project's
    shared/seeds is at hand (a workspace, not a bare clone) they equal it too."""
    ours = REPO / "docs" / "seeds"
    lines = (ours / "SHA256SUMS").read_text().splitlines()
    sums = {
        name: digest for digest, name in (line.split(maxsplit=1) for line in lines if line.strip())
    }
    assert sorted(sums) == sorted(p.name for p in ours.glob("*.txt"))
    for name, digest in sums.items():
        assert hashlib.sha256((ours / name).read_bytes()).hexdigest() == digest, f"{name} edited"
    shared = REPO.parent / "shared" / "seeds"
    for original in sorted(shared.glob("*.txt")) if shared.is_dir() else []:
        assert (ours / original.name).read_bytes() == original.read_bytes(), (
            f"docs/seeds/{original.name} differs from {original}: copy it again and "
            "regenerate SHA256SUMS (sha256sum *.txt > SHA256SUMS)"
        )
