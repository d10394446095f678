"""Model directories: written by make-model, read byte for byte, failing like vLLM."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest

from gameday.sim.model import (
    BUILTIN_CONFIG,
    SafetensorError,
    WeightChecksumError,
    builtin_model,
    kv_bytes_per_token,
    load_weights,
    read_model_dir,
    write_model_dir,
)

FAST = 1 << 40  # bytes/s: no pacing


def test_make_model_writes_a_checkpoint_that_loads_back(tmp_path: Path) -> None:
    spec = write_model_dir(tmp_path / "m", size=256 * 1024, files=2, name="demo")
    assert [f.name for f in spec.files] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["name"] == "demo" and manifest["max_model_len"] == 4096
    assert sum(f["size"] for f in manifest["files"]) == spec.weight_bytes
    assert abs(spec.weight_bytes - 256 * 1024) < 64
    read = read_model_dir(tmp_path / "m")
    assert read == spec
    loaded = load_weights(read, bandwidth=FAST, cancel=threading.Event())
    assert loaded is not None
    assert loaded.nbytes == spec.weight_bytes
    assert [len(b) for b in loaded.buffers] == [f.size for f in spec.files]


def test_shards_use_real_safetensors_framing(tmp_path: Path) -> None:
    write_model_dir(tmp_path, size=4096, files=1)
    blob = (tmp_path / "model-00001-of-00001.safetensors").read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    assert n % 8 == 0
    (tensor,) = (v for k, v in header.items() if k != "__metadata__")
    assert 8 + n + tensor["data_offsets"][1] == len(blob)


def test_load_time_follows_the_bytes_read(tmp_path: Path) -> None:
    spec = write_model_dir(tmp_path, size=400 * 1024, files=2)
    loaded = load_weights(spec, bandwidth=2 * 1024 * 1024, cancel=threading.Event())
    assert loaded is not None
    assert loaded.seconds == pytest.approx(0.2, abs=0.1)


def test_cancel_stops_a_load(tmp_path: Path) -> None:
    spec = write_model_dir(tmp_path, size=400 * 1024, files=1)
    cancel = threading.Event()
    cancel.set()
    assert load_weights(spec, bandwidth=1024, cancel=cancel) is None


def test_missing_directory_is_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        read_model_dir(tmp_path / "nope")
    assert str(info.value) == f"[Errno 2] No such file or directory: '{tmp_path / 'nope'}'"


def test_missing_config_is_transformers_error(tmp_path: Path) -> None:
    with pytest.raises(
        OSError, match=re.escape("does not appear to have a file named config.json")
    ):
        read_model_dir(tmp_path)


def test_no_weights_is_vllm_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(
        RuntimeError, match=re.escape(f"Cannot find any model weights with `{tmp_path}`")
    ):
        read_model_dir(tmp_path)


def test_a_plain_checkpoint_without_manifest_loads_unverified(tmp_path: Path) -> None:
    write_model_dir(tmp_path, size=8192, files=2)
    (tmp_path / "manifest.json").unlink()
    spec = read_model_dir(tmp_path)
    assert spec.name == tmp_path.name and all(f.sha256 is None for f in spec.files)
    assert load_weights(spec, bandwidth=FAST, cancel=threading.Event()) is not None


def test_missing_weight_file_is_the_os_error(tmp_path: Path) -> None:
    spec = write_model_dir(tmp_path, size=8192, files=2)
    missing = tmp_path / "model-00002-of-00002.safetensors"
    missing.unlink()
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"No such file or directory: '{missing}'")
    ):
        load_weights(spec, bandwidth=FAST, cancel=threading.Event())


def test_a_flipped_byte_fails_the_checksum_naming_the_file(tmp_path: Path) -> None:
    spec = write_model_dir(tmp_path, size=8192, files=1)
    path = tmp_path / spec.files[0].name
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(
        WeightChecksumError, match=re.escape(f"Checksum mismatch for weight file {path}")
    ):
        load_weights(spec, bandwidth=FAST, cancel=threading.Event())


def test_a_truncated_file_fails_like_safetensors(tmp_path: Path) -> None:
    spec = write_model_dir(tmp_path, size=8192, files=1)
    path = tmp_path / spec.files[0].name
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        SafetensorError, match=r"^Error while deserializing header: MetadataIncompleteBuffer$"
    ):
        load_weights(spec, bandwidth=FAST, cancel=threading.Event())


@pytest.mark.parametrize(
    ("blob", "name"),
    [
        (b"\x01\x02", "HeaderTooSmall"),
        ((10**9).to_bytes(8, "little") + b"x" * 16, "HeaderTooLarge"),
        ((64).to_bytes(8, "little") + b"{}", "InvalidHeaderLength"),
        ((4).to_bytes(8, "little") + b"{no}", "InvalidHeaderDeserialization"),
    ],
)
def test_damaged_headers_fail_with_safetensors_names(
    tmp_path: Path, blob: bytes, name: str
) -> None:
    spec = write_model_dir(tmp_path, size=8192, files=1)
    (tmp_path / spec.files[0].name).write_bytes(blob)
    with pytest.raises(SafetensorError, match=f"Error while deserializing header: {name}"):
        load_weights(spec, bandwidth=FAST, cancel=threading.Event())


def test_kv_bytes_per_token_follows_the_architecture() -> None:
    assert kv_bytes_per_token(BUILTIN_CONFIG) == 2 * 4 * 4 * 64 * 2
    llama8b = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
               "hidden_size": 4096, "torch_dtype": "bfloat16"}  # fmt: skip
    assert kv_bytes_per_token(llama8b) == 128 * 1024


def test_builtin_model_has_no_files() -> None:
    spec = builtin_model()
    assert spec.files == () and spec.max_model_len == 4096 and spec.weight_bytes == 0
