"""Fixtures for the rule tests: the real promtool, or a clear reason why not."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
RULE_TESTS = REPO / "tests" / "rules"

PromtoolRunner = Callable[..., subprocess.CompletedProcess[str]]


def find_promtool() -> str:
    """promtool's path; when it is missing, fail in CI (CI=true) and skip elsewhere.

    A component missing in CI is a failure, never a skip: a skipped test would let
    an unchecked rule file pass."""
    binary = shutil.which("promtool")
    if binary is None:
        message = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true, so this is a failure, not a skip")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def promtool() -> PromtoolRunner:
    """Run the real promtool with arguments (see find_promtool when it is missing)."""
    binary = find_promtool()

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
            check=False,
        )

    return run


def promtool_output(result: subprocess.CompletedProcess[str], args: Sequence[object]) -> str:
    return (
        f"promtool {' '.join(map(str, args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
