"""The files of a Hugging Face checkpoint directory, and which of them a loader reads.

One layout for every engine the harness drives (the simulator and vLLM)::

    config.json                          the architecture (transformers' LlamaConfig)
    generation_config.json               bos/eos/pad ids
    model.safetensors                    the weights, in one file, or in shards:
    model-00001-of-00002.safetensors       ...
    model.safetensors.index.json         which shard holds each tensor (``weight_map``)
    tokenizer.json, tokenizer_config.json, chat_template.jinja

Nothing in it carries a checksum: vLLM reads the safetensors headers and maps the
tensors, so bytes flipped inside a tensor load unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
    "CONFIG",
    "GENERATION_CONFIG",
    "INDEX",
    "SINGLE_FILE",
    "indexed_files",
    "shard_name",
    "weight_files",
]

CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
INDEX = "model.safetensors.index.json"
"""The safetensors index: ``{"metadata": {"total_size": N}, "weight_map": {tensor: file}}``."""
SINGLE_FILE = "model.safetensors"
"""The one weight file of an unsharded checkpoint."""


def shard_name(index: int, count: int) -> str:
    """``model-00001-of-00002.safetensors``: the name transformers gives shard ``index``."""
    return f"model-{index:05d}-of-{count:05d}.safetensors"


def indexed_files(model_dir: Path) -> list[str] | None:
    """The weight files the index names, sorted; None when there is no index.

    Raises ``OSError`` or ``ValueError`` (JSON, or no ``weight_map`` object) for an
    unreadable index."""
    path = model_dir / INDEX
    if not path.is_file():
        return None
    weight_map = json.loads(path.read_text(encoding="utf-8")).get("weight_map")
    if not isinstance(weight_map, dict):
        raise ValueError(f"{path} has no weight_map object")
    return sorted({str(name) for name in weight_map.values()})


def weight_files(model_dir: Path) -> list[str]:
    """The weight files a loader reads, as names inside ``model_dir``, sorted: the ones
    the index names when there is an index, else every ``*.safetensors`` file."""
    indexed = indexed_files(model_dir)
    if indexed is not None:
        return indexed
    return sorted(p.name for p in model_dir.glob("*.safetensors") if p.is_file())
