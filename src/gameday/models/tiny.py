"""A tiny Llama with random weights, made offline in about a second, that real vLLM serves.

``make_tiny(dir)`` writes a complete Hugging Face checkpoint (the layout of
:mod:`gameday.models.layout`): 2 layers, hidden size 128, 4 attention and 4 KV heads of
32 dimensions (vLLM's CPU attention refuses a head size of 16), a 2048-token vocabulary
and 512 positions; 852,608 parameters, 1.7 MB of bf16. Every tensor of a
``LlamaForCausalLM`` is there, filled from a seeded generator, so the same seed writes
the same bytes. The answers are noise; loading, serving, metrics and failures are real.

No torch: config.json and generation_config.json come from transformers' config
classes, the weights are numpy arrays rounded to bf16 and written by safetensors'
own serializer, and the tokenizer is a byte-level BPE trained by ``tokenizers`` on
text every Debian machine has (the licence texts under /usr/share/common-licenses;
else this package's own source), saved by ``PreTrainedTokenizerFast`` with a chat
template.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gameday.core.errors import UsageError
from gameday.models.layout import CONFIG, GENERATION_CONFIG, INDEX, SINGLE_FILE, shard_name

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "MAX_SHARDS",
    "SPECIAL_TOKENS",
    "TINY_LLAMA",
    "TinyLlama",
    "make_tiny",
    "tensor_shapes",
]

MAX_SHARDS = 8


@dataclass(frozen=True)
class TinyLlama:
    """The architecture ``make_tiny`` writes (transformers' LlamaConfig names)."""

    num_hidden_layers: int = 2
    hidden_size: int = 128
    intermediate_size: int = 256
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    head_dim: int = 32
    vocab_size: int = 2048


TINY_LLAMA = TinyLlama()

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")
"""pad, bos and eos, in that order: ids 0, 1 and 2."""

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Each message as ``<|role|>``, a newline, its text and eos; then the assistant's turn."""

_LICENCES = Path("/usr/share/common-licenses")
# Fixed texts that every Debian release ships unchanged (base-files), so the tokenizer is
# the same on every Debian machine.
_CORPUS = ("Apache-2.0", "Artistic", "BSD", "GPL-2", "GPL-3", "LGPL-2.1", "LGPL-3", "MPL-2.0")
_INIT_STD = 0.02
"""transformers' initializer_range: the spread of a freshly initialised Llama's weights."""


def tensor_shapes(arch: TinyLlama = TINY_LLAMA) -> dict[str, tuple[int, ...]]:
    """Every tensor of a ``LlamaForCausalLM`` with untied embeddings, in the order
    transformers saves them, with its shape."""
    hidden, inter = arch.hidden_size, arch.intermediate_size
    q_dim = arch.num_attention_heads * arch.head_dim
    kv_dim = arch.num_key_value_heads * arch.head_dim
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (arch.vocab_size, hidden)}
    for layer in range(arch.num_hidden_layers):
        prefix = f"model.layers.{layer}"
        shapes |= {
            f"{prefix}.self_attn.q_proj.weight": (q_dim, hidden),
            f"{prefix}.self_attn.k_proj.weight": (kv_dim, hidden),
            f"{prefix}.self_attn.v_proj.weight": (kv_dim, hidden),
            f"{prefix}.self_attn.o_proj.weight": (hidden, q_dim),
            f"{prefix}.mlp.gate_proj.weight": (inter, hidden),
            f"{prefix}.mlp.up_proj.weight": (inter, hidden),
            f"{prefix}.mlp.down_proj.weight": (hidden, inter),
            f"{prefix}.input_layernorm.weight": (hidden,),
            f"{prefix}.post_attention_layernorm.weight": (hidden,),
        }
    shapes["model.norm.weight"] = (hidden,)
    shapes["lm_head.weight"] = (arch.vocab_size, hidden)
    return shapes


def make_tiny(
    directory: Path,
    shards: int = 1,
    *,
    name: str | None = None,
    max_model_len: int = 512,
    seed: int = 0,
) -> Path:
    """Write a tiny random Llama checkpoint to ``directory`` and return its path.

    ``directory`` must not exist or be empty. ``shards`` > 1 splits the weights over
    ``model-0000k-of-0000N.safetensors`` with ``model.safetensors.index.json``, else one
    ``model.safetensors``. ``max_model_len`` is the model's max_position_embeddings;
    ``name`` goes on its model card (README.md; default: the directory's name). The files
    are written beside ``directory`` and moved into place at the end, so a failure leaves
    nothing half-written. Raises UsageError for bad arguments.
    """
    if not 1 <= shards <= MAX_SHARDS:
        raise UsageError(f"--shards must be between 1 and {MAX_SHARDS}, not {shards}")
    if max_model_len < 1:
        raise UsageError(f"--max-model-len must be at least 1, not {max_model_len}")
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        what = "is not empty" if directory.is_dir() else "exists and is not a directory"
        raise UsageError(f"{directory} {what}: give a new or empty directory")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    except OSError as error:
        raise UsageError(f"cannot write {directory}: {error.strerror or error}") from None
    try:
        ids = _write_tokenizer(staging, max_model_len)
        _write_configs(staging, max_model_len, ids)
        _write_weights(staging, shards, seed)
        _write_model_card(staging, name or directory.resolve().name, shards, max_model_len)
        staging.chmod(0o755)
        if directory.exists():
            directory.rmdir()  # empty, checked above
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


