"""The simulator's Prometheus metrics, with vLLM's (or SGLang's) names, types, labels and buckets.

The hot path only bumps plain numbers; a collector registered in the app's own
``CollectorRegistry`` turns them into metric families when ``/metrics`` is scraped, and
reads the gauges (running, waiting, KV usage) straight from the scheduler at that moment.

``http_requests_total{handler,method,status}`` mirrors what vLLM exposes through
prometheus-fastapi-instrumentator (status grouped as ``2xx``/``4xx``/``5xx``; ``/metrics``
and ``/health`` excluded, untemplated paths as ``handler="none"``); the bundled alert rules
compute the inference error ratio from it, so every response is counted, 5xx included (the
HTTP server, :mod:`gameday.sim.protocol`, reports each one to :class:`HttpStats`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from gameday import __version__
from gameday.sim.options import Flavor

if TYPE_CHECKING:
    from gameday.sim.scheduler import Scheduler, Sequence, StepResult

__all__ = ["EXCLUDED_HANDLERS", "VLLM_TTFT_BUCKETS", "HttpStats", "Metrics"]

# vLLM v1 (vllm/v1/metrics/loggers.py)
VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
    7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_TOKEN_LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
VLLM_REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
# SGLang (python/sglang/srt/metrics/collector.py, TokenizerMetricsCollector defaults)
SGLANG_TTFT_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400,
)  # fmt: skip
SGLANG_ITL_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060,
    0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000,
)  # fmt: skip
SGLANG_E2E_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 800,
)  # fmt: skip
# prometheus-fastapi-instrumentator's default latency buckets
HTTP_DURATION_BUCKETS = (0.1, 0.5, 1.0)

# vLLM's instrumentator leaves these out of http_requests_total.
EXCLUDED_HANDLERS = frozenset({"/metrics", "/health", "/load", "/ping", "/version"})


def _one_two_five(max_value: int) -> tuple[float, ...]:
    """vLLM's ``build_1_2_5_buckets``: 1, 2, 5, 10, 20, 50, ... up to ``max_value``."""
    out: list[float] = []
    scale = 1
    while True:
        for m in (1, 2, 5):
            if m * scale > max_value:
                return tuple(out)
            out.append(float(m * scale))
        scale *= 10


def _le(bound: float) -> str:
    # prometheus_client's own ``le`` spelling (floatToGoString) for bounds below 1e6.
    return repr(float(bound))


class Histogram:
    """A label-less histogram: cheap observe, cumulative buckets at scrape time."""

    __slots__ = ("_le", "bounds", "counts", "total")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(bounds)
        self._le = [_le(b) for b in self.bounds] + ["+Inf"]
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        """Record ``value`` ``count`` times."""
        self.counts[bisect_left(self.bounds, value)] += count
        self.total += value * count

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for le, count in zip(self._le, self.counts, strict=True):
            cumulative += count
            buckets.append((le, cumulative))
        family.add_metric(labels, buckets, self.total)


# Status classes as labels, without formatting one per response.
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}


