"""Startup failures by real mechanisms, each with its exact error text and exit code 1."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.sim.support import StartSim, free_port
from tests.support.models import SHARD_1, SHARD_2, tiny_model

pytestmark = pytest.mark.integration

ENGINE_FAILED = (
    "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "model", shards=2)


def error_lines(log: str) -> list[str]:
    """The log without vLLM-style and uvicorn-style log records: what Python printed."""
    return [
        line
        for line in log.splitlines()
        if not re.match(r"^(INFO|WARNING|ERROR|DEBUG)[ :]", line) and line.strip()
    ]


def test_a_busy_port_fails_at_once_with_errno_98(start_sim: StartSim) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        sim = start_sim(wait=False, port=port)
        assert sim.wait_exit(timeout=10) == 1
    log = sim.log()
    assert "OSError: [Errno 98] Address already in use" in log
    assert "Starting to load model" not in log  # it failed before loading anything


def test_a_missing_model_directory_fails_before_the_engine(
    start_sim: StartSim, tmp_path: Path
) -> None:
    missing = tmp_path / "models" / "llama"
    sim = start_sim("--model-dir", str(missing), wait=False)
    assert sim.wait_exit() == 1
    assert error_lines(sim.log()) == [
        "huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or "
        f"'namespace/repo_name': '{missing}'. Use `repo_type` argument if needed."
    ]


def test_a_missing_config_fails_before_the_engine(start_sim: StartSim, model_dir: Path) -> None:
    (model_dir / "config.json").unlink()
    sim = start_sim("--model-dir", str(model_dir), wait=False)
    assert sim.wait_exit() == 1
    lines = error_lines(sim.log())
    assert lines[:2] == [
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig",
        f"  Value error, Invalid repository ID or local directory specified: '{model_dir}'.",
    ]
    assert ENGINE_FAILED not in lines


def test_a_missing_shard_is_vllms_index_error(start_sim: StartSim, model_dir: Path) -> None:
    shard = model_dir / SHARD_2
    shard.unlink()
    sim = start_sim("--model-dir", str(model_dir), wait=False)
    assert sim.wait_exit() == 1
    # the root cause, then the API server's line, as vLLM prints them
    assert error_lines(sim.log()) == [
        f"FileNotFoundError: Weight files referenced in index but missing: {{'{shard}'}}",
        ENGINE_FAILED,
    ]


def test_the_only_weight_file_missing(start_sim: StartSim, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "model", shards=1)
    (model / "model.safetensors").unlink()
    sim = start_sim("--model-dir", str(model), wait=False)
    assert sim.wait_exit() == 1
    assert error_lines(sim.log()) == [
        f"RuntimeError: Cannot find any model weights with `{model}`",
        ENGINE_FAILED,
    ]


def test_a_truncated_weight_file_fails_in_safetensors(start_sim: StartSim, model_dir: Path) -> None:
    shard = model_dir / SHARD_2
    os.truncate(shard, shard.stat().st_size // 2)
    sim = start_sim("--model-dir", str(model_dir), wait=False)
    assert sim.wait_exit() == 1
    assert error_lines(sim.log()) == [
        "safetensors._safetensors_rust.SafetensorError: Error while deserializing header: "
        "incomplete metadata, file not fully covered",
        ENGINE_FAILED,
    ]


def test_an_overwritten_header_length(start_sim: StartSim, model_dir: Path) -> None:
    with (model_dir / SHARD_1).open("r+b") as handle:
        handle.write(b"\xff" * 8)
    sim = start_sim("--model-dir", str(model_dir), wait=False)
    assert sim.wait_exit() == 1
    assert error_lines(sim.log())[0] == (
        "safetensors._safetensors_rust.SafetensorError: Error while deserializing header: "
        "header too large"
    )


def test_flipped_bytes_load_unnoticed_as_in_vllm(start_sim: StartSim, model_dir: Path) -> None:
    shard = model_dir / SHARD_1
    blob = bytearray(shard.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    shard.write_bytes(bytes(blob))
    sim = start_sim("--model-dir", str(model_dir))  # healthy: nothing checks a checksum
    assert sim.chat(model=str(model_dir), max_tokens=2).status_code == 200


def test_an_unresolvable_upstream_at_startup(start_sim: StartSim) -> None:
    sim = start_sim("--upstream", "http://model-store.gameday.invalid:8080/v1", wait=False)
    assert sim.wait_exit() == 1
    log = sim.log()
    assert "Cannot resolve upstream dependency model-store.gameday.invalid:8080" in log
    # Whatever the resolver answers here (-2 without DNS, -3 when it times out...).
    assert re.search(r"^socket\.gaierror: \[Errno -\d+\] \S.*$", log, re.M)


def test_a_kv_cache_too_small_for_max_model_len(start_sim: StartSim) -> None:
    sim = start_sim("--kv-cache-tokens", "1024", wait=False)
    assert sim.wait_exit() == 1
    assert error_lines(sim.log()) == [
        "ValueError: To serve at least one request with the model's max seq len (4096), "
        "(0.02 GiB KV cache is needed, which is larger than the available KV cache memory "
        "(0.0 GiB). Based on the available memory, the estimated maximum model length is "
        "1024. Try increasing `gpu_memory_utilization` (which also controls CPU memory on "
        "the CPU backend) or decreasing `max_model_len` when initializing the engine. See "
        "https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.",
        ENGINE_FAILED,
    ]


def test_max_model_len_beyond_the_models(start_sim: StartSim, model_dir: Path) -> None:
    sim = start_sim("--model-dir", str(model_dir), "--max-model-len", "4096", wait=False)
    assert sim.wait_exit() == 1
    lines = error_lines(sim.log())
    assert lines[0] == (
        "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig"
    )
    assert lines[1].startswith(
        "  Value error, User-specified max_model_len (4096) is greater than the derived "
        "max_model_len (max_position_embeddings=512.0 or model_max_length=None in model's "
        "config.json). To allow overriding this maximum, set the env var "
        "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1."
    )
    assert ENGINE_FAILED not in lines  # vLLM fails it before it starts an engine
    assert "Starting to load model" not in sim.log()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cpu-kv-cache-bytes", "lots"], "invalid byte quantity 'lots'"),
        (["--flavor", "tgi"], "--flavor must be vllm or sglang"),
        (["--upstream-check-interval", "soon"], "invalid duration 'soon'"),
    ],
)
def test_bad_flags_are_one_clear_error_and_exit_2(flags: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gameday.sim", "serve", "--port", str(free_port()), *flags],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
