"""Model loading from a directory: /health 503 while the bytes are read, then 200."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from gameday.sim.model import write_model_dir
from tests.integration.sim.support import StartSim, wait_until

pytestmark = pytest.mark.integration


def test_health_is_503_while_loading_then_200(start_sim: StartSim, tmp_path: Path) -> None:
    write_model_dir(tmp_path / "m", size=3 * 2**20, files=2, name="slow-llama")
    # 3 MiB at 3 MiB/s: about one second of loading.
    sim = start_sim("--model-dir", str(tmp_path / "m"), "--load-bandwidth", "3Mi", wait=False)
    wait_until(lambda: sim.health() == 503, 5, "/health 503 while loading")
    r = sim.chat()
    assert r.status_code == 503
    assert r.json()["error"] == {
        "message": "The model is still loading; the server is not ready.",
        "type": "ServiceUnavailableError",
        "param": None,
        "code": 503,
    }
    loading_for = sim.wait_healthy()
    assert loading_for > 0.8
    assert sim.chat(model="slow-llama", max_tokens=2).status_code == 200
    log = sim.log()
    assert f"Starting to load model {tmp_path / 'm'}..." in log
    assert "Loading safetensors checkpoint shards: 100% Completed | 2/2" in log
    assert "Loading weights took" in log
    assert log.index("Loading weights took") < log.index("Application startup complete.")
    handler = "/v1/chat/completions"
    assert sim.value("http_requests", "http_requests_total", handler=handler, status="5xx") == 1


def test_weights_and_kv_cache_are_really_in_memory(start_sim: StartSim, tmp_path: Path) -> None:
    write_model_dir(tmp_path / "m", size=16 * 2**20, files=2)
    sim = start_sim("--model-dir", str(tmp_path / "m"), "--cpu-kv-cache-bytes", "96Mi")
    rss = psutil.Process(sim.proc.pid).memory_info().rss
    assert rss > (16 + 96) * 2**20
    assert sim.value("gameday_sim_kv_cache_bytes") == 96 * 2**20
    # 96 MiB at 4 KiB per token of the tiny Llama.
    assert "GPU KV cache size: 24,576 tokens (simulated in host memory)" in sim.log()
