"""Where the tests of the runbook catalog find the repository and the seed runbooks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gameday.runbooks.seeds import Heading, parse_headings

REPO = Path(__file__).resolve().parents[3]
IN_CI = os.environ.get("CI") == "true"


def seeds_dir() -> Path:
    """GAMEDAY_SEEDS_DIR, else the copies in the repository's ``docs/seeds``.

    In CI a missing folder fails the test; elsewhere it skips it, with the reason."""
    configured = os.environ.get("GAMEDAY_SEEDS_DIR")
    path = Path(configured) if configured else REPO / "docs" / "seeds"
    if path.is_dir():
        return path
    message = f"seed runbooks not found at {path}; set GAMEDAY_SEEDS_DIR"
    if IN_CI:
        pytest.fail(f"{message} (CI must provide them)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def seed_headings() -> dict[str, list[Heading]]:
    """The headings of every seed file, by file name."""
    root = seeds_dir()
    return {
        path.name: parse_headings(path.read_text(encoding="utf-8"))
        for path in sorted(root.glob("*.txt"))
    }
