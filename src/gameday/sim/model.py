"""Model directories as ``gameday sim serve --model-dir`` reads them: the way vLLM 0.32 does.

The format is a Hugging Face checkpoint (:mod:`gameday.models.layout`; ``gameday model
make-tiny`` writes one that real vLLM serves too). Loading happens in vLLM's two places,
and fails there with vLLM's texts (measured against vLLM 0.32 on CPU with
``HF_HUB_OFFLINE=1``, or read from its source where noted):

Before the engine starts (the API server; no "Engine core initialization failed" line):

- a directory that does not exist is looked up as a Hub repo id, offline:
  ``huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or
  'namespace/repo_name': '<path>'. Use `repo_type` argument if needed.`` (huggingface_hub's
  own validator; a name that is a valid repo id gets its ``LocalEntryNotFoundError``);
- no config.json: vLLM's ``Invalid repository ID or local directory specified`` inside
  pydantic's ``ValidationError`` for ``ModelConfig`` (from vLLM's source); config.json
  that is not JSON: transformers' ``OSError: It looks like the config file at ...``;
- ``--max-model-len`` above the model's: ``Value error, User-specified max_model_len
  (4096) is greater than the derived max_model_len (max_position_embeddings=512.0 ...``,
  through pydantic, as vLLM's ``ModelConfig`` raises it.

In the engine core (:func:`load_weights`):

- no ``*.safetensors`` file: ``RuntimeError: Cannot find any model weights with `<dir>```;
- a file the index names is gone: ``FileNotFoundError: Weight files referenced in index
  but missing: {'<path>'}``;
- each file is opened with the real ``safetensors.safe_open``, so a truncated file or a
  damaged header fails with safetensors' own ``SafetensorError`` (``Error while
  deserializing header: incomplete metadata, file not fully covered``, ``... header too
  large``).

No checksum: like vLLM, the loader notices nothing when bytes inside a tensor change.
Every byte is still read, paced to ``--load-bandwidth`` so the load takes ``size /
bandwidth`` seconds, and kept in memory, so the weights are in the process's resident set.
"""

# vLLM joins and globs its paths as strings (os.path), and its messages print them so:
# ruff: noqa: PTH110, PTH113, PTH118, PTH207

from __future__ import annotations

import glob
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.models.layout import CONFIG, INDEX
from gameday.sim.logs import logger

__all__ = [
    "BUILTIN_CONFIG",
    "BUILTIN_NAME",
    "LoadedWeights",
    "ModelSpec",
    "builtin_model",
    "find_weight_files",
    "kv_bytes_per_token",
    "load_weights",
    "read_model_dir",
    "settle_max_model_len",
]

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
    "dtype": "float16",
}
BUILTIN_NAME = "gameday-sim-tiny"

_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float8": 1, "fp8": 1}
_CHUNK = 4 * 2**20
# vLLM's keys for the model's own context length; the smallest one present wins.
_MAX_LEN_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)
_DEFAULT_MAX_LEN = 2048
"""What vLLM assumes when config.json has none of those keys."""


@dataclass(frozen=True)
class ModelSpec:
    """A model as the API server sees it, before the engine reads any weight."""

    name: str
    """The model argument as given (``--model-dir``): vLLM names it in its errors, joins the
    weight files' paths to it and serves the model under it by default."""
    # None for the built-in model, which has no files.
    path: Path | None
    config: dict[str, Any]
    max_len_key: str | None
    """The config.json key the derived max_model_len comes from (None: vLLM's default)."""
    derived_max_model_len: int
    tokenizer_max_len: int | None = None

    @property
    def architecture(self) -> str:
        archs = self.config.get("architectures") or ["LlamaForCausalLM"]
        return str(archs[0])


@dataclass
class LoadedWeights:
    buffers: list[bytearray]
    nbytes: int
    seconds: float
    files: list[str] = field(default_factory=list)
    tensors: int = 0


