"""The serving process's state and its startup sequence, in vLLM's order.

Startup (the HTTP server already answers ``/health`` with 503 meanwhile):

1. resolve the upstream dependency, if any (``socket.getaddrinfo``);
2. read the model directory's config (or take the built-in model) and settle
   ``max_model_len``, as vLLM's API server does before it starts the engine;
3. in GPU mode, check free GPU memory through NVML as vLLM does;
4. find and load the weights (safetensors headers, real reads paced by ``--load-bandwidth``);
5. allocate the KV cache (host memory, or GPU memory through CUDA) and size it in blocks;
6. start the engine loop; ``/health`` turns 200.

A failure logs vLLM's error lines and ends the process with exit code 1; one from step 3
on happens in vLLM's engine core, so vLLM's "Engine core initialization failed" line
follows its root cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import NamedTuple

from gameday.sim.cuda import CudaDevice, CudaError, CudaUnavailable
from gameday.sim.engine import V1_DEFAULT_RELEASE, Engine
from gameday.sim.logs import exception_line, logger, server_logger
from gameday.sim.memory import GiB, GpuMemory, KVCacheMemory, check_free_memory, nvml_memory
from gameday.sim.metrics import Metrics, cache_config_labels
from gameday.sim.model import (
    LoadedWeights,
    ModelSpec,
    builtin_model,
    kv_bytes_per_token,
    load_weights,
    read_model_dir,
    settle_max_model_len,
)
from gameday.sim.options import SimOptions, default_block_size, parse_vllm_version
from gameday.sim.scheduler import Scheduler
from gameday.sim.upstream import UpstreamMonitor, resolve

__all__ = ["Phase", "SimRuntime", "Unavailable"]


class Phase(Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


class Unavailable(NamedTuple):
    """Why inference is refused right now."""

    status: int
    type: str
    message: str


# What vLLM's API server prints last when its engine core failed to start.
_ENGINE_INIT_FAILED = (
    "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
)


_CONSERVING_MEMORY = "https://docs.vllm.ai/en/latest/configuration/conserving_memory/"
# vLLM 0.32's texts (vllm/v1/core/kv_cache_utils.py)
_NO_KV_MEMORY = (
    "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
    "initializing the engine (this flag also controls CPU memory reservation on the CPU "
    f"backend, despite its name). See {_CONSERVING_MEMORY} for more details."
)


def _gib(nbytes: int) -> str:
    """A size as vLLM's format_gib writes it: GiB rounded to 2 places (0.02, 0.0, 1.5)."""
    return f"{round(nbytes / GiB, 2)}"


