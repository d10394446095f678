"""Every entry point of the ``gameday`` command held to one contract: a bad argument or a
bad file gives one line on stderr and exit 2, an unreachable component exit 3, never a
traceback. Each case runs the installed command as a user would, in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_gameday

REPO = Path(__file__).resolve().parents[2]
SCENARIO = str(REPO / "scenarios" / "local" / "process-kill.yaml")
RULES = str(REPO / "src" / "gameday" / "rules" / "capacity.yml")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Bad inputs of each shape, by name."""
    root = tmp_path_factory.mktemp("bad")
    made = {
        "binary": b"\xff\xfe\x00 not text",
        "yaml": b"[1, 2\n",
        "json": b'{"not": "a report"',
        "event": b'{"record": "event"}\n',
        "text": b"x\n",
    }
    paths = {}
    for name, data in made.items():
        (root / name).write_bytes(data)
        paths[name] = str(root / name)
    (root / "empty").mkdir()
    paths["empty"] = str(root / "empty")
    paths["missing"] = str(root / "missing")
    paths["new"] = str(root / "new")
    return paths


# (arguments, with {name} for a file of `files`) -> the exit code the contract gives
CASES: list[tuple[str, int]] = [
    ("nope", 2),
    ("validate {missing}", 2),
    ("validate {binary}", 2),
    ("validate {yaml}", 2),
    ("validate {empty}", 2),
    ("validate --bogus", 2),
    ("run", 2),
    ("run {binary}", 2),
    ("run {yaml} --dry-run", 2),
    (f"run {SCENARIO} --engine nope", 2),
    (f"run {SCENARIO} --time-compression inf", 2),
    (f"run {SCENARIO} --time-compression nan", 2),
    (f"run {SCENARIO} --time-compression x", 2),
    (f"run {SCENARIO} --cooldown forever", 2),
    (f"run {SCENARIO} --rules {{binary}}", 2),
    (f"run {SCENARIO} --report-dir {{text}}", 2),
    ("report {missing}", 2),
    ("report {binary}", 2),
    ("report {event}", 2),
    ("diagnose {missing}", 2),
    ("diagnose {binary}", 2),
    ("diagnose --confusion {empty}", 2),
    ("compare {json} {json}", 2),
    ("compare {binary} {binary}", 2),
    ("compare {empty} {empty}", 2),
    ("compare {missing} {missing}", 2),
    (f"alerts lint {{binary}} --metrics-file {RULES}", 2),
    ("alerts lint {yaml} --target http://127.0.0.1:9", 2),
    ("alerts lint {missing} --target http://127.0.0.1:9", 2),
    (f"alerts lint {RULES} --target nonsense", 2),
    (f"alerts lint {RULES} --target http://127.0.0.1:9", 3),
    ("alerts coverage {binary}", 2),
    ("alerts coverage {yaml}", 2),
    ("cleanup --journal {missing}", 2),
    ("cleanup --bogus", 2),
    ("testenv up --cpu-nodes x", 2),
    ("testenv status --bogus", 2),
    ("sim serve --port 70000", 2),
    ("sim serve --port 0 --max-num-seqs 0", 2),
    ("sim serve --port x", 2),
    ("model make-tiny {text}", 2),
    ("model make-tiny {new} --shards 0", 2),
    ("schema --output {missing}/x/schema.json", 2),
    ("list nope", 2),
    ("engines install nope", 2),
]


@pytest.mark.parametrize(("arguments", "code"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_argument_or_file_is_one_line_and_its_exit_code(
    arguments: str, code: int, files: dict[str, str], tmp_path: Path
) -> None:
    argv = arguments.format(**files).split()
    # in tmp_path: a run that got through would write there, not in the clone
    result = run_gameday(*argv, cwd=tmp_path, env={"COLUMNS": "80"})
    said = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == code, result.stderr
    assert len(said) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in said[0]


def _commands() -> list[tuple[str, list[str]]]:
    """Every command path of ``gameday`` with the option names it takes."""
    import typer.core
    import typer.main

    from gameday.cli import app

    found: list[tuple[str, list[str]]] = []

    def walk(command: Any, path: list[str]) -> None:
        options = [p for p in command.params if isinstance(p, typer.core.TyperOption)]
        found.append((" ".join(path), [name for option in options for name in option.opts]))
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = _commands()


@pytest.mark.parametrize(("path", "options"), COMMANDS, ids=[c[0] or "gameday" for c in COMMANDS])
def test_help_in_a_pipe_shows_every_option_name_whole(path: str, options: list[str]) -> None:
    """In a pipe (no terminal, no COLUMNS) help is drawn wide enough that grep finds each
    option: at rich's default 80 columns `run --help` showed `--skip-unavaila…`."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    result = subprocess.run(
        [sys.executable, "-m", "gameday", *path.split(), "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    words = set(result.stdout.replace("│", " ").replace(",", " ").split())
    missing = [o for o in options if o not in words]
    assert not missing, f"cut or missing in `gameday {path} --help`: {missing}"


def test_validate_refuses_what_run_refuses_before_starting(tmp_path: Path) -> None:
    """One prepare path: a Kubernetes context the scenario does not allow is refused by
    `validate` and `run --dry-run` exactly as `run` refuses it (exit 2, the same line,
    nothing started: the kubeconfig's server is never dialled), and allowed by both once
    `--context` names it."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: not-a-secret-here}}]\n"
        "contexts: [{name: prod, context: {cluster: c, user: u}}]\n"
    )
    scenario = tmp_path / "bad-image-tag.yaml"
    text = (REPO / "scenarios" / "kubernetes" / "bad-image-tag.yaml").read_text()
    scenario.write_text(
        text.replace("  kubernetes:\n", f"  kubernetes:\n    kubeconfig: {kubeconfig}\n", 1)
    )
    said = {}
    for command in (["validate"], ["run", "--dry-run"], ["run"]):
        result = run_gameday(*command, scenario, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        said[" ".join(command)] = result.stderr.strip()
    assert len(set(said.values())) == 1, said
    assert "context 'prod' is not allowed" in said["validate"]
    assert not (tmp_path / "reports").exists()
    allowed = run_gameday("validate", scenario, "--context", "prod", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert f"{scenario}: ok (bad-image-tag)" in allowed.stdout