def kv_bytes_per_token(config: dict[str, Any]) -> int:
    """KV-cache bytes one token takes: 2 x layers x KV heads x head dim x dtype size."""
    layers = int(config.get("num_hidden_layers", 1))
    heads = int(config.get("num_attention_heads", 1))
    kv_heads = int(config.get("num_key_value_heads", heads))
    head_dim = int(config.get("head_dim") or int(config.get("hidden_size", 64)) // heads)
    dtype_name = config.get("dtype") or config.get("torch_dtype") or "float16"
    dtype = _DTYPE_BYTES.get(str(dtype_name), 2)
    return max(1, 2 * layers * kv_heads * head_dim * dtype)


def builtin_model() -> ModelSpec:
    return ModelSpec(
        name=BUILTIN_NAME,
        path=None,
        config=dict(BUILTIN_CONFIG),
        max_len_key="max_position_embeddings",
        derived_max_model_len=int(BUILTIN_CONFIG["max_position_embeddings"]),
    )


# -- the API server's side -------------------------------------------------------------


def read_model_dir(model: str | Path, *, trust_remote_code: bool = False) -> ModelSpec:
    """Read what vLLM's API server reads before it starts the engine; raise what it raises.

    ``model`` is the ``--model-dir`` argument as given: vLLM names it in its errors and
    joins the weight files' paths to it as it is.
    """
    text = str(model)
    if not os.path.exists(text):
        _look_up_offline(text)
    config_path = os.path.join(text, CONFIG)
    if not os.path.isfile(config_path):
        raise _model_config_error(
            text,
            f"Invalid repository ID or local directory specified: '{text}'.\n"
            "Please verify the following requirements:\n"
            "1. Provide a valid Hugging Face repository ID.\n"
            "2. Specify a local directory that contains a recognized configuration file.\n"
            "   - For Hugging Face models: ensure the presence of a 'config.json'.\n"
            "   - For Mistral models: ensure the presence of a 'params.json'.\n",
        )
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OSError(
            f"It looks like the config file at '{config_path}' is not a valid JSON file."
        ) from None
    if not isinstance(config, dict):
        raise OSError(f"It looks like the config file at '{config_path}' is not a valid JSON file.")
    if config.get("auto_map") and not trust_remote_code:
        # a config whose classes live in the repository's own Python files
        raise _model_config_error(
            text,
            f"The repository {text} contains custom code which must be executed to correctly "
            f"load the model. You can inspect the repository content at {text} .\n"
            f" You can inspect the repository content at https://hf.co/{text}.\n"
            "Please pass the argument `trust_remote_code=True` to allow custom code to be run.",
        )
    key, derived = _derived_max_len(config)
    return ModelSpec(
        name=text,
        path=Path(text),
        config=config,
        max_len_key=key,
        derived_max_model_len=derived,
        tokenizer_max_len=_tokenizer_max_len(Path(text)),
    )


def _look_up_offline(repo_id: str) -> None:
    """What ``huggingface_hub.snapshot_download(repo_id, local_files_only=True)`` raises
    for a model that is not on disk (vLLM does that with HF_HUB_OFFLINE=1)."""
    from huggingface_hub.errors import LocalEntryNotFoundError
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]  # lazy

    validate_repo_id(repo_id)  # the HFValidationError of any path with two slashes
    raise LocalEntryNotFoundError(
        "Cannot find an appropriate cached snapshot folder for the specified revision on the "
        "local disk and outgoing traffic has been disabled. To enable repo look-ups and "
        "downloads online, pass 'local_files_only=False' as input."
    )


def _derived_max_len(config: dict[str, Any]) -> tuple[str | None, int]:
    best: tuple[str | None, int] = (None, 0)
    for key in _MAX_LEN_KEYS:
        value = config.get(key)
        if isinstance(value, int | float) and (best[0] is None or value < best[1]):
            best = (key, int(value))
    return best if best[0] is not None else (None, _DEFAULT_MAX_LEN)


def _tokenizer_max_len(path: Path) -> int | None:
    """tokenizer_config.json's model_max_length, which vLLM also caps the length with."""
    try:
        value = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get(
            "model_max_length"
        )
    except (OSError, ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int | float) else None


def _model_config_error(model: str, message: str, **inputs: Any) -> Exception:
    """``message`` as vLLM's ``ModelConfig`` reports a ValueError from its validation: a
    pydantic ``ValidationError`` (real pydantic, so its lines are pydantic's own)."""
    from pydantic import ValidationError
    from pydantic.dataclasses import dataclass as pydantic_dataclass

    @pydantic_dataclass
    class ModelConfig:
        model: str
        max_model_len: int | None = None
        renderer_num_workers: int = 1
        """The last of the engine arguments vLLM's create_model_config passes: pydantic
        quotes the input's start and end, ``{'model': ...nderer_num_workers': 1}``."""

        def __post_init__(self) -> None:
            raise ValueError(message)

    try:
        ModelConfig(model=model, **inputs, renderer_num_workers=1)
    except ValidationError as error:
        return error
    raise AssertionError("ModelConfig always fails")  # pragma: no cover


