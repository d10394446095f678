"""Hold the memory of every GPU in sight: the default command of the Kubernetes
gpu-memory-hog fault's pods.

It runs in the hog pod as ``python3 -c <this file's text>``, so it needs nothing but a
Python 3 and the CUDA driver (``libcuda.so.1``, which the NVIDIA container runtime
mounts into a container whose environment has ``NVIDIA_VISIBLE_DEVICES``): no
gameday, no torch. On each device it allocates the free memory but
``GAMEDAY_LEAVE_GIB`` (1 GiB at a time, so it stops short when the device runs out),
prints what it holds, creates :data:`READY_FILE` (the pod's readiness probe looks for
it; ``GAMEDAY_READY_FILE`` names another), prints ``ready`` and waits for SIGTERM. The
memory goes back when the process exits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

CHUNK = 2**30
GIB = 2**30
READY_FILE = "/tmp/gameday-gpu-memory-held"  # noqa: S108 (the hog container's own /tmp)


def _check(rc: int, call: str) -> None:
    if rc != 0:
        raise RuntimeError(f"{call} failed with CUDA error {rc}")


def hold(cuda: ctypes.CDLL, leave: int) -> list[str]:
    """Allocate all but ``leave`` bytes on every device; one line per device."""
    _check(cuda.cuInit(0), "cuInit")
    count = ctypes.c_int()
    _check(cuda.cuDeviceGetCount(ctypes.byref(count)), "cuDeviceGetCount")
    if count.value == 0:
        raise RuntimeError("the CUDA driver sees no device")
    lines = []
    for index in range(count.value):
        device = ctypes.c_int()
        _check(cuda.cuDeviceGet(ctypes.byref(device), index), "cuDeviceGet")
        context = ctypes.c_void_p()
        _check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device), "cuCtxRetain")
        _check(cuda.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        _check(cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), "cuMemGetInfo")
        wanted, held = free.value - leave, 0
        while wanted - held > 0:
            pointer = ctypes.c_uint64()
            size = ctypes.c_size_t(min(CHUNK, wanted - held))
            if cuda.cuMemAlloc_v2(ctypes.byref(pointer), size) != 0:
                break  # the device is full: hold what we got
            held += size.value
        lines.append(
            f"cuda:{index}: holding {held / GIB:.2f} GiB of {total.value / GIB:.2f} GiB "
            f"({free.value / GIB:.2f} GiB were free)"
        )
    return lines


def main() -> int:
    leave = int(float(os.environ.get("GAMEDAY_LEAVE_GIB", "1")) * GIB)
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as error:
        print(
            f"no CUDA driver in this container ({error}): does the node's container runtime "
            "honour NVIDIA_VISIBLE_DEVICES for pods that request no GPU?",
            file=sys.stderr,
            flush=True,
        )
        return 1
    try:
        for line in hold(cuda, leave):
            print(line, flush=True)
    except RuntimeError as error:
        print(f"cannot hold GPU memory: {error}", file=sys.stderr, flush=True)
        return 1
    # as PID 1 of its container SIGTERM would be ignored: wait for it explicitly
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    Path(os.environ.get("GAMEDAY_READY_FILE", READY_FILE)).touch()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


if __name__ == "__main__":
    sys.exit(main())
