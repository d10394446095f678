"""The simulator's Prometheus metrics, with vLLM's (or SGLang's) names, types, labels and buckets.

With ``--flavor vllm`` (the default) /metrics has what vLLM 0.32.0 exposes, family for
family, checked against a real vLLM's /metrics (tests/data/vllm/0.32.0/metrics.txt, by
tests/integration/sim/test_vllm_conformance.py): vLLM's 39 ``vllm:`` families with their
names, types, help texts, label names, fixed label values, ``_created`` series and bucket
boundaries, prometheus-fastapi-instrumentator's five ``http_*`` families, and
prometheus_client's ``process_*``, ``python_gc_*`` and ``python_info``. The values follow
what the simulator models (tokens, requests, the queue, the batch, KV-cache blocks,
preemptions, each request's phases); a family for something it does not model
(multimodal and external prefix caches, KV transfer, flops estimates, queue limits,
sleep mode) is exposed with vLLM's labels and stays 0, as it does on a vLLM that does not
use the feature. On top come the simulator's own ``gameday_sim_*`` families.

Names that older vLLM releases exposed and 0.32 no longer does
(:data:`OLD_VLLM_METRICS`: ``vllm:gpu_cache_usage_perc``, ``vllm:num_requests_swapped``,
...) appear only for ``--vllm-version`` older than the release that dropped them, or with
``--deprecated-metrics`` (all of them).

The hot path only bumps plain numbers; a collector registered in the app's own
``CollectorRegistry`` turns them into metric families when ``/metrics`` is scraped, and
reads the gauges (running, waiting, KV usage) straight from the scheduler at that moment.

``http_requests_total{handler,method,status}`` and the instrumentator's other families
mirror what vLLM exposes through prometheus-fastapi-instrumentator (status grouped as
``2xx``/``4xx``/``5xx``; ``/metrics``, ``/health`` and ``/version`` excluded, untemplated
paths as ``handler="none"``); the bundled alert rules compute the inference error ratio
from it, so every response is counted, 5xx included (the HTTP server,
:mod:`gameday.sim.protocol`, reports each one to :class:`HttpStats`).
"""

from __future__ import annotations

import functools
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.samples import Sample

from gameday import __version__
from gameday.sim.options import VLLM_VERSION, Flavor, parse_vllm_version

if TYPE_CHECKING:
    from gameday.sim.scheduler import Scheduler, StepResult
    from gameday.sim.scheduler import Sequence as Seq

__all__ = [
    "EXCLUDED_HANDLERS",
    "FINISHED_REASONS",
    "OLD_VLLM_METRICS",
    "VLLM_TTFT_BUCKETS",
    "Histogram",
    "HttpStats",
    "Metrics",
    "cache_config_labels",
]

# vLLM 0.32 (vllm/v1/metrics/loggers.py), as its /metrics shows them
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
# vllm:iteration_tokens_total: vLLM's fixed list when it captures no CUDA graphs
# (--enforce-eager, and every CPU build); the simulator captures none either.
VLLM_ITERATION_TOKEN_BUCKETS = (
    1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
)  # fmt: skip
VLLM_N_BUCKETS = (1, 2, 5, 10, 20)
VLLM_PREEMPTION_BUCKETS = (1, 2, 3, 4, 5, 10, 20)
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
# prometheus-fastapi-instrumentator's default latency buckets: by handler, and without labels
HTTP_DURATION_BUCKETS = (0.1, 0.5, 1.0)
HTTP_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0,
    4.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip

# vLLM's instrumentator leaves these out of http_requests_total.
EXCLUDED_HANDLERS = frozenset({"/metrics", "/health", "/load", "/ping", "/version"})

FINISHED_REASONS = ("stop", "length", "abort", "error", "repetition")
"""vllm:request_success_total's finished_reason values (vLLM's FinishReason), all exposed
from the start; the simulator's requests end with the first three."""

