"""GPU mode on a real NVIDIA GPU: NVML's free-memory check and KV cache in CUDA memory."""

from __future__ import annotations

import re

import pytest

from gameday.sim.cuda import CudaDevice
from gameday.sim.memory import nvml_memory
from tests.integration.sim.support import StartSim

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gpu,
    pytest.mark.skipif(nvml_memory() is None, reason="no NVIDIA GPU"),
]


def test_cuda_allocations_show_in_free_memory() -> None:
    with CudaDevice(0) as gpu:
        free_before, total = gpu.mem_get_info()
        block = gpu.alloc(512 * 2**20)
        gpu.copy_from_host(block, bytearray(b"\x01" * 4096))
        free_during, _ = gpu.mem_get_info()
        assert free_before - free_during >= 512 * 2**20
        gpu.free(block)
        free_after, _ = gpu.mem_get_info()
        assert free_after > free_during
        assert total > 0 and gpu.name


def test_the_kv_cache_is_allocated_on_the_gpu(start_sim: StartSim) -> None:
    mem = nvml_memory()
    assert mem is not None
    sim = start_sim("--gpu-memory-utilization", "0.05")
    (info,) = sim.metrics()["gameday_sim_info"].samples
    assert info.labels["kv_cache_backend"] == "cuda"
    kv_bytes = sim.value("gameday_sim_kv_cache_bytes")
    assert 0 < kv_bytes <= mem.total * 0.05
    after = nvml_memory()
    assert after is not None and mem.free - after.free >= kv_bytes * 0.9
    assert sim.chat(max_tokens=3).status_code == 200


def test_memory_held_by_another_process_is_vllms_startup_error(start_sim: StartSim) -> None:
    with CudaDevice(0) as hog:
        free, total = hog.mem_get_info()
        # Leave less than half of the card free, then ask for 90 % of it.
        hog.alloc(int(free - total * 0.4))
        sim = start_sim("--gpu-memory-utilization", "0.9", wait=False)
        assert sim.wait_exit(timeout=30) == 1
    assert re.search(
        r"ValueError: Free memory on device cuda:0 \(\d+\.\d+/\d+\.\d+ GiB\) on startup is less "
        r"than desired GPU memory utilization \(0\.9, \d+\.\d+ GiB\)\. Decrease GPU memory "
        r"utilization or reduce GPU memory used by other processes\.",
        sim.log(),
    )
