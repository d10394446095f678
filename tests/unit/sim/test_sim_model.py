"""Model directories read as vLLM 0.32 reads them, failing with its texts.

The texts are the ones vLLM 0.32 printed on CPU (shared/notes/real-vllm.md), or that its
source raises where noted; safetensors' are the real library's own.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pytest
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
from pydantic import ValidationError
from safetensors import SafetensorError

from gameday.sim.logs import exception_line
from gameday.sim.model import (
    BUILTIN_CONFIG,
    builtin_model,
    find_weight_files,
    kv_bytes_per_token,
    load_weights,
    read_model_dir,
    settle_max_model_len,
)
from tests.support.models import SHARD_1, SHARD_2, tiny_model

FAST = 1 << 40  # bytes/s: no pacing


def load(model: Path, bandwidth: int = FAST) -> None:
    assert load_weights(read_model_dir(model), bandwidth=bandwidth, cancel=threading.Event())


def test_a_tiny_model_loads_every_byte(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    spec = read_model_dir(model)
    assert spec.name == str(model)  # served under its path, as vLLM does
    assert spec.architecture == "LlamaForCausalLM"
    assert settle_max_model_len(spec, None) == 512
    loaded = load_weights(spec, bandwidth=FAST, cancel=threading.Event())
    assert loaded is not None
    assert loaded.files == [str(model / SHARD_1), str(model / SHARD_2)]
    assert loaded.tensors == 21
    sizes = [(model / n).stat().st_size for n in (SHARD_1, SHARD_2)]
    assert [len(b) for b in loaded.buffers] == sizes and loaded.nbytes == sum(sizes)


def test_load_time_follows_the_bytes_read(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    size = sum(p.stat().st_size for p in model.glob("*.safetensors"))
    loaded = load_weights(read_model_dir(model), bandwidth=size * 4, cancel=threading.Event())
    assert loaded is not None
    assert loaded.seconds == pytest.approx(0.25, abs=0.1)


def test_cancel_stops_a_load(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    spec = read_model_dir(tiny_model(tmp_path / "m"))
    assert load_weights(spec, bandwidth=1024, cancel=cancel) is None


def test_a_missing_directory_is_an_offline_hub_lookup(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "llama"
    with pytest.raises(HFValidationError) as info:
        read_model_dir(missing)
    assert exception_line(info.value) == (
        "huggingface_hub.errors.HFValidationError: Repo id must be in the form 'repo_name' or "
        f"'namespace/repo_name': '{missing}'. Use `repo_type` argument if needed."
    )


def test_a_name_that_could_be_a_repo_id_is_not_in_the_offline_cache() -> None:
    with pytest.raises(LocalEntryNotFoundError, match="Cannot find an appropriate cached"):
        read_model_dir("no-such-model-here")


def test_a_missing_config_is_vllms_model_config_error(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    (model / "config.json").unlink()
    with pytest.raises(ValidationError) as info:
        read_model_dir(model)
    lines = exception_line(info.value).splitlines()
    assert (
        lines[0]
        == "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig"
    )
    assert (
        lines[1] == f"  Value error, Invalid repository ID or local directory specified: '{model}'."
    )
    assert "   - For Hugging Face models: ensure the presence of a 'config.json'." in lines


def test_a_config_that_is_not_json_is_transformers_error(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    (model / "config.json").write_text("{not json")
    with pytest.raises(OSError) as info:
        read_model_dir(model)
    assert exception_line(info.value) == (
        f"OSError: It looks like the config file at '{model / 'config.json'}' is not a valid "
        "JSON file."
    )


def test_max_model_len_above_the_models_is_vllms_validation_error(tmp_path: Path) -> None:
    spec = read_model_dir(tiny_model(tmp_path / "m"))
    assert settle_max_model_len(spec, 256) == 256
    with pytest.raises(ValidationError) as info:
        settle_max_model_len(spec, 4096)
    lines = exception_line(info.value).splitlines()
    assert (
        lines[0]
        == "pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig"
    )
    assert lines[1].startswith(
        "  Value error, User-specified max_model_len (4096) is greater than the derived "
        "max_model_len (max_position_embeddings=512.0 or model_max_length=None in model's "
        "config.json). To allow overriding this maximum, set the env var "
        "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with "
        "extreme caution."
    )
    assert "[type=value_error, input_value=ArgsKwargs((), {" in lines[1]


def test_vllm_allow_long_max_model_len_lets_it_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "1")
    spec = read_model_dir(tiny_model(tmp_path / "m"))
    assert settle_max_model_len(spec, 4096) == 4096


def test_the_only_weight_file_gone_is_vllms_runtime_error(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m", shards=1)
    (model / "model.safetensors").unlink()
    spec = read_model_dir(model)  # the API server's part passes: the engine core fails
    with pytest.raises(RuntimeError) as info:
        find_weight_files(spec)
    assert (
        exception_line(info.value) == f"RuntimeError: Cannot find any model weights with `{model}`"
    )


def test_every_shard_gone_is_no_weights_either(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    for shard in (SHARD_1, SHARD_2):
        (model / shard).unlink()
    with pytest.raises(
        RuntimeError, match=re.escape(f"Cannot find any model weights with `{model}`")
    ):
        load(model)


def test_one_shard_gone_is_vllms_index_error(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    (model / SHARD_2).unlink()
    with pytest.raises(FileNotFoundError) as info:
        load(model)
    assert exception_line(info.value) == (
        f"FileNotFoundError: Weight files referenced in index but missing: {{'{model / SHARD_2}'}}"
    )


def test_files_the_index_does_not_name_are_not_read(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    (model / "consolidated.safetensors").write_bytes(b"not even safetensors")
    assert find_weight_files(read_model_dir(model)) == [str(model / SHARD_1), str(model / SHARD_2)]
    load(model)


def test_without_an_index_every_safetensors_file_is_read(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    (model / "model.safetensors.index.json").unlink()
    (model / SHARD_2).unlink()
    load(model)  # what is there loads: nothing says a shard is missing


def test_a_truncated_file_is_safetensors_own_error(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    shard = model / SHARD_1
    os.truncate(shard, shard.stat().st_size // 2)
    with pytest.raises(SafetensorError) as info:
        load(model)
    assert exception_line(info.value) == (
        "safetensors._safetensors_rust.SafetensorError: Error while deserializing header: "
        "incomplete metadata, file not fully covered"
    )


def test_an_overwritten_header_length_is_header_too_large(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    with (model / SHARD_2).open("r+b") as handle:
        handle.write(b"\xff" * 8)
    with pytest.raises(
        SafetensorError, match=r"^Error while deserializing header: header too large$"
    ):
        load(model)


def test_flipped_bytes_inside_a_tensor_go_unnoticed(tmp_path: Path) -> None:
    """vLLM keeps no checksum; neither does the simulator."""
    model = tiny_model(tmp_path / "m")
    shard = model / SHARD_1
    blob = bytearray(shard.read_bytes())
    middle = len(blob) // 2
    blob[middle : middle + 64] = bytes(b ^ 0xFF for b in blob[middle : middle + 64])
    shard.write_bytes(bytes(blob))
    load(model)


def test_a_damaged_index_is_the_json_error(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m")
    (model / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    with pytest.raises(KeyError, match="weight_map"):
        load(model)


def test_kv_bytes_per_token_follows_the_architecture(tmp_path: Path) -> None:
    assert kv_bytes_per_token(BUILTIN_CONFIG) == 2 * 4 * 4 * 64 * 2
    tiny = read_model_dir(tiny_model(tmp_path / "m")).config
    assert kv_bytes_per_token(tiny) == 2 * 2 * 4 * 32 * 2  # bf16
    llama8b = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
               "hidden_size": 4096, "torch_dtype": "bfloat16"}  # fmt: skip
    assert kv_bytes_per_token(llama8b) == 128 * 1024


def test_builtin_model_has_no_files() -> None:
    spec = builtin_model()
    assert find_weight_files(spec) == [] and settle_max_model_len(spec, None) == 4096
    loaded = load_weights(spec, bandwidth=FAST, cancel=threading.Event())
    assert loaded is not None and loaded.nbytes == 0
