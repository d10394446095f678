"""The server's model directory as the local faults that act on one of its files see it
(model-missing, model-corrupt, model-config): the parameters they share, where the
directory is (and whether the server reads it), which weight file to act on, and where
a file is kept while a fault holds it."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pydantic import field_validator

from gameday.core.errors import InjectionError
from gameday.models.layout import INDEX, weight_files
from gameday.scenario.model import FaultSpec
from gameday.targets.local.target import LocalTarget

__all__ = ["ModelFileSpec", "model_dir_of", "saved_path", "weight_file"]


class ModelFileSpec(FaultSpec):
    """Parameters of the faults that act on one file of the server's model directory."""

    file: str | None = None
    """The weight file, relative to the model directory. Default: the first file that
    ``model.safetensors.index.json`` names (else the first ``*.safetensors`` by name)."""
    restart_server: bool = True
    """Restart the server once the file is changed (the documented failure happens at
    model load). False only changes the file for the next restart, whenever that comes."""

    @field_validator("file")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = PurePosixPath(value)
        if not value.strip() or path.is_absolute() or ".." in path.parts or value.endswith("/"):
            raise ValueError(
                f"file must be a path inside the model directory, like "
                f"model-00001-of-00002.safetensors; got {value!r}"
            )
        return value


def model_dir_of(target: LocalTarget) -> Path:
    """The server's model directory, or an InjectionError saying how to give it one."""
    model_dir = target.model_dir
    if model_dir is None:
        raise InjectionError(
            "the server has no model directory: give target.local.server.model and pass "
            '"{model_dir}" in the server command (e.g. --model-dir "{model_dir}")'
        )
    if not model_dir.is_dir():
        raise InjectionError(f"the server's model directory {model_dir} does not exist")
    command = target.spec.server.command
    # the sim and vllm engines always pass it; a command of the scenario's own must
    if command is not None and not any(
        "{model_dir}" in arg or str(model_dir) in arg for arg in command
    ):
        # the server would never read the file: the fault would change nothing it uses
        raise InjectionError(
            f'the server command does not pass its model directory ("{{model_dir}}" or '
            f"{model_dir}): {' '.join(command)}"
        )
    return model_dir


def weight_file(model_dir: Path, name: str | None) -> Path:
    """The weight file ``name`` of ``model_dir``, or by default the first one it lists."""
    if name is None:
        name = _first_weight_file(model_dir)
    path = model_dir / name
    if not path.is_file():
        raise InjectionError(f"{path} is not a file of the model directory")
    return path


def _first_weight_file(model_dir: Path) -> str:
    try:
        files = weight_files(model_dir)
    except (OSError, ValueError) as error:
        raise InjectionError(f"cannot read {model_dir / INDEX}: {error}") from None
    if not files:
        raise InjectionError(f"{model_dir} has no weight file (no {INDEX}, no *.safetensors)")
    return files[0]


def saved_path(original: Path, run_id: str) -> Path:
    """Where ``original`` is kept during the fault: beside it (the same filesystem, so a
    rename moves it back atomically), hidden, and not named like a weight file."""
    return original.with_name(f".{original.name}.gameday-{run_id}")
