"""Another process holding GPU memory: ``python -m gameday.injectors.gpu_holder DEVICE BYTES``.

It allocates BYTES on the device through the CUDA driver (1 GiB at a time, so
it can stop short when the device runs out), prints ``ready <bytes>`` once it
holds them, and keeps them until SIGTERM. nvidia-smi shows it as a process of
its own, exactly as a stray training job or a second server would be.
"""

from __future__ import annotations

import signal
import sys

CHUNK = 2**30


def main(argv: list[str]) -> int:
    from gameday.sim.cuda import CudaDevice, CudaError, CudaUnavailable

    device_index, wanted = int(argv[0]), int(argv[1])
    try:
        device = CudaDevice(device_index)
    except CudaUnavailable as error:
        print(f"no CUDA device: {error}", file=sys.stderr, flush=True)
        return 1
    held = 0
    while held < wanted:
        size = min(CHUNK, wanted - held)
        try:
            device.alloc(size)
        except CudaError as error:
            if held == 0:
                print(
                    f"cannot allocate on cuda:{device_index}: {error}", file=sys.stderr, flush=True
                )
                return 1
            break  # the device is full: hold what we got
        held += size
    print(f"ready {held}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    device.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