class SimRuntime:
    def __init__(self, opts: SimOptions) -> None:
        self.opts = opts
        self.metrics = Metrics(
            flavor=opts.flavor,
            deprecated=opts.deprecated_metrics,
            vllm_version=opts.vllm_version,
            model_name=opts.served_model_name or "",
        )
        self.phase = Phase.LOADING
        self.model: ModelSpec | None = None
        self.model_name = opts.served_model_name or ""
        self.max_model_len = 0
        self.engine: Engine | None = None
        self.kv: KVCacheMemory | None = None
        self.weights: LoadedWeights | None = None
        self.upstream_error: OSError | None = None
        self.exit_code = 0
        self.address = ("", 0)
        # Set by the server: ends the process after a fatal error.
        self.on_fatal: Callable[[], None] = lambda: None
        self._cancel = threading.Event()
        self._monitor: UpstreamMonitor | None = None

    # -- health ------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return (
            self.phase is Phase.READY
            and self.upstream_error is None
            and self.engine is not None
            and self.engine.alive
        )

    def unavailable(self) -> Unavailable | None:
        """None when inference can be served, else why not."""
        if self.phase is Phase.LOADING:
            return Unavailable(
                503,
                "ServiceUnavailableError",
                "The model is still loading; the server is not ready.",
            )
        if self.phase is not Phase.READY or self.engine is None:
            return Unavailable(503, "ServiceUnavailableError", "The server is shutting down.")
        if not self.engine.alive:
            return Unavailable(
                500,
                "EngineDeadError",
                "EngineCore encountered an issue. See stack trace (above) for the root cause.",
            )
        if self.upstream_error is not None and self.opts.upstream is not None:
            return Unavailable(
                503,
                "ServiceUnavailableError",
                f"Upstream dependency {self.opts.upstream} ({self.opts.upstream.url}) is "
                f"unavailable: {exception_line(self.upstream_error)}",
            )
        return None

    # -- startup -----------------------------------------------------------------

    async def initialise(self, address: tuple[str, int]) -> None:
        self.address = address
        try:
            await self._initialise()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # what fails before the engine starts is handled in _initialise
            self.fail(exc, engine_start=True)

    def fail(self, exc: BaseException, *, engine_start: bool) -> None:
        """Log a fatal error with vLLM's lines and end the process with exit code 1."""
        if engine_start:
            logger.error("EngineCore failed to start.")
        print(exception_line(exc), file=sys.stderr, flush=True)
        if engine_start:
            print(_ENGINE_INIT_FAILED, file=sys.stderr, flush=True)
        self.phase = Phase.FAILED
        self.metrics.ready = False
        self.exit_code = 1
        self.on_fatal()

    async def _initialise(self) -> None:
        opts = self.opts
        started = time.monotonic()
        if opts.upstream is not None:
            self.metrics.upstream = str(opts.upstream)
            logger.info("Resolving upstream dependency %s (%s)", opts.upstream, opts.upstream.url)
            try:
                await asyncio.to_thread(resolve, opts.upstream)
            except OSError as exc:
                logger.error("Cannot resolve upstream dependency %s", opts.upstream)
                self.fail(exc, engine_start=False)
                return
        try:
            # the API server's part: vLLM reads the config before it starts the engine core
            spec = (
                builtin_model()
                if opts.model_dir is None
                else read_model_dir(opts.model_dir, trust_remote_code=opts.trust_remote_code)
            )
            self.max_model_len = settle_max_model_len(spec, opts.max_model_len)
        except Exception as exc:
            self.fail(exc, engine_start=False)
            return
        self.model = spec
        self.model_name = opts.served_model_name or spec.name
        self.metrics.model_name = self.model_name
        self.metrics.set_max_model_len(self.max_model_len)
        logger.info(
            "Resolved architecture: %s; max_model_len=%d", spec.architecture, self.max_model_len
        )

        gpu: GpuMemory | None = None
        requested = 0
        if opts.gpu_memory_utilization is not None:
            gpu = await asyncio.to_thread(nvml_memory)
            if gpu is None:
                logger.warning(
                    "--gpu-memory-utilization is set but NVML finds no NVIDIA GPU; the KV "
                    "cache is simulated in host memory"
                )
            else:
                requested = check_free_memory(gpu, opts.gpu_memory_utilization)

        logger.info("Starting to load model %s...", spec.name)
        load_started = time.monotonic()
        weights = await asyncio.to_thread(
            load_weights, spec, bandwidth=opts.load_bandwidth, cancel=self._cancel
        )
        if weights is None:
            return  # shutting down
        self.weights = weights
        logger.info("Loading weights took %.2f seconds", weights.seconds)
        logger.info(
            "Model loading took %.4f GiB and %.6f seconds",
            weights.nbytes / GiB,
            time.monotonic() - load_started,
        )

        kv = await asyncio.to_thread(self._allocate_kv, spec, weights, gpu, requested)
        self.kv = kv
        self._start_engine(spec, kv)
        for name, path in opts.lora_modules:
            # static adapters load before the server listens: a missing one ends it
            if not (Path(path) / "adapter_config.json").is_file():
                self.fail(
                    ValueError(f"Loading lora {name} failed: No adapter found for {path}"),
                    engine_start=False,
                )
                return
        logger.info(
            "init engine (profile, create kv cache, warmup model) took %.2f seconds",
            time.monotonic() - started,
        )
        host, port = self.address
        logger.info("Starting vLLM API server 0 on http://%s:%d", host, port)
        self.phase = Phase.READY
        self.metrics.ready = True
        server_logger.info("Application startup complete.")
        if opts.upstream is not None:
            loop = asyncio.get_running_loop()
            self._monitor = UpstreamMonitor(
                opts.upstream,
                opts.upstream_check_interval,
                lambda outcome: loop.call_soon_threadsafe(self._upstream_checked, outcome),
            )
            self._monitor.start()

    def _allocate_kv(
        self, spec: ModelSpec, weights: LoadedWeights, gpu: GpuMemory | None, requested: int
    ) -> KVCacheMemory:
        """Allocate the KV cache's real memory (runs in a thread: it touches every page)."""
        if gpu is not None:
            try:
                device = CudaDevice(0)
            except (CudaUnavailable, CudaError) as exc:
                logger.warning(
                    "NVML sees %s but the CUDA driver is unusable (%s); the KV cache is "
                    "simulated in host memory",
                    gpu.name,
                    exc,
                )
            else:
                return self._allocate_on_gpu(device, weights, gpu, requested)
        nbytes = self.opts.cpu_kv_cache_bytes
        logger.info("Available KV cache memory: %.2f GiB (host memory, simulated)", nbytes / GiB)
        return KVCacheMemory.on_host(nbytes)

    def _allocate_on_gpu(
        self, device: CudaDevice, weights: LoadedWeights, gpu: GpuMemory, requested: int
    ) -> KVCacheMemory:
        kv = KVCacheMemory(backend="cuda", nbytes=0, device=f"cuda:0 ({device.name})", gpu=device)
        try:
            # The weights live on the device, as in vLLM.
            for buf in weights.buffers:
                if buf:
                    block = device.alloc(len(buf))
                    device.copy_from_host(block, buf)
                    kv.allocations.append(block)
            free_now, _ = device.mem_get_info()
            # vLLM: KV memory = requested - what this process already uses (weights, context).
            nbytes = requested - max(0, gpu.free - free_now)
            if nbytes <= 0:
                raise ValueError(_NO_KV_MEMORY)
            logger.info("Available KV cache memory: %.2f GiB", nbytes / GiB)
            kv.allocations.append(device.alloc(nbytes))
            kv.nbytes = nbytes
        except BaseException:
            kv.close()
            raise
        return kv

    def _start_engine(self, spec: ModelSpec, kv: KVCacheMemory) -> None:
        opts = self.opts
        per_token = kv_bytes_per_token(spec.config)
        block_size = opts.block_size or default_block_size(kv.backend)
        # vLLM's block pool holds one block back for good (its null block): requests
        # have the others, and its admission check plans with them
        if opts.num_gpu_blocks_override is not None:
            num_blocks = opts.num_gpu_blocks_override
        elif opts.kv_cache_tokens is not None:
            num_blocks = opts.kv_cache_tokens // block_size + 1  # the tokens requests get
        else:
            num_blocks = kv.nbytes // per_token // block_size
        if num_blocks < 2:
            raise ValueError(_NO_KV_MEMORY)
        capacity = (num_blocks - 1) * block_size
        if capacity < self.max_model_len:
            estimated = (
                f"Based on the available memory, the estimated maximum model length is {capacity}. "
            )
            raise ValueError(
                "To serve at least one request with the model's max seq len "
                f"({self.max_model_len}), ({_gib(self.max_model_len * per_token)} GiB KV "
                "cache is needed, which is larger than the available KV cache memory "
                f"({_gib(capacity * per_token)} GiB). {estimated}Try increasing "
                "`gpu_memory_utilization` (which also controls CPU memory on the CPU "
                "backend) or decreasing `max_model_len` when initializing the engine. "
                f"See {_CONSERVING_MEMORY} for more details."
            )
        where = "" if kv.backend == "cuda" else " (simulated in host memory)"
        # vLLM's figure counts the null block too (``--kv-cache-tokens`` is what requests get)
        size = opts.kv_cache_tokens or num_blocks * block_size
        logger.info("GPU KV cache size: %s tokens%s", f"{size:,}", where)
        logger.info(
            "Maximum concurrency for %s tokens per request: %.2fx",
            f"{self.max_model_len:,}",
            size / self.max_model_len,
        )
        scheduler = Scheduler(
            max_num_seqs=opts.max_num_seqs,
            num_blocks=num_blocks - 1,
            block_size=block_size,
            max_num_batched_tokens=opts.max_num_batched_tokens,
        )
        metrics = self.metrics
        metrics.kv_backend = kv.backend
        metrics.kv_bytes = kv.nbytes
        metrics.device = kv.device
        metrics.cache_config = cache_config_labels(
            block_size=block_size,
            num_blocks=num_blocks,
            max_model_len=self.max_model_len,
            kv_cache_bytes=kv.nbytes,
            gpu_memory_utilization=opts.gpu_memory_utilization,
            num_gpu_blocks_override=opts.num_gpu_blocks_override
            or (num_blocks if opts.kv_cache_tokens else None),
            user_specified_block_size=opts.block_size is not None,
            cpu_platform=kv.backend != "cuda",
        )
        metrics.scheduler = scheduler
        self.engine = Engine(
            scheduler,
            metrics,
            decode_ms_per_token=opts.decode_ms_per_token,
            prefill_ms_per_token=opts.prefill_ms_per_token,
            warn_on_preemption=parse_vllm_version(opts.vllm_version) < V1_DEFAULT_RELEASE,
        )
        self.engine.start()

    # -- upstream ----------------------------------------------------------------

    def _upstream_checked(self, error: OSError | None) -> None:
        upstream = self.opts.upstream
        if error is not None:
            logger.error(
                "Upstream dependency %s is unavailable, the engine is unhealthy: %s",
                upstream,
                exception_line(error),
            )
            self.upstream_error = error
            self.metrics.upstream_up = False
            self.metrics.ready = False
        elif self.upstream_error is not None:
            logger.info("Upstream dependency %s resolves again; the engine is healthy", upstream)
            self.upstream_error = None
            self.metrics.upstream_up = True
            self.metrics.ready = self.phase is Phase.READY

    # -- shutdown ----------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Stop serving: refuse new requests and end the ones in flight."""
        if self.phase is not Phase.FAILED:
            self.phase = Phase.STOPPING
        self.metrics.ready = False
        self._cancel.set()
        if self.engine is not None:
            self.engine.abort_all()

    async def close(self, init: asyncio.Task[None]) -> None:
        self.begin_shutdown()
        if self._monitor is not None:
            self._monitor.stop()
        init.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await init
        if self.engine is not None:
            await self.engine.stop()
        if self.kv is not None:
            self.kv.close()
            self.kv = None
        self.weights = None
