"""Shared fixtures: every test gets its own report dir, state dir and ports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI") == "true"

# tests/data holds inputs (broken scenarios among them), not tests: the scenario
# plugin would otherwise collect every file there that looks like a scenario.
collect_ignore = ["data"]


def require_binary(name: str) -> str:
    """The path of a binary the test needs; in CI its absence fails, elsewhere it skips."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI must install it)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Runs register themselves for `gameday cleanup`; keep each test's registry private."""
    state = tmp_path / "state"
    monkeypatch.setenv("GAMEDAY_STATE_DIR", str(state))
    yield state
