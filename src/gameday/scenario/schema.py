"""The JSON Schema of scenario files, for editors (yaml-language-server, VS Code)."""

from __future__ import annotations

from typing import Any

from gameday.scenario.model import API_VERSION, Catalog, scenario_model

__all__ = ["scenario_json_schema"]


def scenario_json_schema(catalog: Catalog) -> dict[str, Any]:
    schema = scenario_model(catalog).model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://llm-gameday.dev/schema/{API_VERSION.replace('/', '-')}.json",
        **schema,
        "title": f"llm-gameday Scenario ({API_VERSION})",
    }
