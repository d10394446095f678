"""The simulator and a live vLLM side by side: the same requests, the same comparisons as
against the recorded fixtures (tests/integration/sim/test_vllm_conformance.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from gameday.models import make_tiny
from gameday.targets.local.engines.vllm import vllm_venv
from tests.data.vllm.record import command, free_port, serve, stop
from tests.integration.sim.vllm_surface import (
    Surface,
    chunk_kind,
    exercise,
    json_differences,
    message_pattern,
    metric_differences,
    sse_chunks,
)

pytestmark = [pytest.mark.vllm, pytest.mark.integration]


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Surface, Surface]]:
    """(vLLM's, the simulator's) answers to the same requests, on the same tiny model."""
    work = tmp_path_factory.mktemp("side-by-side")
    model = make_tiny(work / "model")
    port = free_port()
    vllm_argv = command(str(vllm_venv() / "bin" / "vllm"), model, port)
    vllm, _ = serve(vllm_argv, work / "vllm.log", port)
    try:
        live = exercise(f"http://127.0.0.1:{port}")
    finally:
        stop(vllm)
    port = free_port()
    sim_argv = [sys.executable, "-m", "gameday.sim", "serve", "--port", str(port)]
    sim_argv += ["--model-dir", str(model), "--decode-ms-per-token", "1"]
    sim, _ = serve(sim_argv, work / "sim.log", port)
    try:
        yield live, exercise(f"http://127.0.0.1:{port}")
    finally:
        stop(sim)


def test_metric_families_side_by_side(surfaces: tuple[Surface, Surface]) -> None:
    live, sim = surfaces
    assert metric_differences(live.metrics, sim.metrics) == []


def test_json_answers_side_by_side(surfaces: tuple[Surface, Surface]) -> None:
    live, sim = surfaces
    assert live.models["data"][0]["id"] == sim.models["data"][0]["id"]
    for name in ("models", "version", "chat", "completion"):
        assert json_differences(getattr(live, name), getattr(sim, name), name) == []


def test_stream_side_by_side(surfaces: tuple[Surface, Surface]) -> None:
    live, sim = surfaces
    kinds = [[chunk_kind(c) for c in sse_chunks(s.stream)[0]] for s in (live, sim)]
    dedup = [[k for i, k in enumerate(ks) if i == 0 or ks[i - 1] != k] for ks in kinds]
    assert dedup[0] == dedup[1] == ["role", "content", "finish", "usage"]
    assert sse_chunks(live.stream)[1][-1] == sse_chunks(sim.stream)[1][-1] == "[DONE]"


def test_refusals_side_by_side(surfaces: tuple[Surface, Surface]) -> None:
    live, sim = surfaces
    for case, want in live.errors.items():
        got = sim.errors[case]
        assert got["status"] == want["status"], case
        assert json_differences(want["body"], got["body"], case) == []
        assert message_pattern(got["body"]["error"]["message"]) == message_pattern(
            want["body"]["error"]["message"]
        ), case
