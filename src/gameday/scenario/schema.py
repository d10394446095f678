"""The JSON Schema of scenario files, for editors (yaml-language-server, VS Code)."""

from __future__ import annotations

from typing import Any, Union

from pydantic import TypeAdapter

from gameday.scenario.model import API_VERSION, Catalog, scenario_model

__all__ = ["scenario_json_schema"]


def scenario_json_schema(catalog: Catalog) -> dict[str, Any]:
    """One branch per target kind: its faults are that kind's (a fault name such as
    oom-kill has different parameters on each), so the target picks the branch."""
    models = tuple(scenario_model(catalog, kind) for kind in sorted(catalog.targets))
    schema = TypeAdapter(Union[models]).json_schema(  # type: ignore[arg-type]  # noqa: UP007
        by_alias=True, mode="validation"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://llm-gameday.dev/schema/{API_VERSION.replace('/', '-')}.json",
        **schema,
        "title": f"llm-gameday Scenario ({API_VERSION})",
    }
