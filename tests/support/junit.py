"""Validate junit.xml against tests/schemas/junit.xsd (the JUnit format CI servers read).

``assert_valid_junit(path_or_text)`` is the one call tests need: it fails with every
schema violation listed (where, and why), and returns the parsed root for further checks.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema

__all__ = ["SCHEMA_PATH", "assert_valid_junit", "junit_errors", "junit_schema"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "junit.xsd"
MAX_LISTED = 20


@functools.cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(SCHEMA_PATH)


def _label(source: Path | str) -> str:
    return str(source) if isinstance(source, Path) or not _is_text(source) else "<junit text>"


def _is_text(source: str) -> bool:
    return source.lstrip().startswith("<")


def _parse(source: Path | str) -> ET.Element:
    """A Path or a str naming a file is read as bytes (its XML declaration names the
    encoding); a str starting with '<' is the document itself."""
    if isinstance(source, str) and _is_text(source):
        return ET.fromstring(source)
    return ET.fromstring(Path(source).read_bytes())


def _describe(error: xmlschema.XMLSchemaValidationError) -> str:
    where = error.path or "/"
    reason = error.reason or error.message
    element = error.elem
    if isinstance(element, ET.Element):
        attrs = "".join(f' {name}="{value}"' for name, value in element.attrib.items())
        return f"{where}: {reason} [in <{element.tag}{attrs}>]"
    return f"{where}: {reason}"


def junit_errors(source: Path | str) -> list[str]:
    """Every reason ``source`` is not valid JUnit XML; empty when it is."""
    try:
        root = _parse(source)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    return [_describe(error) for error in junit_schema().iter_errors(root)]


def assert_valid_junit(source: Path | str) -> ET.Element:
    """Fail unless ``source`` (a junit.xml path, or its text) validates against junit.xsd."""
    errors = junit_errors(source)
    if errors:
        listed = "\n".join(f"  - {error}" for error in errors[:MAX_LISTED])
        more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        raise AssertionError(
            f"{_label(source)} is not valid JUnit XML "
            f"({len(errors)} error(s) against {SCHEMA_PATH.name}):\n{listed}{more}"
        )
    return _parse(source)
