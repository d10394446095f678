"""Model directories: what ``gameday sim make-model`` writes and ``serve`` really reads.

A model directory looks like a Hugging Face checkpoint::

    config.json                            HF-like architecture (sizes the KV cache per token)
    manifest.json                          name, max_model_len, files with size and sha256
    model-00001-of-00002.safetensors       real safetensors framing (header + bytes)

Loading reads every byte in chunks, hashes it, throttles to a bandwidth so the load time
follows the bytes read, and keeps the bytes in memory. Failures are the ones a real loader
hits, with their texts: a missing directory or file is the OS's own ``FileNotFoundError``, a
missing ``config.json`` is transformers' ``OSError``, no weights is vLLM's ``RuntimeError``,
a damaged header is safetensors' ``SafetensorError``, and a damaged body fails its checksum.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.sim.logs import logger

__all__ = [
    "BUILTIN_CONFIG",
    "LoadedWeights",
    "ModelLoadError",
    "ModelSpec",
    "SafetensorError",
    "WeightChecksumError",
    "WeightFile",
    "builtin_model",
    "kv_bytes_per_token",
    "load_weights",
    "read_model_dir",
    "shard_name",
    "write_model_dir",
]

MANIFEST = "manifest.json"
CONFIG = "config.json"
MANIFEST_FORMAT = "gameday-sim-model/v1"

# A tiny Llama: 2 (K and V) x 4 layers x 4 KV heads x 64 dims x 2 bytes = 4 KiB per token,
# so the default 64 MiB of simulated KV cache holds 16,384 tokens.
BUILTIN_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 688,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "max_position_embeddings": 4096,
    "vocab_size": 32000,
    "rms_norm_eps": 1e-05,
    "torch_dtype": "float16",
}
BUILTIN_NAME = "gameday-sim-tiny"

_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float8": 1, "fp8": 1}
_CHUNK = 4 * 2**20
# safetensors refuses headers above 100 MB.
_MAX_HEADER = 100_000_000


class ModelLoadError(Exception):
    """A model that cannot be loaded; ``display_name`` is the type its log line shows."""

    display_name = "ValueError"


class SafetensorError(ModelLoadError):
    display_name = "safetensors_rust.SafetensorError"


class WeightChecksumError(ModelLoadError):
    display_name = "ValueError"


@dataclass(frozen=True)
class WeightFile:
    name: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    # None for the built-in model, which has no files.
    path: Path | None
    config: dict[str, Any]
    max_model_len: int
    files: tuple[WeightFile, ...]

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or ["LlamaForCausalLM"]
        return str(archs[0])

    @property
    def max_position_embeddings(self) -> int:
        return int(self.config.get("max_position_embeddings", self.max_model_len))

    @property
    def weight_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class LoadedWeights:
    buffers: list[bytearray]
    nbytes: int
    seconds: float


def kv_bytes_per_token(config: dict[str, Any]) -> int:
    """KV-cache bytes one token takes: 2 x layers x KV heads x head dim x dtype size."""
    layers = int(config.get("num_hidden_layers", 1))
    heads = int(config.get("num_attention_heads", 1))
    kv_heads = int(config.get("num_key_value_heads", heads))
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size", 64)) // heads)
    dtype = _DTYPE_BYTES.get(str(config.get("torch_dtype", "float16")), 2)
    return max(1, 2 * layers * kv_heads * head_dim * dtype)


def builtin_model(max_model_len: int | None = None) -> ModelSpec:
    return ModelSpec(
        name=BUILTIN_NAME,
        path=None,
        config=dict(BUILTIN_CONFIG),
        max_model_len=max_model_len or int(BUILTIN_CONFIG["max_position_embeddings"]),
        files=(),
    )


def shard_name(index: int, count: int) -> str:
    return f"model-{index:05d}-of-{count:05d}.safetensors"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from None


def read_model_dir(path: Path) -> ModelSpec:
    """Read a model directory's description (not its weights); raises what vLLM would."""
    # FileNotFoundError / NotADirectoryError, with the OS's own text.
    entries = {p.name for p in path.iterdir()}
    if CONFIG not in entries:
        raise OSError(
            f"{path} does not appear to have a file named {CONFIG}. Checkout "
            f"'https://huggingface.co/{path}/tree/None' for available files."
        )
    config = _read_json(path / CONFIG)
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path / CONFIG} must hold a JSON object")
    derived_len = int(config.get("max_position_embeddings", 4096))
    if MANIFEST in entries:
        manifest = _read_json(path / MANIFEST)
        try:
            name = str(manifest.get("name") or path.name)
            max_len = int(manifest.get("max_model_len") or derived_len)
            files = tuple(
                WeightFile(name=str(f["path"]), size=int(f["size"]), sha256=f.get("sha256"))
                for f in manifest["files"]
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"invalid model manifest {path / MANIFEST}: {exc!r}") from None
    else:
        # A plain checkpoint: every safetensors file, unverified.
        name, max_len = path.name, derived_len
        files = tuple(
            WeightFile(name=n, size=(path / n).stat().st_size, sha256=None)
            for n in sorted(entries)
            if n.endswith(".safetensors")
        )
    if not files:
        raise RuntimeError(f"Cannot find any model weights with `{path}`")
    return ModelSpec(name=name, path=path, config=config, max_model_len=max_len, files=files)


