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

DEFAULT_SERVER_COMMAND = ["gameday", "sim", "serve", "--host", "{host}", "--port", "{port}"]


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
    """A model directory for the server: an existing one, or one generated for the run."""

    path: str | None = None
    """An existing model directory (relative to the scenario file)."""
    size: ByteSize = 16 * 2**20
    """Size of a generated model's weights (when no path is given)."""
    files: int = Field(default=2, ge=1, le=64)


class ServerSpec(StrictModel):
    command: list[str] = Field(default_factory=lambda: list(DEFAULT_SERVER_COMMAND), min_length=1)
    """The serving process. Placeholders: {port}, {host}, {model_dir}. A leading
    ``gameday`` runs this installation's own command."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Serving port; default: a free loopback port."""
    env: dict[str, str] = Field(default_factory=dict)
    health_path: str = "/health"
    metrics_path: str = "/metrics"
    ready_timeout: Duration = 60.0
    restart: Literal["always", "on-failure", "never"] = "always"
    backoff: BackoffSpec = Field(default_factory=BackoffSpec)
    memory_limit: ByteSize | None = None
    """Memory cgroup limit of the server (default: none; the cgroup still exists so
    faults can set one)."""
    model: ModelSpec | None = None
    """Give the server a model directory ({model_dir} in the command)."""


class PrometheusSpec(StrictModel):
    scrape_interval: Duration = 1.0
    evaluation_interval: Duration = 1.0
    rules: list[str] = Field(default_factory=lambda: ["bundled"])
    """Rule files (paths relative to the scenario file), or "bundled" for the harness's rules."""
    time_compression: float = Field(default=30.0, ge=1.0)
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
