"""model-corrupt (InferenceModelLoading): a weight file of the server's model is damaged.

The ModelInferenceFailure runbook's "Model Loading Failures": corrupted model files,
found by "verify model file checksums" and fixed by re-downloading. One weight file
(``file``, or the first shard ``manifest.json`` lists) is damaged and the server is
restarted; its model load really reads the bytes and fails the way the loader does:

- ``flip`` (default): ``length`` bytes at ``offset`` (default: the middle of the file)
  are inverted — bit rot or a bad copy. The file still parses, and only the checksum
  tells: ``ValueError: Checksum mismatch for weight file <path>`` (files the manifest
  lists without a sha256 would load unnoticed; the fault says so).
- ``truncate``: the file is cut at ``offset`` (default: half its size) — an interrupted
  download: ``safetensors_rust.SafetensorError: Error while deserializing header:
  MetadataIncompleteBuffer``.
- ``header``: the 8-byte header length is overwritten — a file that is not safetensors
  at all: ``... Error while deserializing header: HeaderTooLarge``.

The process exits 1 and crash-loops until the fault is reverted. The intact file is
first moved aside within its directory (an atomic rename, after the undo record is in
the journal), and the damaged copy is written in its place; reverting, or ``gameday
cleanup`` after a crash of the harness, moves the intact file back byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gameday.engine.undo import RestoreFile
from gameday.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.injectors.local.model_missing import (
    MANIFEST,
    ModelFileSpec,
    model_dir_of,
    saved_path,
    weight_file,
)
from gameday.scenario.units import ByteSize, format_bytes
from gameday.targets.local.target import LocalTarget

__all__ = ["ModelCorrupt", "ModelCorruptSpec", "damage"]

Mode = Literal["flip", "truncate", "header"]
HEADER_LENGTH_BYTES = 8
"""A safetensors file starts with its JSON header's length, little-endian u64."""


class ModelCorruptSpec(ModelFileSpec):
    """Damage one weight file of the server's model directory for the fault's duration."""

    mode: Mode = "flip"
    """flip: invert bytes (the checksum fails); truncate: cut the file short (safetensors
    MetadataIncompleteBuffer); header: overwrite the header length (HeaderTooLarge)."""
    offset: ByteSize | None = None
    """flip: where the inverted bytes start; truncate: the new size. Default: the middle
    of the file."""
    length: int = Field(default=64, ge=1, le=2**20)
    """flip: how many bytes to invert."""

    @model_validator(mode="after")
    def _fits_mode(self) -> ModelCorruptSpec:
        if self.mode == "header" and self.offset is not None:
            raise ValueError("offset does not apply to mode header (it damages bytes 0-7)")
        if self.mode != "flip" and "length" in self.model_fields_set:
            raise ValueError(f"length applies to mode flip only, not {self.mode}")
        return self


def damage(path: Path, spec: ModelCorruptSpec) -> str:
    """Damage ``path`` in place as ``spec`` says; returns what was done, in words."""
    size = path.stat().st_size
    offset = size // 2 if spec.offset is None else spec.offset
    with path.open("r+b") as handle:
        if spec.mode == "flip":
            handle.seek(offset)
            chunk = handle.read(spec.length)
            handle.seek(offset)
            handle.write(bytes(b ^ 0xFF for b in chunk))
            done = f"inverted {len(chunk)} bytes at offset {offset}"
        elif spec.mode == "truncate":
            handle.truncate(offset)
            done = f"truncated from {format_bytes(size)} to {offset} bytes"
        else:
            handle.write(b"\xff" * HEADER_LENGTH_BYTES)
            done = "overwrote the 8-byte header length with 0xff"
        handle.flush()
        os.fsync(handle.fileno())
    return done


def _manifest_sha256(model_dir: Path, original: Path) -> str | None:
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        relative = original.relative_to(model_dir).as_posix()
        return next(
            (str(f["sha256"]) for f in manifest["files"] if f.get("path") == relative), None
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


@faults.register("model-corrupt")
class ModelCorrupt(Injector[ModelCorruptSpec, LocalTarget]):
    Params = ModelCorruptSpec
    target_kinds = frozenset({"local"})
    runbook = "InferenceModelLoading"
    summary = (
        "Damage a weight file of the model directory (flipped bytes, truncated, bad header); "
        "the restarted server fails its model load with the loader's error."
    )

    @classmethod
    def describe(cls, spec: ModelCorruptSpec) -> str:
        which = spec.file or "the first weight file of the manifest"
        at = "the middle" if spec.offset is None else f"offset {spec.offset}"
        how = {
            "flip": f"invert {spec.length} bytes at {at} of {which} (its checksum fails)",
            "truncate": f"truncate {which} at {at} (safetensors MetadataIncompleteBuffer)",
            "header": f"overwrite the header length of {which} (safetensors HeaderTooLarge)",
        }[spec.mode]
        restart = ", then restart the server" if spec.restart_server else ""
        return f"{how}, keeping the intact file aside{restart}"

    def apply(self) -> dict[str, str]:
        model_dir = model_dir_of(self.target)
        original = weight_file(model_dir, self.spec.file)
        size = original.stat().st_size
        if self.spec.offset is not None and self.spec.offset >= size:
            raise InjectionError(
                f"offset {self.spec.offset} is beyond the end of {original} ({size} bytes)"
            )
        saved = saved_path(original, self.ctx.changes.run_id)
        details = {"file": str(original), "intact copy": str(saved), "mode": self.spec.mode}
        expected = _manifest_sha256(model_dir, original)
        if self.spec.mode == "flip" and expected is None:
            details["checksum"] = "none in manifest.json: the server may load it unnoticed"
            self.ctx.note(
                f"{original.name} has no sha256 in manifest.json: flipped bytes go unnoticed",
                level="warning",
            )

        supervisor = self.target.require_supervisor() if self.spec.restart_server else None
        self.ctx.changes.record(RestoreFile(original=str(original), saved_at=str(saved)))
        # moved first, then copied: whenever the harness dies, the file aside is whole
        os.replace(original, saved)
        shutil.copy2(saved, original)
        details["damage"] = damage(original, self.spec)
        if supervisor is not None:
            # the running server read its weights at startup; the next start reads the damage
            supervisor.restart()
        return details
