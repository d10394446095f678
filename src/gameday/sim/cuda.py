"""Real GPU memory through the CUDA driver API (``libcuda.so.1``) over ctypes, without torch.

What is allocated here shows in ``nvidia-smi`` under this process until it is freed or the
process exits::

    with CudaDevice(0) as gpu:
        free, total = gpu.mem_get_info()
        block = gpu.alloc(2 * 2**30)
        ...
        gpu.free(block)

The simulator puts its KV cache (and a copy of its weights) here in GPU mode; the
``gpu-memory-hog`` fault takes memory the same way.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from types import TracebackType

__all__ = [
    "CUDA_ERROR_OUT_OF_MEMORY",
    "CudaDevice",
    "CudaDriver",
    "CudaError",
    "CudaUnavailable",
    "DeviceAllocation",
]

CUDA_SUCCESS = 0
CUDA_ERROR_OUT_OF_MEMORY = 2
CUDA_ERROR_NO_DEVICE = 100

_CUresult = ctypes.c_int
_CUdevice = ctypes.c_int
_CUdeviceptr = ctypes.c_uint64
_CUcontext = ctypes.c_void_p


class CudaUnavailable(RuntimeError):
    """No usable CUDA driver here (library missing, or no device)."""


class CudaError(RuntimeError):
    """A CUDA driver call failed; the message reads like torch's ``CUDA error: ...``."""

    display_name = "RuntimeError"

    def __init__(self, call: str, code: int, name: str, description: str) -> None:
        self.call = call
        self.code = code
        self.name = name
        super().__init__(f"CUDA error: {description}")


@dataclass(frozen=True)
class DeviceAllocation:
    """A block of device memory from :meth:`CudaDevice.alloc`."""

    ptr: int
    nbytes: int
    device_index: int


class CudaDriver:
    """The driver library, initialised (``cuInit``), with the prototypes we call."""

    def __init__(self, library: str = "libcuda.so.1") -> None:
        try:
            lib = ctypes.CDLL(library)
        except OSError as exc:
            raise CudaUnavailable(
                f"CUDA driver library {library} cannot be loaded: {exc}"
            ) from None
        self._lib = lib
        p = ctypes.POINTER
        self._declare("cuInit", ctypes.c_uint)
        self._declare("cuDeviceGetCount", p(ctypes.c_int))
        self._declare("cuDeviceGet", p(_CUdevice), ctypes.c_int)
        self._declare("cuDeviceGetName", ctypes.c_char_p, ctypes.c_int, _CUdevice)
        self._declare("cuDeviceTotalMem_v2", p(ctypes.c_size_t), _CUdevice)
        self._declare("cuDevicePrimaryCtxRetain", p(_CUcontext), _CUdevice)
        # _v2 since CUDA 11; the unversioned symbol before.
        self.primary_ctx_release = "cuDevicePrimaryCtxRelease_v2"
        if not hasattr(lib, self.primary_ctx_release):
            self.primary_ctx_release = "cuDevicePrimaryCtxRelease"
        self._declare(self.primary_ctx_release, _CUdevice)
        self._declare("cuCtxSetCurrent", _CUcontext)
        self._declare("cuMemGetInfo_v2", p(ctypes.c_size_t), p(ctypes.c_size_t))
        self._declare("cuMemAlloc_v2", p(_CUdeviceptr), ctypes.c_size_t)
        self._declare("cuMemFree_v2", _CUdeviceptr)
        self._declare("cuMemcpyHtoD_v2", _CUdeviceptr, ctypes.c_void_p, ctypes.c_size_t)
        self._declare("cuGetErrorName", _CUresult, p(ctypes.c_char_p))
        self._declare("cuGetErrorString", _CUresult, p(ctypes.c_char_p))
        rc = lib.cuInit(0)
        if rc != CUDA_SUCCESS:
            err = self.error("cuInit", rc)
            raise CudaUnavailable(f"cuInit failed: {err} ({err.name})")

    def _declare(self, name: str, *argtypes: object) -> None:
        fn = getattr(self._lib, name)
        fn.argtypes = list(argtypes)
        fn.restype = _CUresult

    def call(self, name: str, *args: object) -> None:
        """Call driver function ``name``; raise :class:`CudaError` unless it succeeds."""
        rc = getattr(self._lib, name)(*args)
        if rc != CUDA_SUCCESS:
            raise self.error(name, rc)

    def error(self, call: str, code: int) -> CudaError:
        name = ctypes.c_char_p()
        text = ctypes.c_char_p()
        self._lib.cuGetErrorName(code, ctypes.byref(name))
        self._lib.cuGetErrorString(code, ctypes.byref(text))
        return CudaError(
            call,
            code,
            (name.value or b"CUDA_ERROR_UNKNOWN").decode(),
            (text.value or f"error {code}".encode()).decode(),
        )

    def device_count(self) -> int:
        count = ctypes.c_int()
        self.call("cuDeviceGetCount", ctypes.byref(count))
        return count.value


