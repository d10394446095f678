"""engine-config: the server is restarted with a bad flag or setting, as a bad rollout does.

Many of vLLM's documented start-up failures are configuration, not hardware: a
``--max-model-len`` above what the model supports (MaxSeqLenTooLarge), a KV cache too
small for one request at the model's length (the CPU form of WeightsOutOfMemory: on a
GPU the weights leave no room for it, here ``VLLM_CPU_KVCACHE_SPACE`` does), a LoRA
adapter that is not there (LoRAAdapterNotFound). The server is stopped, started again
with ``args`` appended to its command line and ``env`` added, and crash-loops on the
engine's own error until the fault is reverted: then it restarts with the flags it had.

The change lives in the supervisor's memory only (the next start's command line and
environment): if the harness dies, the server dies with it (``gameday cleanup`` stops
it), so there is nothing on disk or in a cluster to journal.
"""

from __future__ import annotations

from pydantic import Field

from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.targets.local.target import LocalTarget

__all__ = ["EngineConfig", "EngineConfigSpec"]


class EngineConfigSpec(FaultSpec):
    args: list[str] = Field(default_factory=list)
    """Flags appended to the server's command line (the last of a repeated flag wins, in
    vLLM and the simulator alike): ``[--max-model-len, "4096"]``."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment set for the restarted server: ``{VLLM_CPU_KVCACHE_SPACE: "0.001"}``."""


@faults.register("engine-config")
class EngineConfig(Injector[EngineConfigSpec, LocalTarget]):
    Params = EngineConfigSpec
    target_kinds = frozenset({"local"})
    summary = "Restart the server with extra flags or environment (a bad rollout of its config)."

    _saved: tuple[list[str], dict[str, str]] | None = None
    """The server's own command line and environment, once apply has taken them."""

    @classmethod
    def describe(cls, spec: EngineConfigSpec) -> str:
        changes = [" ".join(spec.args)] if spec.args else []
        changes += [f"{k}={v}" for k, v in spec.env.items()]
        return f"restart the server with {', '.join(changes) or 'its own flags'}"

    def apply(self) -> dict[str, str]:
        supervisor = self.target.require_supervisor()
        command, env = list(supervisor.command), dict(supervisor.env)
        self._saved = (command, env)

        def reconfigure() -> None:
            supervisor.command = command + self.spec.args
            supervisor.env = {**env, **self.spec.env}

        supervisor.restart_through(reconfigure, timeout=60)
        return {
            "args": " ".join(self.spec.args),
            **{f"env {k}": v for k, v in self.spec.env.items()},
        }

    def revert(self) -> dict[str, str]:
        if self._saved is None:
            return {"restored": "nothing: the flags were never changed"}
        supervisor = self.target.require_supervisor()
        command, env = self._saved

        def restore() -> None:
            supervisor.command, supervisor.env = command, env

        supervisor.restart_through(restore, timeout=60)
        return {"restored": "the server's own flags and environment; restarted"}
