"""``gameday sim``: the vLLM-compatible inference simulator's commands.

Heavy imports (httptools, uvloop, prometheus_client) happen inside the commands, so
``gameday --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="The vLLM-compatible inference simulator: a real server that reacts to real faults.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _group() -> None:
    """Keeps ``serve`` a subcommand (``python -m gameday.sim serve``): typer runs an app of
    one command as that command otherwise."""


def _bytes(value: str) -> int:
    from gameday.scenario.units import parse_bytes

    text = value.strip()
    if text.endswith("/s"):
        text = text[:-2]
    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _duration(value: str) -> float:
    from gameday.scenario.units import parse_duration

    try:
        return parse_duration(value.strip())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# Help texts are single-line paragraphs: typer keeps a docstring's line breaks.
_SERVE_HELP = (
    "Serve the OpenAI API like vLLM, on a simulated GPU (continuous batching, paged KV cache)."
    "\n\n"
    "Binds the port first (a busy port fails at once with Errno 98), answers /health with 503 "
    "while the model loads, then serves /v1/chat/completions, /v1/completions (streaming or "
    "not), /v1/models, /version, /health and /metrics (vLLM 0.32's metric families, see "
    "--vllm-version), with vLLM 0.32's response shapes and error texts. SIGTERM or SIGINT: a "
    "graceful shutdown, exit 0. A startup failure logs vLLM's error text and exits 1."
)


@app.command(help=_SERVE_HELP)
def serve(
    port: Annotated[
        int, typer.Option(help="TCP port of the OpenAI-compatible API (vLLM's --port).")
    ],
    host: Annotated[str, typer.Option(help="Address to bind (vLLM's --host).")] = "127.0.0.1",
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="Model directory to load (vLLM's --model pointing at a local checkpoint): a "
            "Hugging Face checkpoint (config.json, safetensors weights, one file or shards with "
            "model.safetensors.index.json), such as 'gameday model make-tiny' writes. It is "
            "read as vLLM reads it: a missing directory, config or shard, a truncated file or "
            "a damaged safetensors header fails startup with vLLM's error; like vLLM, nothing "
            "checks a checksum. The model is served under this path unless "
            "--served-model-name says otherwise. Default: a built-in tiny model that is "
            "ready in well under two seconds.",
        ),
    ] = None,
    served_model_name: Annotated[
        str | None,
        typer.Option(
            help="Model name clients must send and metrics carry as model_name "
            "(vLLM's --served-model-name). Default: the --model-dir path as given, as in "
            "vLLM (gameday-sim-tiny for the built-in model)."
        ),
    ] = None,
    max_num_seqs: Annotated[
        int,
        typer.Option(
            help="Most sequences decoded together in one batch (vLLM's --max-num-seqs); "
            "beyond it requests queue and vllm:num_requests_waiting rises."
        ),
    ] = 64,
    max_model_len: Annotated[
        int | None,
        typer.Option(
            help="Context length (vLLM's --max-model-len): a prompt that fills it gets vLLM's "
            "400 error, and max_tokens beyond what is left is trimmed to fit, as vLLM 0.32 "
            "does; above the model's own it fails startup as vLLM does. "
            "Default: the model's max_position_embeddings (4096 for the built-in model)."
        ),
    ] = None,
    max_num_batched_tokens: Annotated[
        int,
        typer.Option(
            help="Prompt tokens prefilled in one step at most (vLLM's "
            "--max-num-batched-tokens): caps how much a burst of long prompts stalls decoding."
        ),
    ] = 8192,
    kv_cache_tokens: Annotated[
        int | None,
        typer.Option(
            help="Tokens the KV cache holds, overriding what the memory budget gives (like "
            "vLLM's --num-gpu-blocks-override, in tokens). A small cache forces preemption "
            "and queueing; the memory allocated stays the budget."
        ),
    ] = None,
    block_size: Annotated[
        int | None,
        typer.Option(
            help="Tokens per KV-cache block of PagedAttention (vLLM's --block-size). Default: "
            "vLLM's for the device, 16 on a GPU, 128 where the cache is in host memory (its "
            "CPU platform)."
        ),
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            help="Accept a model whose config.json names code of its own (auto_map), as "
            "vLLM's --trust-remote-code does; without it such a model fails start-up."
        ),
    ] = False,
    enable_lora: Annotated[
        bool, typer.Option(help="Serve LoRA adapters (vLLM's --enable-lora).")
    ] = False,
    lora_modules: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=PATH of a LoRA adapter loaded at start-up (vLLM's --lora-modules; "
            "repeatable): a directory without adapter_config.json fails start-up as in vLLM."
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="Require 'Authorization: Bearer KEY' on the API's paths (/v1/...), as "
            "vLLM's --api-key does (repeatable; default: $VLLM_API_KEY). /health and "
            '/metrics stay open; a missing or wrong key gets 401 {"error":"Unauthorized"}.'
        ),
    ] = None,
    num_gpu_blocks_override: Annotated[
        int | None,
        typer.Option(
            help="KV-cache blocks, overriding what the memory budget gives (vLLM's "
            "--num-gpu-blocks-override, which vLLM honours on CPU too): the cache holds "
            "this many times --block-size tokens. Too few for one request at max_model_len "
            "fails start-up as vLLM does."
        ),
    ] = None,
    prefill_ms_per_token: Annotated[
        float,
        typer.Option(
            help="Simulated GPU time to prefill one prompt token. Prefill shares the step with "
            "decoding, so long prompts raise TTFT and everyone's inter-token latency."
        ),
    ] = 0.1,
    decode_ms_per_token: Annotated[
        float,
        typer.Option(
            help="Simulated GPU time of one decode step, i.e. the inter-token latency of an "
            "unloaded server (vllm:inter_token_latency_seconds)."
        ),
    ] = 15.0,
    flavor: Annotated[
        str,
        typer.Option(
            help="Which engine's metric names /metrics exposes: vllm (vllm:*) or sglang "
            "(sglang:num_running_reqs, sglang:token_usage, ...)."
        ),
    ] = "vllm",
    vllm_version: Annotated[
        str,
        typer.Option(
            help="The vLLM release to answer as: /version and system_fingerprint say it, and "
            "/metrics adds to vLLM 0.32's families the names older releases exposed and 0.32 "
            "dropped, for a release older than the one that dropped them (0.10: "
            "vllm:gpu_cache_usage_perc, vllm:gpu_prefix_cache_*, "
            "vllm:time_per_output_token_seconds; 0.6 also the V0 engine's "
            "vllm:num_requests_swapped, vllm:cpu_cache_usage_perc, ...)."
        ),
    ] = "0.32.0",
    deprecated_metrics: Annotated[
        bool,
        typer.Option(
            "--deprecated-metrics",
            help="Also expose every metric name older releases had and vLLM 0.32 dropped "
            "(what --vllm-version 0.6 adds to /metrics), whatever --vllm-version says; as "
            "vLLM's --show-hidden-metrics-for-version shows hidden ones.",
        ),
    ] = False,
    upstream: Annotated[
        str | None,
        typer.Option(
            help="URL of a dependency (model store, auth service) resolved by name with "
            "getaddrinfo at startup (failure: exit 1 with the resolver's error) and on every "
            "check; while it does not resolve, /health is 503 and inference returns 503."
        ),
    ] = None,
    upstream_check_interval: Annotated[
        str, typer.Option(help="How often the upstream name is resolved again (e.g. 5s, 500ms).")
    ] = "5s",
    gpu_memory_utilization: Annotated[
        float | None,
        typer.Option(
            help="Fraction of GPU memory to claim (vLLM's --gpu-memory-utilization). With an "
            "NVIDIA GPU, startup fails with vLLM's 'Free memory on device ...' error when "
            "other processes hold too much, else the KV cache is really allocated on the GPU "
            "through CUDA. Without a GPU the KV cache is simulated in host memory."
        ),
    ] = None,
    cpu_kv_cache_bytes: Annotated[
        str,
        typer.Option(
            help="Host memory allocated (every page written) to stand in for the KV cache "
            "when no GPU is used, e.g. 64Mi; sizes the cache in tokens from the model's "
            "config.json. It is in the process's resident set, so a memory limit can OOM-kill it."
        ),
    ] = "64Mi",
    load_bandwidth: Annotated[
        str,
        typer.Option(
            help="Read throughput of the model load, e.g. 200Mi (bytes/s): the load takes "
            "size/bandwidth seconds, with /health 503 meanwhile (a slow model volume)."
        ),
    ] = "200Mi",
) -> None:
    from gameday.sim.options import SimOptions, parse_upstream
    from gameday.sim.server import serve as run_server

    if num_gpu_blocks_override is not None and (
        kv_cache_tokens is not None or num_gpu_blocks_override < 1
    ):
        typer.echo(
            "Error: --num-gpu-blocks-override must be at least 1, and not given with "
            "--kv-cache-tokens",
            err=True,
        )
        raise typer.Exit(2)
    adapters = []
    for module in lora_modules or []:
        name, sep, path = module.partition("=")
        if not sep or not name or not path or not enable_lora:
            typer.echo("Error: --lora-modules takes NAME=PATH, with --enable-lora", err=True)
            raise typer.Exit(2)
        adapters.append((name, path))
    try:
        opts = SimOptions(
            host=host,
            port=port,
            model_dir=model_dir,
            served_model_name=served_model_name,
            max_num_seqs=max_num_seqs,
            max_model_len=max_model_len,
            max_num_batched_tokens=max_num_batched_tokens,
            kv_cache_tokens=kv_cache_tokens,
            num_gpu_blocks_override=num_gpu_blocks_override,
            block_size=block_size,
            prefill_ms_per_token=prefill_ms_per_token,
            decode_ms_per_token=decode_ms_per_token,
            flavor=flavor,  # type: ignore[arg-type]  # validated by SimOptions
            vllm_version=vllm_version,
            deprecated_metrics=deprecated_metrics,
            upstream=parse_upstream(upstream) if upstream is not None else None,
            upstream_check_interval=_duration(upstream_check_interval),
            gpu_memory_utilization=gpu_memory_utilization,
            trust_remote_code=trust_remote_code,
            lora_modules=tuple(adapters),
            api_keys=tuple(k for k in (api_key or [os.environ.get("VLLM_API_KEY", "")]) if k),
            cpu_kv_cache_bytes=_bytes(cpu_kv_cache_bytes),
            load_bandwidth=_bytes(load_bandwidth),
        )
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run_server(opts))
