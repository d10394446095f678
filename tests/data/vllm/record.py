"""Record what a real vLLM says, as fixtures the simulator is tested against.

    python tests/data/vllm/record.py VLLM_EXECUTABLE MODEL_DIR OUT_DIR [--failures]

Starts ``VLLM_EXECUTABLE serve MODEL_DIR`` on a free loopback port (CPU, the tiny model
``gameday model make-tiny`` builds), sends a few requests of each kind, and writes:

- ``metrics.txt``      /metrics after the requests (Prometheus text format)
- ``models.json``      /v1/models
- ``version.json``     /version
- ``chat-stream.sse``  a streamed chat completion with include_usage, raw
- ``chat.json``        a chat completion; ``completion.json`` a completion
- ``errors.json``      status and body of requests vLLM refuses (unknown model,
                       a prompt beyond max_model_len)
- ``recorded.json``    the vLLM version, the command, the date, whether the CPU has AVX-512 BF16

With ``--failures`` it also starts vLLM once per documented failure of the model or its
flags and writes ``failures/<case>.log`` (its stderr) and ``failures/<case>.json`` (exit
code, seconds to exit, the last error line). Each case needs a copy of the model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # run as a script from anywhere
from tests.integration.sim.vllm_surface import exercise

from gameday.sim.metrics import host_has_avx512_bf16

Popen = subprocess.Popen[bytes]

ENV = {
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(vllm: str, model: Path, port: int, *extra: str) -> list[str]:
    return [
        vllm,
        "serve",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        *extra,
    ]


def serve(argv: list[str], log: Path, port: int, timeout: float = 300) -> tuple[Popen, float]:
    """Start a server (vLLM's environment added) and wait for a 200 from its /health;
    returns the process and the seconds it took. Its output goes to ``log``."""
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **ENV}, stdout=out, stderr=out)
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)  # a readiness probe's period
    stop(proc)
    raise RuntimeError(f"{argv[0]} was not ready within {timeout:g}s: {log.read_text()[-3000:]}")


def stop(proc: Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def record_serving(vllm: str, model: Path, out: Path) -> None:
    port = free_port()
    argv = command(vllm, model, port)
    proc, ready = serve(argv, out / "serve.log", port)
    try:
        surface = exercise(f"http://127.0.0.1:{port}")
    finally:
        stop(proc)
    for name in ("models", "chat", "completion", "errors"):
        (out / f"{name}.json").write_text(json.dumps(getattr(surface, name), indent=2) + "\n")
    (out / "version.json").write_text(json.dumps(surface.version) + "\n")
    (out / "chat-stream.sse").write_bytes(surface.stream)
    (out / "metrics.txt").write_text(surface.metrics)
    recorded = {
        "vllm": surface.version.get("version"),
        "command": " ".join(argv[1:]),
        "env": ENV,
        "ready_seconds": round(ready, 1),
        # vllm-cpu's cache_config_info depends on it (mamba_ssm_cache_dtype float32 with it)
        "cpu_avx512_bf16": host_has_avx512_bf16(),
        "recorded": time.strftime("%Y-%m-%d"),
        "by": "tests/data/vllm/record.py",
    }
    (out / "recorded.json").write_text(json.dumps(recorded, indent=2) + "\n")


def _truncate(model: Path) -> None:
    (weights,) = model.glob("*.safetensors")
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])


def _header_too_large(model: Path) -> None:
    (weights,) = model.glob("*.safetensors")
    data = bytearray(weights.read_bytes())
    data[:8] = (2**40).to_bytes(8, "little")
    weights.write_bytes(bytes(data))


def _drop_weights(model: Path) -> None:
    for weights in model.glob("*.safetensors"):
        weights.unlink()


def _drop_first_shard(model: Path) -> None:
    shutil.rmtree(model)
    subprocess.run(
        [sys.executable, "-m", "gameday", "model", "make-tiny", str(model), "--shards", "2"],
        check=True,
        capture_output=True,
    )
    sorted(model.glob("model-*.safetensors"))[0].unlink()


def _needs_remote_code(model: Path) -> None:
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "gameday-custom"
    config["architectures"] = ["GamedayCustomForCausalLM"]
    config["auto_map"] = {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.GamedayCustomForCausalLM",
    }
    (model / "config.json").write_text(json.dumps(config, indent=2))


def _unchanged(model: Path) -> None:
    del model


FAILURES = {
    # case: (what to do to a copy of the model, or None for no model at all; extra flags)
    "model-dir-missing": (None, ()),
    "weights-missing": (_drop_weights, ()),
    "shard-missing": (_drop_first_shard, ()),
    "weights-truncated": (_truncate, ()),
    "header-too-large": (_header_too_large, ()),
    "max-model-len-too-large": (_unchanged, ("--max-model-len", "4096")),
    "kv-cache-too-small": (_unchanged, ("--num-gpu-blocks-override", "2")),
    "lora-adapter-missing": (
        _unchanged,
        ("--enable-lora", "--lora-modules", "adapter1=/nonexistent/adapter1"),
    ),
    "remote-code-not-trusted": (_needs_remote_code, ()),
}


def record_failures(vllm: str, model: Path, out: Path, only: list[str] | None) -> None:
    (out / "failures").mkdir(exist_ok=True)
    for case, (damage, extra) in FAILURES.items():
        if only and case not in only:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "model"
            if damage is not None:
                shutil.copytree(model, copy)
                damage(copy)
            argv = command(vllm, copy, free_port(), *extra)
            started = time.monotonic()
            result = subprocess.run(
                argv, env={**os.environ, **ENV}, capture_output=True, timeout=300, check=False
            )
            took = time.monotonic() - started
        text = (result.stdout + result.stderr).decode(errors="replace")
        text = text.replace(str(copy), "<model>")
        (out / "failures" / f"{case}.log").write_text(text)
        errors = [line for line in text.splitlines() if "Error" in line and ":" in line]
        (out / "failures" / f"{case}.json").write_text(
            json.dumps(
                {
                    "exit_code": result.returncode,
                    "seconds": round(took, 1),
                    "flags": list(extra),
                    "error_lines": errors[-4:],
                },
                indent=2,
            )
            + "\n"
        )
        print(case, result.returncode, f"{took:.0f}s", errors[-1:] if errors else "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vllm")
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--failures", action="store_true")
    parser.add_argument("--no-serving", action="store_true")
    parser.add_argument("--case", action="append", help="only these failure cases")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_serving:
        record_serving(args.vllm, args.model, args.out)
    if args.failures:
        record_failures(args.vllm, args.model, args.out, args.case)


if __name__ == "__main__":
    main()
