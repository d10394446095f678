"""model-corrupt (InferenceModelLoading): a weight file of the server's model is damaged.

The ModelInferenceFailure runbook's "Model Loading Failures": corrupted model files,
fixed by re-downloading. One weight file (``file``, or the first one the safetensors
index names, else the first ``*.safetensors`` file) is damaged and the server is
restarted; its model load opens the file with safetensors and fails as vLLM 0.32's does,
in the engine core (then ``RuntimeError: Engine core initialization failed. ...``):

- ``truncate`` (default): the file is cut at ``offset`` (default: half its size), an
  interrupted download: ``safetensors_rust.SafetensorError: Error while deserializing
  header: incomplete metadata, file not fully covered`` (Python names the class
  ``safetensors._safetensors_rust.SafetensorError``);
- ``header``: the 8-byte header length is overwritten, a file that is not safetensors
  at all: ``... Error while deserializing header: header too large``;
- ``flip``: ``length`` bytes at ``offset`` (default: the middle of the file) are
  inverted, bit rot or a bad copy. Inside a tensor this goes unnoticed: vLLM keeps no
  checksum and loads the bytes as they are (so does the simulator); the server starts
  and serves, and the fault says so. A scenario must not expect a failure from it.

A noticed damage makes the process exit 1 and crash-loop until the fault is reverted.
The intact file is first moved aside within its directory (an atomic rename, after the
undo record is in the journal), and the damaged copy is written in its place;
reverting, or ``gameday cleanup`` after a crash of the harness, moves the intact file
back byte for byte.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gameday.core.errors import InjectionError
from gameday.core.undo import RestoreFile
from gameday.injectors.base import Injector, faults
from gameday.scenario.units import ByteSize, format_bytes
from gameday.targets.local.model_files import (
    ModelFileSpec,
    model_dir_of,
    saved_path,
    weight_file,
)
from gameday.targets.local.target import LocalTarget

__all__ = ["ModelCorrupt", "ModelCorruptSpec", "damage"]

Mode = Literal["truncate", "header", "flip"]
HEADER_LENGTH_BYTES = 8
"""A safetensors file starts with its JSON header's length, little-endian u64."""


class ModelCorruptSpec(ModelFileSpec):
    """Damage one weight file of the server's model directory for the fault's duration."""

    mode: Mode = "truncate"
    """truncate: cut the file short (safetensors "incomplete metadata, file not fully
    covered"); header: overwrite the header length ("header too large"); flip: invert
    bytes, which vLLM does not notice (no checksum): the server loads them and serves."""
    offset: ByteSize | None = None
    """truncate: the new size; flip: where the inverted bytes start. Default: the middle
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


@faults.register("model-corrupt")
class ModelCorrupt(Injector[ModelCorruptSpec, LocalTarget]):
    Params = ModelCorruptSpec
    target_kinds = frozenset({"local"})
    runbook = "InferenceModelLoading"
    summary = (
        "Damage a weight file of the model directory (truncated, bad header, flipped bytes); "
        "the restarted server fails its model load with safetensors' error (flipped bytes "
        "inside a tensor go unnoticed: vLLM keeps no checksum)."
    )

    @classmethod
    def describe(cls, spec: ModelCorruptSpec) -> str:
        which = spec.file or "the first weight file of the index"
        at = "the middle" if spec.offset is None else f"offset {spec.offset}"
        how = {
            "truncate": f"truncate {which} at {at} (safetensors: incomplete metadata)",
            "header": f"overwrite the header length of {which} (safetensors: header too large)",
            "flip": f"invert {spec.length} bytes at {at} of {which} (unnoticed: no checksum)",
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
        if self.spec.mode == "flip":
            details["noticed"] = "no: vLLM keeps no checksum; the server loads the bytes as is"
            self.ctx.note(
                f"flipped bytes in {original.name} go unnoticed: vLLM (and the simulator) "
                "checks no checksum, so the server starts and serves",
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
