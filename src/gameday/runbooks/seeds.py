"""Headings of the seed runbooks, so catalog entries can name the section they come from.

The seeds are Markdown: ATX headings (``## Slow Time-to-First-Token (TTFT)``,
``#### NETWORK001: Connection Refused``, ``### 1. GPU Memory Issues (40% of cases)``),
some behind YAML front matter, with fenced code blocks full of ``# comment`` lines that
are not headings. Setext headings (a line underlined with ``===`` or ``---``) are read
too, though no seed uses them today. A heading's text is kept exactly as written, inline
code backticks and quotes included; only the ``#`` marks, an optional closing run of
``#`` and the surrounding blanks are removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Heading", "find_heading", "parse_headings", "slug"]

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    line: int
    """1-based line number in the file."""
    parents: tuple[str, ...]
    """The texts of the enclosing headings, outermost first."""

    @property
    def anchor(self) -> str:
        return slug(self.text)


def _front_matter_end(lines: list[str]) -> int:
    if lines and lines[0].strip() == "---":
        for index in range(1, len(lines)):
            if lines[index].strip() in ("---", "..."):
                return index + 1
    return 0


def parse_headings(text: str) -> list[Heading]:
    """Every heading of a Markdown text, in order, outside front matter and code fences."""
    lines = text.splitlines()
    headings: list[Heading] = []
    stack: list[tuple[int, str]] = []
    fence: str | None = None
    paragraph: str | None = None  # the text line a setext underline would make a heading

    def add(level: int, title: str, line: int) -> None:
        while stack and stack[-1][0] >= level:
            stack.pop()
        headings.append(Heading(level, title, line, tuple(t for _, t in stack)))
        stack.append((level, title))

    for index in range(_front_matter_end(lines), len(lines)):
        raw = lines[index]
        if fence is not None:
            if raw.strip().startswith(fence) and raw.strip().strip(fence[0]) == "":
                fence = None
            continue
        opened = _FENCE.match(raw)
        if opened:
            fence = opened.group(1)
            paragraph = None
            continue
        atx = _ATX.match(raw)
        if atx:
            add(len(atx.group(1)), (atx.group(2) or "").strip(), index + 1)
            paragraph = None
            continue
        setext = _SETEXT.match(raw)
        if setext and paragraph is not None:
            add(1 if setext.group(1)[0] == "=" else 2, paragraph, index)
            paragraph = None
            continue
        stripped = raw.strip()
        paragraph = stripped if stripped and not raw.startswith(("    ", "\t")) else None
    return headings


def find_heading(headings: list[Heading], section: str, within: str | None = None) -> list[Heading]:
    """The headings whose text is ``section`` (and that ``within`` encloses, if given)."""
    return [
        heading
        for heading in headings
        if heading.text == section and (within is None or within in heading.parents)
    ]


def slug(text: str) -> str:
    """The anchor GitHub gives a heading: ``MEMORY001: OOM Killed`` -> ``memory001-oom-killed``."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
