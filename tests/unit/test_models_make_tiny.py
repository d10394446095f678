"""``gameday model make-tiny``: a complete, consistent Hugging Face checkpoint, offline.

What real vLLM needs of it (measured against vLLM 0.32 on CPU, shared/notes/real-vllm.md):
a LlamaConfig with head_dim 32, every tensor of a LlamaForCausalLM in bf16, an index that
matches the shards, a tokenizer that loads with a chat template.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from gameday.core.errors import UsageError
from gameday.models import INDEX, SINGLE_FILE, make_tiny, tensor_shapes, weight_files
from tests.support.models import SHARD_1, SHARD_2, tiny_model


def header(path: Path) -> dict[str, dict[str, object]]:
    """The safetensors header as the format documents it: a u64 length, then JSON."""
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    parsed: dict[str, dict[str, object]] = json.loads(blob[8 : 8 + n])
    ends = [t["data_offsets"][1] for k, t in parsed.items() if k != "__metadata__"]  # type: ignore[index]
    assert 8 + n + max(ends) == len(blob)  # the tensors cover the file exactly
    return parsed


def test_one_file_with_every_tensor_of_a_llama(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", shards=1)
    names = sorted(p.name for p in model.iterdir())
    assert names == sorted(
        [
            "README.md",
            "chat_template.jinja",
            "config.json",
            "generation_config.json",
            SINGLE_FILE,
            "tokenizer.json",
            "tokenizer_config.json",
        ]
    )
    config = json.loads((model / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["model_type"] == "llama"
    expected = {
        "num_hidden_layers": 2,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "head_dim": 32,  # vLLM's CPU attention refuses 16
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "dtype": "bfloat16",
        "tie_word_embeddings": False,
    }
    assert {k: config[k] for k in expected} == expected
    generation = json.loads((model / "generation_config.json").read_text())
    assert (generation["bos_token_id"], generation["eos_token_id"]) == (1, 2)

    tensors = {k: v for k, v in header(model / SINGLE_FILE).items() if k != "__metadata__"}
    shapes = tensor_shapes()
    assert {k: tuple(v["shape"]) for k, v in tensors.items()} == shapes  # type: ignore[arg-type]
    assert {v["dtype"] for v in tensors.values()} == {"BF16"}
    assert len(shapes) == 2 + 2 * 9 + 1
    assert sum(v[0] * (v[1] if len(v) > 1 else 1) for v in shapes.values()) == 852_608
    for name in ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"):
        assert name in tensors
    with safe_open(str(model / SINGLE_FILE), framework="numpy") as opened:
        assert opened.metadata() == {"format": "pt"}
        assert set(opened.keys()) == set(shapes)
    assert not (model / INDEX).exists()


def test_shards_and_index_agree(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", shards=2)
    index = json.loads((model / INDEX).read_text())
    weight_map: dict[str, str] = index["weight_map"]
    assert sorted(set(weight_map.values())) == [SHARD_1, SHARD_2] == weight_files(model)
    assert set(weight_map) == set(tensor_shapes())
    total = 0
    for shard in (SHARD_1, SHARD_2):
        tensors = {k: v for k, v in header(model / shard).items() if k != "__metadata__"}
        assert tensors, shard
        assert {name for name, file in weight_map.items() if file == shard} == set(tensors)
        total += sum(v["data_offsets"][1] - v["data_offsets"][0] for v in tensors.values())  # type: ignore[index]
    assert index["metadata"]["total_size"] == total == 852_608 * 2
    assert not (model / SINGLE_FILE).exists()


@pytest.mark.parametrize("shards", [3, 8])
def test_many_shards_are_never_empty(tmp_path: Path, shards: int) -> None:
    model = make_tiny(tmp_path / "m", shards)
    files = weight_files(model)
    assert len(files) == shards
    assert all(len(header(model / f)) > 1 for f in files)


def test_the_tokenizer_loads_with_its_chat_template(tmp_path: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    model = tiny_model(tmp_path / "m", shards=1)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model))
    assert len(tokenizer) == 2048
    assert (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.chat_template
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello there"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<s><|user|>\nHello there</s>\n<|assistant|>\n"
    ids = tokenizer("Hello there")["input_ids"]
    assert 0 < len(ids) < len("Hello there") and tokenizer.decode(ids) == "Hello there"
    assert json.loads((model / "tokenizer_config.json").read_text())["model_max_length"] == 512
    assert "torch" not in sys.modules  # made and loaded without it


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    a = make_tiny(tmp_path / "a", max_model_len=256, name="demo")
    b = make_tiny(tmp_path / "b", max_model_len=256, seed=0)
    c = make_tiny(tmp_path / "c", seed=1)
    assert (a / SINGLE_FILE).read_bytes() == (b / SINGLE_FILE).read_bytes()
    assert (a / SINGLE_FILE).read_bytes() != (c / SINGLE_FILE).read_bytes()
    assert json.loads((a / "config.json").read_text())["max_position_embeddings"] == 256
    assert (a / "README.md").read_text().splitlines()[6] == "# demo"
    assert "# b" in (b / "README.md").read_text()


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError, match="is not empty"):
        make_tiny(tmp_path / "full")
    with pytest.raises(UsageError, match="--shards must be between 1 and 8, not 0"):
        make_tiny(tmp_path / "new", shards=0)
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    assert make_tiny(tmp_path / "empty").is_dir()  # an empty directory is filled
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shards", "0"], "error: --shards must be between 1 and 8, not 0"),
        (["--shards", "9"], "error: --shards must be between 1 and 8, not 9"),
    ],
)
def test_the_cli_says_one_line_and_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gameday", "model", "make-tiny", str(tmp_path / "m"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_the_cli_refuses_a_directory_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep").write_text("mine")
    result = subprocess.run(
        [sys.executable, "-m", "gameday", "model", "make-tiny", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path} is not empty: give a new or empty directory"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]


def test_make_tiny_then_check_through_the_cli(tmp_path: Path) -> None:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "gameday",
            "model",
            "make-tiny",
            str(tmp_path / "m"),
            "--shards",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"wrote a tiny Llama to {tmp_path / 'm'}: 2 weight files")
    checked = subprocess.run(
        [sys.executable, "-m", "gameday", "model", "check", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == (
        f"ok: {tmp_path / 'm'}: LlamaForCausalLM, 21 tensors in 2 weight files (1.7 MB), "
        "max_model_len 512"
    )
    (tmp_path / "m" / SHARD_2).unlink()
    broken = subprocess.run(
        [sys.executable, "-m", "gameday", "model", "check", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        "FileNotFoundError: Weight files referenced in index but missing: "
        f"{{'{tmp_path / 'm' / SHARD_2}'}}"
    )


def test_help_teaches() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gameday", "model", "make-tiny", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0
    for words in ("vllm serve DIR", "--shards", "model.safetensors.index.json", "no checksum"):
        assert words in result.stdout, words


def test_without_debians_licence_texts_it_trains_on_its_own_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import PreTrainedTokenizerFast

    from gameday.models import tiny

    monkeypatch.setattr(tiny, "_LICENCES", tmp_path / "no-such-dir")
    model = make_tiny(tmp_path / "m")
    assert len(PreTrainedTokenizerFast.from_pretrained(str(model))) == 2048
