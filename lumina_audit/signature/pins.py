"""Numerical pins (spec signature-v1, section 9).

The bits of a signature depend on how torch, MKL and oneDNN pick kernels and
split work. Several of those choices are read from the environment at first
use, so they must be in place *before Python starts* to be certain. The
``lumina-audit`` command therefore re-executes itself with the pinned
environment (:func:`reexec_if_needed`) whatever its caller set; library users
call :func:`apply_torch_pins` after setting :func:`pinned_environ` themselves,
and :func:`check_runtime` refuses a process whose runtime differs.

Why each default (measured, see ``docs/pins.md`` and ``tests/signature/test_pins.py``):

- ``threads=1``: the EnCodec encoder and some kernels choose their algorithm by
  thread count; one thread is reproducible on every machine.
- ``ATEN_CPU_CAPABILITY=avx2``: the same vector code in torch's own kernels on every
  x86-64 CPU with AVX2, AVX-512 machines included.
- ``MKL_CBWR=COMPATIBLE`` and oneDNN off: MKL and oneDNN pick their kernels (and block
  sizes) by CPU vendor, instruction set and cache sizes, so under MKL's default branch the
  same pins gave other bits on an Intel Xeon than on the AMD EPYC the first golden vectors
  were made on. MKL's ``COMPATIBLE`` branch is the one it documents as giving the same
  results on Intel and non-Intel processors; with oneDNN off, convolutions go through
  torch's own kernels and MKL. Measured: the bits no longer move when MKL is limited to
  other instruction sets (``docs/pins.md``). (``COMPATIBLE`` made bits depend on the thread
  count, which is pinned.) ``ONEDNN_MAX_CPU_ISA=AVX2`` stays, for any oneDNN path left.
- SDPA forced to the math backend; on CUDA deterministic algorithms,
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, cuDNN deterministic, no benchmark, no TF32.

Two pins decide only where memory lives, never a bit (``docs/spec-notes.md`` E1-E2,
``tests/signature/test_memory_options.py``): ``sums`` (the float64 chunk sums on the device,
or on the host, fed by asynchronous copies into pinned memory) and ``gradients`` (the 72
hooked gradients of a chunk returned together, or streamed into the sums one tensor at a
time during the backward pass). They are recorded like every pin, but :meth:`Pins.as_json`
leaves them out at their defaults, so the record (and the digest) of the default pins is
the one written before they existed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigError, EnvironmentMismatch

if TYPE_CHECKING:
    import torch

__all__ = [
    "LEGACY_PINS",
    "MARKER",
    "Pins",
    "apply_torch_pins",
    "bit_pins",
    "check_runtime",
    "pinned_environ",
    "reexec_if_needed",
    "sdpa_context",
]

#: Environment variable holding the digest of the pins a process was started with.
MARKER = "LUMINA_AUDIT_PINNED"

#: Variables the pins own: set to the pinned value or removed.
_OWNED = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_DYNAMIC",
    "OMP_DYNAMIC",
    "CUBLAS_WORKSPACE_CONFIG",
    "PYTHONHASHSEED",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
)


#: The memory pins and their defaults: they change no bit, and the record leaves them out at these values.
_MEMORY_DEFAULTS: dict[str, str] = {"sums": "device", "gradients": "together"}


@dataclass(frozen=True)
class Pins:
    """Everything that may change a signature's bits without changing its meaning."""

    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal["float32"] = "float32"
    threads: int = 1
    aten_cpu_capability: str | None = "avx2"
    onednn_max_cpu_isa: str | None = "AVX2"
    mkl_cbwr: str | None = "COMPATIBLE"
    onednn: bool = False
    sdpa_backend: Literal["math"] = "math"
    cuda_deterministic: bool = True
    cublas_workspace_config: str = ":4096:8"
    cudnn_deterministic: bool = True
    cudnn_benchmark: bool = False
    tf32: bool = False
    #: Where the float64 chunk sums live: ``device`` (beside the model) or ``host`` (CPU memory).
    sums: Literal["device", "host"] = "device"
    #: ``together``: one ``torch.autograd.grad`` returns all 72 gradients; ``streamed``: each is
    #: added to its sum as soon as the backward pass produces it, then freed.
    gradients: Literal["together", "streamed"] = "together"

    def __post_init__(self) -> None:
        if not (1 <= self.threads <= 256):
            raise ConfigError(f"threads must be between 1 and 256, got {self.threads}")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.dtype != "float32":
            raise ConfigError("dtype must be float32 (spec signature-v1 section 3)")
        if self.device == "cuda" and not (self.cuda_deterministic and self.cudnn_deterministic):
            raise ConfigError("on CUDA, deterministic algorithms and cuDNN determinism are required")
        if self.tf32 or self.cudnn_benchmark:
            raise ConfigError("TF32 and cuDNN benchmark change bits from run to run; both must be off")
        if self.sums not in ("device", "host"):
            raise ConfigError(f"sums must be 'device' or 'host', got {self.sums!r}")
        if self.gradients not in ("together", "streamed"):
            raise ConfigError(f"gradients must be 'together' or 'streamed', got {self.gradients!r}")

    def as_json(self) -> dict[str, Any]:
        """Every pin, but the memory pins (``sums``, ``gradients``) only where they differ from their defaults."""
        doc = asdict(self)
        for name, default in _MEMORY_DEFAULTS.items():
            if doc[name] == default:
                del doc[name]
        return doc

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


