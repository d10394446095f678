"""The simulator's settings, validated before anything is bound or allocated."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "VLLM_VERSION",
    "Flavor",
    "SimOptions",
    "Upstream",
    "parse_upstream",
    "parse_vllm_version",
]

Flavor = Literal["vllm", "sglang"]

VLLM_VERSION = "0.32.0"
"""The vLLM release whose HTTP surface (/metrics, /version, response shapes) the simulator
follows, tested against fixtures recorded from it (tests/data/vllm/)."""


def parse_vllm_version(text: str) -> tuple[int, int, int]:
    """``"0.6"`` -> (0, 6, 0); ``"0.32.0"`` -> (0, 32, 0); anything else: ValueError."""
    parts = text.strip().split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"--vllm-version must look like 0.32 or 0.32.0, not {text!r}")
    nums = [int(p) for p in parts] + [0] * (3 - len(parts))
    return nums[0], nums[1], nums[2]


@dataclass(frozen=True)
class Upstream:
    """A dependency the server resolves by name: the URL as given, and where it points."""

    url: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_upstream(url: str) -> Upstream:
    """Host and port of ``http://model-store:8080/x`` or ``model-store:8080``; else ValueError."""
    from urllib.parse import urlsplit

    text = url.strip()
    parts = urlsplit(text if "//" in text else f"//{text}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid upstream URL {url!r}: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"invalid upstream URL {url!r}: no host name")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return Upstream(url=url, host=parts.hostname, port=port)


def default_block_size(kv_backend: str) -> int:
    """vLLM's block size when none is given: 16 on a CUDA device, 128 on its CPU platform
    (vllm/platforms/cpu.py), which is what the simulator is where its cache is in host
    memory."""
    return 16 if kv_backend == "cuda" else 128


@dataclass(frozen=True)
class SimOptions:
    """Everything ``gameday sim serve`` can be told; defaults model a small, busy vLLM."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_dir: Path | None = None
    served_model_name: str | None = None
    max_num_seqs: int = 64
    max_model_len: int | None = None
    max_num_batched_tokens: int = 8192
    kv_cache_tokens: int | None = None
    num_gpu_blocks_override: int | None = None
    block_size: int | None = None
    """None: vLLM's default for the device (see :func:`default_block_size`)."""
    prefill_ms_per_token: float = 0.1
    decode_ms_per_token: float = 15.0
    flavor: Flavor = "vllm"
    vllm_version: str = VLLM_VERSION
    """The vLLM release to impersonate: /version, system_fingerprint, and the metric names
    older releases exposed that 0.32 dropped (added for a release older than the one that
    dropped them; see :data:`gameday.sim.metrics.OLD_VLLM_METRICS`)."""
    deprecated_metrics: bool = False
    """Expose every one of those older names, whatever ``vllm_version`` says (the flag
    predates ``--vllm-version``; it stays for the commands and scenarios that use it)."""
    upstream: Upstream | None = None
    upstream_check_interval: float = 5.0
    gpu_memory_utilization: float | None = None
    trust_remote_code: bool = False
    lora_modules: tuple[tuple[str, str], ...] = ()
    """``--lora-modules name=path``, loaded (checked) at start-up as vLLM loads static
    adapters; only with ``--enable-lora``."""
    api_keys: tuple[str, ...] = ()
    """``--api-key`` (or ``VLLM_API_KEY``): the API's paths need one of them as a bearer
    token, as vLLM's do."""
    cpu_kv_cache_bytes: int = 64 * 2**20
    load_bandwidth: int = 200 * 2**20

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))

    def _problems(self) -> Any:
        if not 0 <= self.port <= 65535:
            yield f"--port must be between 0 and 65535, not {self.port}"
        for name in ("max_num_seqs", "max_num_batched_tokens"):
            if getattr(self, name) < 1:
                yield f"--{name.replace('_', '-')} must be at least 1"
        for name in ("max_model_len", "kv_cache_tokens", "block_size", "num_gpu_blocks_override"):
            value = getattr(self, name)
            if value is not None and value < 1:
                yield f"--{name.replace('_', '-')} must be at least 1"
        for name in ("prefill_ms_per_token", "decode_ms_per_token"):
            if getattr(self, name) < 0:
                yield f"--{name.replace('_', '-')} must not be negative"
        if self.flavor not in ("vllm", "sglang"):
            yield f"--flavor must be vllm or sglang, not {self.flavor!r}"
        try:
            parse_vllm_version(self.vllm_version)
        except ValueError as exc:
            yield str(exc)
        if self.upstream_check_interval <= 0:
            yield "--upstream-check-interval must be positive"
        util = self.gpu_memory_utilization
        if util is not None and not 0 < util <= 1:
            yield f"--gpu-memory-utilization must be in (0, 1], not {util}"
        if self.cpu_kv_cache_bytes < 1:
            yield "--cpu-kv-cache-bytes must be positive"
        if self.load_bandwidth < 1:
            yield "--load-bandwidth must be positive"

    @property
    def vllm_release(self) -> tuple[int, int, int]:
        """``vllm_version`` as numbers."""
        return parse_vllm_version(self.vllm_version)

    @property
    def vllm_version_text(self) -> str:
        """``vllm_version`` in full, as vLLM's /version says it (``0.6`` -> ``0.6.0``)."""
        return ".".join(map(str, self.vllm_release))

    def non_default(self) -> dict[str, Any]:
        """The settings that differ from the defaults, as vLLM logs its ``non-default args``."""
        defaults = SimOptions()
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(defaults, f.name):
                if isinstance(value, Upstream):
                    value = value.url
                out[f.name] = str(value) if isinstance(value, Path) else value
        if "api_keys" in out:
            out["api_keys"] = "***"  # as vLLM's redact_sensitive_args logs its api_key
        return out
