"""Where the KV cache really lives: GPU memory through CUDA, or host memory standing in for it.

CPU mode allocates the KV budget in host memory and writes every page, so the process's
resident set really holds it (a memory-cgroup OOM kill sees it). GPU mode first checks free
memory through NVML the way vLLM checks it at startup, then allocates the budget on the
device through the CUDA driver, so ``nvidia-smi`` shows it.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from typing import Any

from gameday.sim.cuda import CudaDevice, DeviceAllocation

__all__ = [
    "GiB",
    "GpuMemory",
    "KVCacheMemory",
    "allocate_host",
    "check_free_memory",
    "nvml_memory",
]

GiB = 2**30


def allocate_host(nbytes: int) -> bytearray:
    """``nbytes`` of host memory with every page written, so it counts in the RSS."""
    buf = bytearray(nbytes)
    page = mmap.PAGESIZE
    # One byte per page is enough to fault each page in; the slice write runs in C.
    buf[::page] = b"\x01" * len(range(0, nbytes, page))
    return buf


@dataclass(frozen=True)
class GpuMemory:
    """A GPU's memory as NVML reports it."""

    index: int
    name: str
    free: int
    total: int


def _nvml_handle(nvml: Any) -> tuple[Any, int]:
    # NVML ignores CUDA_VISIBLE_DEVICES; follow it to the device CUDA calls 0.
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if visible.startswith(("GPU-", "MIG-")):
        return nvml.nvmlDeviceGetHandleByUUID(visible), 0
    index = int(visible) if visible.isdigit() else 0
    return nvml.nvmlDeviceGetHandleByIndex(index), index


def nvml_memory() -> GpuMemory | None:
    """Free and total memory of the GPU the simulator would use; None when NVML finds none."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        if pynvml.nvmlDeviceGetCount() == 0:
            return None
        handle, index = _nvml_handle(pynvml)
        info = pynvml.nvmlDeviceGetMemoryInfo(handle)
        name = pynvml.nvmlDeviceGetName(handle)
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        return GpuMemory(index=index, name=str(name), free=int(info.free), total=int(info.total))
    except pynvml.NVMLError:
        return None
    finally:
        pynvml.nvmlShutdown()


def check_free_memory(mem: GpuMemory, utilization: float, device: str = "cuda:0") -> int:
    """The bytes vLLM would claim (``total x utilization``); vLLM's ValueError if not free."""
    requested = mem.total * utilization
    if mem.free < requested:

        def gib(n: float) -> float:
            return round(n / GiB, 2)

        raise ValueError(
            f"Free memory on device {device} ({gib(mem.free)}/{gib(mem.total)} GiB) on startup "
            f"is less than desired GPU memory utilization ({utilization}, {gib(requested)} GiB). "
            "Decrease GPU memory utilization or reduce GPU memory used by other processes."
        )
    return int(requested)


@dataclass
class KVCacheMemory:
    """The KV cache's real bytes: host memory (``cpu-simulated``) or device memory (``cuda``)."""

    backend: str
    nbytes: int
    device: str
    host: bytearray | None = None
    gpu: CudaDevice | None = None
    allocations: list[DeviceAllocation] = field(default_factory=list)

    @classmethod
    def on_host(cls, nbytes: int) -> KVCacheMemory:
        return cls(backend="cpu-simulated", nbytes=nbytes, device="cpu", host=allocate_host(nbytes))

    def close(self) -> None:
        self.host = None
        if self.gpu is not None:
            self.gpu.close()
            self.gpu = None
            self.allocations.clear()