def _allow_long_max_model_len() -> bool:
    return os.environ.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "0").strip().lower() in ("1", "true")


def settle_max_model_len(spec: ModelSpec, requested: int | None) -> int:
    """The max_model_len to serve: ``requested`` (``--max-model-len``) or the model's own;
    a request above the model's fails as vLLM's ModelConfig fails it."""
    derived = spec.derived_max_model_len
    if spec.tokenizer_max_len is not None:
        derived = min(derived, spec.tokenizer_max_len)
    if requested is None:
        return derived
    if requested > derived:
        key = spec.max_len_key
        # vLLM multiplies the length by the RoPE factor (1.0), so it prints a float
        msg = (
            f"User-specified max_model_len ({requested}) is greater than the derived "
            f"max_model_len ({key}={float(derived)} or model_max_length="
            f"{spec.config.get('model_max_length')} in model's config.json)."
        )
        warning = (
            "VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. If the model "
            "uses relative position encoding (RoPE), positions exceeding "
            "derived_max_model_len lead to nan. If the model uses absolute position "
            "encoding, positions exceeding derived_max_model_len will cause a CUDA array "
            "out-of-bounds error."
        )
        if _allow_long_max_model_len():
            logger.warning("%s %s", msg, warning)
            return requested
        raise _model_config_error(
            spec.name,
            f"{msg} To allow overriding this maximum, set the env var "
            f"VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. {warning}",
            max_model_len=requested,
        )
    return requested


# -- the engine core's side ------------------------------------------------------------


def _natural_key(path: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def find_weight_files(spec: ModelSpec) -> list[str]:
    """The weight files vLLM's default loader reads, as paths joined to the model argument;
    raises what it raises when they are not all there."""
    if spec.path is None:
        return []
    folder = spec.name
    files = glob.glob(os.path.join(glob.escape(folder), "*.safetensors"))
    index = os.path.join(folder, INDEX)
    if files and os.path.isfile(index):
        # a JSONDecodeError or KeyError here is vLLM's too
        weight_map = json.loads(Path(index).read_text(encoding="utf-8"))["weight_map"]
        in_index = {os.path.join(folder, name) for name in weight_map.values()}
        missing = in_index - set(files)
        if missing:
            raise FileNotFoundError(f"Weight files referenced in index but missing: {missing}")
        files = [f for f in files if f in in_index]
    if not files:
        raise RuntimeError(f"Cannot find any model weights with `{folder}`")
    return sorted(files, key=_natural_key)


def load_weights(
    spec: ModelSpec, *, bandwidth: int, cancel: threading.Event
) -> LoadedWeights | None:
    """Find, open and read every weight file; None if ``cancel`` was set meanwhile.

    Each file is opened with ``safetensors.safe_open`` first (its header checks, its
    errors), then its bytes are read and kept, paced so that the load takes
    ``bytes / bandwidth`` seconds at least. Runs in a worker thread: it blocks on disk
    and sleeps.
    """
    started = time.monotonic()
    files = find_weight_files(spec)
    loaded = LoadedWeights(buffers=[], nbytes=0, seconds=0.0, files=files)
    if not files:
        return loaded
    from safetensors import safe_open

    total = sum(Path(f).stat().st_size for f in files)
    logger.info("Checkpoint size: %.2f GiB.", total / 2**30)
    chunk = max(64 * 1024, min(_CHUNK, bandwidth // 20))
    for i, path in enumerate(files, 1):
        with safe_open(path, framework="numpy") as checkpoint:  # SafetensorError, as vLLM's
            loaded.tensors += len(list(checkpoint.keys()))
        with Path(path).open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            buf = bytearray(size)
            view = memoryview(buf)
            offset = 0
            while offset < size:
                n = handle.readinto(view[offset : offset + chunk])
                if not n:
                    break  # shortened since it was opened: what is kept is what was read
                offset += n
                loaded.nbytes += n
                wait = started + loaded.nbytes / bandwidth - time.monotonic()
                if cancel.wait(wait) if wait > 0 else cancel.is_set():
                    return None
        loaded.buffers.append(buf)
        logger.info(
            "Loading safetensors checkpoint shards: %3d%% Completed | %d/%d",
            100 * i // len(files),
            i,
            len(files),
        )
    loaded.seconds = time.monotonic() - started
    return loaded
