"""Startup failures by real mechanisms, each with its exact error text and exit code 1."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gameday.sim.model import write_model_dir
from tests.integration.sim.support import StartSim, free_port

pytestmark = pytest.mark.integration

ENGINE_FAILED = (
    "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    write_model_dir(tmp_path / "model", size=256 * 1024, files=2, name="tiny-llama")
    return tmp_path / "model"


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


def test_a_missing_model_directory(start_sim: StartSim, tmp_path: Path) -> None:
    missing = tmp_path / "models" / "llama"
    sim = start_sim("--model-dir", str(missing), wait=False)
    assert sim.wait_exit() == 1
    log = sim.log()
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{missing}'" in log
    assert ENGINE_FAILED in log


def test_a_missing_weight_file(start_sim: StartSim, model_dir: Path) -> None:
    shard = model_dir / "model-00002-of-00002.safetensors"
    shard.unlink()
    sim = start_sim("--model-dir", str(model_dir), wait=False)
    assert sim.wait_exit() == 1
    assert f"FileNotFoundError: [Errno 2] No such file or directory: '{shard}'" in sim.log()


def test_a_corrupted_weight_file_fails_its_checksum(start_sim: StartSim, model_dir: Path) -> None:
    shard = model_dir / "model-00001-of-00002.safetensors"
    blob = bytearray(shard.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    shard.write_bytes(bytes(blob))
    sim = start_sim("--model-dir", str(model_dir), wait=False)
    assert sim.wait_exit() == 1
    assert re.search(
        rf"ValueError: Checksum mismatch for weight file {re.escape(str(shard))}: expected sha256 "
        r"[0-9a-f]{64}, got [0-9a-f]{64}\. The file is corrupted; re-download the model\.",
        sim.log(),
    )


def test_a_truncated_weight_file_fails_like_safetensors(
    start_sim: StartSim, model_dir: Path
) -> None:
    shard = model_dir / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:1000])
    sim = start_sim("--model-dir", str(model_dir), wait=False)
    assert sim.wait_exit() == 1
    log = sim.log()
    assert f"Failed to load weight file {shard}" in log
    header_error = "Error while deserializing header: MetadataIncompleteBuffer"
    assert f"safetensors_rust.SafetensorError: {header_error}" in log


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
    assert (
        "ValueError: To serve at least one request with the models's max seq len (4096), "
        "(0.02 GiB KV cache is needed, which is larger than the available KV cache memory "
        "(0.00 GiB). Based on the available memory, the estimated maximum model length is "
        "1024. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
        "initializing the engine."
    ) in sim.log()


def test_max_model_len_beyond_the_models(start_sim: StartSim) -> None:
    sim = start_sim("--max-model-len", "8192", wait=False)
    assert sim.wait_exit() == 1
    assert (
        "ValueError: User-specified max_model_len (8192) is greater than the derived "
        "max_model_len (max_position_embeddings=4096"
    ) in sim.log()


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
