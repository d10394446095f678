"""model-config: the model's config.json is changed (a bad model push); the server restarts.

Some of vLLM's start-up failures are the model's own configuration, not its weights: a
config whose classes live in the repository's Python files (``auto_map``), which vLLM
refuses without ``--trust-remote-code`` (RemoteCodeNotTrusted); a context length below
what the deployment asks for (MaxSeqLenTooLarge). ``set`` is merged into config.json and
``remove`` drops keys; the server is restarted and fails on it until the fault is
reverted, when the original file is back and the next restart loads the model.

As with model-missing, the original is moved aside within the model directory (an
atomic rename, journaled first) and an edited copy takes its place, so ``gameday
cleanup`` puts it back after a crash of the harness.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import Field, JsonValue, model_validator

from gameday.core.errors import InjectionError
from gameday.core.undo import RestoreFile
from gameday.injectors.base import Injector, faults
from gameday.models.layout import CONFIG
from gameday.scenario.model import FaultSpec
from gameday.targets.local.model_files import model_dir_of, saved_path
from gameday.targets.local.target import LocalTarget

__all__ = ["ModelConfig", "ModelConfigSpec"]

REMOTE_CODE = {
    "model_type": "gameday-custom",
    "architectures": ["GamedayCustomForCausalLM"],
    "auto_map": {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModelForCausalLM": "modeling_custom.GamedayCustomForCausalLM",
    },
}
"""What a model with its own modelling code declares (a custom architecture)."""


class ModelConfigSpec(FaultSpec):
    set: dict[str, JsonValue] = Field(default_factory=dict)
    """Keys merged into config.json: ``{max_position_embeddings: 128}``."""
    remove: list[str] = Field(default_factory=list)
    """Keys dropped from config.json."""
    needs_remote_code: bool = False
    """Shorthand: make the config a custom architecture with ``auto_map`` (code in the
    repository), which vLLM loads only with --trust-remote-code."""
    restart_server: bool = True
    """Restart the server once the file is changed (vLLM reads it at start-up)."""

    @model_validator(mode="after")
    def _changes_something(self) -> ModelConfigSpec:
        if not (self.set or self.remove or self.needs_remote_code):
            raise ValueError("give set, remove or needs_remote_code: true")
        return self

    def edited(self, config: dict[str, Any]) -> dict[str, Any]:
        changed = {k: v for k, v in config.items() if k not in self.remove}
        changed.update(REMOTE_CODE if self.needs_remote_code else {})
        changed.update(self.set)
        return changed


@faults.register("model-config")
class ModelConfig(Injector[ModelConfigSpec, LocalTarget]):
    Params = ModelConfigSpec
    target_kinds = frozenset({"local"})
    summary = (
        "Change the model's config.json (keys set or removed, or a custom architecture "
        "needing remote code); the restarted server fails on it."
    )

    @classmethod
    def describe(cls, spec: ModelConfigSpec) -> str:
        changes = [f"set {', '.join(spec.set)}"] if spec.set else []
        changes += [f"remove {', '.join(spec.remove)}"] if spec.remove else []
        changes += ["make it a custom architecture (auto_map)"] if spec.needs_remote_code else []
        restart = ", then restart the server" if spec.restart_server else ""
        return f"edit the model's config.json: {'; '.join(changes)}{restart}"

    def apply(self) -> dict[str, str]:
        original = model_dir_of(self.target) / CONFIG
        try:
            config = json.loads(original.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InjectionError(f"cannot read {original}: {error}") from None
        if not isinstance(config, dict):
            raise InjectionError(f"{original} does not hold a JSON object")
        saved = saved_path(original, self.ctx.changes.run_id)
        supervisor = self.target.require_supervisor() if self.spec.restart_server else None
        self.ctx.changes.record(RestoreFile(original=str(original), saved_at=str(saved)))
        os.replace(original, saved)
        original.write_text(json.dumps(self.spec.edited(config), indent=2) + "\n", "utf-8")
        if supervisor is not None:
            supervisor.restart()  # vLLM read the config at start-up; the next start will not
        return {"file": str(original), "original kept at": str(saved)}
