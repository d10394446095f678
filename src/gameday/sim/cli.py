"""``gameday sim``: the vLLM-compatible inference simulator's commands.

Heavy imports (httptools, uvloop, prometheus_client) happen inside the commands, so
``gameday --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="The vLLM-compatible inference simulator: a real server that reacts to real faults.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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
    "not), /v1/models, /health and /metrics (vLLM's metric names). SIGTERM or SIGINT: a "
    "graceful shutdown, exit 0. A startup failure logs vLLM's error text and exits 1."
)
_MAKE_MODEL_HELP = (
    "Write a small model directory for demos and tests."
    "\n\n"
    "config.json (a tiny Llama), manifest.json (name, max_model_len, each file's size and "
    "sha256) and model-0000N-of-0000M.safetensors shards with real safetensors framing and "
    "random bytes. Corrupt or delete a shard to make 'gameday sim serve' fail like vLLM."
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
            help="Model directory to load (vLLM's --model pointing at a local checkpoint): "
            "config.json, manifest.json and safetensors shards, as written by "
            "'gameday sim make-model'. Every byte is really read and checksummed; a missing "
            "or corrupted file fails startup as it would in vLLM. Default: a built-in tiny "
            "model that is ready in well under two seconds.",
        ),
    ] = None,
    served_model_name: Annotated[
        str | None,
        typer.Option(
            help="Model name clients must send and metrics carry as model_name "
            "(vLLM's --served-model-name). Default: the model's own name."
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
            help="Context length: prompt + max_tokens above it get vLLM's 400 error "
            "(vLLM's --max-model-len). Default: the model's max_position_embeddings (4096)."
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
        int,
        typer.Option(help="Tokens per KV-cache block of PagedAttention (vLLM's --block-size)."),
    ] = 16,
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
    deprecated_metrics: Annotated[
        bool,
        typer.Option(
            "--deprecated-metrics",
            help="Also expose the metric names older dashboards use "
            "(vllm:gpu_cache_usage_perc, vllm:time_per_output_token_seconds), as vLLM's "
            "--show-hidden-metrics-for-version does.",
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
            block_size=block_size,
            prefill_ms_per_token=prefill_ms_per_token,
            decode_ms_per_token=decode_ms_per_token,
            flavor=flavor,  # type: ignore[arg-type]  # validated by SimOptions
            deprecated_metrics=deprecated_metrics,
            upstream=parse_upstream(upstream) if upstream is not None else None,
            upstream_check_interval=_duration(upstream_check_interval),
            gpu_memory_utilization=gpu_memory_utilization,
            cpu_kv_cache_bytes=_bytes(cpu_kv_cache_bytes),
            load_bandwidth=_bytes(load_bandwidth),
        )
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run_server(opts))


@app.command("make-model", help=_MAKE_MODEL_HELP)
def make_model(
    directory: Annotated[Path, typer.Argument(help="Directory to create (or fill).")],
    size: Annotated[str, typer.Option(help="Total size of the weight files, e.g. 64Mi.")] = "64Mi",
    files: Annotated[int, typer.Option(help="Number of safetensors shards.", min=1)] = 2,
    name: Annotated[
        str | None, typer.Option(help="Model name in the manifest. Default: the directory name.")
    ] = None,
) -> None:
    from gameday.sim.model import write_model_dir

    nbytes = _bytes(size)
    if nbytes < 1024 * files:
        typer.echo(
            f"Error: --size must be at least {1024 * files} bytes for {files} files", err=True
        )
        raise typer.Exit(2)
    try:
        spec = write_model_dir(directory, size=nbytes, files=files, name=name)
    except OSError as exc:
        typer.echo(f"Error: cannot write {directory}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"wrote model {spec.name!r} to {directory}: {len(spec.files)} files, "
        f"{spec.weight_bytes} bytes of weights"
    )
