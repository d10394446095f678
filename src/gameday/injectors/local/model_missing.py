"""model-missing (InferenceModelLoading): a weight file of the server's model is gone.

The ModelInferenceFailure runbook's "Model Loading Failures" (30% of its cases): model
not found, files missing from the model volume. One weight file (``file``, or the first
one the safetensors index names, else the first ``*.safetensors`` file) is moved aside
within the model directory and the server is restarted, as a rollout or a crash would.
Its model load fails as vLLM 0.32's does, in the engine core:

- a shard of a sharded model: ``FileNotFoundError: Weight files referenced in index but
  missing: {'<path>'}``;
- the only weight file: ``RuntimeError: Cannot find any model weights with `<dir>```.

Each is followed by ``RuntimeError: Engine core initialization failed. See root cause
above. ...``; the process exits 1 and the supervisor keeps restarting it
(CrashLoopBackOff) until the fault is reverted and the file is back, when the next
restart loads the model.

The undo record (move the file back) is in the journal before the file moves; the file
stays on the same filesystem, so both moves are atomic renames and ``gameday cleanup``
restores it after a crash of the harness. The model directory is the local target's
``server.model`` (``{model_dir}`` in the server's command). The helpers here —
choosing the weight file, the saved name — are shared with ``model-corrupt``.
"""

from __future__ import annotations

import os

from gameday.core.undo import RestoreFile
from gameday.injectors.base import Injector, faults
from gameday.targets.local.model_files import ModelFileSpec, model_dir_of, saved_path, weight_file
from gameday.targets.local.target import LocalTarget

__all__ = ["ModelMissing", "ModelMissingSpec"]


class ModelMissingSpec(ModelFileSpec):
    """Move one weight file out of the server's model directory for the fault's duration."""


@faults.register("model-missing")
class ModelMissing(Injector[ModelMissingSpec, LocalTarget]):
    Params = ModelMissingSpec
    target_kinds = frozenset({"local"})
    runbook = "InferenceModelLoading"
    summary = (
        "Move a weight file of the server's model aside; the restarted server fails its "
        "model load (vLLM: a shard the index names is missing, or no weights at all)."
    )

    @classmethod
    def describe(cls, spec: ModelMissingSpec) -> str:
        which = spec.file or "the first weight file of the index"
        restart = ", then restart the server (its model load fails: weight files missing)"
        return f"move {which} of the server's model directory aside" + (
            restart if spec.restart_server else ""
        )

    def apply(self) -> dict[str, str]:
        original = weight_file(model_dir_of(self.target), self.spec.file)
        saved = saved_path(original, self.ctx.changes.run_id)

        supervisor = self.target.require_supervisor() if self.spec.restart_server else None
        self.ctx.changes.record(RestoreFile(original=str(original), saved_at=str(saved)))
        os.replace(original, saved)
        if supervisor is not None:
            # the running server read its weights at startup; the next start will not find them
            supervisor.restart()
        return {"file": str(original), "moved to": str(saved)}
