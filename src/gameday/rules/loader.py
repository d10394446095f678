"""Read rule groups from plain Prometheus rule files and PrometheusRule manifests; write them.

A file may hold a plain rule file (``groups:``) or one or more Kubernetes documents:
``PrometheusRule`` (monitoring.coreos.com/v1) manifests, or a ``List`` of them as
``kubectl get -o yaml`` prints it. Other Kubernetes objects in a manifest bundle are
passed over; a file from which nothing at all can be read is an error. Every error
names the file, the document where there are several, the line and the field.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from gameday.core.errors import UsageError
from gameday.core.inputs import UnreadableInput, read_input_text
from gameday.core.yamlfile import YamlInputError, load_yaml_documents
from gameday.rules.model import RuleError, RuleFile, RuleGroup

__all__ = [
    "PROMETHEUS_RULE_API_GROUP",
    "dump_rule_file",
    "load_rule_file",
    "load_rule_files",
    "parse_rule_documents",
    "rule_files_in",
    "write_rule_file",
]

PROMETHEUS_RULE_API_GROUP = "monitoring.coreos.com"

StrPath = str | os.PathLike[str]


def load_rule_file(path: StrPath) -> list[RuleGroup]:
    """The rule groups of one file (plain rule file or PrometheusRule manifests)."""
    try:
        text = read_input_text(Path(path), "rule file")
    except UnreadableInput as error:
        raise RuleError(str(error)) from None
    return parse_rule_documents(text, source=str(path))


def rule_files_in(paths: Iterable[Path]) -> list[Path]:
    """Files as given; a directory gives its ``*.yml`` and ``*.yaml`` files, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted([*path.glob("*.yml"), *path.glob("*.yaml")])
            if not inside:
                raise UsageError(f"{path}: no *.yml or *.yaml rule files in this directory")
            found.extend(inside)
        else:
            found.append(path)
    return found


def load_rule_files(paths: Iterable[StrPath]) -> list[RuleGroup]:
    """The rule groups of several files, in order."""
    groups: list[RuleGroup] = []
    for path in paths:
        groups.extend(load_rule_file(path))
    return groups


def parse_rule_documents(text: str, source: str = "<string>") -> list[RuleGroup]:
    """The rule groups in YAML ``text``; ``source`` names it in errors."""
    try:
        documents = [doc for doc in load_yaml_documents(text, source) if doc is not None]
    except YamlInputError as exc:
        raise RuleError(str(exc)) from None
    if not documents:
        raise RuleError(f"{source}: no rule groups: the file is empty")

    groups: list[RuleGroup] = []
    recognised = False
    for index, document in enumerate(documents):
        label = source if len(documents) == 1 else f"{source} (document {index + 1})"
        for where, node, path in _rule_files_in(document, label):
            groups.extend(_validate(node, where, path))
            recognised = True
    if not recognised:
        raise RuleError(
            f"{source}: no rule groups: expected a Prometheus rule file ('groups:') "
            f"or PrometheusRule manifests ({PROMETHEUS_RULE_API_GROUP}/v1)"
        )
    return groups


def _rule_files_in(
    document: Any, label: str
) -> Iterable[tuple[str, CommentedMap, tuple[str | int, ...]]]:
    """(label, mapping holding 'groups', its path in the document) per rule file found."""
    if not isinstance(document, CommentedMap):
        raise RuleError(f"{label}: expected a mapping, not {type(document).__name__}")
    kind = document.get("kind")
    if kind is None and "apiVersion" not in document:
        yield label, document, ()
    elif kind == "PrometheusRule":
        api_version = str(document.get("apiVersion", ""))
        if not api_version.startswith(PROMETHEUS_RULE_API_GROUP + "/"):
            raise RuleError(
                f"{label}: PrometheusRule with apiVersion {api_version!r}, "
                f"expected {PROMETHEUS_RULE_API_GROUP}/v1"
            )
        name = _manifest_name(document)
        spec = document.get("spec")
        if not isinstance(spec, CommentedMap):
            raise RuleError(f"{label}: PrometheusRule {name}: 'spec' must be a mapping")
        yield f"{label}: PrometheusRule {name}", spec, ("spec",)
    elif kind == "List" and isinstance(document.get("items"), CommentedSeq):
        for position, item in enumerate(document["items"]):
            if isinstance(item, CommentedMap) and item.get("kind") == "PrometheusRule":
                for where, node, path in _rule_files_in(item, label):
                    yield where, node, ("items", position, *path)


def _manifest_name(document: CommentedMap) -> str:
    metadata = document.get("metadata")
    if not isinstance(metadata, CommentedMap):
        return "<unnamed>"
    name = str(metadata.get("name", "<unnamed>"))
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def _validate(node: CommentedMap, where: str, prefix: tuple[str | int, ...]) -> list[RuleGroup]:
    try:
        return list(RuleFile.model_validate(_plain(node)).groups)
    except ValidationError as exc:
        problems = [_describe(node, prefix, error) for error in exc.errors()]
        raise RuleError(f"{where}: invalid rules:\n  " + "\n  ".join(problems)) from exc


def _describe(node: CommentedMap, prefix: tuple[str | int, ...], error: Any) -> str:
    loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
    path = "".join(
        f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
        for i, part in enumerate((*prefix, *loc))
    )
    line = _line_of(node, loc)
    at = f"line {line}: " if line else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{at}{path or '<document>'}: {message}"


def _line_of(node: Any, loc: Sequence[Any]) -> int | None:
    """1-based line of the deepest part of ``loc`` found in the parsed YAML."""
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(node, CommentedMap | CommentedSeq):
        line = node.lc.line + 1
    return line


def _plain(node: Any) -> Any:
    # ruamel's round-trip types subclass dict, list, str, int and float; hand pydantic the
    # plain ones so nothing of the YAML representation leaks into the models.
    if isinstance(node, dict):
        return {_plain(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def dump_rule_file(groups: Sequence[RuleGroup]) -> str:
    """``groups`` as the text of a Prometheus rule file."""
    try:
        RuleFile(groups=list(groups))  # refuses repeated group names, as Prometheus would
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise RuleError(f"cannot write these groups to one rule file: {problems}") from exc
    document = {"groups": [_literal_blocks(group.to_document()) for group in groups]}
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096  # keep long PromQL and descriptions on one line unless they have breaks
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def write_rule_file(groups: Sequence[RuleGroup], path: StrPath) -> Path:
    """Write ``groups`` to ``path`` (creating its folder) as a Prometheus rule file."""
    target = Path(path)
    text = dump_rule_file(groups)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed, so a Prometheus reloading the file never reads half of it.
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return target


def _literal_blocks(value: Any) -> Any:
    """Multi-line strings (PromQL, descriptions) as ``|`` blocks, the way people write them."""
    if isinstance(value, dict):
        return {key: _literal_blocks(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal_blocks(item) for item in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value
