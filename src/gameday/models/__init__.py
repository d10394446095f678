"""Model directories that every engine the harness drives can load.

``gameday model make-tiny DIR`` (:func:`make_tiny`) writes a tiny random Llama as a
Hugging Face checkpoint that real vLLM serves on CPU and the simulator loads the same
way; :mod:`gameday.models.layout` names its files and which of them a loader reads.
Heavy libraries (numpy, safetensors, tokenizers, transformers) are imported when a
model is made, not when this package is.
"""

from __future__ import annotations

from gameday.models.layout import INDEX, SINGLE_FILE, indexed_files, shard_name, weight_files
from gameday.models.tiny import TINY_LLAMA, TinyLlama, make_tiny, tensor_shapes

__all__ = [
    "INDEX",
    "SINGLE_FILE",
    "TINY_LLAMA",
    "TinyLlama",
    "indexed_files",
    "make_tiny",
    "shard_name",
    "tensor_shapes",
    "weight_files",
]