OLD_VLLM_METRICS: dict[str, tuple[int, int, int]] = {
    # V1 names renamed in 0.9.2 and 0.11 (gameday.rules.lint.VLLM_RENAMES): from the
    # release given on, vLLM hides them (--show-hidden-metrics-for-version), then drops them.
    "vllm:gpu_cache_usage_perc": (0, 11, 0),
    "vllm:gpu_prefix_cache_queries": (0, 11, 0),
    "vllm:gpu_prefix_cache_hits": (0, 11, 0),
    "vllm:time_per_output_token_seconds": (0, 12, 0),
    # The V0 engine's (gameday.rules.lint.VLLM_REMOVED): V1, the default engine from 0.8
    # on, has none of them. Labelled by model_name only, as V0 did.
    "vllm:num_requests_swapped": (0, 8, 0),
    "vllm:cpu_cache_usage_perc": (0, 8, 0),
    "vllm:gpu_prefix_cache_hit_rate": (0, 8, 0),
    "vllm:cpu_prefix_cache_hit_rate": (0, 8, 0),
    "vllm:avg_prompt_throughput_toks_per_s": (0, 8, 0),
    "vllm:avg_generation_throughput_toks_per_s": (0, 8, 0),
}
"""Metric names vLLM 0.32 no longer exposes -> the first release that did not by default.
Exposed, on top of 0.32's families, for an older ``--vllm-version`` (all of them with
``--deprecated-metrics``): rules and dashboards written for either release find their
series."""

_ENGINE_LABELS = ("engine", "model_name")


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


def _created(family: Metric, names: Sequence[str], values: Sequence[str], ts: float) -> None:
    """Add the ``_created`` sample prometheus_client gives a counter, histogram or summary
    (the text format shows it as a gauge family of its own, ``<name>_created``)."""
    family.samples.append(
        Sample(family.name + "_created", dict(zip(names, values, strict=True)), ts)
    )


class Histogram:
    """A label-less histogram: cheap observe, cumulative buckets at scrape time."""

    __slots__ = ("_le", "bounds", "counts", "created", "total")

    def __init__(self, bounds: Iterable[float], created: float | None = None) -> None:
        self.bounds = tuple(bounds)
        self._le = [_le(b) for b in self.bounds] + ["+Inf"]
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.created = time.time() if created is None else created

    def observe(self, value: float, count: int = 1) -> None:
        """Record ``value`` ``count`` times."""
        self.counts[bisect_left(self.bounds, value)] += count
        self.total += value * count

    def add_to(
        self,
        family: HistogramMetricFamily,
        labels: Sequence[str],
        names: Sequence[str] | None = None,
    ) -> None:
        """Add this histogram's series; with the label ``names``, its ``_created`` too."""
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for le, count in zip(self._le, self.counts, strict=True):
            cumulative += count
            buckets.append((le, cumulative))
        family.add_metric(labels, buckets, self.total)
        if names is not None:
            _created(family, names, labels, self.created)


@dataclass(slots=True)
class _Summary:
    """A count and a sum: the instrumentator's size summaries have no quantiles."""

    count: int = 0
    total: float = 0.0
    created: float = field(default_factory=time.time)


# Status classes as labels, without formatting one per response.
_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}


