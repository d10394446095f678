"""The layer contracts in pyproject.toml (run by ``make lint``) hold for the tree, and they
do fail when a module imports upwards: each case copies the package, adds one upward
import, and runs import-linter on the copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=src.parent,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    src = tmp_path / "src"
    shutil.copytree(
        REPO / "src" / "gameday", src / "gameday", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = src / "gameday" / module
    path.write_text(path.read_text() + f"\n{line}\n")
    return src


def test_the_tree_keeps_every_contract() -> None:
    result = _lint_imports(REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the kernel reaching up into a target
        ("core/journal.py", "import gameday.targets.base", "gameday.core"),
        # a fault reaching up into the runner
        ("injectors/base.py", "import gameday.engine.runner", "gameday.injectors"),
        # a sub-command's helpers imported by a tier (the cycle the CLI package removed)
        ("testenv/cluster.py", "import gameday.cli.common", "gameday.testenv"),
    ],
)
def test_an_upward_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    result = _lint_imports(_copy_with(tmp_path, module, line))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert broken in result.stdout