def _check_safetensors_header(f: Any, size: int) -> None:
    """The checks ``safe_open`` makes before it maps a file, with its error names."""
    if size < 8:
        raise SafetensorError("Error while deserializing header: HeaderTooSmall")
    n = int.from_bytes(f.read(8), "little")
    if n > _MAX_HEADER:
        raise SafetensorError("Error while deserializing header: HeaderTooLarge")
    if 8 + n > size:
        raise SafetensorError("Error while deserializing header: InvalidHeaderLength")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except UnicodeDecodeError:
        raise SafetensorError("Error while deserializing header: InvalidHeader") from None
    except ValueError:
        raise SafetensorError(
            "Error while deserializing header: InvalidHeaderDeserialization"
        ) from None
    if not isinstance(header, dict):
        raise SafetensorError("Error while deserializing header: InvalidHeaderDeserialization")
    end = 0
    for key, tensor in header.items():
        if key == "__metadata__":
            continue
        try:
            end = max(end, int(tensor["data_offsets"][1]))
        except (KeyError, IndexError, TypeError, ValueError):
            raise SafetensorError(
                "Error while deserializing header: InvalidHeaderDeserialization"
            ) from None
    if 8 + n + end != size:
        raise SafetensorError("Error while deserializing header: MetadataIncompleteBuffer")


def load_weights(
    spec: ModelSpec, *, bandwidth: int, cancel: threading.Event
) -> LoadedWeights | None:
    """Read, check and keep every weight file; None if ``cancel`` was set meanwhile.

    Reads are paced so that the load takes ``bytes / bandwidth`` seconds at least.
    Runs in a worker thread: it blocks on disk and sleeps.
    """
    started = time.monotonic()
    buffers: list[bytearray] = []
    done = 0
    count = len(spec.files)
    chunk = max(64 * 1024, min(_CHUNK, bandwidth // 20))
    for i, wf in enumerate(spec.files, 1):
        path = (spec.path or Path()) / wf.name
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                _check_safetensors_header(f, size)
                f.seek(0)
                buf = bytearray(size)
                view = memoryview(buf)
                digest = hashlib.sha256()
                offset = 0
                while offset < size:
                    n = f.readinto(view[offset : offset + chunk])
                    if not n:
                        raise SafetensorError(
                            "Error while deserializing header: MetadataIncompleteBuffer"
                        )
                    digest.update(view[offset : offset + n])
                    offset += n
                    done += n
                    wait = started + done / bandwidth - time.monotonic()
                    if cancel.wait(wait) if wait > 0 else cancel.is_set():
                        return None
        except ModelLoadError:
            logger.error("Failed to load weight file %s", path)
            raise
        if wf.sha256 is not None and digest.hexdigest() != wf.sha256:
            raise WeightChecksumError(
                f"Checksum mismatch for weight file {path}: expected sha256 {wf.sha256}, got "
                f"{digest.hexdigest()}. The file is corrupted; re-download the model."
            )
        buffers.append(buf)
        logger.info(
            "Loading safetensors checkpoint shards: %3d%% Completed | %d/%d",
            100 * i // count,
            i,
            count,
        )
    return LoadedWeights(buffers=buffers, nbytes=done, seconds=time.monotonic() - started)


def write_model_dir(root: Path, *, size: int, files: int, name: str | None = None) -> ModelSpec:
    """Create a model directory of about ``size`` bytes of weights in ``files`` shards."""
    root.mkdir(parents=True, exist_ok=True)
    config = dict(BUILTIN_CONFIG)
    (root / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    entries: list[WeightFile] = []
    per_file = size // files
    for i in range(1, files + 1):
        fname = shard_name(i, files)
        target = per_file + (size - per_file * files if i == files else 0)
        entries.append(_write_shard(root / fname, i, target))
    spec = ModelSpec(
        name=name or root.name,
        path=root,
        config=config,
        max_model_len=int(config["max_position_embeddings"]),
        files=tuple(entries),
    )
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "architecture": spec.architecture,
        "max_model_len": spec.max_model_len,
        "files": [{"path": f.name, "size": f.size, "sha256": f.sha256} for f in entries],
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return spec


def _write_shard(path: Path, index: int, target_size: int) -> WeightFile:
    def header_for(nbytes: int) -> bytes:
        header = {
            "__metadata__": {"format": "pt"},
            f"model.layers.{index - 1}.weight": {
                "dtype": "U8",
                "shape": [nbytes],
                "data_offsets": [0, nbytes],
            },
        }
        raw = json.dumps(header, separators=(",", ":")).encode()
        # safetensors pads its header with spaces to a multiple of 8.
        return raw + b" " * (-len(raw) % 8)

    data_len = max(0, target_size - 8 - len(header_for(target_size)))
    header = header_for(data_len)
    data = random.Random(index).randbytes(data_len)
    blob = len(header).to_bytes(8, "little") + header + data
    path.write_bytes(blob)
    return WeightFile(name=path.name, size=len(blob), sha256=hashlib.sha256(blob).hexdigest())
