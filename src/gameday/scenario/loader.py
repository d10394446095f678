"""Load scenario files into typed models, reporting problems as file:line:column + field path.

YAML is parsed with ruamel.yaml's round-trip loader because it keeps the position
of every key and item; pydantic's error locations are then walked through the
parsed document to find the line and column of the offending field.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from gameday.core.errors import ScenarioError, ScenarioIssue
from gameday.core.inputs import UnreadableInput, read_input_text
from gameday.core.yamlfile import YamlInputError, load_yaml_documents
from gameday.scenario.model import API_VERSION, NAME_PATTERN, Catalog, Scenario, scenario_model

__all__ = [
    "LoadedScenario",
    "SourceMap",
    "discover",
    "is_scenario_document",
    "load_scenario",
    "load_scenarios",
    "parse_scenario",
]

SCENARIO_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SourceMap:
    """Positions of the fields of one parsed document."""

    file: str
    root: Any

    def locate(
        self, loc: Sequence[int | str], *, at_key: bool = False
    ) -> tuple[int | None, int | None, str]:
        """(line, column, field path) of a pydantic error location, 1-based.

        A scalar's position is its value's, unless ``at_key`` asks for the key's
        (an unknown field is best shown by its name)."""
        node = self.root
        line: int | None = 1
        column: int | None = 1
        parts: list[str] = []
        for index, element in enumerate(loc):
            last = index == len(loc) - 1
            if isinstance(node, CommentedMap) and element in node:
                key = element
                value = node[key]
                scalar = not isinstance(value, CommentedMap | CommentedSeq)
                at_value = last and scalar and not at_key
                line, column = node.lc.value(key) if at_value else node.lc.key(key)
                line, column = line + 1, column + 1
                parts.append(str(key))
                node = value
            elif isinstance(node, CommentedSeq) and isinstance(element, int):
                if 0 <= element < len(node):
                    line, column = node.lc.item(element)
                    line, column = line + 1, column + 1
                    node = node[element]
                parts.append(f"[{element}]")
            elif last and isinstance(element, str) and isinstance(node, CommentedMap):
                parts.append(element)  # a missing field: point at its parent
            # anything else is a union tag or model name pydantic adds; not in the file
        path = ".".join(parts).replace(".[", "[")
        return line, column, path


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    scenario: Scenario
    source: SourceMap

    def issue(self, loc: Sequence[int | str], message: str) -> ScenarioIssue:
        line, column, field = self.source.locate(loc)
        return ScenarioIssue(str(self.path), line, column, field, message)


def _plain(node: Any) -> Any:
    """Round-trip YAML nodes as plain dicts/lists, so pydantic sees ordinary data."""
    if isinstance(node, CommentedMap):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)  # ruamel's scalar string subclasses
    return node


def _message(error: Any, source: SourceMap) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = error["loc"]
    if kind == "extra_forbidden":
        name = loc[-1] if loc else "?"
        return f"unknown field {name!r}" + _suggestion(name, error, source)
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        return (
            f"{error.get('input')!r} is not a valid name: use lowercase letters, digits "
            "and '-', starting and ending with a letter or digit (like port-conflict)"
        )
    if kind == "union_tag_invalid" and "works_on" in ctx:
        return str(error["msg"])
    if kind == "union_tag_invalid":
        return (
            f"unknown {ctx.get('discriminator', 'type').strip(chr(39))} {ctx.get('tag')!r} "
            f"(known: {ctx.get('expected_tags')})"
        )
    if kind == "unknown_kind":
        given = error.get("input")
        known = str(ctx.get("known", ""))
        if isinstance(given, dict) and len(given) == 1:
            name = str(next(iter(given)))
            close = difflib.get_close_matches(name, known.split(", "), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"unknown {ctx.get('family')} kind {name!r} (known: {known}){hint}"
        return str(error["msg"])
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, not {error.get('input')!r}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _suggestion(name: Any, error: Any, source: SourceMap) -> str:
    """'did you mean' from the sibling fields the model does accept, when one is close."""
    known = error.get("ctx", {}).get("known_fields") if error.get("ctx") else None
    if not known or not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _known_fields(model: type[BaseModel], loc: Sequence[int | str]) -> list[str] | None:
    """The field names accepted at the parent of ``loc``, walking the model's annotations."""
    current: Any = model
    for element in loc[:-1]:
        if isinstance(element, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None:
            return None
        match = next(
            (f for n, f in fields.items() if n == element or f.alias == element),
            None,
        )
        if match is None:
            continue  # a union tag; stay on this model
        current = _unwrap(match.annotation, loc, element)
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    if fields is None:
        return None
    return [f.alias or n for n, f in fields.items()]


def _unwrap(annotation: Any, loc: Sequence[int | str], element: int | str) -> Any:
    from typing import get_args

    seen = 0
    while seen < 8:
        seen += 1
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        args = [a for a in get_args(annotation) if a is not type(None)]
        if not args:
            return None
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        if len(models) > 1:
            # a tagged union: the tag follows the field in loc
            position = list(loc).index(element) if element in loc else -1
            following = loc[position + 1 : position + 3] if position >= 0 else []
            for model in models:
                for tag in following:
                    if getattr(model, "kind", None) == tag:
                        return model
                    type_field = getattr(model, "model_fields", {}).get("type")
                    if type_field is not None and tag in get_args(type_field.annotation):
                        return model
            return None
        annotation = args[0]
    return None


def parse_scenario(text: str, file: str, catalog: Catalog) -> LoadedScenario:
    """Parse and validate one scenario document; raise ScenarioError listing every problem."""
    try:
        documents = load_yaml_documents(text, file)
    except YamlInputError as error:
        raise ScenarioError(
            [ScenarioIssue(file, error.line, error.column, "", f"invalid YAML: {error.problem}")]
        ) from None
    documents = [d for d in documents if d is not None]
    if len(documents) != 1:
        found = "no document" if not documents else f"{len(documents)} documents"
        raise ScenarioError(
            [ScenarioIssue(file, 1, 1, "", f"expected one scenario document, found {found}")]
        )
    root = documents[0]
    source = SourceMap(file, root)
    if not isinstance(root, CommentedMap):
        raise ScenarioError([ScenarioIssue(file, 1, 1, "", "a scenario must be a YAML mapping")])
    if root.get("apiVersion") != API_VERSION or root.get("kind") != "Scenario":
        line, column, _ = source.locate(["apiVersion"] if "apiVersion" in root else [])
        raise ScenarioError(
            [
                ScenarioIssue(
                    file,
                    line,
                    column,
                    "apiVersion",
                    f"not a scenario: expected apiVersion: {API_VERSION} and kind: Scenario",
                )
            ]
        )
    target = root.get("target")
    target_kind = next(iter(target)) if isinstance(target, dict) and len(target) == 1 else None
    model = scenario_model(catalog, target_kind if isinstance(target_kind, str) else None)
    try:
        scenario = model.model_validate(_plain(root))
    except ValidationError as exc:
        issues = []
        for problem in exc.errors():
            ctx = problem.get("ctx") or {}
            if problem["type"] == "union_tag_invalid" and problem["loc"][:1] == ("faults",):
                elsewhere = catalog.fault_target_kinds(str(ctx.get("tag")))
                if elsewhere:
                    problem["ctx"] = {**ctx, "works_on": ", ".join(elsewhere)}
                    problem["msg"] = (
                        f"fault {ctx.get('tag')!r} does not work on target {target_kind!r} "
                        f"(it works on: {', '.join(elsewhere)})"
                    )
            if problem["type"] == "extra_forbidden":
                known = _known_fields(model, problem["loc"])
                if known:
                    problem["ctx"] = {**ctx, "known_fields": known}
            loc = list(problem["loc"])
            if len(loc) >= 2 and isinstance(loc[-1], str) and loc[-1] == loc[-2]:
                loc.pop()  # a kind's own check: the union's tag, then the field of that name
            if problem["type"] == "union_tag_invalid" and "discriminator" in ctx:
                loc.append(str(ctx["discriminator"]).strip("'"))
            at_key = problem["type"] == "extra_forbidden"
            line, column, field = source.locate(loc, at_key=at_key)
            issues.append(ScenarioIssue(file, line, column, field, _message(problem, source)))
        raise ScenarioError(issues) from None
    return LoadedScenario(Path(file), scenario, source)


def load_scenario(path: Path, catalog: Catalog) -> LoadedScenario:
    try:
        text = read_input_text(path, "scenario")
    except UnreadableInput as error:
        raise ScenarioError(
            [ScenarioIssue(str(path), error.line, error.column, "", error.reason)]
        ) from None
    return parse_scenario(text, str(path), catalog)


def is_scenario_document(path: Path) -> bool:
    """Cheap test used to collect scenario files from a directory: does it claim to be one?"""
    if path.suffix not in SCENARIO_SUFFIXES or not path.is_file():
        return False
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return API_VERSION in head and "Scenario" in head


def discover(paths: Iterable[Path]) -> list[Path]:
    """Scenario files named directly, or found (sorted) under directories."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if is_scenario_document(p))
        else:
            found.append(path)
    return found


def load_scenarios(
    paths: Iterable[Path], catalog: Catalog, *, unique_names: bool = True
) -> list[LoadedScenario]:
    """Load every file; collect all problems from all files before raising.

    A suite needs unique names (they name report folders); a library of several tiers
    may repeat one (``unique_names=False``)."""
    loaded: list[LoadedScenario] = []
    issues: list[ScenarioIssue] = []
    files = discover(paths)
    if not files:
        raise ScenarioError([ScenarioIssue(".", None, None, "", "no scenario files found")])
    for file in files:
        try:
            loaded.append(load_scenario(file, catalog))
        except ScenarioError as error:
            issues.extend(error.issues)
    if issues:
        raise ScenarioError(issues)
    names: dict[str, Path] = {}
    for item in loaded if unique_names else []:
        if item.scenario.name in names:
            issues.append(
                item.issue(
                    ["metadata", "name"],
                    f"name {item.scenario.name!r} is also used by {names[item.scenario.name]}",
                )
            )
        names[item.scenario.name] = item.path
    if issues:
        raise ScenarioError(issues)
    return loaded
