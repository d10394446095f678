"""Model loading from a directory: /health 503 while the bytes are read, then 200."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.sim.support import StartSim, wait_until
from tests.support.models import tiny_model

pytestmark = pytest.mark.integration


def test_health_is_503_while_loading_then_200(start_sim: StartSim, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", shards=2)
    # 1.7 MB at 1.25 MiB/s: more than a second of loading.
    sim = start_sim("--model-dir", str(model), "--load-bandwidth", "1280Ki", wait=False)
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
    # served under its path, as vLLM serves a local directory
    models = httpx.get(f"{sim.base}/v1/models", timeout=10).json()["data"]
    assert [m["id"] for m in models] == [str(model)]
    assert sim.chat(model=str(model), max_tokens=2).status_code == 200
    log = sim.log()
    assert f"Starting to load model {model}..." in log
    assert "Loading safetensors checkpoint shards: 100% Completed | 2/2" in log
    assert "Loading weights took" in log
    assert log.index("Loading weights took") < log.index("Application startup complete.")
    handler = "/v1/chat/completions"
    assert sim.value("http_requests", "http_requests_total", handler=handler, status="5xx") == 1


def test_weights_and_kv_cache_are_really_in_memory(start_sim: StartSim, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", shards=1)
    sim = start_sim(
        "--model-dir", str(model), "--cpu-kv-cache-bytes", "96Mi", "--served-model-name", "tiny"
    )
    rss = psutil.Process(sim.proc.pid).memory_info().rss
    weights = (model / "model.safetensors").stat().st_size
    assert rss > 96 * 2**20 + weights
    assert sim.value("gameday_sim_kv_cache_bytes") == 96 * 2**20
    # 96 MiB at 1 KiB per token of the tiny Llama (2 x 2 layers x 4 KV heads x 32 x bf16).
    assert "GPU KV cache size: 98,304 tokens (simulated in host memory)" in sim.log()
    assert sim.chat(model="tiny", max_tokens=2).status_code == 200
