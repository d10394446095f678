"""GPU series through NVML, under dcgm-exporter's names, for the local tier's Prometheus.

dcgm-exporter publishes ``DCGM_FI_DEV_FB_USED``/``_FREE`` (MiB) and
``DCGM_FI_DEV_GPU_UTIL`` (%) with labels ``gpu``, ``UUID``, ``device``,
``modelName`` and ``Hostname``; alert rules written against them then work on a
cluster and here alike. The values are NVML's own readings; only the exporter
is ours (reports say so).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["DcgmCollector", "nvml_device_count"]

LABELS = ["gpu", "UUID", "device", "modelName", "Hostname"]
MIB = 2**20


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def nvml_device_count() -> int:
    """GPUs NVML sees here (0 without a driver or nvidia-ml-py)."""
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


class DcgmCollector(Collector):
    """Reads every GPU at each scrape; NVML stays initialised for the collector's life."""

    def __init__(self) -> None:
        import pynvml

        self.nvml = pynvml
        pynvml.nvmlInit()
        self.hostname = socket.gethostname()

    def close(self) -> None:
        self.nvml.nvmlShutdown()

    def collect(self) -> Iterator[Metric]:
        nvml = self.nvml
        used = GaugeMetricFamily(
            "DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", labels=LABELS
        )
        free = GaugeMetricFamily(
            "DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", labels=LABELS
        )
        util = GaugeMetricFamily("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", labels=LABELS)
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            labels = [
                str(index),
                _text(nvml.nvmlDeviceGetUUID(handle)),
                f"nvidia{index}",
                _text(nvml.nvmlDeviceGetName(handle)),
                self.hostname,
            ]
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            used.add_metric(labels, memory.used / MIB)
            free.add_metric(labels, memory.free / MIB)
            util.add_metric(labels, float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        yield used
        yield free
        yield util