#: The defaults before 2026-12-04: MKL's default branch and oneDNN on, whose bits differ between CPU
#: families (``docs/pins.md``). They stay what an omitted pin of a ``lumina-audit/v1`` or ``/v2``
#: manifest means, since its digest covers them (``docs/spec-notes.md`` E6).
LEGACY_PINS = Pins(mkl_cbwr=None, onednn=True)


def bit_pins(recorded: Mapping[str, Any]) -> dict[str, Any]:
    """Recorded pins (:meth:`Pins.as_json`) without the memory pins, which change no bit: what two runs share
    when their signatures compare."""
    return {k: v for k, v in recorded.items() if k not in _MEMORY_DEFAULTS}


def pinned_environ(pins: Pins, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with every variable the pins own set or removed, and the marker set."""
    env = {k: v for k, v in base.items() if k not in _OWNED}
    threads = str(pins.threads)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
    env.update(MKL_DYNAMIC="FALSE", OMP_DYNAMIC="FALSE", PYTHONHASHSEED="0")
    if pins.aten_cpu_capability is not None:
        env["ATEN_CPU_CAPABILITY"] = pins.aten_cpu_capability
    if pins.onednn_max_cpu_isa is not None:
        env["ONEDNN_MAX_CPU_ISA"] = pins.onednn_max_cpu_isa
    if pins.mkl_cbwr is not None:
        env["MKL_CBWR"] = pins.mkl_cbwr
    env["CUBLAS_WORKSPACE_CONFIG"] = pins.cublas_workspace_config
    env[MARKER] = pins.digest
    return env


def reexec_if_needed(pins: Pins, argv: Sequence[str], entry: Sequence[str] | None = None) -> None:
    """Re-execute this program under the pinned environment unless already there.

    Called by the CLI (and scripts) before anything imports torch. Returns when
    the process environment already equals :func:`pinned_environ`; otherwise
    replaces the process (``os.execve`` of ``entry + argv``, by default
    ``python -m lumina_audit``) and does not return.
    """
    want = pinned_environ(pins, os.environ)
    if dict(os.environ) == want:
        return
    if os.environ.get(MARKER) == pins.digest:
        # Pinned once already and still different: something rewrites the environment.
        raise EnvironmentMismatch("the process environment changed after pinning; refusing to loop")
    if "torch" in sys.modules:
        raise EnvironmentMismatch("torch was imported before the numerical pins were applied")
    command = [*(entry or (sys.executable, "-m", "lumina_audit")), *argv]
    os.execve(command[0], command, want)


def apply_torch_pins(pins: Pins) -> torch.device:
    """Apply the in-process pins (threads, determinism, backends); return the device."""
    import torch

    check_environment(pins)
    torch.set_num_threads(pins.threads)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already started; inter-op threads do not split any reduction we use
    torch.backends.mkldnn.enabled = pins.onednn  # type: ignore[assignment]
    torch.use_deterministic_algorithms(True, warn_only=False)
    torch.backends.cudnn.deterministic = pins.cudnn_deterministic
    torch.backends.cudnn.benchmark = pins.cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = pins.tf32
    torch.backends.cudnn.allow_tf32 = pins.tf32
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.set_float32_matmul_precision("highest")
    if pins.device == "cuda":
        if not torch.cuda.is_available():
            raise EnvironmentMismatch("the pins ask for CUDA but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def check_environment(pins: Pins) -> None:
    """Refuse a process whose environment differs from the pinned one."""
    want = pinned_environ(pins, os.environ)
    diff = sorted(k for k in set(want) | set(os.environ) if want.get(k) != os.environ.get(k))
    if diff:
        raise EnvironmentMismatch(
            f"the process does not run under the numerical pins (differs: {', '.join(diff)})",
            hint="run through the lumina-audit command, or set lumina_audit.signature.pins.pinned_environ() "
            "in the environment before Python starts",
        )


def check_runtime(pins: Pins) -> None:
    """Refuse a runtime whose kernels differ from the pins (after :func:`apply_torch_pins`)."""
    import torch

    check_environment(pins)
    if pins.aten_cpu_capability is not None:
        have = torch.backends.cpu.get_cpu_capability()
        if have.lower() != pins.aten_cpu_capability.lower():
            raise EnvironmentMismatch(
                f"torch runs {have} kernels, the pins say {pins.aten_cpu_capability}",
                hint="torch ran an operation before the pins were set; start a fresh process",
            )
    if torch.get_num_threads() != pins.threads:
        raise EnvironmentMismatch(f"torch uses {torch.get_num_threads()} threads, the pins say {pins.threads}")


@contextmanager
def sdpa_context(pins: Pins) -> Iterator[None]:
    """Scaled-dot-product attention restricted to the pinned backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"math": SDPBackend.MATH}
    with sdpa_kernel([backends[pins.sdpa_backend]]):
        yield