class CudaDevice:
    """One GPU through its primary context; frees what it allocated on :meth:`close`."""

    def __init__(self, index: int = 0, driver: CudaDriver | None = None) -> None:
        self.driver = driver or CudaDriver()
        self.index = index
        dev = _CUdevice()
        self.driver.call("cuDeviceGet", ctypes.byref(dev), index)
        self._dev = dev
        ctx = _CUcontext()
        self.driver.call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)
        self._ctx = ctx
        self._lock = threading.Lock()
        self._allocations: dict[int, DeviceAllocation] = {}
        self._closed = False

    def _make_current(self) -> None:
        # The context is current per thread; callers may come from any thread.
        if self._closed:
            raise RuntimeError(f"CUDA device {self.index} is closed")
        self.driver.call("cuCtxSetCurrent", self._ctx)

    @property
    def name(self) -> str:
        buf = ctypes.create_string_buffer(256)
        self.driver.call("cuDeviceGetName", buf, len(buf), self._dev)
        return buf.value.decode(errors="replace")

    @property
    def total_memory(self) -> int:
        total = ctypes.c_size_t()
        self.driver.call("cuDeviceTotalMem_v2", ctypes.byref(total), self._dev)
        return total.value

    def mem_get_info(self) -> tuple[int, int]:
        """(free, total) bytes of the device, as ``cudaMemGetInfo`` reports them."""
        free = ctypes.c_size_t()
        total = ctypes.c_size_t()
        with self._lock:
            self._make_current()
            self.driver.call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
        return free.value, total.value

    def alloc(self, nbytes: int) -> DeviceAllocation:
        """Allocate ``nbytes`` of device memory; :class:`CudaError` (out of memory) if it lacks."""
        if nbytes <= 0:
            raise ValueError(f"cannot allocate {nbytes} bytes")
        ptr = _CUdeviceptr()
        with self._lock:
            self._make_current()
            self.driver.call("cuMemAlloc_v2", ctypes.byref(ptr), ctypes.c_size_t(nbytes))
            allocation = DeviceAllocation(ptr=ptr.value, nbytes=nbytes, device_index=self.index)
            self._allocations[allocation.ptr] = allocation
        return allocation

    def free(self, allocation: DeviceAllocation) -> None:
        with self._lock:
            if self._allocations.pop(allocation.ptr, None) is None:
                return
            self._make_current()
            self.driver.call("cuMemFree_v2", _CUdeviceptr(allocation.ptr))

    def copy_from_host(
        self, allocation: DeviceAllocation, data: bytes | bytearray, offset: int = 0
    ) -> None:
        """Copy ``data`` into ``allocation`` at ``offset``."""
        if offset < 0 or offset + len(data) > allocation.nbytes:
            raise ValueError("copy outside the allocation")
        if not data:
            return
        src: object
        if isinstance(data, bytes):
            src = ctypes.c_char_p(data)
        else:
            src = (ctypes.c_char * len(data)).from_buffer(data)
        with self._lock:
            self._make_current()
            self.driver.call(
                "cuMemcpyHtoD_v2",
                _CUdeviceptr(allocation.ptr + offset),
                ctypes.cast(src, ctypes.c_void_p),
                ctypes.c_size_t(len(data)),
            )

    @property
    def allocated_bytes(self) -> int:
        return sum(a.nbytes for a in self._allocations.values())

    def close(self) -> None:
        """Free everything still allocated and release the primary context."""
        if self._closed:
            return
        for allocation in list(self._allocations.values()):
            self.free(allocation)
        self._closed = True
        self.driver.call(self.driver.primary_ctx_release, self._dev)

    def __enter__(self) -> CudaDevice:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
