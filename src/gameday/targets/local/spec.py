"""The scenario's ``target: {local: ...}`` block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gameday.scenario.model import StrictModel, TargetParams
from gameday.scenario.units import ByteSize, Duration
from gameday.targets.local.network import NetworkSpec

__all__ = [
    "AlertmanagerSpec",
    "BackoffSpec",
    "LocalTargetSpec",
    "ModelSpec",
    "PrometheusSpec",
    "ServerSpec",
]


class BackoffSpec(StrictModel):
    """Restart delays, doubling from ``initial`` up to ``max`` like the kubelet's
    CrashLoopBackOff (10s..5m there; game-day sized here)."""

    initial: Duration = 1.0
    max: Duration = 16.0
    reset_after: Duration = 60.0
    """A run this long without exiting resets the backoff."""

    @model_validator(mode="after")
    def _ordered(self) -> BackoffSpec:
        if self.max < self.initial:
            raise ValueError("backoff.max must not be below backoff.initial")
        return self


class ModelSpec(StrictModel):
    """A model directory for the server, in the Hugging Face layout both the simulator and
    vLLM load: an existing one, or a tiny random Llama generated for the run (``gameday
    model make-tiny``: 1.7 MB, max_model_len 512)."""

    path: str | None = None
    """An existing model directory (relative to the scenario file)."""
    shards: int = Field(default=1, ge=1, le=8)
    """The generated model's weight files: 1 is ``model.safetensors``; more are shards
    with ``model.safetensors.index.json`` (a missing-shard fault needs two)."""
    max_model_len: int = Field(default=512, ge=16, le=1_048_576)
    """The generated model's context length (its max_position_embeddings): long prompts
    (a load spike of them) need more than the default 512."""

    @model_validator(mode="after")
    def _generated_only(self) -> ModelSpec:
        given = {"shards", "max_model_len"} & self.model_fields_set
        if self.path is not None and given:
            raise ValueError(
                f"{', '.join(sorted(given))} applies to a generated model, not to one given by path"
            )
        return self


class ServerSpec(StrictModel):
    engine: str | None = None
    """What serves: ``sim`` (the harness's simulator of vLLM), ``vllm`` (the real one, see
    ``gameday engines``) or ``command`` (``command`` below). Default: ``command`` when a
    command is given, else ``sim``. ``gameday run --engine vllm`` swaps sim for vllm."""
    command: list[str] | None = Field(default=None, min_length=1)
    """For ``engine: command``: the serving process. Placeholders: {port}, {host},
    {model_dir}. A leading ``gameday`` runs this installation's own command."""
    args: list[str] = Field(default_factory=list)
    """Flags appended to the engine's command line. The simulator takes vLLM's names for
    what it models (--max-num-seqs, --max-model-len, --block-size, ...), so one list serves
    both engines."""
    engine_args: dict[str, list[str]] = Field(default_factory=dict)
    """Flags for one engine only, by engine name: ``{sim: [--kv-cache-tokens, "2048"]}``."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Serving port; default: a free loopback port."""
    env: dict[str, str] = Field(default_factory=dict)
    health_path: str = "/health"
    metrics_path: str = "/metrics"
    ready_timeout: Duration | None = None
    """Start-up budget, spawn to a 200 from the health path. Default: the engine's (60s for
    the simulator, 5m for vLLM)."""
    restart: Literal["always", "on-failure", "never"] = "always"
    backoff: BackoffSpec = Field(default_factory=BackoffSpec)
    memory_limit: ByteSize | None = None
    """Memory cgroup limit of the server (default: none; the cgroup still exists so
    faults can set one)."""
    shm_size: ByteSize = 1 * 2**30
    """Size of the server's own /dev/shm (a tmpfs in a mount namespace of its own, as a
    container has; needs root), charged to its memory cgroup. It vanishes with the
    server's last process, so no segment outlives a run."""
    model: ModelSpec | None = None
    """Give the server a model directory ({model_dir} in the command). An engine that needs
    one (vllm) gets a generated tiny model when this is left out."""

    @property
    def engine_name(self) -> str:
        if self.engine is not None:
            return self.engine
        return "command" if self.command is not None else "sim"

    @model_validator(mode="after")
    def _engine_and_command(self) -> ServerSpec:
        from gameday.targets.local.engines import engines

        name = self.engine_name
        if name not in engines:
            raise ValueError(f"unknown engine {name!r} (known: {', '.join(engines.names())})")
        if name == "command" and self.command is None:
            raise ValueError("engine: command needs a command")
        if name != "command" and self.command is not None:
            raise ValueError(
                f"command is for engine: command; engine {name} builds its own command line "
                "(give its extra flags as args)"
            )
        unknown = sorted(set(self.engine_args) - set(engines.names()))
        if unknown:
            raise ValueError(
                f"engine_args names unknown engine(s) {', '.join(unknown)} "
                f"(known: {', '.join(engines.names())})"
            )
        return self


class PrometheusSpec(StrictModel):
    scrape_interval: Duration = 1.0
    evaluation_interval: Duration = 1.0
    rules: list[str] = Field(default_factory=lambda: ["bundled"])
    """Rule files (paths relative to the scenario file), or "bundled" for the harness's rules."""
    time_compression: float = Field(default=30.0, ge=1.0, allow_inf_nan=False)
    """Divide every rule's ``for:`` and range windows by this, so a rule written as
    "for 5m over [5m]" is exercised in seconds. 1 keeps them as written."""
    compression_floor: Duration = 2.0
    """Never compress a window or ``for:`` below this."""


class AlertmanagerSpec(StrictModel):
    group_wait: Duration = 1.0
    group_interval: Duration = 1.0
    repeat_interval: Duration = 3600.0


class LocalTargetSpec(TargetParams):
    """The system under test as local processes, with a private Prometheus and Alertmanager."""

    server: ServerSpec = Field(default_factory=ServerSpec)
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec)
    alertmanager: AlertmanagerSpec = Field(default_factory=AlertmanagerSpec)
    network: NetworkSpec | None = None
    """Run the server in a network namespace of its own whose resolver the harness
    controls (needs root, iproute2 and dnsmasq); DNS faults need it."""
