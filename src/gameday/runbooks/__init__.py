"""Runbooks as data: the catalog of documented failures, its schema and its loader.

The catalog (``catalog.yaml`` next to this module) holds one entry per failure the seed
runbooks describe: its code, where it is documented, its typed signatures, its typed
remediation, its time budget and the tiers that can reproduce it. The model is in
:mod:`gameday.runbooks.model`; ``catalog.schema.json`` is generated from it
(``python -m gameday.runbooks --schema``) for editors and for checking the YAML.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from gameday.core.errors import InputError, ScenarioIssue
from gameday.core.inputs import read_input_text
from gameday.core.yamlfile import YamlInputError, load_yaml_documents
from gameday.runbooks.model import (
    Action,
    Catalog,
    Category,
    Entry,
    Reproducible,
    SeedRef,
    Signature,
    Tier,
)
from gameday.scenario.loader import SourceMap

__all__ = [
    "CATALOG_FILE",
    "SCHEMA_FILE",
    "Action",
    "Catalog",
    "CatalogError",
    "Category",
    "Entry",
    "Reproducible",
    "SeedRef",
    "Signature",
    "Tier",
    "catalog_json_schema",
    "load_catalog",
    "parse_catalog",
]

CATALOG_FILE = "catalog.yaml"
SCHEMA_FILE = "catalog.schema.json"


class CatalogError(InputError):
    """A runbook catalog that does not validate; each issue is located in the file."""

    def __init__(self, issues: Sequence[ScenarioIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def catalog_json_schema() -> dict[str, Any]:
    """The JSON Schema of a runbook catalog file, generated from the model."""
    schema = Catalog.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://llm-gameday.dev/schema/gameday-v1alpha1-runbook-catalog.json",
        **schema,
        "title": "llm-gameday RunbookCatalog (gameday/v1alpha1)",
    }


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain dicts, lists, strings and numbers."""
    if isinstance(node, CommentedMap):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def parse_catalog(text: str, file: str = CATALOG_FILE) -> Catalog:
    """A catalog from YAML text; :class:`CatalogError` with file:line:column if invalid."""
    try:
        documents = load_yaml_documents(text, file)
    except YamlInputError as exc:
        issue = ScenarioIssue(file, exc.line, exc.column, "", f"invalid YAML: {exc.problem}")
        raise CatalogError([issue]) from None
    if len(documents) > 1:
        issue = ScenarioIssue(file, 1, 1, "", f"expected one document, found {len(documents)}")
        raise CatalogError([issue])
    document = documents[0] if documents else None
    try:
        return Catalog.model_validate(_plain(document))
    except ValidationError as exc:
        source = SourceMap(file, document)
        errors = exc.errors(include_url=False)
        issues = []
        for error in errors:
            if error["type"] == "too_short" and _has_deeper(error["loc"], errors):
                continue  # a list whose items failed is "too short" only in consequence
            line, column, path = source.locate(error["loc"])
            issues.append(ScenarioIssue(file, line, column, path, error["msg"]))
        raise CatalogError(issues) from None


def _has_deeper(loc: tuple[int | str, ...], errors: Sequence[Any]) -> bool:
    return any(
        len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == tuple(loc)
        for other in errors
    )


def load_catalog(path: Path | None = None) -> Catalog:
    """The bundled catalog (read once and cached), or the catalog file at ``path``."""
    if path is None:
        return _bundled()
    return parse_catalog(read_input_text(path, "runbook catalog"), str(path))


@functools.cache
def _bundled() -> Catalog:
    text = resources.files(__name__).joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    return parse_catalog(text, f"gameday/runbooks/{CATALOG_FILE}")
