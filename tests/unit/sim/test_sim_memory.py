"""KV-cache memory: host pages really written, vLLM's free-memory check, CUDA's absence."""

from __future__ import annotations

import os
import re

import psutil
import pytest

from gameday.sim.cuda import CudaDriver, CudaUnavailable
from gameday.sim.memory import GiB, GpuMemory, allocate_host, check_free_memory


def test_host_kv_memory_is_resident() -> None:
    before = psutil.Process(os.getpid()).memory_info().rss
    buf = allocate_host(64 * 2**20)
    after = psutil.Process(os.getpid()).memory_info().rss
    assert len(buf) == 64 * 2**20
    assert after - before > 60 * 2**20


def test_enough_free_gpu_memory_claims_total_times_utilization() -> None:
    mem = GpuMemory(index=0, name="H100", free=70 * GiB, total=80 * GiB)
    assert check_free_memory(mem, 0.8) == int(64 * GiB)


def test_too_little_free_gpu_memory_is_vllms_error() -> None:
    mem = GpuMemory(index=0, name="T4", free=int(7.34 * GiB), total=int(15.49 * GiB))
    with pytest.raises(ValueError) as info:
        check_free_memory(mem, 0.8)
    assert str(info.value) == (
        "Free memory on device cuda:0 (7.34/15.49 GiB) on startup is less than desired GPU "
        "memory utilization (0.8, 12.39 GiB). Decrease GPU memory utilization or reduce GPU "
        "memory used by other processes."
    )


def test_a_missing_cuda_driver_is_reported_as_unavailable() -> None:
    with pytest.raises(
        CudaUnavailable, match=re.escape("libcuda-does-not-exist.so.1 cannot be loaded")
    ):
        CudaDriver("libcuda-does-not-exist.so.1")