# -- configuration ---------------------------------------------------------------------


def _transformers() -> Any:
    """transformers, without its advice that PyTorch is missing (we need none of it)."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import transformers

    return transformers


def _write_configs(root: Path, max_model_len: int, ids: dict[str, int]) -> None:
    transformers = _transformers()
    arch = TINY_LLAMA
    config = transformers.LlamaConfig(
        architectures=["LlamaForCausalLM"],
        num_hidden_layers=arch.num_hidden_layers,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_key_value_heads,
        head_dim=arch.head_dim,
        vocab_size=arch.vocab_size,
        max_position_embeddings=max_model_len,
        tie_word_embeddings=False,
        dtype="bfloat16",
        initializer_range=_INIT_STD,
        **ids,
    )
    config.save_pretrained(root)
    transformers.GenerationConfig(**ids).save_pretrained(root)
    for written in (CONFIG, GENERATION_CONFIG):
        assert (root / written).is_file(), written


# -- weights ---------------------------------------------------------------------------


def _bf16(values: np.ndarray) -> np.ndarray:
    """float32 values as bf16 bit patterns (uint16), rounded to nearest even."""
    import numpy as np

    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def _tensors(seed: int) -> dict[str, np.ndarray]:
    """Every tensor as bf16 bits: norms at 1, the rest normal around 0 (initializer_range)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in tensor_shapes().items():
        if name.endswith("norm.weight"):
            values = np.ones(shape, dtype=np.float32)
        else:
            values = rng.normal(0.0, _INIT_STD, size=shape).astype(np.float32)
        out[name] = _bf16(values)
    return out


def _split(names: list[str], sizes: dict[str, int], shards: int) -> list[list[str]]:
    """Tensors in order over ``shards`` files of about equal size, none of them empty."""
    total = sum(sizes.values())
    groups: list[list[str]] = [[] for _ in range(shards)]
    current, filled = 0, 0
    for i, name in enumerate(names):
        left = len(names) - i
        must_move = left <= shards - 1 - current  # the shards after this one need a tensor each
        full = filled >= total * (current + 1) / shards
        if groups[current] and current < shards - 1 and (full or must_move):
            current += 1
        groups[current].append(name)
        filled += sizes[name]
    return groups


def _write_weights(root: Path, shards: int, seed: int) -> None:
    from safetensors import TensorSpec, serialize_file

    tensors = _tensors(seed)
    names = list(tensors)
    sizes = {name: int(array.nbytes) for name, array in tensors.items()}
    groups = _split(names, sizes, shards)
    files = [SINGLE_FILE] if shards == 1 else [shard_name(i, shards) for i in range(1, shards + 1)]
    weight_map: dict[str, str] = {}
    for file, group in zip(files, groups, strict=True):
        specs = {
            name: TensorSpec(
                dtype="bfloat16",
                shape=list(tensors[name].shape),
                data_ptr=tensors[name].ctypes.data,
                data_len=sizes[name],
            )
            for name in group
        }
        # the arrays stay alive in ``tensors`` while the serializer reads their memory
        serialize_file(specs, str(root / file), metadata={"format": "pt"})
        (root / file).chmod(0o644)  # the serializer makes it private; a server may run as anyone
        weight_map |= dict.fromkeys(group, file)
    if shards > 1:
        metadata = {"total_parameters": _parameters(), "total_size": sum(sizes.values())}
        index = {"metadata": metadata, "weight_map": weight_map}
        (root / INDEX).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")


# -- tokenizer -------------------------------------------------------------------------


def _corpus() -> list[str]:
    """Files to train the tokenizer on: Debian's licence texts, else our own source."""
    licences = [str(_LICENCES / n) for n in _CORPUS if (_LICENCES / n).is_file()]
    if licences:
        return licences
    package = Path(__file__).resolve().parents[1]
    return [str(p) for p in sorted(package.rglob("*.py"))]


def _train() -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_LLAMA.vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train(_corpus(), trainer)
    return tokenizer


def _write_tokenizer(root: Path, max_model_len: int) -> dict[str, int]:
    """Train and save the tokenizer; returns the special tokens' ids for the configs."""
    transformers = _transformers()
    tokenizer = _train()
    pad, bos, eos = SPECIAL_TOKENS
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        model_max_length=max_model_len,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(root))
    ids: dict[str, int] = {}
    for key, token in (("pad_token_id", pad), ("bos_token_id", bos), ("eos_token_id", eos)):
        token_id = tokenizer.token_to_id(token)
        assert token_id is not None, token  # trained as a special token
        ids[key] = token_id
    return ids


# -- model card ------------------------------------------------------------------------


def _write_model_card(root: Path, name: str, shards: int, max_model_len: int) -> None:
    files = "one file" if shards == 1 else f"{shards} shards"
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [llama, random-weights, llm-gameday]",
        "---",
        "",
        f"# {name}",
        "",
        "A tiny Llama with random weights, made by `gameday model make-tiny` for game days",
        f"and tests: {_parameters():,} bf16 parameters in {files}, {max_model_len} positions,",
        "a byte-level BPE tokenizer of 2048 tokens with a chat template. vLLM and the",
        "gameday simulator load and serve it; what it answers is noise.",
        "",
    ]
    (root / "README.md").write_text("\n".join(lines), encoding="utf-8")


def _parameters() -> int:
    total = 0
    for shape in tensor_shapes().values():
        count = 1
        for dim in shape:
            count *= dim
        total += count
    return total