@dataclass
class HttpStats:
    """prometheus-fastapi-instrumentator's families, as vLLM configures it: requests by
    handler, method and status class; request and response sizes by handler; latency by
    handler and method, and overall with finer buckets."""

    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    requests_created: dict[tuple[str, str, str], float] = field(default_factory=dict)
    durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    request_sizes: dict[str, _Summary] = field(default_factory=dict)
    response_sizes: dict[str, _Summary] = field(default_factory=dict)
    highr: Histogram = field(default_factory=lambda: Histogram(HTTP_HIGHR_BUCKETS))

    def observe(
        self,
        handler: str,
        method: str,
        status: int,
        seconds: float,
        request_bytes: int = 0,
        response_bytes: int = 0,
    ) -> None:
        """Count one response (``status`` 499: the client left before it). Sizes are the
        bodies' lengths, as their Content-Length headers say them (0 for a stream)."""
        key = (handler, method, _STATUS_CLASS.get(status // 100) or f"{status // 100}xx")
        requests = self.requests
        count = requests.get(key)
        if count is None:
            self.requests_created[key] = time.time()
            requests[key] = 1
        else:
            requests[key] = count + 1
        hist = self.durations.get((handler, method))
        if hist is None:
            hist = self.durations[(handler, method)] = Histogram(HTTP_DURATION_BUCKETS)
        hist.observe(seconds)
        self.highr.observe(seconds)
        _add_size(self.request_sizes, handler, request_bytes)
        _add_size(self.response_sizes, handler, response_bytes)


def _add_size(sizes: dict[str, _Summary], handler: str, size: int) -> None:
    summary = sizes.get(handler)
    if summary is None:
        summary = sizes[handler] = _Summary()
    summary.count += 1
    summary.total += size


AVX512_BF16_VARIABLE = "GAMEDAY_SIM_CPU_AVX512_BF16"
"""1 or 0: answer as vLLM does on a host with or without AVX-512 BF16 instead of reading
this one's CPU (the conformance tests set it to the recording host's)."""


@functools.cache
def host_has_avx512_bf16() -> bool:
    """Whether this machine's CPU has AVX-512 BF16 (what torch.cpu reports to vLLM)."""
    chosen = os.environ.get(AVX512_BF16_VARIABLE)
    if chosen in ("0", "1"):
        return chosen == "1"
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(
        "avx512_bf16" in line.split(":", 1)[1].split()
        for line in text.splitlines()
        if line.startswith("flags")
    )


def cache_config_labels(
    *,
    block_size: int,
    num_blocks: int,
    max_model_len: int,
    kv_cache_bytes: int,
    gpu_memory_utilization: float | None,
    num_gpu_blocks_override: int | None,
    user_specified_block_size: bool,
    cpu_platform: bool = True,
) -> dict[str, str]:
    """``vllm:cache_config_info``'s labels, with vLLM 0.32's names and spelling (Python's
    ``str`` of each CacheConfig field). What the simulator has (block size, blocks, memory,
    tokens, concurrency) is its own; the rest is vLLM's default for a model without Mamba
    or sliding-window layers, but ``enable_prefix_caching``: the simulator has no prefix
    cache. On its CPU platform vLLM resets ``mamba_ssm_cache_dtype`` to float32 where the
    CPU has AVX-512 BF16 (vllm/platforms/cpu.py, for its accelerated GDN kernels), so the
    label depends on the host: the simulator reads the same CPU flag."""
    tokens = num_blocks * block_size
    return {
        "_block_size_resolved": "True",
        "block_size": str(block_size),
        "cache_dtype": "auto",
        "cache_hit_alignment_tokens": "None",
        "effective_attention_block_size": str(block_size),
        "enable_mamba_shared_prefix_checkpoint": "False",
        "enable_prefix_caching": "False",
        "engine": "0",
        # vLLM 0.32's default is 0.92
        "gpu_memory_utilization": str(
            gpu_memory_utilization if gpu_memory_utilization is not None else 0.92
        ),
        "hash_block_size": "None",
        "is_attention_free": "False",
        "kv_cache_dtype_skip_layers": "[]",
        "kv_cache_layout": "None",
        "kv_cache_max_concurrency": str(tokens / max_model_len if max_model_len else 0.0),
        "kv_cache_memory_bytes": str(kv_cache_bytes),
        "kv_cache_size_tokens": str(tokens),
        "kv_offloading_backend": "native",
        "kv_offloading_size": "None",
        "kv_sharing_fast_prefill": "False",
        "mamba_block_size": "None",
        "mamba_cache_dtype": "auto",
        "mamba_cache_mode": "none",
        "mamba_page_size_padded": "None",
        "mamba_ssm_cache_dtype": ("float32" if cpu_platform and host_has_avx512_bf16() else "auto"),
        "num_cpu_blocks": "None",
        "num_gpu_blocks": str(num_blocks),
        "num_gpu_blocks_override": str(num_gpu_blocks_override),
        "prefix_cache_retention_interval": "0",
        "prefix_caching_hash_algo": "sha256",
        "prefix_match_unit": "None",
        "replayssm_buffer_len": "16",
        "skip_page_size_padded": "None",
        "sliding_window": "None",
        "swa_bounded_replay": "True",
        "use_kda_recoverssm": "False",
        "use_replayssm": "False",
        "user_specified_block_size": str(user_specified_block_size),
    }


@dataclass(slots=True)
class _TokenHistograms:
    """The per-request token counts, bucketed 1-2-5 up to max_model_len."""

    prompt: Histogram
    generation: Histogram
    max_generation: Histogram
    max_tokens: Histogram
    prefill_computed: Histogram


class Metrics:
    """All of the simulator's metrics and the collector that exposes them."""

    def __init__(
        self,
        *,
        flavor: Flavor,
        model_name: str,
        deprecated: bool = False,
        vllm_version: str = VLLM_VERSION,
    ) -> None:
        self.flavor = flavor
        release = parse_vllm_version(vllm_version)
        self.old_names = frozenset(
            name for name, until in OLD_VLLM_METRICS.items() if deprecated or release < until
        )
        """The older names exposed on top of 0.32's families."""
        # Filled in as startup learns them.
        self.model_name = model_name
        self.scheduler: Scheduler | None = None
        # vllm:cache_config_info's labels (cache_config_labels), once the engine runs.
        self.cache_config: dict[str, str] | None = None
        self.kv_backend = "none"
        self.kv_bytes = 0
        self.device = ""
        self.upstream: str | None = None
        self.upstream_up = True
        self.ready = False
        self.gen_throughput = 0.0
        self.prompt_throughput = 0.0
        # When vLLM creates its metrics (its _created series); they all share it.
        self.created = time.time()

        self.http = HttpStats()
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.finished = dict.fromkeys(FINISHED_REASONS, 0)
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
        created = self.created
        self.ttft = Histogram(ttft, created)
        self.itl = Histogram(itl, created)
        self.e2e = Histogram(e2e, created)
        # Per request, from its phases' timestamps (vLLM's FinishedRequestStats).
        self.queue_time = Histogram(VLLM_REQUEST_LATENCY_BUCKETS, created)
        self.inference_time = Histogram(VLLM_REQUEST_LATENCY_BUCKETS, created)
        self.prefill_time = Histogram(VLLM_REQUEST_LATENCY_BUCKETS, created)
        self.decode_time = Histogram(VLLM_REQUEST_LATENCY_BUCKETS, created)
        self.request_tpot = Histogram(VLLM_TOKEN_LATENCY_BUCKETS, created)
        self.request_preemptions = Histogram(VLLM_PREEMPTION_BUCKETS, created)
        self.params_n = Histogram(VLLM_N_BUCKETS, created)
        self.iteration_tokens = Histogram(VLLM_ITERATION_TOKEN_BUCKETS, created)
        # The old vllm:time_per_output_token_seconds: every inter-token latency, observed
        # only when that name is exposed.
        self.tpot: Histogram | None = None
        if "vllm:time_per_output_token_seconds" in self.old_names:
            self.tpot = Histogram(VLLM_TOKEN_LATENCY_BUCKETS, created)
        # Token counts per request: 1-2-5 buckets up to max_model_len, once it is known.
        self.tokens: _TokenHistograms | None = None

        self.registry = CollectorRegistry(auto_describe=False)
        # In vLLM's order: prometheus_client's own collectors, then the engine's.
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        ProcessCollector(registry=self.registry)
        self.registry.register(self)

    def set_max_model_len(self, max_model_len: int) -> None:
        buckets = _one_two_five(max_model_len)
        self.tokens = _TokenHistograms(*(Histogram(buckets, self.created) for _ in range(5)))

    # -- recording -------------------------------------------------------------

    def record_step(self, result: StepResult) -> None:
        self.prompt_tokens += result.new_prompt_tokens
        self.generation_tokens += result.generation_tokens
        # vLLM: the prompt tokens computed in the step (first prefills) plus those generated
        self.iteration_tokens.observe(result.new_prompt_tokens + result.generation_tokens)
        for v in result.ttft:
            self.ttft.observe(v)
        itl, tpot = self.itl, self.tpot
        for v in result.itl:
            itl.observe(v)
        value, count = result.itl_bulk
        if count:
            itl.observe(value, count)
        if tpot is not None:
            for v in result.itl:
                tpot.observe(v)
            if count:
                tpot.observe(value, count)
        for seq in result.finished:
            self.record_finished(seq)

    def record_finished(self, seq: Seq) -> None:
        reason = seq.finish_reason or "stop"
        self.finished[reason] = self.finished.get(reason, 0) + 1
        if reason == "abort":
            return
        arrival, scheduled = seq.arrival_time, seq.scheduled_time
        first, last, finish = seq.first_token_time, seq.last_token_time, seq.finish_time
        if finish is None or scheduled is None or first is None or last is None:
            return  # not a sequence that ran to its end
        # vLLM's intervals: queued until first scheduled, prefill until the first token,
        # decode from it to the last token, inference = prefill + decode; preemptions
        # fall inside them.
        self.e2e.observe(finish - arrival)
        self.queue_time.observe(scheduled - arrival)
        self.prefill_time.observe(first - scheduled)
        decode = last - first
        self.decode_time.observe(decode)
        self.inference_time.observe(last - scheduled)
        generated = seq.output_tokens
        self.request_tpot.observe(decode / (generated - 1) if generated > 1 else 0.0)
        self.request_preemptions.observe(seq.preemptions)
        self.params_n.observe(1)  # the simulator serves n=1 only
        tokens = self.tokens
        if tokens is not None:
            tokens.prompt.observe(seq.prompt_tokens)
            tokens.generation.observe(generated)
            # the most tokens of the request's n sequences (n=1: its own)
            tokens.max_generation.observe(generated)
            tokens.max_tokens.observe(seq.max_tokens)
            # without a prefix cache every prompt token is computed
            tokens.prefill_computed.observe(seq.prompt_tokens)

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
        names = _ENGINE_LABELS
        values = ("0", self.model_name)
        created = self.created
        running, waiting, usage, preemptions, _ = self._engine_state()
        prompt, generation = self.prompt_tokens, self.generation_tokens

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=names)
            g.add_metric(values, value)
            return g

        def gauges(name: str, doc: str, label: str, items: dict[str, float]) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=[*names, label])
            for label_value, value in items.items():
                g.add_metric([*values, label_value], value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=names)
            c.add_metric(values, value, created=created)
            return c

        def counters(
            name: str,
            doc: str,
            label: str,
            items: dict[str, float],
            base: tuple[tuple[str, ...], tuple[str, ...]] = (names, values),
        ) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=[*base[0], label])
            for label_value, value in items.items():
                c.add_metric([*base[1], label_value], value, created=created)
            return c

        def histogram(name: str, doc: str, hist: Histogram) -> HistogramMetricFamily:
            h = HistogramMetricFamily(name, doc, labels=names)
            hist.add_to(h, values, names)
            return h

        mfu = "(for Model Flops Utilization calculations)."
        # vLLM estimates these only with --enable-mfu-metrics (off by default): 0 there too.
        yield counter(
            "vllm:estimated_flops_per_gpu",
            f"Estimated number of floating point operations per GPU {mfu}",
            0,
        )
        yield counter(
            "vllm:estimated_read_bytes_per_gpu",
            f"Estimated number of bytes read from memory per GPU {mfu}",
            0,
        )
        yield counter(
            "vllm:estimated_write_bytes_per_gpu",
            f"Estimated number of bytes written to memory per GPU {mfu}",
            0,
        )
        yield gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches.", running
        )
        yield gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting
        )
        # Nothing defers a request in the simulator (no LoRA budget, no KV transfer): every
        # waiting request waits for capacity (batch slots, KV blocks, the token budget).
        yield gauges(
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for "
            "scheduling capacity; 'deferred' = deferred by transient constraints (LoRA budget, "
            "KV transfer, blocked status). Sum of all reasons equals vllm:num_requests_waiting.",
            "reason",
            {"capacity": waiting, "deferred": 0},
        )
        # No sleep mode in the simulator: always awake.
        yield gauges(
            "vllm:engine_sleep_state",
            "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is "
            "awake; weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep "
            "level 2.",
            "sleep_state",
            {"awake": 1, "weights_offloaded": 0, "discard_all": 0},
        )
        yield gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", usage)
        # No prefix cache: every new request's prompt is queried, and misses.
        yield counter(
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            prompt,
        )
        yield counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", 0
        )
        # No KV connector and no multimodal input: these stay 0.
        yield counter(
            "vllm:external_prefix_cache_queries",
            "External prefix cache queries from KV connector cross-instance cache sharing, in "
            "terms of number of queried tokens.",
            0,
        )
        yield counter(
            "vllm:external_prefix_cache_hits",
            "External prefix cache hits from KV connector cross-instance cache sharing, in "
            "terms of number of cached tokens.",
            0,
        )
        yield counter(
            "vllm:mm_cache_queries",
            "Multi-modal cache queries, in terms of number of queried items.",
            0,
        )
        yield counter(
            "vllm:mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items.", 0
        )
        yield counter(
            "vllm:num_preemptions", "Cumulative number of preemption from the engine.", preemptions
        )
        yield counter("vllm:prompt_tokens", "Number of prefill tokens processed.", prompt)
        # Every prompt token is computed here: none comes from a cache or a KV transfer.
        yield counters(
            "vllm:prompt_tokens_by_source",
            "Number of prompt tokens by source.",
            "source",
            {"local_compute": prompt, "local_cache_hit": 0, "external_kv_transfer": 0},
        )
        yield counter(
            "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).", 0
        )
        yield counters(
            "vllm:prompt_tokens_cached_by_source",
            "Prefix-cache hit tokens by the cache tier that supplied them: device (local HBM), "
            "host (offloaded to DRAM), disk, p2p (transferred from another vLLM instance) or "
            "external_unspecified. Counted at admission; sums to vllm:prefix_cache_hits + "
            "vllm:external_prefix_cache_hits.",
            "source",
            dict.fromkeys(("device", "host", "p2p", "disk", "external_unspecified"), 0),
        )
        yield counter(
            "vllm:generation_tokens", "Number of generation tokens processed.", generation
        )
        yield counters(
            "vllm:request_success",
            "Count of successfully processed requests.",
            "finished_reason",
            dict(self.finished),
        )
        # Labelled by model_name only in vLLM; the simulator has no queue limit
        # (--max-num-queued-reqs/-tokens), so nothing is rejected.
        yield counters(
            "vllm:admission_rejections",
            "Number of admission attempts rejected by a queue limit, by reason.",
            "reason",
            {"max_num_queued_reqs": 0, "max_num_queued_tokens": 0},
            (("model_name",), (self.model_name,)),
        )
        tokens = self.tokens
        if tokens is not None:
            yield histogram(
                "vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokens.prompt
            )
            yield histogram(
                "vllm:request_generation_tokens",
                "Number of generation tokens processed.",
                tokens.generation,
            )
        yield histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            self.iteration_tokens,
        )
        if tokens is not None:
            yield histogram(
                "vllm:request_max_num_generation_tokens",
                "Histogram of maximum number of requested generation tokens.",
                tokens.max_generation,
            )
        yield histogram(
            "vllm:request_params_n", "Histogram of the n request parameter.", self.params_n
        )
        if tokens is not None:
            yield histogram(
                "vllm:request_params_max_tokens",
                "Histogram of the max_tokens request parameter.",
                tokens.max_tokens,
            )
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
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            self.request_tpot,
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
        yield histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            self.inference_time,
        )
        yield histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            self.prefill_time,
        )
        yield histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            self.decode_time,
        )
        yield histogram(
            "vllm:request_num_preemptions",
            "Histogram of the number of times a request was preempted.",
            self.request_preemptions,
        )
        if tokens is not None:
            yield histogram(
                "vllm:request_prefill_kv_computed_tokens",
                "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
                tokens.prefill_computed,
            )
        if self.cache_config is not None:
            info = GaugeMetricFamily(
                "vllm:cache_config_info",
                "Information of the LLMEngine CacheConfig",
                labels=list(self.cache_config),
            )
            info.add_metric(list(self.cache_config.values()), 1)
            yield info
        if self.old_names:
            yield from self._collect_old_vllm(usage, prompt, gauge, counter, histogram)

    def _collect_old_vllm(
        self,
        usage: float,
        prompt: int,
        gauge: Callable[[str, str, float], GaugeMetricFamily],
        counter: Callable[[str, str, float], CounterMetricFamily],
        histogram: Callable[[str, str, Histogram], HistogramMetricFamily],
    ) -> Iterator[Metric]:
        """The names older releases exposed (:data:`OLD_VLLM_METRICS`), those asked for."""
        old = self.old_names

        def v0_gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=["model_name"])
            g.add_metric([self.model_name], value)
            return g

        if "vllm:gpu_cache_usage_perc" in old:
            yield gauge(
                "vllm:gpu_cache_usage_perc",
                "GPU KV-cache usage. 1 means 100 percent usage."
                "DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
                usage,
            )
        if "vllm:gpu_prefix_cache_queries" in old:
            yield counter(
                "vllm:gpu_prefix_cache_queries",
                "GPU prefix cache queries, in terms of number of queried tokens."
                "DEPRECATED: Use vllm:prefix_cache_queries instead.",
                prompt,
            )
        if "vllm:gpu_prefix_cache_hits" in old:
            yield counter(
                "vllm:gpu_prefix_cache_hits",
                "GPU prefix cache hits, in terms of number of cached tokens."
                "DEPRECATED: Use vllm:prefix_cache_hits instead.",
                0,
            )
        if self.tpot is not None:
            yield histogram(
                "vllm:time_per_output_token_seconds",
                "Histogram of time per output token in seconds."
                "DEPRECATED: Use vllm:inter_token_latency_seconds instead.",
                self.tpot,
            )
        # V0's: recompute preemption never swaps; no CPU KV cache; no prefix cache.
        if "vllm:num_requests_swapped" in old:
            yield v0_gauge("vllm:num_requests_swapped", "Number of requests swapped to CPU.", 0)
        if "vllm:cpu_cache_usage_perc" in old:
            yield v0_gauge(
                "vllm:cpu_cache_usage_perc", "CPU KV-cache usage. 1 means 100 percent usage.", 0
            )
        if "vllm:gpu_prefix_cache_hit_rate" in old:
            yield v0_gauge("vllm:gpu_prefix_cache_hit_rate", "GPU prefix cache block hit rate.", 0)
        if "vllm:cpu_prefix_cache_hit_rate" in old:
            yield v0_gauge("vllm:cpu_prefix_cache_hit_rate", "CPU prefix cache block hit rate.", 0)
        # Over the engine's last 10 s stats interval, as the engine logs them.
        if "vllm:avg_prompt_throughput_toks_per_s" in old:
            yield v0_gauge(
                "vllm:avg_prompt_throughput_toks_per_s",
                "Average prefill throughput in tokens/s.",
                self.prompt_throughput,
            )
        if "vllm:avg_generation_throughput_toks_per_s" in old:
            yield v0_gauge(
                "vllm:avg_generation_throughput_toks_per_s",
                "Average generation throughput in tokens/s.",
                self.gen_throughput,
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
        http = self.http
        requests = CounterMetricFamily(
            "http_requests", "Total number of requests by method, status and handler.",
            labels=["handler", "method", "status"],
        )  # fmt: skip
        for key, count in http.requests.items():
            requests.add_metric(key, count, created=http.requests_created[key])
        yield requests
        size_doc = (
            "Content length of {} by handler. Only value of header is respected. Otherwise "
            "ignored. No percentile calculated. "
        )
        for name, what, sizes in (
            ("http_request_size_bytes", "incoming requests", http.request_sizes),
            ("http_response_size_bytes", "outgoing responses", http.response_sizes),
        ):
            summary = SummaryMetricFamily(name, size_doc.format(what), labels=["handler"])
            for handler, stats in sizes.items():
                summary.add_metric([handler], stats.count, stats.total)
                _created(summary, ("handler",), (handler,), stats.created)
            yield summary
        highr = HistogramMetricFamily(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. Made for more accurate "
            "percentile calculations. ",
        )
        http.highr.add_to(highr, (), ())
        yield highr
        durations = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. Made to be only used if aggregation by "
            "handler is important. ",
            labels=["handler", "method"],
        )
        for handler_method, hist in http.durations.items():
            hist.add_to(durations, handler_method, ("handler", "method"))
        yield durations

        # The simulator's own.
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
