"""YAML from a user, loaded within bounds, every failure one located error.

ruamel.yaml fails in ways a user should never see as a traceback: a value its tag
cannot build (``!!int x``, ``!!bool maybe``, ``!!set`` on a scalar, an integer past
Python's digit limit) raises ValueError, KeyError or AttributeError without a position;
deep nesting ends in RecursionError; an escape out of range raises ValueError from the
scanner; and nothing bounds alias expansion, so eight levels of nine aliases (a "billion
laughs") take gigabytes once expanded. :func:`load_yaml_documents` first reads the event
stream (flat, no recursion) to bound nesting and the expanded size, then builds the
documents with a constructor that gives each failure the position of its node.

The bounds pass reads libyaml's events (PyYAML's C parser, some fifty times faster than
ruamel's pure-Python one: the catalog's 4,000 events in 5 ms instead of 230) and falls
back to ruamel's own events for what libyaml will not read (a YAML 1.2 directive, some
tabs), so every input is bounded by one complete event stream before it is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)

from gameday.core.errors import InputError

__all__ = ["MAX_DEPTH", "MAX_NODES", "YamlInputError", "load_yaml_documents"]

MAX_DEPTH = 64
"""Nesting deeper than any scenario, rule file or catalog needs (they use under 10)."""
MAX_NODES = 200_000
"""Nodes once every alias is expanded: the catalog, the largest file read, has ~20,000."""


class YamlInputError(InputError):
    """Invalid or unbounded YAML: ``source[:line:column]: invalid YAML: problem``."""

    def __init__(self, source: str, problem: str, line: int | None, column: int | None):
        self.source, self.problem, self.line, self.column = source, problem, line, column
        where = source if line is None else f"{source}:{line}:{column}"
        super().__init__(f"{where}: invalid YAML: {problem}")


class _LocatingConstructor(RoundTripConstructor):
    """A round-trip constructor whose every failure to build a value names its node."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except YAMLError:
            raise
        except (ValueError, LookupError, AttributeError, TypeError, OverflowError) as error:
            # LookupError: KeyError, and IndexError from a float like "1e" tagged !!float
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            value = node.value if isinstance(node.value, str) else ""
            shown = f" from {value[:40]!r}" if value else ""
            why = "" if isinstance(error, KeyError) else f": {error}"
            raise _Unbuildable(node, f"cannot build a {tag}{shown}{why}") from None


class _Unbuildable(Exception):
    def __init__(self, node: Any, problem: str) -> None:
        super().__init__(problem)
        self.node, self.problem = node, problem


def _yaml(duplicate_keys: bool) -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _LocatingConstructor
    yaml.allow_duplicate_keys = duplicate_keys
    return yaml


def _position(mark: Any) -> tuple[int | None, int | None]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (None, None)


_RUAMEL_EVENTS = (CollectionStartEvent, CollectionEndEvent, ScalarEvent, AliasEvent)
_LIBYAML_EVENTS = (
    pyyaml.CollectionStartEvent,
    pyyaml.CollectionEndEvent,
    pyyaml.ScalarEvent,
    pyyaml.AliasEvent,
)


def _count(events: Iterable[Any], source: str, kinds: tuple[Any, ...], last: list[Any]) -> None:
    """YamlInputError at the event past the bounds; ``last`` holds the latest event's mark
    (for a parser error that has none)."""
    start, end, scalar, alias = kinds
    depth = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for, once complete
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes so far) of open collections
    total = 0
    for event in events:
        last[:] = [mark := event.start_mark]
        if isinstance(event, start):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlInputError(
                    source, f"nested deeper than {MAX_DEPTH} levels", *_position(mark)
                )
            open_nodes.append((event.anchor, 1))
            total += 1
        elif isinstance(event, end):
            depth -= 1
            anchor, count = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = count
            if open_nodes:
                parent, so_far = open_nodes[-1]
                open_nodes[-1] = (parent, so_far + count)
        elif isinstance(event, scalar | alias):
            # an alias stands for every value of its anchor, each built once more
            count = sizes.get(event.anchor, 1) if isinstance(event, alias) else 1
            if isinstance(event, scalar) and event.anchor is not None:
                sizes[event.anchor] = 1
            total += count
            if open_nodes:
                parent, so_far = open_nodes[-1]
                open_nodes[-1] = (parent, so_far + count)
        if total > MAX_NODES:
            raise YamlInputError(
                source,
                f"more than {MAX_NODES:,} values once its aliases are expanded",
                *_position(mark),
            )


def _counted_by_libyaml(text: str, source: str) -> bool:
    """Whether libyaml read all of ``text`` within bounds (YamlInputError past them); false
    where it refuses the text, which ruamel may still read (a YAML 1.2 directive)."""
    try:
        _count(pyyaml.parse(text, Loader=pyyaml.CSafeLoader), source, _LIBYAML_EVENTS, [])
    except (pyyaml.YAMLError, ValueError):
        return False
    return True


def _check_bounds(yaml: YAML, text: str, source: str) -> None:
    """Nesting depth and expanded size, from the event stream (no recursion, no building)."""
    if pyyaml.__with_libyaml__ and _counted_by_libyaml(text, source):
        return
    last: list[Any] = [None]
    try:
        _count(yaml.parse(text), source, _RUAMEL_EVENTS, last)
    except YamlInputError:
        raise
    except MarkedYAMLError as error:
        raise _located(error, source) from None
    except YAMLError as error:
        raise YamlInputError(source, str(error).splitlines()[0], *_position(last[0])) from None
    except (ValueError, RecursionError) as error:  # the scanner's own, such as chr() range
        raise YamlInputError(source, str(error), *_position(last[0])) from None
    except AssertionError:  # ruamel's comment bookkeeping asserts on some odd inputs
        problem = "the YAML parser cannot read what follows (its comment handling gave up)"
        raise YamlInputError(source, problem, *_position(last[0])) from None


def _located(error: MarkedYAMLError, source: str) -> YamlInputError:
    mark = error.problem_mark or error.context_mark
    problem = str(error.problem or error).strip().splitlines()[0]
    context = str(error.context or "").strip()
    if context.startswith("while "):  # "while parsing a flow sequence": where it went wrong
        problem = f"{problem} ({context})"
    return YamlInputError(source, problem, *_position(mark))


def load_yaml_documents(text: str, source: str, *, duplicate_keys: bool = False) -> list[Any]:
    """Every document of ``text`` (round-trip nodes, with positions), or YamlInputError."""
    _check_bounds(_yaml(duplicate_keys), text, source)
    try:
        return list(_yaml(duplicate_keys).load_all(text))
    except _Unbuildable as error:
        raise YamlInputError(source, error.problem, *_position(error.node.start_mark)) from None
    except MarkedYAMLError as error:
        raise _located(error, source) from None
    except YAMLError as error:
        raise YamlInputError(source, str(error).splitlines()[0], None, None) from None
    except (
        ValueError,
        LookupError,
        AttributeError,
        TypeError,
        RecursionError,
        AssertionError,
    ) as error:
        # what the constructor builds outside construct_object (a mapping's merge keys)
        raise YamlInputError(source, f"{type(error).__name__}: {error}", None, None) from None
