"""A tiny typed registry per extension kind.

Faults, expectation kinds, targets and undo actions each have one. Built-ins
register themselves with the decorator when their package is imported; third
parties add theirs through an entry-point group (``gameday.faults`` and so on),
loaded once on first use. A name can be registered only once.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from gameday.core.errors import InputError

__all__ = ["DuplicateRegistration", "Registry", "UnknownName"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class DuplicateRegistration(Exception):
    pass


class UnknownName(InputError, KeyError):
    """A name no registered extension has (a fault, an expectation kind, an undo kind);
    a KeyError too, so a lookup that expects one still catches it."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.name!r} (known: {', '.join(self.known) or 'none'})"


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self._entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._entry_points_loaded = entry_point_group is None

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            self.add(name, item)
            return item

        return decorate

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise DuplicateRegistration(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def get(self, name: str) -> T:
        self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load_entry_points()
        yield from sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._items

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        assert self._entry_point_group is not None
        for entry_point in importlib.metadata.entry_points(group=self._entry_point_group):
            try:
                entry_point.load()  # the module registers itself on import
            except Exception:  # a broken plugin must not break the harness
                log.exception("could not load %s plugin %s", self.kind, entry_point.name)
