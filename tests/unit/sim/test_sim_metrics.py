"""Metric names, types, labels and buckets as vLLM and SGLang expose them."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gameday.sim.metrics import VLLM_TTFT_BUCKETS, Histogram, HttpStats, Metrics
from gameday.sim.scheduler import Scheduler, Sequence


def families(m: Metrics) -> dict[str, object]:
    text = generate_latest(m.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def engine_metrics(flavor: str = "vllm", deprecated: bool = False) -> Metrics:
    m = Metrics(flavor=flavor, deprecated=deprecated, model_name="tiny")  # type: ignore[arg-type]
    m.set_max_model_len(4096)
    s = Scheduler(max_num_seqs=4, num_blocks=64, block_size=16, max_num_batched_tokens=8192)
    m.scheduler = s
    s.add(Sequence(request_id="a", prompt_tokens=10, max_tokens=3, stop_at=3, arrival_time=0.0))
    now = 0.0
    while s.has_work:
        plan = s.schedule(now)
        now += 0.02
        m.record_step(s.finish_step(plan, now))
    return m


VLLM_TYPES = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_success": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:num_preemptions": "counter",
}


def test_vllm_names_types_and_labels() -> None:
    fams = families(engine_metrics())
    for name, typ in VLLM_TYPES.items():
        assert fams[name].type == typ, name  # type: ignore[attr-defined]
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in fams.values() for s in f.samples}  # type: ignore[attr-defined]  # fmt: skip
    labels = (("engine", "0"), ("model_name", "tiny"))
    assert samples[("vllm:prompt_tokens_total", labels)] == 10
    assert samples[("vllm:generation_tokens_total", labels)] == 3
    reason = tuple(sorted((*labels, ("finished_reason", "length"))))
    assert samples[("vllm:request_success_total", reason)] == 1
    assert samples[("vllm:inter_token_latency_seconds_count", labels)] == 2
    assert "vllm:gpu_cache_usage_perc" not in fams


def test_vllm_ttft_buckets_are_vllms() -> None:
    fams = families(engine_metrics())
    les = [s.labels["le"] for s in fams["vllm:time_to_first_token_seconds"].samples  # type: ignore[attr-defined]
           if s.name.endswith("_bucket")]  # fmt: skip
    assert les == [*(str(b) for b in VLLM_TTFT_BUCKETS), "+Inf"]


def test_deprecated_metrics_on_request() -> None:
    fams = families(engine_metrics(deprecated=True))
    assert fams["vllm:gpu_cache_usage_perc"].type == "gauge"  # type: ignore[attr-defined]
    assert fams["vllm:time_per_output_token_seconds"].type == "histogram"  # type: ignore[attr-defined]


def test_sglang_flavor_names() -> None:
    fams = families(engine_metrics("sglang"))
    for name, typ in {
        "sglang:num_running_reqs": "gauge",
        "sglang:num_queue_reqs": "gauge",
        "sglang:token_usage": "gauge",
        "sglang:time_to_first_token_seconds": "histogram",
        "sglang:inter_token_latency_seconds": "histogram",
        "sglang:e2e_request_latency_seconds": "histogram",
        "sglang:prompt_tokens": "counter",
        "sglang:generation_tokens": "counter",
        "sglang:num_requests": "counter",
    }.items():
        assert fams[name].type == typ, name  # type: ignore[attr-defined]
    assert not any(n.startswith("vllm:") for n in fams)


def test_simulator_info_says_what_is_simulated() -> None:
    m = engine_metrics()
    m.kv_backend = "cpu-simulated"
    (sample,) = families(m)["gameday_sim_info"].samples  # type: ignore[attr-defined]
    assert sample.labels["kv_cache_backend"] == "cpu-simulated" and sample.value == 1


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram([0.1, 1.0])
    h.observe(0.05)
    h.observe(0.5, 3)
    h.observe(7.0)
    assert h.counts == [1, 3, 1]
    assert h.total == pytest.approx(8.55)


def test_http_stats_group_statuses_by_class() -> None:
    stats = HttpStats()
    for status in (200, 201, 404, 499, 503):
        stats.observe("/v1/completions", "POST", status, 0.2)
    assert stats.requests == {
        ("/v1/completions", "POST", "2xx"): 2,
        ("/v1/completions", "POST", "4xx"): 2,
        ("/v1/completions", "POST", "5xx"): 1,
    }
    assert stats.durations[("/v1/completions", "POST")].counts == [0, 5, 0, 0]
