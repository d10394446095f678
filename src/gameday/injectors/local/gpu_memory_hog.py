"""gpu-memory-hog (RUNTIME001): another process takes the GPU memory the server needs.

A helper process allocates GPU memory through the CUDA driver — ``gib``, or all
but ``leave_gib`` of what is free — and holds it for the fault's duration.
Memory a running server already holds is not taken from it; the damage comes
when the server (re)starts and finds too little free: the simulator, like
vLLM, refuses with "Free memory on device ... is less than desired GPU memory
utilization". So by default the server is restarted once the memory is held,
as a crash or a rollout would, and it crash-loops until the hog is gone.
"""

from __future__ import annotations

import sys

from pydantic import Field, model_validator

from gameday.core.errors import InjectionError
from gameday.core.processes import Spawned, spawn
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec, Requirement
from gameday.targets.local.target import LocalTarget

__all__ = ["GpuMemoryHog", "GpuMemoryHogSpec"]

GIB = 2**30


class GpuMemoryHogSpec(FaultSpec):
    device: int = Field(default=0, ge=0)
    gib: float | None = Field(default=None, gt=0)
    """Take this much GPU memory."""
    leave_gib: float = Field(default=1.0, ge=0)
    """Without ``gib``: take everything free but this much."""
    restart_server: bool = True
    """Restart the server once the memory is held (it then fails to start)."""

    @model_validator(mode="after")
    def _amount(self) -> GpuMemoryHogSpec:
        if self.gib is not None and self.leave_gib != 1.0:
            raise ValueError("give gib or leave_gib, not both")
        return self


@faults.register("gpu-memory-hog")
class GpuMemoryHog(Injector[GpuMemoryHogSpec, LocalTarget]):
    Params = GpuMemoryHogSpec
    target_kinds = frozenset({"local"})
    requires = frozenset({Requirement.NVIDIA_GPU})
    runbook = "RUNTIME001"
    summary = "A helper process holds the GPU's memory; the restarted server cannot get its share."

    holder: Spawned | None = None

    @classmethod
    def describe(cls, spec: GpuMemoryHogSpec) -> str:
        amount = f"{spec.gib:g} GiB" if spec.gib else f"all but {spec.leave_gib:g} GiB"
        restart = ", then restart the server" if spec.restart_server else ""
        return f"hold {amount} of cuda:{spec.device} from another process{restart}"

    def _hold(self) -> int:
        from gameday.sim.memory import nvml_memory

        memory = nvml_memory()
        if memory is None:
            raise InjectionError("no NVIDIA GPU: NVML found none")
        if self.spec.gib is not None:
            wanted = int(self.spec.gib * GIB)
        else:
            wanted = memory.free - int(self.spec.leave_gib * GIB)
        if wanted <= 0:
            raise InjectionError(
                f"only {memory.free / GIB:.1f} GiB free on cuda:{self.spec.device}"
            )
        self.holder = spawn(
            [
                sys.executable,
                "-m",
                "gameday.injectors.gpu_holder",
                str(self.spec.device),
                str(wanted),
            ],
            name="gpu-memory-hog",
            changes=self.ctx.changes,
        )
        assert self.holder.popen.stdout is not None and self.holder.popen.stderr is not None
        line = self.holder.popen.stdout.readline().decode().split()  # "ready <bytes>" once held
        if not line or line[0] != "ready":
            error = self.holder.popen.stderr.read().decode().strip()
            raise InjectionError(f"could not hold GPU memory: {error or 'the holder exited'}")
        return int(line[1])

    def apply(self) -> dict[str, str]:
        supervisor = self.target.require_supervisor()
        held: list[int] = []
        if self.spec.restart_server:
            # the memory is taken between the server's exit (its memory freed) and its restart
            supervisor.restart_through(lambda: held.append(self._hold()), timeout=120)
        else:
            held.append(self._hold())
        assert self.holder is not None
        return {
            "held": f"{held[0] / GIB:.1f} GiB on cuda:{self.spec.device}",
            "holder pid": str(self.holder.pid),
        }
