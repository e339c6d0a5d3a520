"""Where the float64 chunk sums of spec 5 live: beside the model, or in host memory.

One sum per hooked tensor (72: both channels, spec order), float64, the shape of its
parameter; chunk gradients arrive as float32 tensors of the same shape, on the model's device,
in chunk order, each tensor's at most once per chunk.

- :class:`DeviceSums` (pin ``sums: device``, the default): the sums on the model's device;
  ``acc.add_(g.to(float64))``, then the average ``(acc / n).cpu()``.
- :class:`HostSums` (pin ``sums: host``): the sums in host memory. Each gradient is copied
  into a float32 staging buffer of its own in pinned memory (``non_blocking`` on CUDA, an
  event recorded behind the copy), and a worker thread waits for that event and adds the
  buffer into the sum in float64. A staging buffer is refilled only after its previous add has
  finished, so each tensor's adds still happen in chunk order. The average is ``acc / n`` on
  the host.

Both compute the same IEEE float64 additions of the same values (the float32 to float64
cast is exact, the additions are elementwise and correctly rounded on every device), and the
same correctly rounded division, so they give the same bits (``docs/spec-notes.md`` E1,
``tests/signature/test_memory_options.py``; the GPU check compares them on CUDA).

Memory at MusicGen-Large's shape (805,306,368 hooked entries): device, 6.4 GB on the device;
host, none on the device and 6.4 GB (sums) + 3.2 GB (pinned staging) on the host.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from ..errors import SignatureError
from .pins import Pins

__all__ = ["HOST_WORKERS", "ChunkSums", "DeviceSums", "HostSums", "make_sums"]

#: Worker threads adding staged gradients into host sums (each add is elementwise: the count changes no bit).
HOST_WORKERS = 4


class ChunkSums(abc.ABC):
    """The float64 sums of the hooked tensors' chunk gradients, by tensor index (0-71)."""

    @abc.abstractmethod
    def add(self, k: int, grad: torch.Tensor) -> None:
        """Add one chunk's float32 gradient of tensor ``k`` (any thread; the caller may drop ``grad`` after)."""

    @abc.abstractmethod
    def mean(self, k: int, n: float) -> torch.Tensor:
        """The float64 average ``sum / n`` of tensor ``k`` on the CPU; the sum is dropped."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the sums hold (safe to call twice, and after an error)."""


class DeviceSums(ChunkSums):
    """Sums on the model's device (pin ``sums: device``)."""

    def __init__(self, params: Sequence[torch.Tensor], device: torch.device) -> None:
        self._sums: list[torch.Tensor | None] = [torch.zeros(p.shape, dtype=torch.float64, device=device)
                                                 for p in params]

    def add(self, k: int, grad: torch.Tensor) -> None:
        acc = self._sums[k]
        if acc is None:
            raise SignatureError("a hooked tensor's sum was dropped before its last chunk")
        acc.add_(grad.to(torch.float64))

    def mean(self, k: int, n: float) -> torch.Tensor:
        acc = self._sums[k]
        if acc is None:
            raise SignatureError("a hooked tensor's sum was dropped before its average was taken")
        self._sums[k] = None
        mean = (acc / n).cpu()  # spec 5
        del acc
        return mean

    def close(self) -> None:
        self._sums = [None] * len(self._sums)


class HostSums(ChunkSums):
    """Sums in host memory, fed through pinned staging buffers and worker threads (pin ``sums: host``)."""

    def __init__(self, params: Sequence[torch.Tensor], device: torch.device, workers: int = HOST_WORKERS) -> None:
        self._cuda = device.type == "cuda"
        self._sums: list[torch.Tensor | None] = [torch.zeros(p.shape, dtype=torch.float64) for p in params]
        self._staging = [torch.empty(p.shape, dtype=torch.float32, pin_memory=self._cuda) for p in params]
        self._pending: list[Future[None] | None] = [None] * len(params)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(max_workers=workers,
                                                                   thread_name_prefix="lumina-host-sums")

    def _wait(self, k: int) -> None:
        with self._lock:
            pending, self._pending[k] = self._pending[k], None
        if pending is not None:
            pending.result()  # re-raises a failed add

    def _add_staged(self, k: int, copied: torch.cuda.Event | None) -> None:
        if copied is not None:
            copied.synchronize()
        acc = self._sums[k]
        if acc is None:
            raise SignatureError("a hooked tensor's sum was dropped before its last chunk")
        acc.add_(self._staging[k].to(torch.float64))

    def add(self, k: int, grad: torch.Tensor) -> None:
        if self._pool is None:
            raise SignatureError("the host sums were closed")
        if grad.dtype != torch.float32 or grad.shape != self._staging[k].shape:
            raise SignatureError(f"a chunk gradient must be float32 of its tensor's shape, got {grad.dtype} "
                                 f"{tuple(grad.shape)}")
        self._wait(k)  # the staging buffer of tensor k is free again
        copied: torch.cuda.Event | None = None
        if self._cuda:
            self._staging[k].copy_(grad, non_blocking=True)
            copied = torch.cuda.Event()  # type: ignore[no-untyped-call]
            copied.record(torch.cuda.current_stream(grad.device))
        else:
            self._staging[k].copy_(grad)
        future = self._pool.submit(self._add_staged, k, copied)
        with self._lock:
            self._pending[k] = future

    def mean(self, k: int, n: float) -> torch.Tensor:
        for j in range(len(self._pending)):
            self._wait(j)
        acc = self._sums[k]
        if acc is None:
            raise SignatureError("a hooked tensor's sum was dropped before its average was taken")
        self._sums[k] = None
        return acc / n  # spec 5

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._pending = [None] * len(self._pending)
        self._sums = [None] * len(self._sums)
        self._staging = []


def make_sums(params: Sequence[torch.Tensor], device: torch.device, pins: Pins) -> ChunkSums:
    """The sums the pin ``sums`` asks for."""
    if pins.sums == "host":
        return HostSums(params, device)
    return DeviceSums(params, device)