@dataclass
class HttpStats:
    """``http_requests_total`` and ``http_request_duration_seconds``, by handler and method."""

    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)

    def observe(self, handler: str, method: str, status: int, seconds: float) -> None:
        """Count one response (``status`` 499: the client left before it)."""
        key = (handler, method, _STATUS_CLASS.get(status // 100) or f"{status // 100}xx")
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        hist = self.durations.get((handler, method))
        if hist is None:
            hist = self.durations[(handler, method)] = Histogram(HTTP_DURATION_BUCKETS)
        hist.observe(seconds)


class Metrics:
    """All of the simulator's metrics and the collector that exposes them."""

    def __init__(self, *, flavor: Flavor, deprecated: bool, model_name: str) -> None:
        self.flavor = flavor
        self.deprecated = deprecated
        # Filled in as startup learns them.
        self.model_name = model_name
        self.scheduler: Scheduler | None = None
        self.kv_backend = "none"
        self.kv_bytes = 0
        self.device = ""
        self.gpu_memory_utilization: float | None = None
        self.upstream: str | None = None
        self.upstream_up = True
        self.ready = False
        self.gen_throughput = 0.0

        self.http = HttpStats()
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.finished = {"stop": 0, "length": 0, "abort": 0}
        ttft: tuple[float, ...]
        itl: tuple[float, ...]
        e2e: tuple[float, ...]
        if flavor == "sglang":
            ttft, itl, e2e = SGLANG_TTFT_BUCKETS, SGLANG_ITL_BUCKETS, SGLANG_E2E_BUCKETS
        else:
            ttft, itl, e2e = (
                VLLM_TTFT_BUCKETS,
                VLLM_TOKEN_LATENCY_BUCKETS,
                VLLM_REQUEST_LATENCY_BUCKETS,
            )
        self.ttft = Histogram(ttft)
        self.itl = Histogram(itl)
        self.e2e = Histogram(e2e)
        self.queue_time = Histogram(VLLM_REQUEST_LATENCY_BUCKETS)
        self.tpot = Histogram(VLLM_TOKEN_LATENCY_BUCKETS)
        self.request_prompt_tokens: Histogram | None = None
        self.request_generation_tokens: Histogram | None = None

        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def set_max_model_len(self, max_model_len: int) -> None:
        buckets = _one_two_five(max_model_len)
        self.request_prompt_tokens = Histogram(buckets)
        self.request_generation_tokens = Histogram(buckets)

    # -- recording -------------------------------------------------------------

    def record_step(self, result: StepResult) -> None:
        self.prompt_tokens += result.new_prompt_tokens
        self.generation_tokens += result.generation_tokens
        for v in result.ttft:
            self.ttft.observe(v)
        itl, tpot = self.itl, self.tpot
        for v in result.itl:
            itl.observe(v)
            tpot.observe(v)
        value, count = result.itl_bulk
        if count:
            itl.observe(value, count)
            tpot.observe(value, count)
        for seq in result.finished:
            self.record_finished(seq)

    def record_finished(self, seq: Sequence) -> None:
        reason = seq.finish_reason or "stop"
        self.finished[reason] = self.finished.get(reason, 0) + 1
        if reason == "abort":
            return
        if seq.finish_time is not None:
            self.e2e.observe(seq.finish_time - seq.arrival_time)
            if seq.scheduled_time is not None:
                self.queue_time.observe(seq.scheduled_time - seq.arrival_time)
        if self.request_prompt_tokens is not None and self.request_generation_tokens is not None:
            self.request_prompt_tokens.observe(seq.prompt_tokens)
            self.request_generation_tokens.observe(seq.output_tokens)

    # -- exposition ------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        if self.flavor == "sglang":
            yield from self._collect_sglang()
        else:
            yield from self._collect_vllm()
        yield from self._collect_common()

    def _engine_state(self) -> tuple[int, int, float, int, int]:
        s = self.scheduler
        if s is None:
            return 0, 0, 0.0, 0, 0
        pool = s.blocks
        return len(s.running), len(s.waiting), pool.usage, s.num_preemptions, pool.used_blocks

    def _collect_vllm(self) -> Iterator[Metric]:
        names = ["model_name", "engine"]
        values = [self.model_name, "0"]
        running, waiting, usage, preemptions, _ = self._engine_state()

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=names)
            g.add_metric(values, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=names)
            c.add_metric(values, value)
            return c

        def histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
            h = HistogramMetricFamily(name, doc, labels=names)
            hist.add_to(h, values)
            return h

        yield gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", running
        )
        yield gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting
        )
        yield gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
        yield counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", preemptions
        )
        yield counter(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", self.prompt_tokens
        )
        yield counter(
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            self.generation_tokens,
        )
        success = CounterMetricFamily(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels=[*names, "finished_reason"],
        )
        for reason, count in self.finished.items():
            success.add_metric([*values, reason], count)
        yield success
        yield histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            self.ttft,
        )
        yield histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            self.itl,
        )
        yield histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            self.e2e,
        )
        yield histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            self.queue_time,
        )
        if self.request_prompt_tokens is not None and self.request_generation_tokens is not None:
            yield histogram(
                "vllm:request_prompt_tokens",
                "Number of prefill tokens processed.",
                self.request_prompt_tokens,
            )
            yield histogram(
                "vllm:request_generation_tokens",
                "Number of generation tokens processed.",
                self.request_generation_tokens,
            )
        if self.scheduler is not None:
            info = GaugeMetricFamily(
                "vllm:cache_config_info",
                "Information of the LLMEngine CacheConfig",
                labels=["block_size", "num_gpu_blocks", "gpu_memory_utilization", "engine"],
            )
            util = self.gpu_memory_utilization
            info.add_metric(
                [
                    str(self.scheduler.blocks.block_size),
                    str(self.scheduler.blocks.num_blocks),
                    str(util if util is not None else 0.9),
                    "0",
                ],
                1,
            )
            yield info
        if self.deprecated:
            yield gauge(
                "vllm:gpu_cache_usage_perc",
                "GPU KV-cache usage. 1 means 100 percent usage."
                "DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
                usage,
            )
            yield histogram(
                "vllm:time_per_output_token_seconds",
                "Histogram of time per output token in seconds.",
                self.tpot,
            )

    def _collect_sglang(self) -> Iterator[Metric]:
        names = ["model_name"]
        values = [self.model_name]
        running, waiting, usage, preemptions, used_blocks = self._engine_state()
        block_size = self.scheduler.blocks.block_size if self.scheduler else 0

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=names)
            g.add_metric(values, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=names)
            c.add_metric(values, value)
            return c

        def histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
            h = HistogramMetricFamily(name, doc, labels=names)
            hist.add_to(h, values)
            return h

        yield gauge("sglang:num_running_reqs", "The number of running requests.", running)
        yield gauge(
            "sglang:num_queue_reqs", "The number of requests in the waiting queue.", waiting
        )
        yield gauge("sglang:token_usage", "The token usage.", usage)
        yield gauge(
            "sglang:num_used_tokens", "The number of used tokens.", used_blocks * block_size
        )
        yield gauge(
            "sglang:gen_throughput", "The generation throughput (token/s).", self.gen_throughput
        )
        yield gauge("sglang:cache_hit_rate", "The prefix cache hit rate.", 0.0)
        yield counter(
            "sglang:prompt_tokens", "Number of prefill tokens processed.", self.prompt_tokens
        )
        yield counter(
            "sglang:generation_tokens",
            "Number of generation tokens processed.",
            self.generation_tokens,
        )
        # SGLang counts aborted requests in num_requests too.
        yield counter(
            "sglang:num_requests", "Number of requests processed.", sum(self.finished.values())
        )
        yield counter(
            "sglang:num_aborted_requests", "Number of requests aborted.", self.finished["abort"]
        )
        yield counter(
            "sglang:num_retracted_requests", "Total number of retracted requests.", preemptions
        )
        yield histogram(
            "sglang:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            self.ttft,
        )
        yield histogram(
            "sglang:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            self.itl,
        )
        yield histogram(
            "sglang:e2e_request_latency_seconds",
            "Histogram of End-to-end request latency in seconds",
            self.e2e,
        )

    def _collect_common(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests", "Total number of requests by method, status and handler.",
            labels=["handler", "method", "status"],
        )  # fmt: skip
        for (handler, method, status), count in self.http.requests.items():
            requests.add_metric([handler, method, status], count)
        yield requests
        durations = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation by "
            "handler is important.",
            labels=["handler", "method"],
        )
        for (handler, method), hist in self.http.durations.items():
            hist.add_to(durations, [handler, method])
        yield durations

        info = GaugeMetricFamily(
            "gameday_sim_info",
            "The inference simulator: flavor, model, and whether its KV cache is real GPU "
            "memory (cuda) or host memory standing in for it (cpu-simulated).",
            labels=["version", "flavor", "model_name", "kv_cache_backend", "device"],
        )
        info.add_metric(
            [__version__, self.flavor, self.model_name, self.kv_backend, self.device], 1
        )
        yield info
        yield GaugeMetricFamily(
            "gameday_sim_kv_cache_bytes",
            "Bytes really allocated for the KV cache (host or GPU memory).",
            value=self.kv_bytes,
        )
        yield GaugeMetricFamily(
            "gameday_sim_ready",
            "1 when the model is loaded and the engine healthy.",
            value=self.ready,
        )
        if self.upstream is not None:
            up = GaugeMetricFamily(
                "gameday_sim_upstream_up",
                "1 when the last name resolution of the upstream dependency succeeded.",
                labels=["upstream"],
            )
            up.add_metric([self.upstream], 1 if self.upstream_up else 0)
            yield up
