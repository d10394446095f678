"""Generated blocks in Markdown files: the text between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``, rewritten by a make target and checked by a test for staleness."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gameday.core.errors import InputError

__all__ = ["DocBlockError", "block", "markers", "replace_block", "update_file"]


class DocBlockError(InputError):
    """The markers of a generated block are missing, repeated or out of order."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _bounds(text: str, name: str, source: str, make_target: str) -> tuple[int, int]:
    """(end of the start marker, start of the end marker) in ``text``."""
    start_marker, end_marker = markers(name)
    start, end = text.find(start_marker), text.find(end_marker)
    missing = [m for m, at in ((start_marker, start), (end_marker, end)) if at < 0]
    if missing:
        raise DocBlockError(
            f"{source}: no {' and no '.join(missing)} marker: add both markers where the "
            f"{name} table belongs, then run `make {make_target}`"
        )
    if text.count(start_marker) > 1 or text.count(end_marker) > 1:
        raise DocBlockError(f"{source}: the {name} markers must appear once each")
    if end < start:
        raise DocBlockError(f"{source}: {end_marker} comes before {start_marker}")
    return start + len(start_marker), end


def block(text: str, name: str, source: str, make_target: str) -> str:
    """What stands between the markers; DocBlockError without them."""
    start, end = _bounds(text, name, source, make_target)
    return text[start:end]


def replace_block(text: str, name: str, content: str, source: str, make_target: str) -> str:
    """``text`` with the markers now enclosing ``content``."""
    start, end = _bounds(text, name, source, make_target)
    return text[:start] + content + text[end:]


def update_file(path: Path, name: str, make_target: str, content: Callable[[Path], str]) -> bool:
    """Regenerate the ``name`` block of the file at ``path`` from ``content(its folder)``;
    True if it changed. The markers are checked before ``content`` runs."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocBlockError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    block(text, name, str(path), make_target)
    updated = replace_block(text, name, content(path.resolve().parent), str(path), make_target)
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True
