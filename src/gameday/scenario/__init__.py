"""Scenario files: the typed model, the loader and the JSON Schema. Pure: no I/O libraries."""

from gameday.scenario.loader import LoadedScenario, SourceMap, discover, load_scenario, load_scenarios, parse_scenario
from gameday.scenario.model import (
    API_VERSION,
    Catalog,
    ExpectationEntry,
    ExpectationParams,
    FaultSpec,
    LoadSpec,
    Metadata,
    Phase,
    Requirement,
    Scenario,
    StrictModel,
    TargetEntry,
    TargetParams,
    scenario_model,
)
from gameday.scenario.units import ByteSize, Duration, format_bytes, format_duration, parse_bytes, parse_duration

__all__ = [
    "API_VERSION",
    "ByteSize",
    "Catalog",
    "Duration",
    "ExpectationEntry",
    "ExpectationParams",
    "FaultSpec",
    "LoadSpec",
    "LoadedScenario",
    "Metadata",
    "Phase",
    "Requirement",
    "Scenario",
    "SourceMap",
    "StrictModel",
    "TargetEntry",
    "TargetParams",
    "discover",
    "format_bytes",
    "format_duration",
    "load_scenario",
    "load_scenarios",
    "parse_bytes",
    "parse_duration",
    "parse_scenario",
    "scenario_model",
]
