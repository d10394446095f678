"""The layer contracts in pyproject.toml (run by ``make lint``) hold for the tree, and they
do fail when a module imports upwards: each case copies the package, adds one upward
import, and runs import-linter on the copy."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
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
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the kernel reaching up into a target
        ("core/journal.py", "import gameday.targets.base", "gameday.core"),
        # a fault reaching up into the runner
        ("injectors/base.py", "import gameday.engine.runner", "gameday.injectors"),
        # a sub-command's helpers imported by a tier (the cycle the CLI package removed)
        ("testenv/cluster.py", "import gameday.cli.common", "gameday.testenv"),
        # a remedy reaching into a fault's module for a helper
        (
            "remedies/kubernetes/raise_memory_limit.py",
            "import gameday.injectors.kubernetes.oom_kill",
            "gameday.remedies.kubernetes.raise_memory_limit",
        ),
    ],
)
def test_an_upward_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    result = _lint_imports(_copy_with(tmp_path, module, line))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert broken in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import cycles (strongly connected sets of more than one module), counting every
    import: at module level, in a function, and under ``TYPE_CHECKING``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == module:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_in_the_package() -> None:
    assert _cycles(grimp.build_graph("gameday")) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    graph = grimp.build_graph("gameday")
    graph.add_import(importer="gameday.core.events", imported="gameday.engine.runner")
    (cycle,) = _cycles(graph)
    assert "gameday.core.events" in cycle and "gameday.engine.runner" in cycle


def _registering_modules() -> list[str]:
    """Every module of the package that registers an extension with a decorator (a fault,
    an expectation kind, a remedy, a target, an engine, an undo kind)."""
    src = REPO / "src"
    found = []
    for path in sorted((src / "gameday").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if re.search(r"^@(\w+\.register\(|register_undo\b)", text, re.MULTILINE):
            parts = path.relative_to(src).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_builtin_extension_is_loaded_by_the_catalog() -> None:
    """BUILTIN_MODULES is kept by hand: a fault module left out of it would silently not
    exist. In a fresh interpreter, loading the built-ins imports every registering module."""
    modules = _registering_modules()
    assert "gameday.injectors.local.port_conflict" in modules and len(modules) > 40
    script = (
        "import sys; from gameday.plugins import load_builtins; load_builtins(); "
        f"print([m for m in {modules!r} if m not in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]", f"not in plugins.BUILTIN_MODULES: {result.stdout}"
