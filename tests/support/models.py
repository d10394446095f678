"""Tiny model directories for tests: made once per process by ``make_tiny``, copied per test.

Making one takes about a second (training the tokenizer, importing transformers); a copy
takes milliseconds, and every test gets a directory of its own to damage.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from gameday.models import make_tiny

__all__ = ["SHARD_1", "SHARD_2", "tiny_model"]

SHARD_1 = "model-00001-of-00002.safetensors"
SHARD_2 = "model-00002-of-00002.safetensors"

_made: dict[int, Path] = {}


def tiny_model(directory: Path, shards: int = 2) -> Path:
    """A fresh copy of the tiny Llama (``shards`` weight files) at ``directory``."""
    if shards not in _made:
        root = Path(tempfile.mkdtemp(prefix="gameday-tiny-"))
        atexit.register(shutil.rmtree, root, True)
        _made[shards] = make_tiny(root / "model", shards)
    shutil.copytree(_made[shards], directory)
    return directory
